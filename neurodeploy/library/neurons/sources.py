"""Spike sources: Poisson processes and explicit spike times."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.params import param
from .base import NeuronModel, register_neuron


@register_neuron
class PoissonSource(NeuronModel):
    r"""Independent Poisson spike trains with a rate per neuron.

    In each step of length :math:`dt` a neuron spikes with probability :math:`r\,dt`
    (Bernoulli approximation of a Poisson process, as Brian2's ``PoissonGroup``); a rate with
    :math:`r\,dt > 1` is rejected by the spec checker.
    """

    name = "poisson_source"
    is_source = True

    @dataclass(frozen=True, kw_only=True)
    class Params:
        rate: float = param(default=10.0, unit="hertz", doc="firing rate of each neuron", min=0)

    @classmethod
    def reference_step(cls, p, state, inputs, dt, rng=None):
        rng = rng if rng is not None else np.random.default_rng()
        n = len(next(iter(state.values()))) if state else int(inputs["size"])
        rate = np.asarray(inputs.get("rate", p.rate), dtype=float)
        return state, rng.random(n) < rate * dt


@register_neuron
class SpikeSource(NeuronModel):
    r"""Neurons that spike at given times.

    A spike at time :math:`t` is emitted in the step that contains it,
    :math:`k = \lfloor t/dt + 10^{-3} \rfloor` (Brian2's ``SpikeGeneratorGroup`` rule; the small
    shift absorbs floating-point error in times that are whole multiples of dt). A neuron can
    spike at most once per step.
    """

    name = "spike_source"
    is_source = True

    @dataclass(frozen=True, kw_only=True)
    class Params:
        pass

    @classmethod
    def reference_step(cls, p, state, inputs, dt, rng=None):
        n = int(inputs["size"])
        spikes = np.zeros(n, dtype=bool)
        idx = np.asarray(inputs.get("indices", []), dtype=np.int64)
        spikes[idx] = True
        return state, spikes
