"""Spiking iP-VAE inference on Brian2 and Lava (issue 6): single steps against the numpy oracle
``ipvae_step``, the fixed-point Lava model against its numpy reference bit for bit, and the
statistics of T = 32 inference on held-out digits against torch's exact (training-time)
evaluation."""

from __future__ import annotations


import numpy as np
import pytest

from neurodeploy.library.blocks.ipvae.reference import drive, ipvae_params, lateral_matrix
from neurodeploy.library.blocks.ipvae.fixed import (
    FixedFormat,
    cap_q,
    count_tables,
    draw_counts,
    fixed_update,
    float_update,
    quantize_weights,
    seed_states,
)
from neurodeploy.library.blocks.ipvae.reference import ipvae_step
from neurodeploy.library.blocks.ipvae.neuron import softclamp_upper_np
from tests.backends.helpers import assert_fixed_run_matches_reference

N_STAT = 64  # held-out digits for the statistical checks
T_STAT = 32




def _numpy_steps(a, X, T, z0, mode="rate", rng=None):
    u = np.repeat(a["u0"][None, :], len(X), 0)
    z = z0
    for _ in range(T):
        u, z, _ = ipvae_step(u, z, X, a["Phi"], a["b"], float(a["eta"]), a["sigma"], u_min=float(a["u_min"]),
                             u_max=float(a["u_max"]), du_max=float(a["du_max"]), soft=bool(a["soft_clamp"]),
                             rng=rng, mode=mode)
    return u, z


# --- (a) deterministic pieces against the oracle ------------------------------------------------

def test_spiking_form_equals_oracle_increment(arrays, X):
    """drive - W z is the oracle's du (before the caps) and float_update its u."""
    p = ipvae_params(arrays)
    rng = np.random.default_rng(0)
    z = rng.poisson(0.3, size=(5, p.latents)).astype(float)
    u = np.repeat(p.u0[None], 5, 0)
    u_ref, _, _ = ipvae_step(u, z, X[:5], p.Phi, p.b, p.eta, p.sigma, mode="rate")
    u_new = float_update(u, drive(p, X[:5]), -z @ lateral_matrix(p).T, u_min=p.u_min, u_max=p.u_max,
                         du_max=p.du_max, soft=p.soft)
    np.testing.assert_allclose(u_new, u_ref, rtol=0, atol=1e-10)


def test_brian2_rate_mode_equals_oracle(arrays, X):
    from neurodeploy.backends.brian2.blocks.ipvae import run_ipvae_brian2

    Xs, T = X[:3], 4
    r = run_ipvae_brian2(arrays, Xs, T, mode="rate", batch=2)  # two chunks
    u, z = _numpy_steps(arrays, Xs, T, np.exp(np.repeat(arrays["u0"][None], 3, 0)))
    np.testing.assert_allclose(r["u"], u, rtol=0, atol=1e-9)
    np.testing.assert_allclose(r["z"], z, rtol=1e-9, atol=0)


def test_brian2_one_exact_step_equals_oracle(arrays, X):
    """With given counts z0 the first update is deterministic; the new counts are integers."""
    from neurodeploy.backends.brian2.blocks.ipvae import run_ipvae_brian2

    z0 = np.random.default_rng(3).poisson(0.5, size=(2, arrays["Phi"].shape[1])).astype(float)
    r = run_ipvae_brian2(arrays, X[:2], 1, z0=z0)
    u, _ = _numpy_steps(arrays, X[:2], 1, z0, mode="exact", rng=np.random.default_rng(0))
    np.testing.assert_allclose(r["u"], u, rtol=0, atol=1e-9)
    assert np.all(r["z"] == np.round(r["z"])) and r["z"].min() >= 0


@pytest.mark.lava
def test_lava_float_rate_mode_equals_oracle(arrays, X):
    from neurodeploy.backends.lava.blocks.ipvae import run_ipvae_lava

    Xs, T = X[:3], 4
    r = run_ipvae_lava(arrays, Xs, T, mode="rate", batch=2)
    u, z = _numpy_steps(arrays, Xs, T, np.exp(np.repeat(arrays["u0"][None], 3, 0)))
    np.testing.assert_allclose(r["u"], u, rtol=0, atol=1e-9)
    np.testing.assert_allclose(r["z"], z, rtol=1e-9, atol=0)


@pytest.mark.lava
def test_lava_float_one_exact_step_equals_oracle(arrays, X):
    from neurodeploy.backends.lava.blocks.ipvae import run_ipvae_lava

    z0 = np.random.default_rng(4).poisson(0.5, size=(2, arrays["Phi"].shape[1])).astype(float)
    r = run_ipvae_lava(arrays, X[:2], 1, z0=z0, connection="sparse")
    u, _ = _numpy_steps(arrays, X[:2], 1, z0, mode="exact", rng=np.random.default_rng(0))
    np.testing.assert_allclose(r["u"], u, rtol=0, atol=1e-9)


def test_fixed_update_within_quantisation_bound(arrays, X):
    """One fixed-point update differs from the float one by at most the stated rounding: weights
    (half a step 2^s per unit count), drive, and the two soft-clamp tables (half an LSB each)."""
    p = ipvae_params(arrays)
    fmt = FixedFormat(u_min=p.u_min, u_max=p.u_max, du_max=p.du_max, soft=p.soft)
    W = lateral_matrix(p)
    q, s = quantize_weights(-W)
    z = np.random.default_rng(1).poisson(0.4, size=(4, p.latents))
    D = drive(p, X[:4])
    u0 = np.repeat(p.u0[None], 4, 0)
    u_float = float_update(u0, D, -z @ W.T, u_min=p.u_min, u_max=p.u_max, du_max=p.du_max, soft=p.soft)
    u_q = fixed_update(fmt.q(u0), fmt.q(D), z @ (2 * q).T, s - 1 + fmt.frac_bits, fmt)
    lsb = 1.0 / fmt.one
    bound = 2.0 ** (s - 1) * z.sum(1, keepdims=True) + 3.5 * lsb
    err = np.abs(fmt.to_float(u_q) - u_float)
    assert np.all(err <= bound), float((err - bound).max())
    assert err.max() > 0  # really quantised


def test_fixed_soft_clamp_table():
    fmt = FixedFormat()
    y = np.arange(-12 * fmt.one, 25 * fmt.one, 37)
    got = fmt.to_float(cap_q(y, fmt.u_max_q, fmt))
    np.testing.assert_allclose(got, softclamp_upper_np(y / fmt.one, fmt.u_max), atol=1.0 / fmt.one)


def test_fixed_counts_are_poisson_and_clipped():
    """Inverse-CDF counts have the Poisson mean and variance of the table rate, and saturate at
    the 8-bit payload for large rates."""
    fmt = FixedFormat()
    n = 40000
    state = seed_states(n, 7)
    for u in (-2.0, 0.0, 1.5):
        u_q = np.full(n, int(fmt.q(u)))
        z, state = draw_counts(u_q, state, fmt)
        lam = np.exp(u)
        se = np.sqrt(lam / n)
        assert abs(z.mean() - lam) < 4 * se, (u, z.mean(), lam)
        assert abs(z.var() / lam - 1) < 0.05, (u, z.var(), lam)
    z, _ = draw_counts(np.full(100, fmt.u_max_q), state[:100], fmt)
    assert np.all(z == fmt.count_max)
    rates, cdf = count_tables(fmt)
    assert cdf.shape == (len(rates), fmt.count_max) and np.all(np.diff(cdf, axis=1) >= 0)


@pytest.mark.lava
def test_lava_fixed_bit_exact_with_reference(arrays, X):
    """The fixed_pt ProcessModel with Lava's bit-accurate Dense equals the numpy reference."""
    from neurodeploy.backends.lava.blocks.ipvae import run_ipvae_lava

    T = 6
    r = run_ipvae_lava(arrays, X[:2], T, fixed=True, seed=5, batch=2)
    assert_fixed_run_matches_reference(arrays, X[:2], r, T)


# --- (b) statistics on held-out digits ------------------------------------------------------------

@pytest.fixture(scope="module")
def stats(arrays, X):
    """Per-image R^2 and zero fractions at T = 32 on N_STAT held-out digits for every backend."""
    import torch

    from neurodeploy.backends.brian2.blocks.ipvae import run_ipvae_brian2
    from neurodeploy.backends.lava.blocks.ipvae import run_ipvae_lava
    from neurodeploy.backends.torch.blocks.ipvae import ipvae_from_arrays
    from neurodeploy.library.blocks.coder import r2_per_image

    Xs = X[:N_STAT]
    model = ipvae_from_arrays(arrays)
    g = torch.Generator().manual_seed(0)
    _, z, _ = model.infer(torch.as_tensor(Xs, dtype=torch.float32), T_STAT, mode="exact", generator=g)
    z = z.double().numpy()
    out = {"torch": (r2_per_image(Xs, z @ arrays["Phi"].T), np.mean(z == 0, axis=1))}
    runs = {"brian2": lambda: run_ipvae_brian2(arrays, Xs, T_STAT, seed=1),
            "lava_float": lambda: run_ipvae_lava(arrays, Xs, T_STAT, seed=2, connection="sparse", batch=32),
            "lava_fixed": lambda: run_ipvae_lava(arrays, Xs, T_STAT, fixed=True, seed=3, connection="sparse",
                                                 batch=32)}
    for name, run in runs.items():
        r = run()
        out[name] = (r["r2_images"], r["zeros_images"])
    return out


def _mc_check(a, b, k=4.0):
    d = np.asarray(a) - np.asarray(b)
    se = d.std(ddof=1) / np.sqrt(len(d))
    return abs(d.mean()), k * se


@pytest.mark.lava
@pytest.mark.parametrize("backend", ["brian2", "lava_float"])
def test_backend_agrees_with_torch_exact(stats, backend):
    for i, what in enumerate(("R^2", "zeros")):
        diff, bound = _mc_check(stats[backend][i], stats["torch"][i])
        assert diff <= bound, f"{backend} {what}: |mean difference| {diff:.4f} > 4 SE {bound:.4f}"
    assert np.mean(stats[backend][0]) > 0.7  # a working coder, not two equally broken ones


@pytest.mark.lava
def test_fixed_point_close_to_float(stats):
    for i, what in enumerate(("R^2", "zeros")):
        diff = abs(np.mean(stats["lava_fixed"][i]) - np.mean(stats["lava_float"][i]))
        assert diff <= 0.03, f"fixed vs float {what}: {diff:.4f}"
