r"""Graded-output neuron models: their base class and the algebraic ``linear`` unit (error units,
readouts). The coders' own graded models live with their blocks: the iP-VAE latent (``ipvae``,
:mod:`neurodeploy.library.blocks.ipvae.neuron`) and the LCA unit (``lca``,
:mod:`neurodeploy.library.blocks.lca.neuron`).

They are what the ``ipvae`` and ``lca`` blocks expand into (:mod:`neurodeploy.passes.expand`).
Their output each step is a number per neuron (a spike count, an activity, a value), delivered
to the targets of their projections as a *graded* spike: the weighted sum of the sources'
outputs is the input ``inputs["graded"]`` of :meth:`reference_step`.

Step semantics (:func:`neurodeploy.backends.reference.graded.simulate_graded` executes them; the
backends' iP-VAE and LCA lowerings reproduce them):

* a **stateful** model (``ipvae``, ``lca``) sees, at step n, the outputs its sources emitted at
  step n-1 (a one-step synaptic delay, as on Loihi 2), and emits its own output for step n;
* an **algebraic** model (``linear``) has no state: its output at step n is its input computed
  from the current outputs (so a chain stateful -> linear -> stateful adds no delay: the
  predictive-coding form runs the same iteration as the lateral one).

All reference steps are batch-agnostic: state arrays of shape ``(size,)`` or ``(batch, size)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from .base import NEURONS, NeuronModel, register_neuron


def populations_of(net, graded: bool) -> list[str]:
    """The names of ``net``'s populations whose model is (``graded``) or is not graded."""
    return [p.name for p in net.populations if p.model in NEURONS and NEURONS[p.model].graded == graded]


def graded_parts(net) -> str | None:
    """``"blocks a, b"`` or ``"graded populations x, y"`` when ``net`` has any, else None (for the
    messages of the paths that run spiking networks only)."""
    if net.blocks:
        return "blocks " + ", ".join(b.name for b in net.blocks)
    graded = populations_of(net, graded=True)
    return "graded populations " + ", ".join(graded) if graded else None


class GradedModel(NeuronModel):
    graded: ClassVar[bool] = True
    synaptic_target = "graded"
    weight_unit = "1"
    #: the state variable that holds the output (what the population emits each step)
    output_var: ClassVar[str] = ""

    @classmethod
    def initial_output(cls, params, state, rng=None) -> np.ndarray:
        """What the population emits before its first step (step 0)."""
        return np.zeros_like(next(iter(state.values())))


def per_neuron(value, default: float, shape) -> np.ndarray:
    """A per-neuron parameter: an array (already materialised), a scalar, or None (default)."""
    if value is None:
        return np.full(shape[-1], default)
    return np.broadcast_to(np.asarray(value, float), (shape[-1],))


@register_neuron
class Linear(GradedModel):
    r"""Algebraic linear unit: the output is the graded input, :math:`y = I`, in the same step.

    No state and no delay: the iP-VAE block uses it for the predictive-coding error units
    :math:`\epsilon = (x - \Phi z)/\sigma^2` and for readouts :math:`\hat x = \Phi z`.
    """

    name = "linear"
    algebraic: ClassVar[bool] = True

    @dataclass(frozen=True, kw_only=True)
    class Params:
        pass

    state = {"y": "1"}
    output_var = "y"
    equations = "y : 1"

    @classmethod
    def reference_step(cls, p, state, inputs, dt, rng=None):
        y = np.asarray(inputs.get("graded", 0.0), float) + np.zeros_like(state["y"])
        return {"y": y}, y
