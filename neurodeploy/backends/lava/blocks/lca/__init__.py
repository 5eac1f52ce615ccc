"""Rozell's LCA on Lava (issue 6, the sparse-coding baseline): the ``LCANeurons`` Process, its
``floating_pt`` ProcessModel and :func:`run_lca_lava`.

* ``process.py``: :class:`LCANeurons` (one Euler step per time step, graded output = activity).
* ``models.py``: the ``floating_pt`` ProcessModel (:class:`PyLCANeuronsFloat`) for
  ``Loihi2SimCfg``.
* ``fixed_reference.py``: the fixed-point format (:class:`LCAFixedFormat`), the integer constants
  of a dictionary and the numpy integer step (the tests' oracle; no Lava import).
* ``fixed_process.py`` / ``fixed_models.py``: :class:`LCANeuronsFixed` and its ``fixed_pt``
  ProcessModel (:class:`PyLCANeuronsFixed`), bit for bit ``fixed_reference.lca_fixed_step``.

Network: ``LCANeurons.s_out -> Sparse.s_in``, ``Sparse.a_out -> LCANeurons.a_in``, where the
Sparse (or, with ``connection='dense'``, a Dense) holds the block-diagonal lateral matrix
``G = Phi^T Phi - I`` of every image of the batch and carries graded spikes (24-bit messages,
float payload in the ``floating_pt`` models). With ``fixed=True`` the connection holds the 8-bit
lateral weights ``2 q`` (shared exponent) and carries the ``payload_bits`` integer activity.

This is a package of its own because Lava's ProcessModel discovery imports every module in a
Process's directory. Importing it does not import Lava: the Lava classes are imported on first
attribute access, and :func:`run_lca_lava` imports Lava when called.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from neurodeploy.backends.base import BlockLowering, register_block_lowering
from neurodeploy.backends.lava.procs import lazy_attribute
from neurodeploy.backends.lava.teardown import stopped_after
from neurodeploy.core.compat.lava import ensure_lava_importable
from neurodeploy.core.errors import NotImplementedYet
from neurodeploy.library.blocks.coder import chunks
from neurodeploy.library.blocks.lca.fixed import LCAFixedFormat, lca_fixed_program

__all__ = ["LCAFixedFormat", "LCANeurons", "LCANeuronsFixed", "PyLCANeuronsFixed", "PyLCANeuronsFloat",
           "run_lca_lava"]

_LAZY = {
    "LCANeurons": "neurodeploy.backends.lava.blocks.lca.process",
    "PyLCANeuronsFloat": "neurodeploy.backends.lava.blocks.lca.models",
    "LCANeuronsFixed": "neurodeploy.backends.lava.blocks.lca.fixed_process",
    "PyLCANeuronsFixed": "neurodeploy.backends.lava.blocks.lca.fixed_models",
}


def __getattr__(name: str) -> Any:
    return lazy_attribute(globals(), _LAZY, name)


def run_lca_lava(Phi, X, T: int, lam: float, dt_tau: float, batch: int = 50,
                 connection: str = "sparse", v0=None, fixed: bool = False,
                 fmt: LCAFixedFormat | None = None) -> dict:
    """Run ``T`` LCA iterations for every row of ``X`` (B, M) on Lava (``Loihi2SimCfg``,
    ``floating_pt``, or with ``fixed`` the ``fixed_pt`` :class:`LCANeuronsFixed`), ``batch``
    images per Lava run.

    Returns ``{"v", "a", "seconds"}``: final potentials and activities (B, K), float64; with
    ``v0`` = 0 (default) ``a`` equals ``T`` applications of
    :func:`neurodeploy.library.blocks.lca.reference.lca_step` and torch ``lca_infer(..., n_iter=T)``.
    ``connection='dense'`` puts the block-diagonal lateral matrix in one Lava ``Dense``
    ((batch K)^2 entries: keep ``batch`` small); ``'sparse'`` in a ``Sparse`` (batch K^2).

    ``fixed``: the fixed-point LCA of ``fixed_reference.py`` in format ``fmt`` (default
    :class:`LCAFixedFormat`: Q.10, dt_tau as a 12-bit multiplier, 16-bit payload); the host
    rounds the drive ``X Phi`` and ``v0`` to Q units, the connection holds ``2 q`` (8-bit
    ``G = Phi^T Phi - I``). ``v`` / ``a`` are then the integers / 2^frac_bits, equal bit for bit
    to :func:`~neurodeploy.library.blocks.lca.fixed.lca_fixed_run`, and the dict also
    has ``v_q``, ``a_q`` (int64), ``clipped`` / ``saturated`` (per-neuron counts of clipped
    payloads / saturated potentials over the run), ``format`` and ``program``
    (:class:`~neurodeploy.library.blocks.lca.fixed.LCAFixedProgram`: weights, exponent,
    shifts, ``lam_q``, ``dt_mult``).
    """
    ensure_lava_importable()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.sparse.process import Sparse

    LCANeurons = lazy_attribute(globals(), _LAZY, "LCANeurons")

    if fixed:
        LCANeuronsFixed = lazy_attribute(globals(), _LAZY, "LCANeuronsFixed")
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
    prog = lca_fixed_program(Phi, lam, dt_tau, fmt) if fixed else None
    if fixed:
        fmt = prog.fmt
        G, D, v0 = prog.weights, fmt.q(D), np.clip(fmt.q(v0), fmt.v_min, fmt.v_max)
        fkw = {"lam_q": prog.lam_q, "dt_mult": prog.dt_mult, "dt_shift": prog.dt_shift,
               "lat_shift": prog.lat_shift, "frac_bits": fmt.frac_bits, "dt_bits": fmt.dt_bits,
               "payload_bits": fmt.payload_bits, "v_bits": fmt.v_bits}
        CL, SA = np.empty((B, K), np.int64), np.empty((B, K), np.int64)
    V, A = np.empty((B, K)), np.empty((B, K))
    t0 = time.perf_counter()
    for sl in chunks(B, batch):
        nb = sl.stop - sl.start
        if connection == "dense":
            Wb = np.kron(np.eye(nb, dtype=G.dtype), G.T)
        else:
            from scipy.sparse import block_diag  # slow to import: not at `import neurodeploy`

            Wb = block_diag([G.T] * nb, format="csr")
        if fixed:
            neu = LCANeuronsFixed(shape=(nb * K,), v=v0[sl].ravel(), drive=D[sl].ravel(), **fkw)
            conn = (Dense if connection == "dense" else Sparse)(weights=Wb, num_message_bits=fmt.payload_bits)
        else:
            neu = LCANeurons(shape=(nb * K,), v=v0[sl].ravel(), drive=D[sl].ravel(), lam=lam, dt_tau=dt_tau)
            conn = (Dense if connection == "dense" else Sparse)(weights=Wb, num_message_bits=24)
        neu.s_out.connect(conn.s_in)
        conn.a_out.connect(neu.a_in)
        with stopped_after(neu):  # Ctrl-C: abandons the run (Lava's stop() would hang)
            neu.run(condition=RunSteps(num_steps=int(T) + 1),
                    run_cfg=Loihi2SimCfg(select_tag="fixed_pt" if fixed else "floating_pt"))
            V[sl] = np.asarray(neu.v.get(), np.float64).reshape(nb, K)
            A[sl] = np.asarray(neu.a.get(), np.float64).reshape(nb, K)
            if fixed:
                CL[sl] = np.asarray(neu.clipped.get()).astype(np.int64).reshape(nb, K)
                SA[sl] = np.asarray(neu.saturated.get()).astype(np.int64).reshape(nb, K)
    out = {"v": V, "a": A, "seconds": time.perf_counter() - t0}
    if fixed:
        v_q, a_q = V.astype(np.int64), A.astype(np.int64)
        out.update(v=fmt.to_float(v_q), a=fmt.to_float(a_q), v_q=v_q, a_q=a_q, clipped=CL, saturated=SA,
                   format=fmt, program=prog)
    return out


@register_block_lowering
class LavaLCA(BlockLowering):
    """The ``lca`` block on Lava: :func:`run_lca_lava`, ``floating_pt`` on ``lava`` (float LCA
    units with the graded lateral input through a ``Sparse``), ``fixed_pt`` on ``loihi2-sim``
    (integer LCA units in Q.10, 8-bit lateral weights, 16-bit graded activities, bit-exact with
    ``library/blocks/lca/fixed.py``); 50 images per Lava run."""

    backend, kind = "lava", "lca"

    def check(self, target, coder) -> None:
        if target.device == "loihi2":
            raise NotImplementedYet(
                f"running the lca block on '{target.name}' needs Loihi 2 hardware and lava-loihi; "
                "`--target loihi2-sim` runs the same fixed-point LCA bit-accurately on the CPU")

    def describe(self, target, coder, device: str = "auto") -> str:
        if target.number_format == "fixed":
            return ("lava fixed_pt (Loihi2SimCfg, integer LCA units in Q.10, 8-bit lateral weights, "
                    "16-bit graded activities)")
        return "lava floating_pt (Loihi2SimCfg, LCA units + Sparse graded lateral input)"

    def run(self, coder, X, Ts, target, *, seed=0, batch=None, progress=False, device="auto") -> dict:
        A = coder.arrays
        out = {}
        for T in Ts:
            r = run_lca_lava(A["Phi"], X, T, float(A["lam"]), float(A["dt_tau"]), batch=batch or 50,
                             fixed=target.number_format == "fixed")
            out[T] = {"a": r["a"], "seconds": r["seconds"]}
        return out
