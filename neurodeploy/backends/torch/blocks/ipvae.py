"""The iP-VAE as a torch module: relaxed-Poisson training (``neurodeploy train``) and exact
spiking inference (``neurodeploy eval -t torch``), on CUDA when present.

Equations follow /work/shared/research/ipvae.md (section 1.4 for the update, 1.5 for the
sampler, 2 for training). Shapes: ``x`` is (batch, M) pixels, ``Phi`` is (M, K), ``u`` is
(batch, K) log rates. One iteration (``step``) is :func:`neurodeploy.library.blocks.ipvae.reference.ipvae_step`
(the numpy oracle); three sampling modes: ``exact`` (``torch.poisson``; evaluation, spiking),
``relaxed`` (exponential arrival times with a sigmoid soft count; training) and ``rate``
(z = exp(u), the form ``neurodeploy export`` writes to ONNX).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np

from ....core.errors import NotImplementedYet
from ....library.blocks.coder import r2_per_image, r2_pooled
from ....library.blocks.ipvae.reference import (
    AVG_TAU,
    U_MIN,
    average_counts,
    ipvae_params,
    ipvae_result,
    run_ipvae_chunks,
)
from ...base import BlockLowering, register_block_lowering
from ..simulator import pick_device
from .ipvae_fixed import run_ipvae_torch_fixed

SIGMA_LIM = 3.45  # sigma = exp(3.45 tanh(s / 3.45))


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


def run_exact(arrays: dict, X, Ts, seed: int, device: str = "auto") -> tuple[dict, str]:
    """Exact spiking inference with the torch module (``torch.poisson``), all images in one batch;
    the metrics of :func:`ipvae_result` at every T in ``Ts`` (recorded in one pass), with
    ``du_norm`` (mean over images of the L2 norm of the last increment)."""
    import torch

    dev = pick_device(device)
    p = ipvae_params(arrays)
    model = ipvae_from_arrays(arrays).to(dev)
    x = torch.as_tensor(X, dtype=torch.float32, device=dev)
    g = torch.Generator(device=dev).manual_seed(int(seed))
    out, t0 = {}, time.perf_counter()
    with torch.no_grad():
        u = model.init_state(len(X)).clone()
        z = model.sample(u, "exact", generator=g)
        zbar = torch.zeros_like(u)
        for t in range(1, max(Ts) + 1):
            u_new = model.step(u, z, x)
            du, u = u_new - u, u_new
            z = model.sample(u, "exact", generator=g)
            zbar = average_counts(zbar, z, t)
            if t in Ts:
                np_ = (lambda a: a.detach().cpu().double().numpy())
                out[t] = ipvae_result(p, X, np_(u), np_(z), np_(zbar),
                                      du_norm=float(du.double().norm(dim=1).mean()),
                                      seconds=time.perf_counter() - t0)
    return out, f"torch ({dev.type})"


@register_block_lowering
class TorchIPVAE(BlockLowering):
    """The ``ipvae`` block on torch. Target ``torch``: the module's exact spiking inference
    (:func:`run_exact`), all images in one batch, on CUDA when visible; every requested T in one
    pass. A ``predictive_coding`` spec runs the lateral module: with ``Psi = Phi^T`` both forms are
    the same algorithm (same caps, same counts for the same random numbers) and the module has no
    separate error population (``metrics.json``: ``form_computed``). Target ``loihi2-torch``: the
    integer model of ``loihi2-sim`` batched in torch (:mod:`.ipvae_fixed`), bit-exact with it for the
    same seed and 50-image chunks; lateral form only."""

    backend, kind = "torch", "ipvae"

    def check(self, target, coder) -> None:
        if target.number_format == "fixed" and coder.params.get("form") == "predictive_coding":
            raise NotImplementedYet(
                f"'{target.name}' runs the lateral form's integer model; the predictive-coding network "
                "in fixed point (its own 8-bit decoder/encoder and 16-bit error payload) runs on "
                "--target loihi2-sim")

    def describe(self, target, coder, device: str = "auto") -> str:
        if target.number_format == "fixed":
            return "torch fixed point (Loihi 2 integer model, bit-exact with loihi2-sim)"
        return f"torch ({pick_device(device).type})"

    def form_computed(self, target, coder) -> str:
        if coder.params.get("form") == "predictive_coding":
            return "lateral (identical algorithm)"
        return "lateral"

    def run(self, coder, X, Ts, target, *, seed=0, batch=None, progress=False, device="auto") -> dict:
        if target.number_format != "fixed":
            return run_exact(coder.arrays, X, Ts, seed, device)[0]
        b = batch or 50
        return {T: run_ipvae_chunks(lambda Xc, T_, s: run_ipvae_torch_fixed(coder.arrays, Xc, T_, seed=s, batch=b,
                                                                            device=device),
                                    coder.arrays, X, T, seed, b, progress, f"torch-fixed T={T}")
                for T in Ts}
