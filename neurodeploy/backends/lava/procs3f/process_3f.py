"""The NDLIF3F Lava Process: neurodeploy's NDLIF neuron that also sends a third factor.

Kept in its own package (with ``models_3f.py``) because Lava's ProcessModel discovery imports and
executes every module in a Process's directory. Absolute imports only: discovery executes the
files under bare module names.
"""

from __future__ import annotations

import typing as ty

from neurodeploy.core.compat.lava import ensure_lava_importable

ensure_lava_importable()

from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402

from neurodeploy.backends.lava.procs.process import NDLIF  # noqa: E402

__all__ = ["NDLIF3F"]


class NDLIF3F(NDLIF):
    """:class:`~neurodeploy.backends.lava.procs.process.NDLIF` plus the ports of Lava's learning
    neurons, sending a modulator's spike trace as the post trace y2 of a ``Loihi3FLearningRule``.

    Per time step, before the NDLIF step (per neuron j), ``floating_pt``::

        y2 = y2 * mod_decay + mod_impulse * a_third_factor_in

    ``fixed_pt`` (integers; the trace is kept with 12 fractional bits in ``mod_state``, y2 is its
    value rounded to the nearest integer and clipped to the engine's 7 bits)::

        mod_state = (mod_state * mod_decay) >> 12  +  (mod_impulse * a_third_factor_in) << 12
        y2        = min((mod_state + 2048) >> 12, 127)

    then the NDLIF dynamics run unchanged and the neuron sends ``s_out``, ``s_out_bap`` (the same
    spikes), ``s_out_y2 = y2`` and ``s_out_y1 = s_out_y3 = 0``. ``a_third_factor_in`` is meant to
    be wired *directly* to the modulator's ``s_out`` (no Dense): its spikes of a step then enter
    ``y2`` in that same step, as the reference's modulator trace does; a LearningDense reads the
    y2 it receives in a step at that step's learning phase.

    Parameters (beyond NDLIF's)
    ---------------------------
    mod_decay : float or int
        Per-step decay of the trace, ``exp(-dt/tau_mod)`` (per population); ``fixed_pt``: the
        integer ``round(4096 * exp(-dt/tau_mod))``.
    mod_impulse : float or int
        Increment of y2 per modulator spike (Lava units of y2 per unit of the modulator trace);
        ``fixed_pt``: an integer.
    """

    def __init__(self, *, shape: ty.Tuple[int, ...], mod_decay: float = 0.0, mod_impulse: float = 1.0,
                 **kwargs: ty.Any) -> None:
        super().__init__(shape=shape, **kwargs)
        if not 0.0 <= float(mod_decay) <= (4096 if isinstance(mod_decay, int) else 1.0):
            raise ValueError(f"NDLIF3F mod_decay must be in [0, 1] (float) or 0..4096 (int), got {mod_decay!r}")
        n = shape[0]
        self.a_third_factor_in = InPort(shape=(n,))
        self.s_out_bap = OutPort(shape=(n,))
        self.s_out_y1 = OutPort(shape=(n,))
        self.s_out_y2 = OutPort(shape=(n,))
        self.s_out_y3 = OutPort(shape=(n,))
        self.y1 = Var(shape=shape, init=0)
        self.y2 = Var(shape=shape, init=0)
        self.y3 = Var(shape=shape, init=0)
        self.mod_decay = Var(shape=(1,), init=mod_decay)
        self.mod_impulse = Var(shape=(1,), init=mod_impulse)
        self.mod_state = Var(shape=shape, init=0)  # fixed_pt: the trace with 12 fractional bits
