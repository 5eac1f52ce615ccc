"""Leaky integrators without a threshold (NIR ``LI`` and ``CubaLI``): graded read-outs."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np

from ...core.params import param
from .base import NeuronModel, register_neuron
from .cuba_lif import CubaLIF
from .lif import LIF


@register_neuron
class LI(NeuronModel):
    r"""Leaky integrator (NIR's ``LI``): ``lif`` without threshold, reset or refractoriness.

    .. math::

        \tau_m \frac{dv}{dt} = (v_{leak} - v) + R_m (I_{ext} + I_{bias})

    An incoming spike of weight :math:`w` (volt) adds :math:`w` to :math:`v`. It never spikes:
    its potential is the output (a read-out layer; probe ``v``). Reference step: the ``lif``
    step (exact integration, then this step's synaptic input) with no threshold.
    """

    name = "li"

    @dataclass(frozen=True, kw_only=True)
    class Params:
        tau_m: float = param(default=20e-3, unit="second", doc="membrane time constant", min=0, min_exclusive=True)
        v_leak: float = param(default=0.0, unit="volt", doc="leak (resting) potential")
        R_m: float = param(default=10e6, unit="ohm", doc="membrane resistance", min=0)
        I_bias: float = param(default=0.0, unit="amp", doc="constant bias current")

    state = {"v": "volt", "I_ext": "amp"}
    state_defaults = {"v": "v_leak"}
    synaptic_target = "v"
    weight_unit = "volt"
    current_input = "I_ext"
    equations = (
        "dv/dt = (v_leak - v + R_m*(I_ext + I_bias)) / tau_m : volt\n"
        "I_ext : amp"
    )
    threshold = "False"  # never spikes (a SpikeMonitor still works: counts stay 0)
    reset = ""

    @classmethod
    def reference_step(cls, p, state, inputs, dt, rng=None):
        out, spikes = LIF.reference_step(_no_threshold_lif(p), state, inputs, dt)
        out.pop("_ref_steps", None)
        return out, np.zeros_like(spikes)

    @classmethod
    def euler_step(cls, p, state, inputs, dt):
        r"""One step under the Euler schedules (``discrete``, ``loihi``): ``lif``'s Euler step
        without threshold, :math:`v \leftarrow v + \frac{dt}{\tau_m}(v_{leak} - v + R_m(I_{ext} +
        I_{bias})) + \sum w` (snnTorch's ``Leaky`` with ``reset_mechanism='none'``, Norse's ``LI``)."""
        out, spikes = LIF.euler_step(_no_threshold_lif(p), state, inputs, dt)
        out.pop("_ref_steps", None)
        return out, np.zeros_like(spikes)


@register_neuron
class CubaLI(NeuronModel):
    r"""Current-based leaky integrator (NIR's ``CubaLI``): ``cuba_lif`` without threshold.

    .. math::

        \tau_{syn} \frac{dI}{dt} = -I \qquad
        \tau_m \frac{dv}{dt} = (v_{leak} - v) + R_m (I + I_{bias} + I_{ext})

    An incoming spike of weight :math:`w` (amp) adds :math:`w` to :math:`I`. It never spikes;
    probe ``v``. Reference step: the ``cuba_lif`` step (exact solution of the linear system) with
    no threshold.
    """

    name = "cuba_li"

    @dataclass(frozen=True, kw_only=True)
    class Params:
        tau_syn: float = param(default=5e-3, unit="second", doc="synaptic current time constant", min=0, min_exclusive=True)
        tau_m: float = param(default=20e-3, unit="second", doc="membrane time constant", min=0, min_exclusive=True)
        v_leak: float = param(default=0.0, unit="volt", doc="leak (resting) potential")
        R_m: float = param(default=1e6, unit="ohm", doc="membrane resistance", min=0)
        I_bias: float = param(default=0.0, unit="amp", doc="constant bias current")

    state = {"v": "volt", "I": "amp", "I_ext": "amp"}
    state_defaults = {"v": "v_leak"}
    synaptic_target = "I"
    weight_unit = "amp"
    current_input = "I_ext"
    equations = (
        "dI/dt = -I / tau_syn : amp\n"
        "dv/dt = (v_leak - v + R_m*(I + I_bias + I_ext)) / tau_m : volt\n"
        "I_ext : amp"
    )
    threshold = "False"
    reset = ""

    @classmethod
    def reference_step(cls, p, state, inputs, dt, rng=None):
        out, spikes = CubaLIF.reference_step(_no_threshold_cuba(p), state, inputs, dt)
        out.pop("_ref_steps", None)
        return out, np.zeros_like(spikes)

    @classmethod
    def euler_step(cls, p, state, inputs, dt):
        r"""One step under the Euler schedules: ``cuba_lif``'s Euler step (current first) without
        threshold: :math:`I \leftarrow (1 - dt/\tau_{syn}) I + \sum w`, then
        :math:`v \leftarrow v + \frac{dt}{\tau_m}(v_{leak} - v + R_m(I + I_{ext} + I_{bias}))`."""
        out, spikes = CubaLIF.euler_step(_no_threshold_cuba(p), state, inputs, dt)
        out.pop("_ref_steps", None)
        return out, np.zeros_like(spikes)


def _no_threshold_lif(p) -> SimpleNamespace:
    """``li``'s parameters as ``lif``'s, never reaching threshold."""
    return SimpleNamespace(tau_m=p.tau_m, v_rest=p.v_leak, v_reset=p.v_leak, v_th=np.inf, R_m=p.R_m, t_ref=0.0,
                           I_bias=p.I_bias)


def _no_threshold_cuba(p) -> SimpleNamespace:
    """``cuba_li``'s parameters as ``cuba_lif``'s, never reaching threshold."""
    return SimpleNamespace(tau_syn=p.tau_syn, tau_m=p.tau_m, v_leak=p.v_leak, v_th=np.inf, v_reset=p.v_leak,
                           R_m=p.R_m, I_bias=p.I_bias, t_ref=0.0, reset_mode="to_value")
