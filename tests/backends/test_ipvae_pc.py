"""Predictive-coding (two-population) form of iP-VAE inference (issue 6): the numpy PC step is
``ipvae_step`` iteration by iteration; the Lava PC network (error units + latents, decoder and
encoder Dense) equals the numpy PC form in rate mode, sees the same random stream as the lateral
form on Lava and agrees with it statistically on held-out digits; Kolen-Pollack keeps the encoder
aligned with the decoder without weight transport."""

from __future__ import annotations


import numpy as np
import pytest

from neurodeploy.library.blocks.ipvae.reference import drive, ipvae_params, lateral_matrix
from neurodeploy.library.blocks.ipvae.pc import (
    error_units,
    ipvae_pc_step,
    kp_alignment_demo,
    run_ipvae_pc,
    synapse_counts,
)
from neurodeploy.library.blocks.ipvae.reference import ipvae_step

N_STAT = 32  # held-out digits for the statistical comparison with the lateral form
T_STAT = 32




def _kw(a):
    return dict(u_min=float(a["u_min"]), u_max=float(a["u_max"]), du_max=float(a["du_max"]),
                soft=bool(a["soft_clamp"]))


# --- numpy: the two forms are the same algorithm ---------------------------------------------------

@pytest.mark.parametrize("mode", ["exact", "rate"])
def test_numpy_pc_equals_ipvae_step_every_iteration(arrays, X, mode):
    """Same random stream -> identical potentials and counts at every one of 32 iterations."""
    Xs = X[:16]
    u_l = u_p = np.repeat(arrays["u0"][None], len(Xs), 0)
    z_l = z_p = np.random.default_rng(0).poisson(np.exp(u_l)).astype(float)
    rng_l, rng_p = np.random.default_rng(1), np.random.default_rng(1)
    args = (arrays["Phi"], arrays["b"], float(arrays["eta"]), arrays["sigma"])
    for _ in range(T_STAT):
        u_l, z_l, du_l = ipvae_step(u_l, z_l, Xs, *args, rng=rng_l, mode=mode, **_kw(arrays))
        u_p, z_p, du_p, _ = ipvae_pc_step(u_p, z_p, Xs, *args, rng=rng_p, mode=mode, **_kw(arrays))
        np.testing.assert_array_equal(u_p, u_l)
        np.testing.assert_array_equal(z_p, z_l)
        np.testing.assert_array_equal(du_p, du_l)
    assert mode == "rate" or z_l.sum() > 0


def test_encoder_input_is_lateral_drive(arrays, X):
    """eta (Phi^T eps - exp(b)) = drive - W z: the PC pathway computes the lateral form's input."""
    p = ipvae_params(arrays)
    z = np.random.default_rng(2).poisson(0.4, size=(5, p.latents)).astype(float)
    eps = error_units(X[:5], z, p.Phi, p.sigma)
    pc = p.eta * (eps @ p.Phi - np.exp(p.b))
    lateral = drive(p, X[:5]) - z @ lateral_matrix(p).T
    np.testing.assert_allclose(pc, lateral, rtol=0, atol=1e-10)


def test_synapse_counts_k256_m64():
    c = synapse_counts(256, 64)
    assert (c["lateral"], c["pc"], c["neurons_pc"]) == (256 * 256 + 64 * 256, 2 * 64 * 256, 320)
    assert synapse_counts(256, 64, input_on_chip=False)["lateral"] == 65536


# --- Lava ------------------------------------------------------------------------------------------

@pytest.mark.lava
def test_lava_pc_rate_mode_equals_numpy_pc(arrays, X):
    from neurodeploy.backends.lava.blocks.ipvae.pc import run_ipvae_pc_lava

    Xs, T = X[:3], 4
    r = run_ipvae_pc_lava(arrays, Xs, T, mode="rate", batch=2)  # two chunks
    n = run_ipvae_pc(arrays, Xs, T, mode="rate")
    assert r["steps"] == 2 * T + 1
    np.testing.assert_allclose(r["u"], n["u"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(r["z"], n["z"], rtol=1e-9, atol=0)
    np.testing.assert_allclose(r["zbar"], n["zbar"], rtol=1e-9, atol=0)
    np.testing.assert_allclose(r["eps"], n["eps"], rtol=0, atol=1e-9)


@pytest.mark.lava
def test_lava_pc_one_exact_step_equals_oracle(arrays, X):
    from neurodeploy.backends.lava.blocks.ipvae.pc import run_ipvae_pc_lava

    z0 = np.random.default_rng(4).poisson(0.5, size=(2, arrays["Phi"].shape[1])).astype(float)
    r = run_ipvae_pc_lava(arrays, X[:2], 1, z0=z0, connection="sparse")
    u = np.repeat(arrays["u0"][None], 2, 0)
    u, _, _ = ipvae_step(u, z0, X[:2], arrays["Phi"], arrays["b"], float(arrays["eta"]), arrays["sigma"],
                         mode="rate", **_kw(arrays))
    np.testing.assert_allclose(r["u"], u, rtol=0, atol=1e-9)
    assert np.all(r["z"] == np.round(r["z"])) and r["z"].min() >= 0


@pytest.fixture(scope="module")
def lava_runs(arrays, X):
    from neurodeploy.backends.lava.blocks.ipvae import run_ipvae_lava
    from neurodeploy.backends.lava.blocks.ipvae.pc import run_ipvae_pc_lava

    Xs = X[:N_STAT]
    kw = dict(connection="sparse", batch=N_STAT)
    return {"pc": run_ipvae_pc_lava(arrays, Xs, T_STAT, seed=2, **kw),
            "pc_fixed": run_ipvae_pc_lava(arrays, Xs, T_STAT, seed=3, fixed=True, **kw),
            "lateral_same_seed": run_ipvae_lava(arrays, Xs, T_STAT, seed=2, **kw),
            "lateral": run_ipvae_lava(arrays, Xs, T_STAT, seed=7, **kw)}


@pytest.mark.lava
def test_lava_pc_same_stream_as_lateral(lava_runs):
    """Same seed and batch: both Lava forms draw the same numbers, so their counts are identical
    after 32 iterations and the potentials differ only by float rounding."""
    pc, lat = lava_runs["pc"], lava_runs["lateral_same_seed"]
    np.testing.assert_array_equal(pc["z"], lat["z"])
    np.testing.assert_allclose(pc["u"], lat["u"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(pc["zbar"], lat["zbar"], rtol=0, atol=1e-9)


@pytest.mark.lava
def test_lava_pc_agrees_with_lateral_statistically(lava_runs):
    """Independent seeds: per-image mean difference of R^2 and of the zero fraction within
    4 standard errors of that mean (paired over the 32 digits)."""
    pc, lat = lava_runs["pc"], lava_runs["lateral"]
    for key, what in (("r2_images", "R^2"), ("zeros_images", "zeros")):
        d = pc[key] - lat[key]
        bound = 4.0 * d.std(ddof=1) / np.sqrt(len(d))
        assert abs(d.mean()) <= bound, f"{what}: |mean difference| {abs(d.mean()):.4f} > 4 SE {bound:.4f}"
    assert pc["r2"] > 0.7 and lat["r2"] > 0.7


@pytest.mark.lava
def test_lava_pc_fixed_close_to_float(lava_runs):
    """Fixed point (8-bit decoder and encoder weights, 16-bit signed error payload, 8-bit counts)
    against float PC: mean R^2 and zero fraction within 0.03 (as the lateral form's fixed-point
    test)."""
    fx, fl = lava_runs["pc_fixed"], lava_runs["pc"]
    for key, what in (("r2", "R^2"), ("zeros", "zeros")):
        assert abs(fx[key] - fl[key]) <= 0.03, f"fixed vs float {what}: {fx[key]:.4f} vs {fl[key]:.4f}"


def test_fixed_errors_within_quantisation_bound(arrays, X):
    """Integer error units vs the float ones for given counts: the 8-bit decoder (half a weight
    step per unit count), the Q rounding of x, the gain mantissa and the output rounding."""
    from neurodeploy.library.blocks.ipvae.fixed import fixed_format
    from neurodeploy.library.blocks.ipvae.pc_fixed import errors_fixed, pc_fixed_constants

    p = ipvae_params(arrays)
    fmt = fixed_format(p)
    c = pc_fixed_constants(p, fmt)
    z = np.random.default_rng(5).poisson(0.4, size=(6, p.latents))
    eps_q = errors_fixed(fmt.q(X[:6]), z @ c["dec_w"].T, c["gain_q"], c["dec_shift"], c["gain_bits"],
                         fmt.frac_bits, c["eps_frac_bits"], c["eps_bits"])
    eps = error_units(X[:6], z, p.Phi, p.sigma)
    got = eps_q / 2.0 ** c["eps_frac_bits"]
    gain = 1.0 / p.sigma ** 2
    diff = np.abs(X[:6] - z @ p.Phi.T)
    bound = (gain * (2.0 ** (c["dec_exp"] - 1) * z.sum(1, keepdims=True) + 2.0 ** -fmt.frac_bits)
             + (diff + 1) * 2.0 ** -c["gain_bits"] + 2.0 ** -c["eps_frac_bits"])
    err = np.abs(got - eps)
    assert np.all(err <= bound), float((err - bound).max())
    assert err.max() > 0


@pytest.mark.lava
def test_lava_pc_fixed_bit_exact_with_reference(arrays, X):
    """The fixed_pt PC models with Lava's bit-accurate Dense equal pc_reference.pc_fixed_run."""
    from neurodeploy.backends.lava.blocks.ipvae.pc import run_ipvae_pc_lava
    from neurodeploy.library.blocks.ipvae.pc_fixed import pc_fixed_run

    T = 6
    r = run_ipvae_pc_lava(arrays, X[:2], T, fixed=True, seed=5, batch=2)
    p, fmt, c = ipvae_params(arrays), r["format"], r["constants"]
    blk = lambda w: np.kron(np.eye(2, dtype=np.int64), np.asarray(w, np.int64))  # noqa: E731
    u0 = np.tile(np.clip(fmt.q(p.u0), fmt.u_min_q, fmt.u_max_q), 2)
    u, z, zbar, _, eps = pc_fixed_run(u0, r["z0"].ravel(), fmt.q(X[:2]).ravel(), np.tile(c["gain_q"], 2),
                                      np.tile(c["leak_q"], 2), blk(c["dec_w"]), blk(c["enc_w"]), c,
                                      r["state0"].ravel(), T, fmt)
    np.testing.assert_array_equal(r["u_q"].ravel(), u)
    np.testing.assert_array_equal(r["z"].ravel(), z)
    np.testing.assert_array_equal(r["eps"].ravel(), eps)
    np.testing.assert_allclose(r["zbar"].ravel(), zbar, atol=1e-12)
    assert r["z"].sum() > 0 and np.abs(eps).max() > 0


# --- Kolen-Pollack alignment of encoder and decoder --------------------------------------------------

def test_kp_aligns_encoder_without_weight_transport(arrays, X):
    """The encoder, started at random, turns toward Phi^T under the shared local update plus decay
    (measured: relative distance 1.38 -> 0.78, angle 90 -> 49 degrees in 240 updates); without
    decay the difference Psi - Phi^T does not change at all."""
    steps, T, lr, decay = 60, 4, 3e-3, 5e-3
    kp = kp_alignment_demo(arrays, X, steps=steps, T=T, lr=lr, decay=decay, seed=1)
    n = steps * T
    np.testing.assert_allclose(kp["diff_norm"][-1], kp["diff_norm"][0] * (1 - decay) ** n, rtol=1e-9)
    assert kp["rel_dist"][-1] < 0.7 * kp["rel_dist"][0]
    assert kp["angle_deg"][-1] < kp["angle_deg"][0] - 10
    ctrl = kp_alignment_demo(arrays, X, steps=steps, T=T, lr=lr, decay=0.0, seed=1)
    np.testing.assert_allclose(ctrl["diff_norm"], ctrl["diff_norm"][0], rtol=1e-9)  # no decay: no alignment
