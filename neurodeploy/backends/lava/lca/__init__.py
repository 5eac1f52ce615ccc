"""Rozell's LCA on Lava (issue 6, the sparse-coding baseline): the ``LCANeurons`` Process, its
``floating_pt`` ProcessModel and :func:`run_lca_lava`.

* ``process.py``: :class:`LCANeurons` (one Euler step per time step, graded output = activity).
* ``models.py``: the ``floating_pt`` ProcessModel (:class:`PyLCANeuronsFloat`) for
  ``Loihi2SimCfg``.

Network: ``LCANeurons.s_out -> Sparse.s_in``, ``Sparse.a_out -> LCANeurons.a_in``, where the
Sparse (or, with ``connection='dense'``, a Dense) holds the block-diagonal lateral matrix
``G = Phi^T Phi - I`` of every image of the batch and carries graded spikes (24-bit messages,
float payload in the ``floating_pt`` models). There is no fixed-point model yet.

This is a package of its own because Lava's ProcessModel discovery imports every module in a
Process's directory. Importing it does not import Lava: the Lava classes are imported on first
attribute access, and :func:`run_lca_lava` imports Lava when called.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from neurodeploy.backends.lava.procs import lazy_attribute

__all__ = ["LCANeurons", "PyLCANeuronsFloat", "run_lca_lava"]

_LAZY = {
    "LCANeurons": "neurodeploy.backends.lava.lca.process",
    "PyLCANeuronsFloat": "neurodeploy.backends.lava.lca.models",
}


def __getattr__(name: str) -> Any:
    return lazy_attribute(globals(), _LAZY, name)


def run_lca_lava(Phi, X, T: int, lam: float, dt_tau: float, batch: int = 50,
                 connection: str = "sparse", v0=None) -> dict:
    """Run ``T`` LCA iterations for every row of ``X`` (B, M) on Lava (``Loihi2SimCfg``,
    ``floating_pt``), ``batch`` images per Lava run.

    Returns ``{"v", "a", "seconds"}``: final potentials and activities (B, K), float64; with
    ``v0`` = 0 (default) ``a`` equals ``T`` applications of
    :func:`neurodeploy.learn.ipvae.lca_step` and torch ``lca_infer(..., n_iter=T)``.
    ``connection='dense'`` puts the block-diagonal lateral matrix in one Lava ``Dense``
    ((batch K)^2 entries: keep ``batch`` small); ``'sparse'`` in a ``Sparse`` (batch K^2).
    """
    from neurodeploy.compat.lava import ensure_lava_importable

    ensure_lava_importable()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.sparse.process import Sparse

    from neurodeploy.backends.ipvae_common import chunks
    from neurodeploy.backends.lava.lca.process import LCANeurons

    if connection not in ("dense", "sparse"):
        raise ValueError(f"connection must be 'dense' or 'sparse', got {connection!r}")
    if int(T) < 1:
        raise ValueError(f"T must be >= 1, got {T}")
    Phi = np.asarray(Phi, np.float64)
    X = np.atleast_2d(np.asarray(X, np.float64))
    B, K = len(X), Phi.shape[1]
    G = Phi.T @ Phi - np.eye(K)
    D = X @ Phi
    v0 = np.zeros((B, K)) if v0 is None else np.broadcast_to(np.asarray(v0, np.float64), (B, K))
    V, A = np.empty((B, K)), np.empty((B, K))
    t0 = time.perf_counter()
    for sl in chunks(B, batch):
        nb = sl.stop - sl.start
        if connection == "dense":
            Wb = np.kron(np.eye(nb), G.T)
        else:
            from scipy.sparse import block_diag

            Wb = block_diag([G.T] * nb, format="csr")
        neu = LCANeurons(shape=(nb * K,), v=v0[sl].ravel(), drive=D[sl].ravel(), lam=lam, dt_tau=dt_tau)
        conn = (Dense if connection == "dense" else Sparse)(weights=Wb, num_message_bits=24)
        neu.s_out.connect(conn.s_in)
        conn.a_out.connect(neu.a_in)
        try:
            neu.run(condition=RunSteps(num_steps=int(T) + 1), run_cfg=Loihi2SimCfg(select_tag="floating_pt"))
            V[sl] = np.asarray(neu.v.get(), np.float64).reshape(nb, K)
            A[sl] = np.asarray(neu.a.get(), np.float64).reshape(nb, K)
        finally:
            neu.stop()
    return {"v": V, "a": A, "seconds": time.perf_counter() - t0}
