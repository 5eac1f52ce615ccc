"""Predictive-coding (two-population) form of iP-VAE inference (issue 6), numpy reference.

The iP-VAE iteration (:func:`neurodeploy.library.blocks.ipvae.reference.ipvae_step`) can be run by two populations
instead of one latent population with lateral weights (:mod:`neurodeploy.library.blocks.ipvae.reference`):

* M **error units** (graded, no state): ``eps = (x - Phi z) / sigma^2``. Their input is the
  latents' counts through the decoder ``Phi`` (M x K, latents -> errors); the image ``x`` enters
  as a per-unit bias and ``1 / sigma^2`` as a per-unit gain.
* K **latent units**: ``du = eta (Psi eps - exp(b))`` with the encoder ``Psi`` (K x M,
  errors -> latents; ``Psi = Phi^T`` for the trained model), then the same caps and Poisson
  counts as ``ipvae_step``::

      du = cap(max(du, u_min), du_max);  u = cap(max(u + du, u_min), u_max);  z ~ Pois(exp(u))

One iteration = latents send counts -> errors -> latents. With ``Psi = Phi^T`` this is the
same algorithm as the lateral form: ``Psi eps = Phi^T Sigma^-1 x - Phi^T Sigma^-1 Phi z``, the
lateral form's drive plus lateral input, evaluated in the same order as ``ipvae_step`` (so the
numpy step here equals ``ipvae_step`` bit for bit with the same random stream; tested).

Timing on a spiking substrate: every synaptic hop costs one time step (Loihi 2; Lava's ``Dense``
delivers a step's input one step later), so the PC form needs **two** time steps per iteration
(latents -> errors, errors -> latents) where the lateral form needs one. ``T`` iterations take
``2 T + 1`` steps on Lava (:mod:`neurodeploy.backends.lava.blocks.ipvae.pc`) against ``T + 1``.

Local learning (why this form is offered). In the lateral form the synapse from latent j to
latent k holds ``-(eta Phi^T Sigma^-1 Phi)_kj``, a product of two decoder columns: no local rule
at that synapse sees the decoder, so learning the dictionary requires moving ``Phi`` off-chip.
In the PC form the decoder ``Phi`` (latent -> error synapses) and the encoder ``Psi``
(error -> latent synapses) are two separate weight matrices whose gradients are local: the
Gaussian NLL gives ``dPhi ∝ eps z^T`` (postsynaptic error, presynaptic count) and the transposed
update ``dPsi ∝ z eps^T`` uses the same two quantities seen from the other end of the pathway.
Keeping ``Psi = Phi^T`` by copying would be weight transport; Kolen-Pollack (the same update to
both plus the same weight decay, :func:`kp_update`; ``kp`` in :mod:`neurodeploy.learn.feedback`)
makes ``Psi - Phi^T`` shrink by ``(1 - decay)`` per update from any start, and a weight mirror
(``wm`` there) is the alternative. What this does **not** give: the rest of iP-VAE training
(``u0``, ``b``, ``eta``, ``sigma``, and the backprop-through-T gradient the released models were
trained with) has no local rule here; :func:`kp_alignment_demo` only shows the alignment.
"""

from __future__ import annotations

import numpy as np

from neurodeploy.library.blocks.ipvae.neuron import poisson_counts, softclamp_upper_np
from neurodeploy.library.blocks.ipvae.reference import U_MIN, average_counts, ipvae_params, ipvae_result

__all__ = ["error_units", "latent_update", "ipvae_pc_step", "run_ipvae_pc", "kp_update",
           "kp_alignment_demo", "synapse_counts"]


def error_units(x, z, Phi, sigma) -> np.ndarray:
    """Graded error-unit output ``eps = (x - Phi z) / sigma^2``, shape (B, M)."""
    x, z = np.asarray(x, float), np.asarray(z, float)
    return (x - z @ Phi.T) / np.asarray(sigma, float) ** 2


def latent_update(u, a, leak, eta, *, u_min=U_MIN, u_max=10.0, du_max=10.0, soft=True):
    """New potentials from the encoder input ``a = Psi eps`` (B, K) and the leak ``exp(b)``:
    ``du = eta (a - leak)``, then the caps of ``ipvae_step``. Returns ``(u_new, du_capped)``."""
    u = np.asarray(u, float)
    du = eta * (np.asarray(a, float) - leak)
    cap = (lambda y, c: softclamp_upper_np(y, c)) if soft else (lambda y, c: np.minimum(y, c))
    du = cap(np.maximum(du, u_min), du_max)
    return cap(np.maximum(u + du, u_min), u_max), du


def ipvae_pc_step(u, z, x, Phi, b, eta, sigma, *, encoder=None, u_min=U_MIN, u_max=10.0,
                  du_max=10.0, soft=True, rng=None, mode="exact"):
    """One PC-form iteration: counts ``z`` -> errors -> latents -> new counts.

    ``encoder`` (K, M) is the error -> latent matrix ``Psi`` (default ``Phi^T``, which makes this
    :func:`~neurodeploy.library.blocks.ipvae.reference.ipvae_step`). Returns ``(u_new, z_new, du, eps)`` with
    ``du = u_new - u`` as in ``ipvae_step`` and ``eps`` the error units' output for ``z``.
    ``z_new`` is drawn from ``exp(u_new)`` with ``rng`` (``mode='exact'``) or equals it
    (``mode='rate'``).
    """
    if mode not in ("exact", "rate"):
        raise ValueError(f"mode must be 'exact' or 'rate', got {mode!r}")
    eps = error_units(x, z, Phi, sigma)
    a = eps @ Phi if encoder is None else eps @ np.asarray(encoder, float).T
    u_new, _ = latent_update(u, a, np.exp(b), eta, u_min=u_min, u_max=u_max, du_max=du_max, soft=soft)
    return u_new, poisson_counts(u_new, mode, rng), u_new - np.asarray(u, float), eps


def run_ipvae_pc(arrays: dict, X, T: int, seed: int = 0, mode: str = "exact", z0=None,
                 encoder=None) -> dict:
    """``T`` PC-form iterations for every row of ``X`` (B, M) in numpy, one random stream
    ``default_rng(seed)`` (initial counts ``Pois(exp(u0))`` unless ``z0``; ``exp(u0)`` in rate
    mode). Returns the dict of :func:`~neurodeploy.library.blocks.ipvae.reference.ipvae_result` plus
    ``eps`` (the last errors) and ``backend='numpy-pc'``."""
    T = int(T)
    if T < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    p = ipvae_params(arrays)
    X = np.atleast_2d(np.asarray(X, np.float64))
    if X.shape[1] != p.inputs:
        raise ValueError(f"inputs have {X.shape[1]} features, the decoder expects {p.inputs}")
    B, K = len(X), p.latents
    rng = np.random.default_rng(seed)
    u = np.repeat(p.u0[None], B, 0)
    if z0 is None:
        z = np.exp(u) if mode == "rate" else rng.poisson(np.exp(u)).astype(float)
    else:
        z = np.asarray(z0, np.float64).reshape(B, K)
    zbar = np.zeros((B, K))
    kw = dict(u_min=p.u_min, u_max=p.u_max, du_max=p.du_max, soft=p.soft)
    eps = None
    for t in range(1, T + 1):
        u, z, _, eps = ipvae_pc_step(u, z, X, p.Phi, p.b, p.eta, p.sigma, encoder=encoder, rng=rng,
                                     mode=mode, **kw)
        zbar = average_counts(zbar, z, t)
    return ipvae_result(p, X, u, z, zbar, eps=eps, backend="numpy-pc", T=T, mode=mode)


# --- local learning of the two pathways ---------------------------------------------------------

def kp_update(Phi, Psi, eps, z, lr: float, decay: float):
    """Kolen-Pollack step on the two pathways of one batch (eps (B, M), z (B, K)):

    ``Phi += lr <eps z^T> - decay Phi`` (decoder, latent -> error synapse: postsynaptic error
    times presynaptic count, the Gaussian-NLL gradient) and ``Psi += lr <z eps^T> - decay Psi``
    (encoder, error -> latent synapse: the same two factors, seen from its own ends).
    ``<.>`` is the batch mean. Since both receive the transposed same update,
    ``Psi - Phi^T`` is multiplied by exactly ``(1 - decay)``. Returns new ``(Phi, Psi)``."""
    eps, z = np.atleast_2d(np.asarray(eps, float)), np.atleast_2d(np.asarray(z, float))
    g = eps.T @ z / len(eps)  # (M, K)
    return (1.0 - decay) * Phi + lr * g, (1.0 - decay) * Psi + lr * g.T


def kp_alignment_demo(arrays: dict, X, steps: int = 200, batch: int = 32, T: int = 8,
                      lr: float = 3e-3, decay: float = 2e-3, seed: int = 0) -> dict:
    """Learn decoder and encoder together with :func:`kp_update` while inferring with the
    *learned encoder* (no weight transport anywhere): start from the trained ``Phi`` and a random
    ``Psi`` of the same scale; every step runs ``T`` PC iterations on a batch and applies one KP
    update per iteration. Returns the history of ``rel_dist = ||Psi - Phi^T|| / ||Phi||`` and of
    the angle (degrees) between ``Psi`` and ``Phi^T``, per step (index 0 = start), and the final
    matrices; ``diff_norm`` is ``||Psi - Phi^T||`` (exactly ``(1 - decay)^n`` times its start
    after ``n`` updates). ``decay = 0`` is the no-decay control: the difference stays constant
    and only the growth of the shared updates lowers the angle.

    The alignment is the KP property, not a result about the data. The decay also shrinks the
    decoder, which the local NLL update must rebuild. Measured with the defaults on the
    ``digits`` training split (200 steps x T = 8 = 1600 updates, lr = 3e-3, decay = 2e-3):
    ``rel_dist`` 1.36 -> 0.088, angle 89 -> 5 degrees; but ``||Phi||`` fell to 0.63 of the
    trained one, and T = 32 PC inference with the learned pair on 64 held-out digits gave
    R^2 0.68 (zeros 0.94) against 0.83 (zeros 0.88) with the trained ``Phi``, ``Psi = Phi^T``.
    lr = 1e-2 diverged (rates overflow). So this is a
    demonstration of weight-transport-free alignment, not a working local trainer."""
    p = ipvae_params(arrays)
    X = np.atleast_2d(np.asarray(X, np.float64))
    rng = np.random.default_rng(seed)
    Phi = p.Phi.copy()
    Psi = rng.standard_normal(Phi.T.shape) * Phi.std()
    kw = dict(u_min=p.u_min, u_max=p.u_max, du_max=p.du_max, soft=p.soft)

    def stats():
        diff = float(np.linalg.norm(Psi - Phi.T))
        cos = float(np.sum(Psi * Phi.T) / (np.linalg.norm(Psi) * np.linalg.norm(Phi)))
        return diff, diff / np.linalg.norm(Phi), float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))

    diffs, dist, ang = [], [], []
    for lst, v in zip((diffs, dist, ang), stats()):
        lst.append(v)
    for _ in range(int(steps)):
        xb = X[rng.integers(len(X), size=batch)]
        u = np.repeat(p.u0[None], len(xb), 0)
        z = rng.poisson(np.exp(u)).astype(float)
        for _ in range(int(T)):
            u, z_new, _, eps = ipvae_pc_step(u, z, xb, Phi, p.b, p.eta, p.sigma, encoder=Psi, rng=rng, **kw)
            Phi, Psi = kp_update(Phi, Psi, eps, z, lr, decay)
            z = z_new
        if not np.all(np.isfinite(Phi)):
            raise FloatingPointError("KP demo diverged; lower lr")
        for lst, v in zip((diffs, dist, ang), stats()):
            lst.append(v)
    return {"rel_dist": np.array(dist), "angle_deg": np.array(ang), "diff_norm": np.array(diffs),
            "updates": int(steps) * int(T), "Phi": Phi, "Psi": Psi}


def synapse_counts(K: int, M: int, input_on_chip: bool = True) -> dict:
    """Synapse counts of the two forms: lateral ``K^2`` (+ ``M K`` for the input projection
    ``Phi^T Sigma^-1 x`` when the image is fed on chip rather than as a host-computed drive) vs
    PC ``2 M K`` (the image is the error units' bias); neurons ``K`` vs ``K + M``; time steps per
    iteration 1 vs 2."""
    return {"lateral": K * K + (M * K if input_on_chip else 0), "pc": 2 * M * K,
            "neurons_lateral": K, "neurons_pc": K + M, "steps_lateral": 1, "steps_pc": 2}
