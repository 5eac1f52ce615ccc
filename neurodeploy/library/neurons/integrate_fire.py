"""Integrate-and-fire neuron without leak (NIR ``IF``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.params import param
from .base import NeuronModel, ResetModeMixin, register_neuron


@register_neuron
class IF(ResetModeMixin, NeuronModel):
    r"""Integrate-and-fire neuron without leak (voltage-jump synapses; NIR's ``IF``).

    .. math::

        C_m \frac{dv}{dt} = I_{ext} + I_{bias}

    An incoming spike of weight :math:`w` (volt) adds :math:`w` to :math:`v`. Spike when
    :math:`v > v_{th}`; then :math:`v \leftarrow v_{reset}` (``reset_mode: to_value``, as NIR)
    or :math:`v \leftarrow v - (v_{th} - v_{reset})` (``subtract``, as sinabs' default). No
    refractory period.

    Reference step (exact: the input is constant over the step), in the order of
    :class:`~neurodeploy.library.neurons.lif.LIF`: :math:`v \leftarrow v + dt (I_{ext} + I_{bias})/C_m`;
    spike where :math:`v > v_{th}`; add this step's synaptic input; reset spiking neurons.
    It is the limit :math:`\tau_m \to \infty` of ``lif`` with :math:`C_m = \tau_m / R_m`.
    """

    name = "if"

    @dataclass(frozen=True, kw_only=True)
    class Params:
        C_m: float = param(default=1e-9, unit="farad", doc="membrane capacitance", min=0, min_exclusive=True)
        v_th: float = param(default=10e-3, unit="volt", doc="firing threshold")
        v_reset: float = param(default=0.0, unit="volt", doc="reset potential (and initial potential)")
        I_bias: float = param(default=0.0, unit="amp", doc="constant bias current")
        reset_mode: str = param("choice", default="to_value", choices=("to_value", "subtract"),
                                doc="reset to v_reset, or subtract (v_th - v_reset)")

    state = {"v": "volt", "I_ext": "amp"}
    state_defaults = {"v": "v_reset"}
    synaptic_target = "v"
    weight_unit = "volt"
    current_input = "I_ext"
    equations = (
        "dv/dt = (I_ext + I_bias) / C_m : volt\n"
        "I_ext : amp"
    )
    #: Brian2's "exact" (linear) solver refuses an ODE without the state on its right-hand side;
    #: forward Euler is exact here (the right-hand side is constant over a step)
    brian2_method = "euler"
    threshold = "v > v_th"
    reset = "v = v_reset"

    @classmethod
    def reference_step(cls, p, state, inputs, dt, rng=None):
        v = state["v"].copy()
        n = v.shape[0]
        i_ext = np.asarray(inputs.get("I_ext", state.get("I_ext", 0.0)), dtype=float)
        v = v + dt * (i_ext + p.I_bias) / p.C_m
        spikes = v > p.v_th
        v = v + np.asarray(inputs.get("syn", 0.0), dtype=float)
        v = cls.apply_reset(p, v, spikes)
        out = dict(state, v=v)
        if "I_ext" in state:
            out["I_ext"] = np.broadcast_to(i_ext, (n,)).copy()
        return out, spikes

    @classmethod
    def euler_step(cls, p, state, inputs, dt):
        r"""One step under the Euler schedules (``discrete``, ``loihi``; docs/spec.md#schedule):
        :math:`v \leftarrow v + dt (I_{ext} + I_{bias})/C_m + \sum w` (this step's input kept),
        spike where :math:`v > v_{th}`, reset."""
        n = state["v"].shape[0]
        i_ext = np.asarray(inputs.get("I_ext", state.get("I_ext", 0.0)), dtype=float)
        v = state["v"] + dt * (i_ext + p.I_bias) / p.C_m + np.asarray(inputs.get("syn", 0.0), dtype=float)
        spikes = v > p.v_th
        v = cls.apply_reset(p, v, spikes)
        out = dict(state, v=v)
        if "I_ext" in state:
            out["I_ext"] = np.broadcast_to(i_ext, (n,)).copy()
        return out, spikes
