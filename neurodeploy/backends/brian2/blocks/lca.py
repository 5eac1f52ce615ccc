"""Rozell's LCA (the sparse-coding baseline of issue 6) on Brian2.

Same structure as the iP-VAE network (:mod:`neurodeploy.backends.brian2.blocks.ipvae`). Per chunk of
``batch`` images (``nb`` images, K units each, ``N = nb K`` neurons):

* one ``NeuronGroup`` of N neurons holding the potential ``v``, the activity ``a`` (a state
  variable, written only by the update) and the constant drive ``drive = Phi^T x``;
* one ``Synapses`` object from the group onto itself, block diagonal (every unit of an image to
  every unit of the same image, self-connections kept), weight ``w = -G[j, k]`` for pre ``j``,
  post ``k``, with ``G = Phi^T Phi - I`` (so the self-connection carries ``-(|phi_k|^2 - 1)``),
  summing ``lat_post = w a_pre`` (a summed variable: the graded "spike" is the activity);
* one ``run_regularly`` operation, once per ``dt`` (one LCA iteration per time step), at
  ``'end'``::

      v = v + dt_tau (drive - v + lat)
      a = clip(v - lam, 0, inf)

Order within a time step (Brian2 2.9): the network sorts its objects by the slot of ``when`` in
the schedule (``start, groups, thresholds, synapses, resets, end``), then by ``order``. The
summed variable is written by a ``SummedVariableUpdater`` in the ``'groups'`` slot, the update
runs in ``'end'``. So at step ``n`` ``lat = -(Phi^T Phi - I) a_{n-1}`` is summed from the
activities written at the end of step ``n - 1`` (or the initial ``a_0 = max(v_0 - lam, 0)``),
and only then are ``v`` and ``a`` updated: exactly :func:`neurodeploy.library.blocks.lca.reference.lca_step`,
one iteration per step, ``T`` iterations in ``T`` steps (no extra step, unlike Lava where the
connection delays by one step). From ``v_0 = 0`` an update at ``'start'`` would give the same
codes (``a_0 = 0``), but from ``v_0 != 0`` it would see ``lat = 0`` in the first step instead
of the input of ``a_0``; hence ``'end'``. :func:`run_lca_brian2` returns the executed order as
``schedule``.

Code generation uses the numpy target, as for the iP-VAE (``nb K^2`` multiply-adds per step).
"""

from __future__ import annotations

import time

import numpy as np

from neurodeploy.backends.base import BlockLowering, register_block_lowering
from neurodeploy.library.blocks.coder import chunks

#: the run_regularly code: one Euler step of LCA from the summed lateral input of a_{n-1}
UPDATE_CODE = "\n".join([
    "v = v + dt_tau * (drive - v + lat)",
    "a = clip(v - lam, 0, inf)",
])


def run_lca_brian2(Phi, X, T: int, lam: float, dt_tau: float, batch: int = 50, v0=None) -> dict:
    """Run ``T`` LCA iterations for every row of ``X`` (B, M) as a Brian2 network, ``batch``
    images per Brian2 run (memory ~ ``batch K^2`` synapses).

    Returns ``{"v", "a", "seconds", "backend", "T", "schedule"}``: final potentials and
    activities (B, K), float64 (the keys of :func:`neurodeploy.backends.lava.blocks.lca.run_lca_lava`),
    wall time, ``backend='brian2'``, ``T`` and ``schedule`` (``(name, when, order)`` of the last
    chunk's network objects in execution order). With ``v0`` = 0 (default) ``a`` equals ``T``
    applications of :func:`neurodeploy.library.blocks.lca.reference.lca_step` (to summation rounding) and torch
    ``lca_infer(..., n_iter=T)``.
    """
    import brian2 as b2

    if int(T) < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    T = int(T)
    Phi = np.asarray(Phi, np.float64)
    X = np.atleast_2d(np.asarray(X, np.float64))
    if Phi.ndim != 2 or X.shape[1] != Phi.shape[0]:
        raise ValueError(f"images have {X.shape[1]} pixels, the dictionary Phi {Phi.shape} expects {Phi.shape[0]}")
    B, K = len(X), Phi.shape[1]
    G = Phi.T @ Phi - np.eye(K)
    D = X @ Phi
    v0 = np.zeros((B, K)) if v0 is None else np.broadcast_to(np.asarray(v0, np.float64), (B, K))
    lam, dt_tau = float(lam), float(dt_tau)

    b2.prefs.codegen.target = "numpy"
    jj, kk = np.meshgrid(np.arange(K), np.arange(K), indexing="ij")  # pre j, post k
    jj, kk = jj.ravel(), kk.ravel()
    w_block = -G[jj, kk]
    V, A = np.empty((B, K)), np.empty((B, K))
    schedule = []
    t0 = time.perf_counter()
    for sl in chunks(B, batch):
        nb = sl.stop - sl.start
        b2.start_scope()
        b2.defaultclock.dt = 1 * b2.ms
        N = b2.NeuronGroup(nb * K, """v : 1
                                      a : 1
                                      drive : 1 (constant)
                                      lat : 1""", name="lca_units")
        N.v = v0[sl].ravel()
        N.a = np.maximum(v0[sl].ravel() - lam, 0.0)
        N.drive = D[sl].ravel()
        S = b2.Synapses(N, N, model="""w : 1 (constant)
                                       lat_post = w * a_pre : 1 (summed)""", name="lca_lateral")
        off = (np.arange(nb) * K)[:, None]
        S.connect(i=(off + jj[None, :]).ravel(), j=(off + kk[None, :]).ravel())
        S.w = np.tile(w_block, nb)
        N.run_regularly(UPDATE_CODE, dt=b2.defaultclock.dt, when="end", name="lca_iteration")
        net = b2.Network(N, S)
        net.run(T * b2.defaultclock.dt, namespace={"lam": lam, "dt_tau": dt_tau})
        schedule = [(o.name, o.when, o.order) for o in net.sorted_objects if o.active]
        V[sl] = np.asarray(N.v[:], np.float64).reshape(nb, K)
        A[sl] = np.asarray(N.a[:], np.float64).reshape(nb, K)
    return {"v": V, "a": A, "seconds": time.perf_counter() - t0, "backend": "brian2", "T": T,
            "schedule": schedule}


@register_block_lowering
class Brian2LCA(BlockLowering):
    """The ``lca`` block on Brian2: :func:`run_lca_brian2`, 50 images per run."""

    backend, kind = "brian2", "lca"

    def describe(self, target, coder, device: str = "auto") -> str:
        return "brian2 (numpy codegen, LCA units + graded lateral Synapses)"

    def run(self, coder, X, Ts, target, *, seed=0, batch=None, progress=False, device="auto") -> dict:
        A = coder.arrays
        out = {}
        for T in Ts:
            r = run_lca_brian2(A["Phi"], X, T, float(A["lam"]), float(A["dt_tau"]), batch=batch or 50)
            out[T] = {"a": r["a"], "seconds": r["seconds"]}
        return out
