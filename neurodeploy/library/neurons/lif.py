"""Leaky integrate-and-fire neuron with refractoriness and reset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.params import param
from .base import NeuronModel, register_neuron


@register_neuron
class LIF(NeuronModel):
    r"""Leaky integrate-and-fire neuron (voltage-jump synapses).

    .. math::

        \tau_m \frac{dv}{dt} = (v_{rest} - v) + R_m (I_{ext} + I_{bias})

    Spike when :math:`v > v_{th}`; then :math:`v \leftarrow v_{reset}` and the neuron is
    refractory for :math:`t_{ref}` (no integration, no spike). An incoming spike of weight
    :math:`w` (volt) adds :math:`w` to :math:`v`.

    Reference step (exact integration, input constant over the step; the order of Brian2's
    default schedule: integrate, threshold, synaptic input, reset):

    1. non-refractory neurons: :math:`v \leftarrow v_\infty + (v - v_\infty)e^{-dt/\tau_m}`,
       with :math:`v_\infty = v_{rest} + R_m (I_{ext} + I_{bias})`;
    2. spike where non-refractory and :math:`v > v_{th}`;
    3. :math:`v \leftarrow v + \sum w` for spikes arriving this step (discarded while the
       neuron is refractory: the potential is clamped, as in Brian2);
    4. spiking neurons: :math:`v \leftarrow v_{reset}`; a neuron that spiked in step :math:`s`
       neither integrates nor spikes until step :math:`s + \mathrm{round}(t_{ref}/dt)`.

    Spike times are reported as the start of the step whose update crossed the threshold
    (:math:`t = s\,dt`), as Brian2 does.
    """

    name = "lif"

    @dataclass(frozen=True, kw_only=True)
    class Params:
        tau_m: float = param(default=20e-3, unit="second", doc="membrane time constant", min=0, min_exclusive=True)
        v_rest: float = param(default=-65e-3, unit="volt", doc="resting potential")
        v_reset: float = param(default=-65e-3, unit="volt", doc="reset potential")
        v_th: float = param(default=-50e-3, unit="volt", doc="firing threshold")
        R_m: float = param(default=10e6, unit="ohm", doc="membrane resistance", min=0)
        t_ref: float = param(default=2e-3, unit="second", doc="refractory period", min=0)
        I_bias: float = param(default=0.0, unit="amp", doc="constant bias current")

    state = {"v": "volt", "I_ext": "amp"}
    state_defaults = {"v": "v_rest"}
    synaptic_target = "v"
    weight_unit = "volt"
    current_input = "I_ext"
    equations = (
        "dv/dt = (v_rest - v + R_m*(I_ext + I_bias)) / tau_m : volt (unless refractory)\n"
        "I_ext : amp"
    )
    threshold = "v > v_th"
    reset = "v = v_reset"
    refractory = "t_ref"

    @classmethod
    def reference_step(cls, p, state, inputs, dt, rng=None):
        v = state["v"].copy()
        n = v.shape[0]
        # steps left in the refractory period; counted down at the start of a step, so a
        # neuron that spiked in step s integrates again from step s + round(t_ref/dt) (Brian2's
        # rule: refractory while t - lastspike < t_ref)
        ref = state.get("_ref_steps", np.zeros(n, dtype=np.int64)) - 1
        i_ext = np.asarray(inputs.get("I_ext", state.get("I_ext", 0.0)), dtype=float)
        active = ref <= 0
        v_inf = p.v_rest + p.R_m * (i_ext + p.I_bias)
        decay = np.exp(-dt / p.tau_m)
        v = np.where(active, v_inf + (v - v_inf) * decay, v)
        spikes = active & (v > p.v_th)
        # the potential is clamped while refractory: input arriving then is discarded (Brian2's
        # conditional write on `unless refractory` variables); spiking neurons are reset anyway
        v = np.where(active, v + np.asarray(inputs.get("syn", 0.0), dtype=float), v)
        return _reset(p, state, v, spikes, ref, i_ext, dt)

    @classmethod
    def euler_step(cls, p, state, inputs, dt):
        r"""One step under the Euler schedules (``discrete``, ``loihi``; docs/spec.md#schedule):
        the reset of the last spike is already in ``v``; :math:`v \leftarrow v + \frac{dt}{\tau_m}
        (v_{rest} - v + R_m(I_{ext} + I_{bias})) + \sum w` (this step's input kept), spike where
        :math:`v > v_{th}`, then reset. Refractory neurons neither integrate nor keep input."""
        v = state["v"].copy()
        n = v.shape[0]
        ref = state.get("_ref_steps", np.zeros(n, dtype=np.int64)) - 1
        i_ext = np.asarray(inputs.get("I_ext", state.get("I_ext", 0.0)), dtype=float)
        active = ref <= 0
        dv = dt / p.tau_m * (p.v_rest - v + p.R_m * (i_ext + p.I_bias))
        v = np.where(active, v + dv + np.asarray(inputs.get("syn", 0.0), dtype=float), v)
        spikes = active & (v > p.v_th)
        return _reset(p, state, v, spikes, ref, i_ext, dt)

    @staticmethod
    def first_spike_time(p, I_ext: float, v0: float | None = None) -> float:
        """Analytic time of the first spike under constant current (inf if it never fires)."""
        v0 = p.v_rest if v0 is None else v0
        v_inf = p.v_rest + p.R_m * (I_ext + p.I_bias)
        if v_inf <= p.v_th:
            return float("inf")
        if v0 > p.v_th:
            return 0.0
        return float(p.tau_m * np.log((v_inf - v0) / (v_inf - p.v_th)))


def _reset(p, state, v, spikes, ref, i_ext, dt):
    """Reset the neurons that spiked, start their refractory count; the new state and the spikes."""
    v = np.where(spikes, p.v_reset, v)
    ref = np.where(spikes, int(round(p.t_ref / dt)), np.maximum(ref, 0))
    out = dict(state, v=v, _ref_steps=ref)
    if "I_ext" in state:
        out["I_ext"] = np.broadcast_to(i_ext, (v.shape[0],)).copy()
    return out, spikes
