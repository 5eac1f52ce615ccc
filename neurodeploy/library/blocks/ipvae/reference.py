"""Backend-independent pieces of spiking iP-VAE inference (issue 6): parameters, the drive and
lateral weights of the spiking form, and the result dict every backend returns.

The iP-VAE iteration (:func:`neurodeploy.library.blocks.ipvae.reference.ipvae_step`) rewritten as a recurrent
spiking network: with ``W = eta Phi^T Sigma^-1 Phi`` (K x K, symmetric, self-connections kept)
and the per-image constant drive ``d = eta (Phi^T Sigma^-1 x - exp(b))``,

    du = eta ((x - Phi z) / sigma^2 @ Phi - exp(b)) = d - W z

so every latent neuron integrates a constant drive plus a lateral input ``-W z`` carried by the
spike counts of the previous iteration. The caps (``u_min`` floor, soft or hard upper clamp at
``du_max`` for du and ``u_max`` for u) and the Poisson count ``z ~ Pois(exp(u))`` follow.

:func:`ipvae_result` mirrors what the torch module's ``infer`` reports at its last iteration:
``xhat = z @ Phi^T`` from the final counts (the training-time evaluation's R^2 and zero fraction),
``xhat_rate = exp(u) @ Phi^T`` (``r2_rate``), and ``xhat_avg = zbar @ Phi^T`` with the averaged
counts ``zbar += (z - zbar) / min(t, AVG_TAU)`` (``r2_avg``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..coder import r2_per_image, r2_pooled, run_in_chunks
from .neuron import poisson_counts, softclamp_upper_np

# --- the iteration (the oracle of every backend) -------------------------------------------

U_MIN = -8.0


AVG_TAU = 16  # iterations; time constant of the averaged-count readout reported as r2_avg


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


def poisson_kl_np(u, u_prev):
    """KL(Pois(e^u) || Pois(e^u_prev)) per element, prior-rate form e^{u_prev} f(e^{du})."""
    d = np.asarray(u, float) - np.asarray(u_prev, float)
    return np.exp(u_prev) * (1.0 - np.exp(d) + d * np.exp(d))


# --- the spiking form ---------------------------------------------------------------------------

@dataclass(frozen=True)
class IPVAEParams:
    Phi: np.ndarray  # (M, K)
    u0: np.ndarray  # (K,)
    b: np.ndarray  # (K,)
    eta: float
    sigma: np.ndarray  # (M,)
    u_min: float
    u_max: float
    du_max: float
    soft: bool

    @property
    def latents(self) -> int:
        return self.Phi.shape[1]

    @property
    def inputs(self) -> int:
        return self.Phi.shape[0]


def ipvae_params(arrays: dict) -> IPVAEParams:
    """The deployable arrays (``decoder.npz`` / ``IPVAE.export_arrays()``) as float64 params."""
    missing = [k for k in ("Phi", "u0", "b", "eta", "sigma") if k not in arrays]
    if missing:
        raise ValueError(f"iP-VAE arrays lack {missing}")
    Phi = np.asarray(arrays["Phi"], np.float64)
    M, K = Phi.shape
    sigma = np.broadcast_to(np.asarray(arrays["sigma"], np.float64), (M,)).copy()
    return IPVAEParams(Phi=Phi, u0=np.asarray(arrays["u0"], np.float64).reshape(K),
                       b=np.asarray(arrays["b"], np.float64).reshape(K), eta=float(arrays["eta"]),
                       sigma=sigma, u_min=float(arrays.get("u_min", -8.0)),
                       u_max=float(arrays.get("u_max", 10.0)), du_max=float(arrays.get("du_max", 10.0)),
                       soft=bool(arrays.get("soft_clamp", True)))


def lateral_matrix(p: IPVAEParams) -> np.ndarray:
    """``W = eta Phi^T Sigma^-1 Phi`` (K, K); the lateral synaptic weight from j to k is -W[k, j]."""
    return p.eta * (p.Phi.T @ (p.Phi / (p.sigma ** 2)[:, None]))


def drive(p: IPVAEParams, X) -> np.ndarray:
    """Constant per-image drive ``eta (Phi^T Sigma^-1 x - exp(b))``, shape (B, K)."""
    X = np.atleast_2d(np.asarray(X, np.float64))
    if X.shape[1] != p.inputs:
        raise ValueError(f"inputs have {X.shape[1]} features, the decoder expects {p.inputs}")
    return p.eta * (X @ (p.Phi / (p.sigma ** 2)[:, None]) - np.exp(p.b))


@dataclass
class RunSetup:
    """What every backend's run starts from (:func:`prepare_run`)."""

    p: IPVAEParams
    X: np.ndarray  # (B, M)
    D: np.ndarray  # (B, K) drive
    W: np.ndarray  # (K, K) lateral matrix
    z0: np.ndarray  # (B, K) initial counts
    rng: np.random.Generator
    T: int

    @property
    def B(self) -> int:
        return len(self.X)

    @property
    def K(self) -> int:
        return self.p.latents


def check_run_args(mode: str, T) -> int:
    """``T`` as an int, after checking it and the sampling ``mode`` (ValueError otherwise)."""
    if mode not in ("exact", "rate"):
        raise ValueError(f"mode must be 'exact' or 'rate', got {mode!r}")
    T = int(T)
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    return T


def prepare_run(arrays: dict, X, T: int, seed: int, mode: str, z0=None) -> RunSetup:
    """Check the arguments and compute the drive, the lateral matrix and the initial counts
    (``Pois(exp(u0))`` from ``seed``, ``exp(u0)`` in rate mode, or the given ``z0``)."""
    T = check_run_args(mode, T)
    p = ipvae_params(arrays)
    X = np.atleast_2d(np.asarray(X, np.float64))
    B, K = len(X), p.latents
    rng = np.random.default_rng(seed)
    if z0 is None:
        rate0 = np.broadcast_to(np.exp(p.u0), (B, K))
        z0 = rate0.copy() if mode == "rate" else rng.poisson(rate0).astype(np.float64)
    z0 = np.asarray(z0, np.float64).reshape(B, K)
    return RunSetup(p, X, drive(p, X), lateral_matrix(p), z0, rng, T)


def ipvae_result(p: IPVAEParams, X, u, z, zbar, **extra) -> dict:
    """Final state plus the metrics of torch ``infer`` at the last iteration (see module doc)."""
    X = np.asarray(X, np.float64)
    u, z, zbar = (np.asarray(a, np.float64) for a in (u, z, zbar))
    xhat, xhat_rate, xhat_avg = z @ p.Phi.T, np.exp(u) @ p.Phi.T, zbar @ p.Phi.T
    r2_images = r2_per_image(X, xhat)
    out = {"u": u, "z": z, "zbar": zbar, "xhat": xhat, "xhat_rate": xhat_rate, "xhat_avg": xhat_avg,
           "r2_images": r2_images, "r2": float(np.mean(r2_images)), "r2_pooled": r2_pooled(X, xhat),
           "r2_rate": float(np.mean(r2_per_image(X, xhat_rate))),
           "r2_avg": float(np.mean(r2_per_image(X, xhat_avg))),
           "zeros_images": np.mean(z == 0, axis=1), "zeros": float(np.mean(z == 0)),
           "u_max": float(u.max())}
    out.update(extra)
    return out


def average_counts(zbar, z, t: int):
    """One step of the averaged-count readout of torch ``infer`` (t is 1-based)."""
    return zbar + (z - zbar) / min(t, AVG_TAU)


def run_ipvae_chunks(fn, arrays: dict, X, T: int, seed: int, batch: int, progress: bool, label: str) -> dict:
    """One run of T iterations over all images of ``X``, ``batch`` at a time: ``fn(X_chunk, T,
    seed + i)`` (a backend's runner) on chunk i; the metrics of :func:`ipvae_result` over all
    images, with ``seconds`` (and the chunks' ``weight_exponent`` when they report one)."""
    p = ipvae_params(arrays)
    out, extra, seconds = run_in_chunks(fn, X, T, seed, batch, progress, label)
    kept = {k: extra[k] for k in ("weight_exponent",) if k in extra}
    return ipvae_result(p, X, out["u"], out["z"], out["zbar"], du_norm=None, seconds=seconds, **kept)
