"""Spiking iP-VAE inference on Lava (issue 6): the ``IPVAELatents`` Process, its ProcessModels
and :func:`run_ipvae_lava`.

* ``process.py``: :class:`IPVAELatents` (one iteration per time step, graded output = count).
* ``models.py``: ``floating_pt`` (:class:`PyIPVAELatentsFloat`) and ``fixed_pt``
  (:class:`PyIPVAELatentsFixed`) ProcessModels for ``Loihi2SimCfg``.
* ``reference.py``: the fixed-point format, its tables and the numpy step both models use (and
  the tests' oracle).

Network: ``IPVAELatents.s_out -> Dense.s_in``, ``Dense.a_out -> IPVAELatents.a_in``, where the
Dense holds the block-diagonal lateral weights ``-W = -eta Phi^T Sigma^-1 Phi`` of every image
of the batch (self-connections kept) and carries graded spikes (``num_message_bits`` 8 for the
fixed-point payload, 24 for float). ``connection='sparse'`` uses Lava's ``Sparse`` with the same
block-diagonal matrix instead (same arithmetic, memory ~ batch K^2 instead of (batch K)^2).

This is a package of its own because Lava's ProcessModel discovery imports every module in a
Process's directory. Importing it does not import Lava: the Lava classes are imported on first
attribute access, and :func:`run_ipvae_lava` imports Lava when called.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from neurodeploy.backends.base import BlockLowering, register_block_lowering
from neurodeploy.backends.lava.blocks import ipvae_compile
from neurodeploy.backends.lava.blocks.ipvae import pc
from neurodeploy.backends.lava.procs import lazy_attribute
from neurodeploy.backends.lava.teardown import stopped_after
from neurodeploy.core.compat.lava import ensure_lava_importable
from neurodeploy.core.errors import NotImplementedYet
from neurodeploy.library.blocks.coder import chunks
from neurodeploy.library.blocks.ipvae.fixed import DEFAULT_SAMPLER, fixed_format, quantize_weights, seed_states
from neurodeploy.library.blocks.ipvae.reference import AVG_TAU, ipvae_result, prepare_run, run_ipvae_chunks

__all__ = ["IPVAELatents", "PyIPVAELatentsFixed", "PyIPVAELatentsFloat", "run_ipvae_lava"]


_LAZY = {
    "IPVAELatents": "neurodeploy.backends.lava.blocks.ipvae.process",
    "PyIPVAELatentsFloat": "neurodeploy.backends.lava.blocks.ipvae.models",
    "PyIPVAELatentsFixed": "neurodeploy.backends.lava.blocks.ipvae.models",
}


def __getattr__(name: str) -> Any:
    return lazy_attribute(globals(), _LAZY, name)


def run_ipvae_lava(arrays: dict, X, T: int, fixed: bool = False, seed: int = 0, batch: int = 8,
                   mode: str = "exact", connection: str = "dense", z0=None, frac_bits: int = 10,
                   lut_bits: int | None = None, count_bits: int = 8, sampler: str | None = None) -> dict:
    """Run ``T`` iP-VAE iterations for every row of ``X`` (B, M) on Lava (``Loihi2SimCfg``,
    ``floating_pt`` or, with ``fixed``, ``fixed_pt``), ``batch`` images per Lava run.

    Returns the dict of :func:`neurodeploy.library.blocks.ipvae.reference.ipvae_result` (final ``u``
    (fixed point: converted to float), counts ``z``, averaged counts ``zbar``, reconstructions,
    metrics) plus ``seconds``; with ``fixed`` also ``u_q`` (integers), ``weight_exponent``,
    ``format`` and the initial ``state0`` (xorshift32 states) and ``z0`` (clipped counts).
    ``z0`` (B, K) replaces the initial counts (default ``Pois(exp(u0))`` drawn on the host from
    ``seed``; clipped to the payload in fixed point; ``exp(u0)`` in rate mode).

    ``connection='dense'`` (default) puts the block-diagonal weights in one Lava ``Dense``
    ((batch K)^2 entries: keep ``batch`` <= ~16); ``'sparse'`` in a ``Sparse`` (batch K^2
    non-zeros), which measured 2-3x faster per image (T = 32, 2 cores: float 21 ms/image at
    batch 50 vs 51 ms/image for Dense at batch 8; fixed 27 vs 94 ms/image).

    ``sampler`` (fixed point): ``'full'`` or ``'core'`` count table (:func:`fixed_format`;
    default ``DEFAULT_SAMPLER``); ``lut_bits`` overrides its resolution.
    """
    ensure_lava_importable()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.sparse.process import Sparse

    IPVAELatents = lazy_attribute(globals(), _LAZY, "IPVAELatents")

    if fixed and mode == "rate":
        raise ValueError("fixed point draws counts: mode must be 'exact'")
    if connection not in ("dense", "sparse"):
        raise ValueError(f"connection must be 'dense' or 'sparse', got {connection!r}")
    st = prepare_run(arrays, X, T, seed, mode, z0)
    p, X, B, K, D, W, rng, z0, T = st.p, st.X, st.B, st.K, st.D, st.W, st.rng, st.z0, st.T
    sampler = DEFAULT_SAMPLER if sampler is None else sampler
    fmt = fixed_format(p, frac_bits, lut_bits, count_bits, sampler) if fixed else None
    if fixed:
        q, s = quantize_weights(-W)
        w_block, lat_shift = 2 * q, s - 1 + fmt.frac_bits  # Lava stores mixed-sign weights as even mantissas
        u_init = np.clip(fmt.q(p.u0), fmt.u_min_q, fmt.u_max_q)
        D_in = fmt.q(D)
        z0 = np.clip(np.round(z0), 0, fmt.count_max)
    else:
        w_block, lat_shift, u_init, D_in = -W, 0, p.u0, D
    U, Z, ZB = np.empty((B, K)), np.empty((B, K)), np.empty((B, K))
    state0 = np.empty((B, K), np.int64) if fixed else None
    t_start = time.perf_counter()
    for sl in chunks(B, batch):
        nb = sl.stop - sl.start
        N = nb * K
        if connection == "dense":
            Wb = np.kron(np.eye(nb, dtype=w_block.dtype), w_block)
        else:
            from scipy.sparse import block_diag  # slow to import: not at `import neurodeploy`

            Wb = block_diag([w_block] * nb, format="csr")
        kw = {}
        if fixed:
            state0[sl] = seed_states(N, int(rng.integers(2 ** 31))).reshape(nb, K)
            kw = {"state": state0[sl].ravel(), "frac_bits": fmt.frac_bits,
                  "lut_bits": fmt.lut_bits, "count_bits": fmt.count_bits, "lat_shift": lat_shift}
        lat = IPVAELatents(shape=(N,), u=np.tile(u_init, nb), z=z0[sl].ravel(), drive=D_in[sl].ravel(),
                           u_min=p.u_min, u_max=p.u_max, du_max=p.du_max, soft=p.soft, mode=mode,
                           seed=int(rng.integers(2 ** 31)), avg_tau=AVG_TAU, **kw)
        Conn = Dense if connection == "dense" else Sparse
        conn = Conn(weights=Wb, num_message_bits=fmt.count_bits if fixed else 24)
        lat.s_out.connect(conn.s_in)
        conn.a_out.connect(lat.a_in)
        with stopped_after(lat):  # Ctrl-C: abandons the run (Lava's stop() would hang)
            lat.run(condition=RunSteps(num_steps=T + 1),
                    run_cfg=Loihi2SimCfg(select_tag="fixed_pt" if fixed else "floating_pt"))
            U[sl] = np.asarray(lat.u.get(), np.float64).reshape(nb, K)
            Z[sl] = np.asarray(lat.z.get(), np.float64).reshape(nb, K)
            ZB[sl] = np.asarray(lat.zbar.get(), np.float64).reshape(nb, K)
    extra = {"seconds": time.perf_counter() - t_start, "backend": "lava-fixed" if fixed else "lava-float",
             "T": T, "mode": mode}
    if fixed:
        extra.update(u_q=U.astype(np.int64), weight_exponent=int(s), format=fmt, state0=state0, z0=z0)
        U = fmt.to_float(U)
    return ipvae_result(p, X, U, Z, ZB, **extra)


@register_block_lowering
class LavaIPVAE(BlockLowering):
    """The ``ipvae`` block on Lava (``Loihi2SimCfg``): the lateral form runs
    :func:`run_ipvae_lava` (``floating_pt`` on ``lava``; on ``loihi2-sim`` ``fixed_pt``: integer u in
    Q units, the exp/Poisson look-up table, an on-core-style xorshift32 PRNG, 8-bit graded counts,
    8-bit lateral weights), the predictive-coding form :func:`.pc.run_ipvae_pc_lava` (bit-exact in
    fixed point with ``library/blocks/ipvae/pc_fixed.py``). Both through a Lava ``Sparse``
    connection, 50 images per Lava run, chunk i seeded with ``seed + i``; every requested T is a
    separate run from the initial state. ``compile`` writes the Loihi 2 resource report."""

    backend, kind = "lava", "ipvae"

    def check(self, target, coder) -> None:
        if target.device == "loihi2":
            raise NotImplementedYet(
                f"running the ipvae block on '{target.name}' needs Loihi 2 hardware and Intel's lava-loihi "
                "extension, which this installation cannot reach; `--target loihi2-sim` runs the same "
                "fixed-point model bit-accurately on the CPU, and `neurodeploy compile -t loihi2` writes the "
                "resource report")

    def describe(self, target, coder, device: str = "auto") -> str:
        fixed = target.number_format == "fixed"
        pc_form = coder.params.get("form") == "predictive_coding"
        return (f"lava {'predictive-coding ' if pc_form else ''}{'fixed_pt' if fixed else 'floating_pt'} "
                f"(Loihi2SimCfg{', bit-accurate integer model' if fixed else ''})")

    def form_computed(self, target, coder) -> str:
        return coder.params.get("form", "lateral")

    def run(self, coder, X, Ts, target, *, seed=0, batch=None, progress=False, device="auto") -> dict:
        fixed = target.number_format == "fixed"
        pc_form = coder.params.get("form") == "predictive_coding"
        fn = pc.run_ipvae_pc_lava if pc_form else run_ipvae_lava
        label = f"lava{'-pc' if pc_form else ''}-{'fixed' if fixed else 'float'}"
        b = batch or 50
        return {T: run_ipvae_chunks(lambda Xc, T_, s: fn(coder.arrays, Xc, T_, fixed=fixed, seed=s, batch=b,
                                                          connection="sparse"),
                                    coder.arrays, X, T, seed, b, progress, f"{label} T={T}")
                for T in Ts}

    def compiles(self, target) -> bool:
        return target.number_format == "fixed"

    def compile(self, net, coder, target, out_dir, log=None):
        return ipvae_compile.compile_ipvae(net, target, out_dir, log=log, coder=coder)

    def summary(self, report: dict) -> str:
        return ipvae_compile.summary_text(report)
