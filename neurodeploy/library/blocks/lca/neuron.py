"""The ``lca`` neuron model: the unit population the ``lca`` block expands into."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ....core.params import param
from ...neurons.base import register_neuron
from ...neurons.graded import GradedModel


@register_neuron
class LCAUnit(GradedModel):
    r"""Rozell's locally competitive algorithm unit with a non-negative soft threshold.

    Potential :math:`v` (starts at 0), activity :math:`a = \max(v - \lambda, 0)` (the output).
    Each step, from the graded input :math:`I` (e.g. :math:`\Phi^\top x - \Phi^\top\Phi a`):

    .. math::

        v \leftarrow v + \frac{dt}{\tau}\,(I - v + a)

    The :math:`+a` term is the unit's own excitation, so that a lateral projection of
    :math:`-\Phi^\top\Phi` (self-connection kept) gives Rozell's inhibition
    :math:`-(\Phi^\top\Phi - I)\,a`. This is :func:`neurodeploy.library.blocks.lca.reference.lca_step` for one unit.
    """

    name = "lca"

    @dataclass(frozen=True, kw_only=True)
    class Params:
        lam: float = param(default=0.2, doc="soft threshold lambda", min=0)
        dt_tau: float = param(default=0.1, doc="Euler step dt/tau", min=0, min_exclusive=True, max=1)
        restart_every: int = param("int", default=0, doc="restart from v = 0 every N steps (0: never)", min=0)

    state = {"v": "1", "a": "1"}
    output_var = "a"
    equations = "v : 1\na : 1"

    @classmethod
    def reference_step(cls, p, state, inputs, dt, rng=None):
        v = np.asarray(state["v"], float)
        a = np.maximum(v - p.lam, 0.0)
        v_new = v + p.dt_tau * (np.asarray(inputs.get("graded", 0.0), float) - v + a)
        a_new = np.maximum(v_new - p.lam, 0.0)
        return {"v": v_new, "a": a_new}, a_new
