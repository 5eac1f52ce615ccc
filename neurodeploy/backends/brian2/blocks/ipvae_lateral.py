"""Spiking iP-VAE inference on Brian2 (issue 6).

Network per chunk of ``batch`` images (``nb`` images, K latents each, ``N = nb K`` neurons):

* one ``NeuronGroup`` of N neurons holding the membrane potential ``u`` (log rate), the count
  ``z`` of the current iteration, the averaged counts ``zbar``, the iteration counter ``it`` and
  the per-neuron constant drive ``drive = eta (Phi^T Sigma^-1 x - exp(b))``;
* one ``Synapses`` object from the group onto itself, block diagonal (every latent of an image
  to every latent of the same image, self-connections kept), weight ``w = -W[k, j]`` with
  ``W = eta Phi^T Sigma^-1 Phi``, summing ``lat_post = w z_pre`` (a summed variable: the graded
  "spike" is the count);
* one ``run_regularly`` operation, once per ``dt`` (one iteration per time step), scheduled at
  ``'end'`` so that it sees the summed lateral input of the counts of the previous iteration
  (Brian2 updates summed variables in the ``'groups'`` slot)::

      du = clip(drive + lat, u_min, inf);  du = cap(du, du_max)
      u  = cap(clip(u + du, u_min, inf), u_max)        cap(y, c) = c - log(1 + exp(c - y)) (soft)
      z  = poisson(exp(u))                              (mode 'rate': z = exp(u))
      zbar += (z - zbar) / clip(it, 1, AVG_TAU)

The initial counts ``z_0 ~ Pois(exp(u0))`` are drawn before the run, as torch ``infer`` does.
Code generation uses the numpy target (``prefs.codegen.target = 'numpy'``): the block-diagonal
synapses cost ``nb K^2`` multiply-adds per step, which numpy handles well for K = 256 and
``batch`` up to ~100 (3.3 M synapses per chunk at 50 images); Cython would mainly add compile
time. The fast path (no Synapses) is not used.
"""

from __future__ import annotations

import time

import numpy as np

from neurodeploy.library.blocks.coder import chunks
from neurodeploy.library.blocks.ipvae.reference import AVG_TAU, ipvae_result, prepare_run


def _cap_code(var: str, c: str, soft: bool) -> str:
    return f"{c} - log(1 + exp({c} - {var}))" if soft else f"clip({var}, -inf, {c})"


def iteration_code(increment: str, soft: bool, mode: str) -> str:
    """The latents' ``run_regularly`` code: capped ``du`` from the expression ``increment``, the
    capped new ``u``, the count (``poisson(exp(u))``, or ``exp(u)`` in rate mode) and ``zbar``."""
    sample = "poisson(exp(u))" if mode == "exact" else "exp(u)"
    return "\n".join([
        "it += 1",
        f"du = clip({increment}, u_min, inf)",
        f"du = {_cap_code('du', 'du_max', soft)}",
        "v = clip(u + du, u_min, inf)",
        f"u = {_cap_code('v', 'u_max', soft)}",
        f"z = {sample}",
        "zbar += (z - zbar) / clip(it, 1, avg_tau)",
    ])


def run_ipvae_brian2(arrays: dict, X, T: int, seed: int = 0, batch: int = 50, mode: str = "exact",
                     z0=None, record_z: bool = False) -> dict:
    """Run ``T`` iP-VAE iterations for every row of ``X`` (B, M) as a Brian2 network.

    Returns the dict of :func:`neurodeploy.library.blocks.ipvae.reference.ipvae_result`: final ``u``,
    final counts ``z``, averaged counts ``zbar``, ``xhat``/``xhat_rate``/``xhat_avg`` and the
    metrics (``r2``, ``r2_pooled``, ``r2_rate``, ``r2_avg``, ``zeros``, ``u_max``), plus
    ``seconds`` (wall time) and, with ``record_z``, ``z_history`` (T, B, K).

    ``mode='exact'`` draws Poisson counts, ``'rate'`` uses ``z = exp(u)`` (deterministic). ``z0``
    (B, K) replaces the initial counts (default: ``Pois(exp(u0))`` from ``seed``; ``exp(u0)`` in
    rate mode). Images are simulated ``batch`` at a time (memory ~ ``batch K^2`` synapses).
    """
    import brian2 as b2

    st = prepare_run(arrays, X, T, seed, mode, z0)
    p, X, B, K, D, W, rng, z0, T = st.p, st.X, st.B, st.K, st.D, st.W, st.rng, st.z0, st.T

    b2.prefs.codegen.target = "numpy"
    b2.seed(int(rng.integers(2 ** 31)))
    t_start = time.perf_counter()
    U, Z, ZB = np.empty((B, K)), np.empty((B, K)), np.empty((B, K))
    hist = np.empty((T, B, K)) if record_z else None
    code = iteration_code("drive + lat", p.soft, mode)
    jj, kk = np.meshgrid(np.arange(K), np.arange(K), indexing="ij")  # pre j, post k
    jj, kk = jj.ravel(), kk.ravel()
    w_block = -W[kk, jj]
    for sl in chunks(B, batch):
        nb = sl.stop - sl.start
        N = nb * K
        b2.start_scope()
        b2.defaultclock.dt = 1 * b2.ms
        G = b2.NeuronGroup(N, """u : 1
                                 z : 1
                                 zbar : 1
                                 it : 1
                                 du : 1
                                 v : 1
                                 drive : 1 (constant)
                                 lat : 1""", name="ipvae_latents")
        G.u = np.tile(p.u0, nb)
        G.z = z0[sl].ravel()
        G.drive = D[sl].ravel()
        S = b2.Synapses(G, G, model="""w : 1 (constant)
                                       lat_post = w * z_pre : 1 (summed)""", name="ipvae_lateral")
        off = (np.arange(nb) * K)[:, None]
        S.connect(i=(off + jj[None, :]).ravel(), j=(off + kk[None, :]).ravel())
        S.w = np.tile(w_block, nb)
        G.run_regularly(code, dt=b2.defaultclock.dt, when="end", name="ipvae_iteration")
        net = b2.Network(G, S)
        ns = {"u_min": p.u_min, "u_max": p.u_max, "du_max": p.du_max, "avg_tau": float(AVG_TAU)}
        if record_z:
            mon = b2.StateMonitor(G, "z", record=True, when="end", order=10)
            net.add(mon)
        net.run(T * b2.defaultclock.dt, namespace=ns)
        U[sl] = np.asarray(G.u[:]).reshape(nb, K)
        Z[sl] = np.asarray(G.z[:]).reshape(nb, K)
        ZB[sl] = np.asarray(G.zbar[:]).reshape(nb, K)
        if record_z:
            hist[:, sl] = np.asarray(mon.z).T.reshape(T, nb, K)
    extra = {"seconds": time.perf_counter() - t_start, "backend": "brian2", "T": T, "mode": mode}
    if record_z:
        extra["z_history"] = hist
    return ipvae_result(p, X, U, Z, ZB, **extra)
