"""Current-based LIF neuron: the Loihi neuron (NIR ``CubaLIF`` semantics, in physical units)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.params import param
from .base import NeuronModel, ResetModeMixin, register_neuron


@register_neuron
class CubaLIF(ResetModeMixin, NeuronModel):
    r"""Current-based leaky integrate-and-fire neuron (two exponential stages).

    .. math::

        \tau_{syn} \frac{dI}{dt} = -I \qquad
        \tau_m \frac{dv}{dt} = (v_{leak} - v) + R_m (I + I_{bias} + I_{ext})

    An incoming spike of weight :math:`w` (amp) adds :math:`w` to the synaptic current
    :math:`I`. Spike when :math:`v > v_{th}`; then :math:`v \leftarrow v_{reset}`
    (``reset_mode: to_value``, Lava/Loihi resets to 0) or :math:`v \leftarrow v - (v_{th} -
    v_{reset})` (``reset_mode: subtract``, as NIR's exact LIF solution), then a refractory
    period of :math:`t_{ref}` (0 by default, as Loihi's plain LIF).

    This is the continuous form of Loihi 2's CUBA neuron: Lava's fixed-point LIF computes
    ``u[t] = u[t-1](1 - du) + a_in`` and ``v[t] = v[t-1](1 - dv) + u[t] + bias`` with
    :math:`du = 1 - e^{-dt/\tau_{syn}}` and :math:`dv = 1 - e^{-dt/\tau_m}`; the quantize
    pass maps between the two.

    Reference step: the exact solution of the linear system over one step (inputs constant
    during the step), then threshold, synaptic input into :math:`I`, reset; the same order as
    :class:`~neurodeploy.library.neurons.lif.LIF`.
    """

    name = "cuba_lif"

    @dataclass(frozen=True, kw_only=True)
    class Params:
        tau_syn: float = param(default=5e-3, unit="second", doc="synaptic current time constant", min=0, min_exclusive=True)
        tau_m: float = param(default=20e-3, unit="second", doc="membrane time constant", min=0, min_exclusive=True)
        v_leak: float = param(default=0.0, unit="volt", doc="leak (resting) potential")
        v_th: float = param(default=10e-3, unit="volt", doc="firing threshold")
        v_reset: float = param(default=0.0, unit="volt", doc="reset potential")
        R_m: float = param(default=1e6, unit="ohm", doc="membrane resistance", min=0)
        I_bias: float = param(default=0.0, unit="amp", doc="constant bias current")
        t_ref: float = param(default=0.0, unit="second", doc="refractory period", min=0)
        reset_mode: str = param("choice", default="to_value", choices=("to_value", "subtract"),
                                doc="reset to v_reset, or subtract (v_th - v_reset)")

    state = {"v": "volt", "I": "amp", "I_ext": "amp"}
    state_defaults = {"v": "v_leak"}
    synaptic_target = "I"
    weight_unit = "amp"
    current_input = "I_ext"
    equations = (
        "dI/dt = -I / tau_syn : amp\n"
        "dv/dt = (v_leak - v + R_m*(I + I_bias + I_ext)) / tau_m : volt (unless refractory)\n"
        "I_ext : amp"
    )
    threshold = "v > v_th"
    reset = "v = v_reset"
    refractory = "t_ref"

    @classmethod
    def reference_step(cls, p, state, inputs, dt, rng=None):
        v = state["v"].copy()
        i_syn = state["I"].copy()
        n = v.shape[0]
        # steps left in the refractory period; counted down at the start of a step, so a
        # neuron that spiked in step s integrates again from step s + round(t_ref/dt) (Brian2's
        # rule: refractory while t - lastspike < t_ref)
        ref = state.get("_ref_steps", np.zeros(n, dtype=np.int64)) - 1
        i_ext = np.asarray(inputs.get("I_ext", state.get("I_ext", 0.0)), dtype=float)
        a_s = np.exp(-dt / p.tau_syn)
        a_m = np.exp(-dt / p.tau_m)
        if np.isclose(p.tau_syn, p.tau_m):
            coupling = p.R_m * i_syn * (dt / p.tau_m) * a_m
        else:
            coupling = p.R_m * i_syn * p.tau_syn / (p.tau_syn - p.tau_m) * (a_s - a_m)
        v_inf = p.v_leak + p.R_m * (p.I_bias + i_ext)
        active = ref <= 0
        v = np.where(active, v_inf + (v - v_inf) * a_m + coupling, v)
        i_syn = i_syn * a_s
        spikes = active & (v > p.v_th)
        i_syn = i_syn + np.asarray(inputs.get("syn", 0.0), dtype=float)
        v = cls.apply_reset(p, v, spikes)
        ref = np.where(spikes, int(round(p.t_ref / dt)), np.maximum(ref, 0))
        return dict(state, v=v, I=i_syn, I_ext=np.broadcast_to(i_ext, (n,)).copy(), _ref_steps=ref), spikes

    @classmethod
    def euler_step(cls, p, state, inputs, dt):
        r"""One step under the Euler schedules (``discrete``, ``loihi``; docs/spec.md#schedule),
        current first (snnTorch's Synaptic, Lava's ``u`` then ``v``):
        :math:`I \leftarrow (1 - dt/\tau_{syn}) I + \sum w`;
        :math:`v \leftarrow v + \frac{dt}{\tau_m}(v_{leak} - v + R_m(I + I_{ext} + I_{bias}))`
        where not refractory; spike where :math:`v > v_{th}`; reset (to ``v_reset``, or subtract)."""
        v = state["v"].copy()
        n = v.shape[0]
        ref = state.get("_ref_steps", np.zeros(n, dtype=np.int64)) - 1
        i_ext = np.asarray(inputs.get("I_ext", state.get("I_ext", 0.0)), dtype=float)
        i_syn = state["I"] * (1.0 - dt / p.tau_syn) + np.asarray(inputs.get("syn", 0.0), dtype=float)
        active = ref <= 0
        v = np.where(active, v + dt / p.tau_m * (p.v_leak - v + p.R_m * (i_syn + i_ext + p.I_bias)), v)
        spikes = active & (v > p.v_th)
        v = cls.apply_reset(p, v, spikes)
        ref = np.where(spikes, int(round(p.t_ref / dt)), np.maximum(ref, 0))
        return dict(state, v=v, I=i_syn, I_ext=np.broadcast_to(i_ext, (n,)).copy(), _ref_steps=ref), spikes
