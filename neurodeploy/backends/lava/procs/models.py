"""ProcessModels of :class:`~neurodeploy.backends.lava.procs.process.NDLIF` for CPU simulation
(``Loihi2SimCfg``): ``floating_pt`` and ``fixed_pt``.

They extend Lava's own LIF model bases (``AbstractPyLifModelFloat`` / ``AbstractPyLifModelFixed``,
so the declared types, constants and bias scaling are Lava's) and replace ``run_spk`` and the
sub-threshold update with versions that gate v by the refractory counter ``since``. Where
refractoriness and the reset options are off, the arithmetic is operation for operation that of
``PyLifModelFloat`` / ``PyLifModelBitAcc``.

Absolute imports only: Lava's model discovery executes this file under the bare name ``models``.
"""

from __future__ import annotations

import numpy as np

from neurodeploy.core.compat.lava import ensure_lava_importable

ensure_lava_importable()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.ports import PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.lif.models import (  # noqa: E402
    AbstractPyLifModelFixed,
    AbstractPyLifModelFloat,
)

from neurodeploy.backends.lava.procs.process import NDLIF  # noqa: E402
from neurodeploy.backends.lava.procs.reference import SINCE_NEVER  # noqa: E402

__all__ = ["PyNDLIFModelFixed", "PyNDLIFModelFloat"]


def _scalar(value) -> int | float:
    """A per-population Var's value as a Python number (scalar Vars may hold a (1,) array)."""
    return np.asarray(value).reshape(-1)[0].item()


class _RefractoryMixin:
    """The ``since`` counter and the masks derived from it (shared by both models)."""

    def advance_since(self) -> None:
        """since += 1, saturating at SINCE_NEVER (so it never overflows)."""
        self.since[:] = np.minimum(self.since, SINCE_NEVER - 1) + 1

    def refractory_masks(self) -> tuple[np.ndarray, np.ndarray]:
        """(integrate, use_u): where v is updated at all, and where u is added to it."""
        refractory_steps = int(_scalar(self.refractory_steps))
        input_drop = int(_scalar(self.input_drop))
        integrate = self.since >= refractory_steps
        use_u = self.since >= refractory_steps + input_drop
        return integrate, use_u

    def process_spikes(self, spike_vector: np.ndarray, vth) -> None:
        """Reset v of the spiking neurons (to v_reset, or by subtracting ``vth``); since = 0."""
        if int(_scalar(self.reset_mode)) == 0:
            self.v[spike_vector] = self.v_reset
        else:
            self.v[spike_vector] = self.v[spike_vector] - vth
        self.since[spike_vector] = 0


@implements(proc=NDLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyNDLIFModelFloat(_RefractoryMixin, AbstractPyLifModelFloat):
    """NDLIF in floating point (``bias_exp`` ignored, as in Lava's float LIF)."""

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)
    vth: float = LavaPyType(float, float)
    refractory_steps: int = LavaPyType(int, np.int32)
    input_drop: int = LavaPyType(int, np.int32, precision=1)
    reset_mode: int = LavaPyType(int, np.int32, precision=1)
    v_reset: float = LavaPyType(float, float)
    since: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def subthr_dynamics(self, activation_in: np.ndarray) -> None:
        self.u[:] = self.u * (1 - self.du)
        self.u[:] += activation_in
        integrate, use_u = self.refractory_masks()
        v_new = self.v * (1 - self.dv) + np.where(use_u, self.u, 0.0) + self.bias_mant
        self.v[:] = np.where(integrate, v_new, self.v)
        self._integrate = integrate

    def spiking_activation(self) -> np.ndarray:
        return self._integrate & (self.v > self.vth)

    def run_spk(self) -> None:
        a_in_data = self.a_in.recv()
        self.advance_since()
        self.subthr_dynamics(activation_in=a_in_data)
        self.s_out_buff = self.spiking_activation()
        self.process_spikes(self.s_out_buff, self.vth)
        self.s_out.send(self.s_out_buff)


@implements(proc=NDLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyNDLIFModelFixed(_RefractoryMixin, AbstractPyLifModelFixed):
    """NDLIF bit-accurate with Lava's ``PyLifModelBitAcc`` (plus refractoriness and reset).

    As in Lava, the threshold is scaled (``vth << 6``) once, at the first step, and the bias
    (``bias_mant << bias_exp``) every step. ``v_reset`` is in the integer units of v.
    """

    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    vth: int = LavaPyType(int, np.int32, precision=17)
    refractory_steps: int = LavaPyType(int, np.int32)
    input_drop: int = LavaPyType(int, np.int32, precision=1)
    reset_mode: int = LavaPyType(int, np.int32, precision=1)
    v_reset: int = LavaPyType(int, np.int32, precision=24)
    since: np.ndarray = LavaPyType(np.ndarray, np.int32)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.effective_vth = 0

    def scale_threshold(self) -> None:
        """Loihi left-shifts the threshold by 6 bits to MSB-align it with v (as Lava's LIF)."""
        self.effective_vth = np.left_shift(self.vth, self.vth_shift)
        self.isthrscaled = True

    def subthr_dynamics(self, activation_in: np.ndarray) -> None:
        # Current: exactly PyLifModelBitAcc's update (AbstractPyLifModelFixed.subthr_dynamics).
        decay_const_u = self.du + self.ds_offset
        decayed_curr = np.int64(self.u) * (self.decay_unity - decay_const_u)
        decayed_curr = np.sign(decayed_curr) * np.right_shift(
            np.abs(decayed_curr), self.decay_shift
        )
        decayed_curr = np.int32(decayed_curr)
        activation_in = np.left_shift(activation_in, self.act_shift)
        decayed_curr += activation_in
        wrapped_curr = np.where(
            decayed_curr > self.max_uv_val,
            decayed_curr - 2 * self.max_uv_val,
            decayed_curr,
        )
        wrapped_curr = np.where(
            wrapped_curr <= -self.max_uv_val,
            decayed_curr + 2 * self.max_uv_val,
            wrapped_curr,
        )
        self.u[:] = wrapped_curr

        # Voltage: PyLifModelBitAcc's update, gated by the refractory masks.
        integrate, use_u = self.refractory_masks()
        decay_const_v = self.dv + self.dm_offset
        neg_voltage_limit = -np.int32(self.max_uv_val) + 1
        pos_voltage_limit = np.int32(self.max_uv_val) - 1
        decayed_volt = np.int64(self.v) * (self.decay_unity - decay_const_v)
        decayed_volt = np.sign(decayed_volt) * np.right_shift(
            np.abs(decayed_volt), self.decay_shift
        )
        decayed_volt = np.int32(decayed_volt)
        added_u = np.where(use_u, self.u, np.int32(0))
        updated_volt = decayed_volt + added_u + self.effective_bias
        updated_volt = np.clip(updated_volt, neg_voltage_limit, pos_voltage_limit)
        self.v[:] = np.where(integrate, updated_volt, self.v)
        self._integrate = integrate

    def spiking_activation(self) -> np.ndarray:
        return self._integrate & (self.v > self.effective_vth)

    def run_spk(self) -> None:
        a_in_data = self.a_in.recv()
        self.scale_bias()
        if not self.isthrscaled:
            self.scale_threshold()
        self.advance_since()
        self.subthr_dynamics(activation_in=a_in_data)
        self.s_out_buff = self.spiking_activation()
        self.process_spikes(self.s_out_buff, self.effective_vth)
        self.s_out.send(self.s_out_buff)
