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

from neurodeploy.library.blocks.ipvae.reference import chunks, ipvae_result, prepare_run
from neurodeploy.backends.lava.procs import lazy_attribute
from neurodeploy.library.blocks.ipvae.fixed import CORE_LUT_BITS, FixedFormat, quantize_weights, seed_states
from neurodeploy.learn.ipvae import AVG_TAU

__all__ = ["DEFAULT_SAMPLER", "IPVAELatents", "PyIPVAELatentsFixed", "PyIPVAELatentsFloat", "SAMPLERS",
           "fixed_format", "run_ipvae_lava"]

#: count samplers of the fixed-point latents: ``full`` (rate / CDF table at u resolution 2^-8) or
#: ``core`` (:meth:`FixedFormat.core_sized`, 2^-5: its packed table fits one Loihi 2 core next to
#: the lateral weights). ``DEFAULT_SAMPLER`` is what :func:`run_ipvae_lava` (hence ``neurodeploy
#: eval -t loihi2-sim``) and ``neurodeploy compile`` use unless told otherwise.
SAMPLERS = ("full", "core")
DEFAULT_SAMPLER = "core"

_LAZY = {
    "IPVAELatents": "neurodeploy.backends.lava.blocks.ipvae.process",
    "PyIPVAELatentsFloat": "neurodeploy.backends.lava.blocks.ipvae.models",
    "PyIPVAELatentsFixed": "neurodeploy.backends.lava.blocks.ipvae.models",
}


def __getattr__(name: str) -> Any:
    return lazy_attribute(globals(), _LAZY, name)


def fixed_format(p, frac_bits: int = 10, lut_bits: int | None = None, count_bits: int = 8,
                 sampler: str | None = None) -> FixedFormat:
    """The :class:`FixedFormat` of the coder ``p`` (its bounds and clamp). ``sampler`` picks the
    table resolution (``full``: 8 fractional bits; ``core``: ``CORE_LUT_BITS``, the core-sized
    sampler; default ``DEFAULT_SAMPLER``); an explicit ``lut_bits`` overrides it."""
    sampler = DEFAULT_SAMPLER if sampler is None else sampler
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    if lut_bits is None:
        lut_bits = CORE_LUT_BITS if sampler == "core" else 8
    return FixedFormat(frac_bits=frac_bits, lut_bits=lut_bits, count_bits=count_bits, u_min=p.u_min,
                       u_max=p.u_max, du_max=p.du_max, soft=p.soft)


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
    from neurodeploy.core.compat.lava import ensure_lava_importable

    ensure_lava_importable()
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.sparse.process import Sparse

    from neurodeploy.backends.lava.blocks.ipvae.process import IPVAELatents

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
            from scipy.sparse import block_diag

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
        try:
            lat.run(condition=RunSteps(num_steps=T + 1),
                    run_cfg=Loihi2SimCfg(select_tag="fixed_pt" if fixed else "floating_pt"))
            U[sl] = np.asarray(lat.u.get(), np.float64).reshape(nb, K)
            Z[sl] = np.asarray(lat.z.get(), np.float64).reshape(nb, K)
            ZB[sl] = np.asarray(lat.zbar.get(), np.float64).reshape(nb, K)
        finally:
            lat.stop()
    extra = {"seconds": time.perf_counter() - t_start, "backend": "lava-fixed" if fixed else "lava-float",
             "T": T, "mode": mode}
    if fixed:
        extra.update(u_q=U.astype(np.int64), weight_exponent=int(s), format=fmt, state0=state0, z0=z0)
        U = fmt.to_float(U)
    return ipvae_result(p, X, U, Z, ZB, **extra)
