"""The predictive-coding iP-VAE network on Brian2 (neurodeploy.backends.brian2.blocks.ipvae_pc)."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("brian2")

from neurodeploy.backends.brian2.blocks.ipvae import run_ipvae_brian2  # noqa: E402
from neurodeploy.backends.brian2.blocks.ipvae import run_ipvae_pc_brian2  # noqa: E402
from neurodeploy.library.blocks.ipvae.reference import ipvae_params  # noqa: E402
from neurodeploy.library.blocks.ipvae.pc import run_ipvae_pc  # noqa: E402
from neurodeploy.library.blocks.ipvae.reference import ipvae_step  # noqa: E402


def test_pc_schedule_feedback_before_encoder_before_update(arrays, X):
    """Within a step: fb from the previous counts, then the latents' input from eps, then u, z."""
    r = run_ipvae_pc_brian2(arrays, X[:1], 1)
    names = [name for name, _, _ in r["schedule"]]
    i_fb = names.index("ipvae_decoder_summed_variable_fb_post")
    i_inp = names.index("ipvae_encoder_summed_variable_inp_post")
    i_it = names.index("ipvae_iteration")
    assert i_fb < i_inp < i_it, r["schedule"]


def test_pc_draws_the_same_counts_as_lateral(arrays, X):
    """Same algorithm, same random numbers: identical counts at every one of T = 12 steps (same
    ``batch`` for both: chunks are simulated one after the other from one Brian2 random stream)."""
    K = arrays["Phi"].shape[1]
    z0 = np.random.default_rng(5).poisson(np.exp(arrays["u0"]), size=(4, K)).astype(float)
    lat = run_ipvae_brian2(arrays, X[:4], 12, seed=7, z0=z0, record_z=True, batch=3)  # two chunks
    pc = run_ipvae_pc_brian2(arrays, X[:4], 12, seed=7, z0=z0, record_z=True, batch=3)
    assert lat["z_history"].sum() > 0 and np.any(np.diff(lat["z_history"], axis=0) != 0)
    np.testing.assert_array_equal(pc["z_history"], lat["z_history"])
    np.testing.assert_allclose(pc["u"], lat["u"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(pc["zbar"], lat["zbar"], rtol=0, atol=1e-12)


def test_pc_rate_mode_equals_oracle(arrays, X):
    p = ipvae_params(arrays)
    Xs, T = X[:3], 8
    r = run_ipvae_pc_brian2(arrays, Xs, T, mode="rate", batch=2)  # two chunks
    u = np.repeat(p.u0[None], len(Xs), 0)
    z = np.exp(u)
    for _ in range(T):
        u, z, _ = ipvae_step(u, z, Xs, p.Phi, p.b, p.eta, p.sigma, u_min=p.u_min, u_max=p.u_max,
                             du_max=p.du_max, soft=p.soft, mode="rate")
    np.testing.assert_allclose(r["u"], u, rtol=0, atol=1e-9)
    np.testing.assert_allclose(r["z"], z, rtol=1e-9, atol=0)
    # the error units' output of the last step, as the numpy PC reference reports it
    ref = run_ipvae_pc(arrays, Xs, T, mode="rate")
    np.testing.assert_allclose(r["eps"], ref["eps"], rtol=1e-9, atol=1e-9)


def test_pc_reconstructs_held_out_digits(arrays, X):
    """Measured (seeds 0-3, 16 held-out digits, T = 16): R^2 0.843, 0.825, 0.808, 0.805, zeros
    ~0.88-0.90, identical to the lateral network with the same seed."""
    r = run_ipvae_pc_brian2(arrays, X[:16], 16, seed=0)
    assert r["backend"] == "brian2-pc" and r["z"].shape == (16, arrays["Phi"].shape[1])
    assert r["r2"] > 0.70, r["r2"]
    assert 0.5 < r["zeros"] < 0.99, r["zeros"]
