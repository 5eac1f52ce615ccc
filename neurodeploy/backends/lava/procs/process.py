"""The NDLIF ("neurodeploy LIF") Lava Process: Lava's CUBA LIF plus Brian2-style refractoriness
and reset.

Kept in its own package (with ``models.py`` and the numpy-only ``reference.py``) because Lava's
ProcessModel discovery imports and executes every module in a Process's directory. Absolute
imports only: discovery executes ``models.py`` under the bare name ``models``.
"""

from __future__ import annotations

import numbers
import typing as ty

import numpy as np

from neurodeploy.core.compat.lava import ensure_lava_importable

ensure_lava_importable()

from lava.magma.core.process.process import LogConfig  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.proc.lif.process import AbstractLIF  # noqa: E402

from neurodeploy.backends.lava.procs.reference import SINCE_NEVER  # noqa: E402

__all__ = ["NDLIF", "SINCE_NEVER"]

_Value = ty.Union[float, int, list, np.ndarray]


def _int_param(name: str, value: ty.Any, allowed: ty.Optional[tuple[int, ...]] = None) -> int:
    """``value`` as a Python int; integral numbers only (bool rejected), ``allowed`` if given."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"NDLIF {name} must be an integer, got {value!r}")
    value = int(value)
    if allowed is not None and value not in allowed:
        raise ValueError(f"NDLIF {name} must be one of {allowed}, got {value}")
    if value < 0:
        raise ValueError(f"NDLIF {name} must be >= 0, got {value}")
    return value


class NDLIF(AbstractLIF):
    """Leaky integrate-and-fire neuron (Lava's CUBA LIF) with refractoriness and reset choices.

    Dynamics at time step m (per neuron; ``since`` counts the steps since the last spike and starts
    at :data:`SINCE_NEVER`)::

        since     = min(since + 1, SINCE_NEVER)
        u         = u * (1 - du) + a_in
        integrate = since >= refractory_steps
        use_u     = since >= refractory_steps + input_drop
        v         = v * (1 - dv) + (u if use_u else 0) + bias   where integrate, else unchanged
        s_out     = integrate & (v > vth)
        on spike:   v = v_reset (reset_mode 0) or v = v - vth (reset_mode 1);  since = 0

    The ``fixed_pt`` model uses the integer arithmetic of Lava's ``PyLifModelBitAcc`` (12-bit
    decays with du's hidden +1, ``a_in << 6``, 24-bit wrap of u, saturation of v,
    ``bias_mant << bias_exp``, threshold ``vth << 6``; reset mode 1 subtracts ``vth << 6``;
    ``v_reset`` is in the units of v, not shifted). With ``refractory_steps=0``, ``input_drop=0``,
    ``reset_mode=0`` and ``v_reset=0`` both models equal Lava's LIF.

    Parameters
    ----------
    shape, u, v, du, dv, bias_mant, bias_exp, vth
        As for :class:`lava.proc.lif.process.LIF` (du, dv, vth per population; bias per neuron;
        ``bias_exp`` is ignored by the float model). Pass Python ints for ``fixed_pt``.
    refractory_steps : int
        Steps after a spike during which v is frozen: with R, v is not integrated at the R - 1
        steps following the spike step (``since`` 1 .. R - 1). 0 and 1 both mean "none".
    input_drop : int (0, 1 or 2; 2 is what `lif` needs without refractoriness)
        Extra step during which u is not added to v after the refractory window (Brian2 drops the
        synaptic input that arrives while refractory; Lava's Dense delivers it one step later).
    reset_mode : int
        0: set v to ``v_reset`` on a spike; 1: subtract the threshold.
    v_reset : float or int
        Reset voltage for ``reset_mode`` 0 (per population; fixed_pt: integer units of v).
    """

    def __init__(
        self,
        *,
        shape: ty.Tuple[int, ...],
        u: ty.Optional[_Value] = 0,
        v: ty.Optional[_Value] = 0,
        du: ty.Optional[float] = 0,
        dv: ty.Optional[float] = 0,
        bias_mant: ty.Optional[_Value] = 0,
        bias_exp: ty.Optional[_Value] = 0,
        vth: ty.Optional[float] = 10,
        refractory_steps: int = 0,
        input_drop: int = 0,
        reset_mode: int = 0,
        v_reset: float = 0,
        name: ty.Optional[str] = None,
        log_config: ty.Optional[LogConfig] = None,
        **kwargs: ty.Any,
    ) -> None:
        # Validated after AbstractProcess.__init__: a Process that raises before it leaves an
        # object whose __del__ (AbstractProcess.stop) fails on a missing _runtime attribute.
        super().__init__(
            shape=shape,
            u=u,
            v=v,
            du=du,
            dv=dv,
            bias_mant=bias_mant,
            bias_exp=bias_exp,
            name=name,
            log_config=log_config,
            **kwargs,
        )
        refractory_steps = _int_param("refractory_steps", refractory_steps)
        input_drop = _int_param("input_drop", input_drop, (0, 1, 2))
        reset_mode = _int_param("reset_mode", reset_mode, (0, 1))
        if refractory_steps + input_drop >= SINCE_NEVER:
            raise ValueError(f"NDLIF refractory_steps must be < {SINCE_NEVER - 1}")
        self.vth = Var(shape=(1,), init=vth)
        self.refractory_steps = Var(shape=(1,), init=refractory_steps)
        self.input_drop = Var(shape=(1,), init=input_drop)
        self.reset_mode = Var(shape=(1,), init=reset_mode)
        self.v_reset = Var(shape=(1,), init=v_reset)
        # Internal: steps since the neuron's last spike (SINCE_NEVER: never spiked).
        self.since = Var(shape=shape, init=SINCE_NEVER)
