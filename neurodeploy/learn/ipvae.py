"""iP-VAE (iterative Poisson VAE, Vafaii et al.) and LCA (Rozell et al.) on PyTorch.

Equations follow /work/shared/research/ipvae.md (section 1.4 for the update, 1.5 for the
sampler, 2 for training, 4 for LCA). Shapes: ``x`` is (batch, M) pixels, ``Phi`` is (M, K)
(column k is neuron k's basis function), ``u`` is (batch, K) log rates.

One iteration (``step``), starting from the counts ``z`` drawn from the current belief:

    du  = eta * (Phi^T ((x - Phi z) / sigma^2) - exp(b))
    du  = cap(max(du, u_min), du_max)
    u'  = cap(max(u + du, u_min), u_max)
    z'  ~ Pois(exp(u'))                      (the next iteration's counts and the readout)
    x^  = Phi z'

``cap`` is the soft upper clamp c - softplus(c - y) (or a hard ``min``). Counts are drawn once
per iteration and serve both as the readout of this iteration and as the drive of the next one,
as in a spiking network where every neuron emits one count per time bin (the released code draws
a second, independent sample for the readout; the expectation is the same).

Three sampling modes: ``exact`` (``torch.poisson``; evaluation, spiking), ``relaxed``
(exponential arrival times with a sigmoid soft count; training) and ``rate`` (z = exp(u), the
deterministic expectation form that ``neurodeploy export`` writes to ONNX).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

U_MIN = -8.0
AVG_TAU = 16  # iterations; time constant of the averaged-count readout reported as r2_avg
SIGMA_LIM = 3.45  # sigma = exp(3.45 tanh(s / 3.45))


# --- numpy reference (the oracle for the torch module and, later, the spiking backends) ------

def softclamp_upper_np(y, c):
    """c - softplus(c - y): ~y well below c, saturating smoothly at c."""
    return c - np.logaddexp(0.0, c - y)


def ipvae_step(u, z, x, Phi, b, eta, sigma, *, u_min=U_MIN, u_max=10.0, du_max=10.0,
               soft=True, rng=None, mode="exact"):
    """One iP-VAE iteration in numpy. ``z`` are the counts drawn from ``u``.

    Returns ``(u_new, z_new, du)``; ``z_new`` is drawn from ``exp(u_new)`` with ``rng``
    (``mode='exact'``) or equals ``exp(u_new)`` (``mode='rate'``).
    """
    u, z, x = np.asarray(u, float), np.asarray(z, float), np.asarray(x, float)
    sigma2 = np.asarray(sigma, float) ** 2
    err = (x - z @ Phi.T) / sigma2
    du = eta * (err @ Phi - np.exp(b))
    cap = (lambda y, c: softclamp_upper_np(y, c)) if soft else (lambda y, c: np.minimum(y, c))
    du = cap(np.maximum(du, u_min), du_max)
    u_new = cap(np.maximum(u + du, u_min), u_max)
    return u_new, poisson_counts(u_new, mode, rng), u_new - u


def poisson_counts(u, mode: str = "exact", rng=None) -> np.ndarray:
    """The counts of log rates ``u``: ``Pois(exp(u))`` drawn with ``rng`` (``mode='exact'``), or
    the rates ``exp(u)`` themselves (``mode='rate'``)."""
    rate = np.exp(u)
    if mode == "rate":
        return rate
    rng = rng if rng is not None else np.random.default_rng()
    return rng.poisson(rate).astype(float)


def poisson_kl_np(u, u_prev):
    """KL(Pois(e^u) || Pois(e^u_prev)) per element, prior-rate form e^{u_prev} f(e^{du})."""
    d = np.asarray(u, float) - np.asarray(u_prev, float)
    return np.exp(u_prev) * (1.0 - np.exp(d) + d * np.exp(d))


def lca_step(v, x, Phi, lam, dt_tau):
    """One Euler step of Rozell's LCA with a non-negative soft threshold.

    v <- v + dt/tau (Phi^T x - v - (Phi^T Phi - I) a),  a = max(v - lam, 0).
    Returns ``(v_new, a_new)``.
    """
    a = np.maximum(v - lam, 0.0)
    G = Phi.T @ Phi - np.eye(Phi.shape[1])
    v_new = v + dt_tau * (x @ Phi - v - a @ G)
    return v_new, np.maximum(v_new - lam, 0.0)


# --- metrics -------------------------------------------------------------------------------

def r2_per_image(x, xhat):
    """1 - SS_res/SS_tot over the pixels of each image (array of length batch)."""
    x, xhat = np.asarray(x, float), np.asarray(xhat, float)
    ss_res = ((x - xhat) ** 2).sum(1)
    ss_tot = ((x - x.mean(1, keepdims=True)) ** 2).sum(1)
    return 1.0 - ss_res / np.maximum(ss_tot, 1e-12)


def r2_pooled(x, xhat):
    x, xhat = np.asarray(x, float), np.asarray(xhat, float)
    return float(1.0 - ((x - xhat) ** 2).sum() / ((x - x.mean(1, keepdims=True)) ** 2).sum())


def distance(r2, zeros):
    """Distance to the ideal corner (R^2 = 1, all zeros) of the sparsity-reconstruction plane."""
    return float(math.hypot(1.0 - r2, 1.0 - zeros))


# --- torch ---------------------------------------------------------------------------------

def _torch():
    import torch

    return torch




def relaxed_poisson(rate, temperature: float, n_exp: int, generator=None):
    """Differentiable Poisson counts by exponential arrival times (P-VAE Algorithm 1).

    Inter-arrival times are eps/rate with eps ~ Exp(1); arrival n happens inside the unit bin
    when tau_n = sum_{j<=n} eps_j / rate < 1; the soft count is sum_n sigmoid((1 - tau_n)/temp).
    As ``temperature`` -> 0 it is the exact count of arrivals in [0, 1] (truncated at n_exp).
    """
    torch = _torch()
    eps = torch.empty((n_exp, *rate.shape), device=rate.device, dtype=rate.dtype).exponential_(generator=generator)
    tau = torch.cumsum(eps, 0) / rate.clamp_min(1e-12)
    if temperature <= 0:
        return (tau < 1).to(rate.dtype).sum(0)
    return torch.sigmoid((1.0 - tau) / temperature).sum(0)


def n_exp_for(max_rate: float, p: float = 1e-3, lo: int = 8, hi: int = 96) -> int:
    """Number of arrival times so that P(count > n_exp) < p at the largest rate."""
    from scipy.stats import poisson

    n = int(poisson.ppf(1.0 - p, max(float(max_rate), 1e-6))) + 1
    return int(min(max(n, lo), hi))


def poisson_kl(u, u_prev):
    """Closed-form KL(Pois(e^u) || Pois(e^u_prev)) = e^{u_prev} (1 - e^d + d e^d), d = u - u_prev."""
    torch = _torch()
    d = u - u_prev
    ed = torch.exp(d)
    return torch.exp(u_prev) * (1.0 - ed + d * ed)


@dataclass
class IPVAEConfig:
    inputs: int = 64
    latents: int = 128
    u_max: float = 10.0
    du_max: float = 10.0
    u_min: float = U_MIN
    soft_clamp: bool = True
    prior_hi: float = -4.0  # u0 ~ Uniform(-6, prior_hi) (released code: -4 for linear decoders)
    learn_sigma: str = "pixel"  # "pixel" | "scalar" | "none"


def _make_module():
    torch = _torch()
    nn = torch.nn

    class IPVAE(nn.Module):
        """Linear-decoder iP-VAE: learned Phi, u0, b, eta = exp(log_eta), sigma."""

        def __init__(self, cfg: IPVAEConfig, seed: int = 0):
            super().__init__()
            self.cfg = cfg
            g = torch.Generator().manual_seed(seed)
            M, K = cfg.inputs, cfg.latents
            self.Phi = nn.Parameter(torch.randn(M, K, generator=g) * 0.05)
            self.u0 = nn.Parameter(torch.rand(K, generator=g) * (cfg.prior_hi + 6.0) - 6.0)
            self.b = nn.Parameter(torch.full((K,), -3.0))
            self.log_eta = nn.Parameter(torch.zeros(()))
            ns = {"pixel": M, "scalar": 1, "none": 1}[cfg.learn_sigma]
            self.s = nn.Parameter(torch.zeros(ns), requires_grad=cfg.learn_sigma != "none")

        # derived quantities
        @property
        def sigma(self):
            return torch.exp(SIGMA_LIM * torch.tanh(self.s / SIGMA_LIM)).expand(self.cfg.inputs)

        @property
        def eta(self):
            return torch.exp(self.log_eta)

        def cap(self, y, c):
            if self.cfg.soft_clamp:
                return c - torch.nn.functional.softplus(c - y)
            return torch.clamp(y, max=c)

        def sample(self, u, mode: str, temperature: float = 0.0, n_exp: int = 16, generator=None):
            rate = torch.exp(u)
            if mode == "rate":
                return rate
            if mode == "exact":
                return torch.poisson(rate, generator=generator)
            if mode == "relaxed":
                return relaxed_poisson(rate, temperature, n_exp, generator)
            raise ValueError(f"unknown sampling mode {mode!r}")

        def step(self, u, z, x, c_u=None, c_du=None):
            """Deterministic part of one iteration: new potentials from counts ``z``."""
            c_u = self.cfg.u_max if c_u is None else c_u
            c_du = self.cfg.du_max if c_du is None else c_du
            sigma2 = self.sigma ** 2
            err = (x - z @ self.Phi.T) / sigma2
            du = self.eta * (err @ self.Phi - torch.exp(self.b))
            du = self.cap(torch.clamp(du, min=self.cfg.u_min), c_du)
            return self.cap(torch.clamp(u + du, min=self.cfg.u_min), c_u)

        def init_state(self, batch: int):
            return self.u0.unsqueeze(0).expand(batch, -1)

        def forward_loss(self, x, T: int, beta: float, temperature: float, n_exp: int, c_u=None, c_du=None):
            """Average over T iterations of NLL + beta KL (sum over pixels / latents), mean
            over the batch. Returns (loss, dict of detached diagnostics)."""
            B, M = x.shape
            u = self.init_state(B)
            z = self.sample(u, "relaxed", temperature, n_exp)
            sigma = self.sigma
            log_norm = torch.log(sigma).sum() + 0.5 * M * math.log(2 * math.pi)
            total, nll_sum, kl_sum = 0.0, 0.0, 0.0
            max_rate = 0.0
            for _ in range(T):
                u_new = self.step(u, z, x, c_u, c_du)
                z = self.sample(u_new, "relaxed", temperature, n_exp)
                xhat = z @ self.Phi.T
                nll = (((x - xhat) / sigma) ** 2).sum(1) * 0.5 + log_norm
                kl = poisson_kl(u_new, u).sum(1)
                total = total + (nll + beta * kl).mean()
                nll_sum += float(nll.mean().detach())
                kl_sum += float(kl.mean().detach())
                max_rate = max(max_rate, float(torch.exp(u_new.detach()).max()))
                u = u_new
            return total / T, {"nll": nll_sum / T, "kl": kl_sum / T, "max_rate": max_rate,
                               "mse": float(((x - xhat) ** 2).sum(1).mean().detach())}

        @torch.no_grad()
        def infer(self, x, T: int, mode: str = "exact", record=None, generator=None):
            """Run T iterations; returns final (u, z) and, per iteration t in ``record``
            (1-based), a dict of metric arrays computed by :func:`iteration_metrics`."""
            B = x.shape[0]
            u = self.init_state(B).clone()
            z = self.sample(u, mode, generator=generator)
            want = set(record or [])
            out = {}
            zbar = torch.zeros_like(u)
            for t in range(1, T + 1):
                u_new = self.step(u, z, x)
                du = u_new - u
                u = u_new
                z = self.sample(u, mode, generator=generator)
                # exponential average of the counts (time constant AVG_TAU iterations): a rate
                # readout a downstream spiking decoder could form
                zbar = zbar + (z - zbar) / min(t, AVG_TAU)
                if t in want:
                    out[t] = iteration_metrics(x, z @ self.Phi.T, z, u, du, torch.exp(u) @ self.Phi.T,
                                               zbar @ self.Phi.T)
            return u, z, out

        def export_arrays(self) -> dict:
            """Plain numpy arrays of every learned quantity (the deployable decoder)."""
            with torch.no_grad():
                return {"Phi": self.Phi.detach().cpu().double().numpy(),
                        "u0": self.u0.detach().cpu().double().numpy(),
                        "b": self.b.detach().cpu().double().numpy(),
                        "eta": np.array(float(self.eta)),
                        "sigma": self.sigma.detach().cpu().double().numpy(),
                        "u_max": np.array(self.cfg.u_max), "du_max": np.array(self.cfg.du_max),
                        "u_min": np.array(self.cfg.u_min), "soft_clamp": np.array(bool(self.cfg.soft_clamp))}

        @classmethod
        def from_arrays(cls, arrays: dict):
            Phi = np.asarray(arrays["Phi"], dtype=np.float32)
            cfg = IPVAEConfig(inputs=Phi.shape[0], latents=Phi.shape[1],
                              u_max=float(arrays["u_max"]), du_max=float(arrays["du_max"]),
                              u_min=float(arrays["u_min"]), soft_clamp=bool(arrays["soft_clamp"]),
                              learn_sigma="pixel")
            m = cls(cfg)
            with torch.no_grad():
                m.Phi.copy_(torch.from_numpy(Phi))
                m.u0.copy_(torch.from_numpy(np.asarray(arrays["u0"], np.float32)))
                m.b.copy_(torch.from_numpy(np.asarray(arrays["b"], np.float32)))
                m.log_eta.copy_(torch.tensor(math.log(float(arrays["eta"]))))
                sig = np.asarray(arrays["sigma"], np.float64)
                s = SIGMA_LIM * np.arctanh(np.clip(np.log(sig) / SIGMA_LIM, -0.999999, 0.999999))
                m.s.copy_(torch.from_numpy(s.astype(np.float32)))
            return m

    return IPVAE


_IPVAE = None


def IPVAE(cfg: IPVAEConfig, seed: int = 0):
    """Build the torch module (the class is created lazily so that importing this file does not
    import torch)."""
    global _IPVAE
    if _IPVAE is None:
        _IPVAE = _make_module()
    return _IPVAE(cfg, seed)


def ipvae_from_arrays(arrays: dict):
    global _IPVAE
    if _IPVAE is None:
        _IPVAE = _make_module()
    return _IPVAE.from_arrays(arrays)


def iteration_metrics(x, xhat, z, u, du, xhat_rate=None, xhat_avg=None) -> dict:
    """Per-iteration metrics as plain floats / arrays (torch tensors in, numpy out)."""
    x_np = x.detach().cpu().double().numpy()
    xh = xhat.detach().cpu().double().numpy()
    out = {"r2_images": r2_per_image(x_np, xh), "r2_pooled": r2_pooled(x_np, xh),
           "zeros": float((z == 0).double().mean()),
           "du_norm": float(du.double().norm(dim=1).mean()),
           "u_max": float(u.max()), "mse": float(((x_np - xh) ** 2).sum(1).mean())}
    if xhat_rate is not None:
        out["r2_rate"] = float(np.mean(r2_per_image(x_np, xhat_rate.detach().cpu().double().numpy())))
    if xhat_avg is not None:
        out["r2_avg"] = float(np.mean(r2_per_image(x_np, xhat_avg.detach().cpu().double().numpy())))
    return out


# --- LCA (baseline) --------------------------------------------------------------------------

def lca_infer(x, Phi, lam: float, n_iter: int = 200, dt_tau: float = 0.1):
    """LCA codes (batch, K) for inputs x (batch, M), torch; non-negative soft threshold."""
    torch = _torch()
    K = Phi.shape[1]
    G = Phi.T @ Phi - torch.eye(K, dtype=Phi.dtype, device=Phi.device)
    drive = x @ Phi
    v = torch.zeros(x.shape[0], K, dtype=x.dtype, device=x.device)
    a = torch.zeros_like(v)
    for _ in range(n_iter):
        v = v + dt_tau * (drive - v - a @ G)
        a = torch.relu(v - lam)
    return a


def lca_learn(X, K: int, lam: float, epochs: int = 20, batch: int = 200, lr: float = 0.05,
              n_iter: int = 100, dt_tau: float = 0.1, seed: int = 0, progress: bool = False):
    """Learn a unit-norm LCA dictionary (M, K) with the Hebbian rule of the note (section 4):
    Phi += lr (x - Phi a) a^T / (1 + activity count), then renormalise columns."""
    torch = _torch()
    g = torch.Generator().manual_seed(seed)
    X = torch.as_tensor(np.asarray(X), dtype=torch.float32)
    M = X.shape[1]
    Phi = torch.randn(M, K, generator=g)
    Phi = Phi / Phi.norm(dim=0, keepdim=True)
    it = range(epochs)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="LCA dictionary", unit="epoch")
    for _ in it:
        perm = torch.randperm(X.shape[0], generator=g)
        for i in range(0, X.shape[0], batch):
            xb = X[perm[i:i + batch]]
            a = lca_infer(xb, Phi, lam, n_iter, dt_tau)
            resid = xb - a @ Phi.T
            active = (a > 0).float().sum(0)
            Phi = Phi + lr * (resid.T @ a) / (1.0 + active)
            Phi = Phi / Phi.norm(dim=0, keepdim=True).clamp_min(1e-8)
    return Phi
