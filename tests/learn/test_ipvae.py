"""iP-VAE / LCA core: sampler statistics, KL, numpy reference == torch, training, checkpoints."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from neurodeploy.backends.torch.blocks.ipvae import (
    IPVAE,
    IPVAEConfig,
    ipvae_from_arrays,
    n_exp_for,
    poisson_kl,
    relaxed_poisson,
)
from neurodeploy.library.blocks.ipvae.reference import ipvae_step, poisson_kl_np
from neurodeploy.backends.torch.blocks.lca import lca_infer
from neurodeploy.library.blocks.lca.reference import lca_step


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _pmf(k, lam):
    return np.exp(k * np.log(lam) - lam - np.array([math.lgamma(i + 1) for i in k]))


@pytest.mark.parametrize("lam", [0.3, 2.5, 7.0])
def test_relaxed_sampler_tends_to_poisson(lam):
    g = torch.Generator().manual_seed(0)
    rate = torch.full((40000,), lam)
    n = n_exp_for(lam)

    def draw(temp):  # same arrival times for every temperature
        return relaxed_poisson(rate, temp, n, torch.Generator().manual_seed(5)).numpy()

    exact, cold = draw(0.0), draw(0.01)
    gaps = [np.mean(np.abs(draw(t) - exact)) for t in (1.0, 0.1, 0.01)]
    assert gaps[0] > gaps[1] > gaps[2] and gaps[2] < 0.02 * lam + 0.01
    # temperature 0: integer counts with the Poisson distribution (total variation small)
    assert np.all(exact == np.round(exact))
    k = np.arange(0, int(lam * 4 + 10))
    emp = np.bincount(exact.astype(int), minlength=len(k))[:len(k)] / len(exact)
    assert 0.5 * np.abs(emp - _pmf(k, lam)).sum() < 0.02
    # cold relaxation: close to the exact counts, mean and variance close to lam
    assert abs(cold.mean() - lam) < 0.05 * lam + 0.02
    assert abs(cold.var() - lam) < 0.08 * lam + 0.03
    # warm relaxation is smooth (not integer) and differentiable
    r = torch.full((1000,), lam, requires_grad=True)
    warm = relaxed_poisson(r, 1.0, n, g)
    assert np.mean(np.abs(warm.detach().numpy() - np.round(warm.detach().numpy())) > 0.05) > 0.5
    warm.sum().backward()
    assert torch.isfinite(r.grad).all() and r.grad.abs().sum() > 0


def test_poisson_kl_matches_monte_carlo():
    rng = np.random.default_rng(1)
    for lam, lam0 in [(2.0, 0.5), (0.2, 1.5), (4.0, 4.5)]:
        z = rng.poisson(lam, 400000)
        # log Pois(z; lam) - log Pois(z; lam0) = z log(lam/lam0) - (lam - lam0)
        mc = np.mean(z * np.log(lam / lam0) - (lam - lam0))
        closed = poisson_kl_np(np.log(lam), np.log(lam0))
        assert abs(mc - closed) < 0.02 * max(closed, 0.1), (lam, lam0, mc, closed)
        t = poisson_kl(torch.tensor(math.log(lam), dtype=torch.float64), torch.tensor(math.log(lam0), dtype=torch.float64))
        assert float(t) == pytest.approx(closed, rel=1e-9)
    assert poisson_kl_np(0.7, 0.7) == 0.0
    u = rng.normal(size=100)
    assert np.all(poisson_kl_np(u, rng.normal(size=100)) >= 0)


def _small_model(seed=0, soft=True):
    cfg = IPVAEConfig(inputs=12, latents=7, u_max=3.0, du_max=1.5, soft_clamp=soft, learn_sigma="pixel")
    m = IPVAE(cfg, seed=seed).double()
    with torch.no_grad():
        m.Phi.mul_(8.0)
        m.s.copy_(torch.linspace(-0.5, 0.5, 12))
        m.log_eta.fill_(math.log(0.7))
        m.b.copy_(torch.linspace(-4, -1, 7))
    return m


@pytest.mark.parametrize("soft", [True, False])
def test_numpy_reference_step_equals_torch(soft):
    m = _small_model(soft=soft)
    a = m.export_arrays()
    rng = np.random.default_rng(3)
    x = rng.normal(size=(5, 12))
    u = rng.uniform(-4, 2.5, size=(5, 7))
    z = rng.poisson(np.exp(u)).astype(float)
    u_np, z_np, du_np = ipvae_step(u, z, x, a["Phi"], a["b"], float(a["eta"]), a["sigma"],
                                   u_min=-8, u_max=3.0, du_max=1.5, soft=soft, mode="rate")
    with torch.no_grad():
        u_t = m.step(torch.tensor(u), torch.tensor(z), torch.tensor(x)).numpy()
    np.testing.assert_allclose(u_np, u_t, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(z_np, np.exp(u_np))
    assert np.all(u_np <= 3.0) and np.all(du_np <= 1.5 + 1e-12)
    # an exact-mode step draws integer counts from exp(u_new)
    _, z2, _ = ipvae_step(u, z, x, a["Phi"], a["b"], float(a["eta"]), a["sigma"], u_max=3.0, du_max=1.5,
                          soft=soft, rng=np.random.default_rng(0))
    assert np.all(z2 == np.round(z2)) and np.all(z2 >= 0)


def test_export_arrays_round_trip():
    m = _small_model()
    a = m.export_arrays()
    m2 = ipvae_from_arrays(a)
    b = m2.export_arrays()
    for k in ("Phi", "u0", "b", "sigma"):
        np.testing.assert_allclose(a[k], b[k], rtol=1e-5, atol=1e-6)
    assert float(b["eta"]) == pytest.approx(float(a["eta"]), rel=1e-6)


def test_lca_numpy_step_equals_torch():
    rng = np.random.default_rng(2)
    Phi = rng.normal(size=(10, 6))
    Phi /= np.linalg.norm(Phi, axis=0)
    x = rng.normal(size=(4, 10))
    v = np.zeros((4, 6))
    for _ in range(30):
        v, a = lca_step(v, x, Phi, 0.2, 0.1)
    a_t = lca_infer(torch.tensor(x), torch.tensor(Phi), 0.2, 30, 0.1).numpy()
    np.testing.assert_allclose(a, a_t, rtol=1e-10, atol=1e-12)
    assert np.all(a >= 0) and np.any(a == 0)


def test_inference_reduces_error_with_iterations():
    """With a good dictionary (x exactly sparse in Phi) iterating lowers the reconstruction error."""
    rng = np.random.default_rng(0)
    m = _small_model()
    with torch.no_grad():
        m.s.zero_()
        m.b.fill_(-6.0)
        m.log_eta.fill_(math.log(0.05))
        m.Phi.copy_(torch.tensor(rng.normal(size=(12, 7)) * 0.5))
    z_true = rng.poisson(1.0, size=(64, 7)).astype(float)
    x = torch.tensor(z_true @ m.Phi.detach().numpy().T)
    _, _, rec = m.infer(x, 200, mode="rate", record=[1, 200])
    assert rec[200]["mse"] < 0.75 * rec[1]["mse"]


def test_tiny_training_run_reduces_loss(tmp_path):
    from neurodeploy.core.data import train_test
    from neurodeploy.learn.train import TrainConfig, evaluate_ipvae, load_checkpoint, train

    X, Xt = train_test("digits")
    cfg = TrainConfig(name="tiny", dataset="digits", latent=32, T_train=6, beta=4.0, epochs=4, batch=50,
                      lr=1e-2, checkpoint_every=2, seed=0)
    model, hist = train(cfg, tmp_path, progress=False, X_train=X[:150])
    assert hist[-1]["mse"] < 0.8 * hist[0]["mse"]
    ck = load_checkpoint(tmp_path / "checkpoint.pt")
    assert ck["epoch"] == 4 and set(ck["model"]) >= {"Phi", "u0", "b", "log_eta", "s"}
    rows = evaluate_ipvae(model, Xt[:50], Ts=(1, 8))
    assert [r["T"] for r in rows] == [1, 8] and all(0 <= r["zeros"] <= 1 for r in rows)


@pytest.mark.slow
def test_shipped_digits_coder_headline_claims_over_five_seeds():
    """The shipped digits coder on all 297 held-out digits, 5 Poisson streams, at ONE fixed
    T = 1000 (no best-of-T): R^2(1000) is not significantly below the headline 0.85 (mean +
    3 SE >= 0.85; measured 0.8503 ± 0.0015), the zero fraction is >= 0.70, and iterating past
    T_train = 32 helps: the paired gain R^2(1000) - R^2(32) is positive by more than 2 SE
    (measured +0.0167 ± 0.0005). ~20 s of CPU."""
    from neurodeploy.core.data import train_test
    from neurodeploy.learn.train import evaluate_ipvae_seeds, mean_se

    with np.load("models/weights/ipvae_digits/decoder.npz", allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    _, X = train_test("digits")
    agg, per_seed = evaluate_ipvae_seeds(arrays, X, (32, 1000), seeds=5, device=torch.device("cpu"))
    at = {r["T"]: r for r in agg}
    assert at[1000]["r2"] + 3 * at[1000]["r2_se"] >= 0.85, at[1000]
    assert at[1000]["zeros"] >= 0.70
    assert at[1000]["u_max"] <= float(arrays["u_max"]) + 1e-6
    gain, se = mean_se([p[1]["r2"] - p[0]["r2"] for p in per_seed])
    assert gain - 2 * se > 0, (gain, se)
