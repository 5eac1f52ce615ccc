"""The ``LCANeuronsFixed`` Lava Process: fixed-point LCA units (format and step in
``fixed_reference.py``), one integer Euler step per time step.

A Process of its own (not a tag of :class:`~neurodeploy.backends.lava.blocks.lca.process.LCANeurons`)
because its state is integer (Q units) and it carries extra constants and counters; the float
process and model are untouched. Absolute imports only: Lava's model discovery executes the
modules of this directory under bare names.
"""

from __future__ import annotations

import typing as ty

import numpy as np

from neurodeploy.core.compat.lava import ensure_lava_importable

ensure_lava_importable()

from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess, LogConfig  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402

from neurodeploy.library.blocks.lca.fixed import LCAFixedFormat, lca_fixed_initial_activity

__all__ = ["LCANeuronsFixed"]


class LCANeuronsFixed(AbstractProcess):
    """Fixed-point LCA units: integer potential ``v`` and graded output ``a`` in Q units.

    Time step 1 only sends the initial activity; every later step ``m`` is iteration
    ``t = m - 1`` of :func:`~neurodeploy.library.blocks.lca.fixed.lca_fixed_step` with
    ``a_in`` = the connection's integer output (``sum_j 2 q_kj a_j``), so ``T`` iterations take
    ``T + 1`` steps.

    Parameters
    ----------
    shape : (n,)
    v : integer array of length n
        Initial potentials (Q units); the initial activity is ``min(max(v - lam_q, 0), a_max)``.
    drive : integer array of length n
        Constant drive ``Phi^T x`` rounded to Q units on the host.
    lam_q, dt_mult, dt_shift, lat_shift : int
        Threshold (Q units), Euler step ``dt_mult 2^-dt_shift`` and the shift that turns the
        connection's output into Q units (``LCAFixedProgram``).
    frac_bits, dt_bits, payload_bits, v_bits : int
        The :class:`LCAFixedFormat`.

    Vars ``clipped`` / ``saturated`` count, per neuron, the iterations whose payload was clipped
    / whose potential saturated.
    """

    def __init__(self, *, shape: ty.Tuple[int, ...], v, drive, lam_q: int, dt_mult: int, dt_shift: int,
                 lat_shift: int, frac_bits: int = 10, dt_bits: int = 12, payload_bits: int = 16,
                 v_bits: int = 24, name: ty.Optional[str] = None,
                 log_config: ty.Optional[LogConfig] = None) -> None:
        fmt = LCAFixedFormat(frac_bits=int(frac_bits), dt_bits=int(dt_bits), payload_bits=int(payload_bits),
                             v_bits=int(v_bits))
        super().__init__(shape=shape, lam_q=int(lam_q), dt_mult=int(dt_mult), dt_shift=int(dt_shift),
                         lat_shift=int(lat_shift), frac_bits=fmt.frac_bits, dt_bits=fmt.dt_bits,
                         payload_bits=fmt.payload_bits, v_bits=fmt.v_bits, name=name, log_config=log_config)
        v = np.asarray(v)
        if not np.issubdtype(v.dtype, np.integer) or not np.issubdtype(np.asarray(drive).dtype, np.integer):
            raise TypeError("LCANeuronsFixed takes integer v and drive (Q units)")
        if v.min(initial=0) < fmt.v_min or v.max(initial=0) > fmt.v_max:
            raise ValueError(f"v must fit {fmt.v_bits} signed bits")
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.v = Var(shape=shape, init=v.astype(np.int64))
        self.a = Var(shape=shape, init=lca_fixed_initial_activity(v, int(lam_q), fmt))
        self.drive = Var(shape=shape, init=np.asarray(drive, np.int64))
        self.clipped = Var(shape=shape, init=np.zeros(shape, np.int64))
        self.saturated = Var(shape=shape, init=np.zeros(shape, np.int64))
