r"""Error-modulated (three-factor) plasticity: learning without weight transport in a spec.

Feedback alignment, sign symmetry and Kolen-Pollack (research note learning_rules.md section 2)
share one forward update: presynaptic rate times the postsynaptic neuron's error,
``dW_ij = -eta x_i e_j``. The rules differ only in how the error reaches neuron ``j`` (a fixed
random matrix B for FA, ``sign(W)^T`` for SS, a B learned with the same rule plus decay for KP),
which in a spec is ordinary structure: error neurons and projections. What the synapse needs is
the error as a *third factor*: here the spike trace of a **modulator** population with one neuron
per postsynaptic neuron, offset-coded (an error neuron fires at a baseline rate plus the error,
so ``e_j = trace_j - offset`` is signed), as on Loihi 2 where a neuron sends it through y2/y3
(research note loihi_lava.md section 3.6 d).

The weight mirror's mirror phase and Kolen-Pollack's backward update are covariance rules of two
offset-coded rates: ``hebbian`` with ``pre_offset`` / ``post_offset``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...core.params import param
from .base import Lowering, PlasticityRuleDef, register_rule
from .canonical import CanonicalRule, Term, Trace


@register_rule
class ThirdFactorRule(PlasticityRuleDef):
    r"""Error-modulated plasticity (feedback alignment / sign symmetry / Kolen-Pollack update).

    Every step

    .. math::  \Delta w_{ij} = -\eta\, x_i\, r_j\, dt \;-\; \lambda\, w_{ij}\, dt,
               \qquad r_j = m_j - \text{offset}

    where :math:`x_i` is the presynaptic spike trace (``tau_pre``) and :math:`m_j` the spike
    trace (impulse 1, ``tau_mod``) of neuron :math:`j` of the ``modulator`` population (one per
    postsynaptic neuron), so :math:`r_j` is a signed error around a baseline. Then :math:`w` is
    clipped to :math:`[w_{min}, w_{max}]`. Runs on the reference, Brian2, torch and Lava's
    learning engine (a ``Loihi3FLearningRule``; the target population runs as neurodeploy's
    ``NDLIF3F`` neuron, which keeps :math:`m_j` and sends it as y2), float and fixed point; one
    third-factor projection per target population.
    """

    name = "third_factor"

    @dataclass(frozen=True, kw_only=True)
    class Params:
        eta: float = param(unit="weight/second", doc="learning rate (weight unit per second per unit trace product)", min=0)
        modulator: str = param("ref", doc="population or spike source whose neuron j carries the error of postsynaptic neuron j")
        tau_pre: float = param(default=50e-3, unit="second", doc="presynaptic rate trace time constant",
                               min=0, min_exclusive=True)
        tau_mod: float = param(default=50e-3, unit="second", doc="modulator trace time constant",
                               min=0, min_exclusive=True)
        offset: float = param(default=0.0, doc="modulator trace at zero error (offset coding)")
        decay: float = param(default=0.0, unit="hertz", doc="weight decay rate lambda (Kolen-Pollack)", min=0)
        w_min: float = param(default=0.0, unit="weight", doc="lower weight bound")
        w_max: float = param(unit="weight", doc="upper weight bound")

    @classmethod
    def lower(cls, p, dt: float):
        rule = CanonicalRule("third_factor", (Term(-p.eta, ("x1", "r", "dt")),), x1=Trace(p.tau_pre),
                             decay=p.decay, w_min=p.w_min, w_max=p.w_max)
        return Lowering("canonical", canonical=rule,
                        modulator={"source": p.modulator, "tau": p.tau_mod, "offset": p.offset})
