r"""Equilibrium propagation's weight update as a spiking rule (spec rule ``eqprop``).

EqProp (research note learning_rules.md section 3) updates a weight by the change of the
co-activity :math:`\rho_i \rho_j` between the two ends of the nudged phase:
:math:`\Delta W_{ij} = \frac{\alpha}{\beta}\,[\rho_i\rho_j]^{\beta} - [\rho_i\rho_j]^{0}`. In a
spiking network the rates are spike traces and the phases are times: the free phase runs until
``nudge_start``, the nudged phase (the output clamped towards its target, which in a spec is
ordinary structure: a teaching input switched on at ``nudge_start``) until ``nudge_end``. With the
traces ``x`` (pre) and ``y`` (post) as the rule sees them after each step's impulses, the per-step
change of their product is the canonical sum of products

    d(x y) = (1 - g) x y + g (x0 y + x y0 - x0 y0),     g = exp(dt/tau_pre + dt/tau_post)

(exact in discrete time), and a phase gate ``r`` (1 inside the nudged phase) makes the summed
update telescope to exactly ``eta ([x y](nudge_end) - [x y](nudge_start))``. The torch
experiments (``neurodeploy.learn.eqprop``, rate form, symmetric nudging included) are the
training workhorse; this rule is the same update on spiking backends.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.params import param
from .base import Lowering, PlasticityRuleDef, register_rule
from .canonical import CanonicalRule, Term, Trace


def coactivity_change(eta: float, tau_x: float, tau_y: float, dt: float, w_min=-np.inf, w_max=np.inf) -> CanonicalRule:
    """``dw = eta * r * d(x1 y1)`` in the event semantics (impulses first), see the module doc."""
    g = float(np.exp(dt / tau_x + dt / tau_y))
    terms = (Term(eta * (1.0 - g), ("x1", "y1", "r")), Term(eta * g, ("x0", "y1", "r")),
             Term(eta * g, ("x1", "y0", "r")), Term(-eta * g, ("x0", "y0", "r")))
    return CanonicalRule("eqprop", terms, x1=Trace(tau_x), y1=Trace(tau_y), w_min=w_min, w_max=w_max,
                         notes="sum over the gate window = eta * change of x1*y1")


@register_rule
class EqPropRule(PlasticityRuleDef):
    r"""Equilibrium propagation: the change of pre/post co-activity over the nudged phase.

    .. math::  \Delta w = \eta\,\bigl([x\,y](t_{end}) - [x\,y](t_{start})\bigr)

    with :math:`x, y` the pre- and postsynaptic spike traces (impulse 1, ``tau_pre`` /
    ``tau_post``) read after the step at each time, :math:`t_{start}` = ``nudge_start`` (end of the
    free phase) and :math:`t_{end}` = ``nudge_end``; :math:`\eta = \alpha/\beta`. Applied step by
    step inside the window (exactly telescoping), clipped to :math:`[w_{min}, w_{max}]`. Runs on
    the reference, Brian2 and torch; Lava's learning engine has no phase gate (it would need a
    third factor or rewriting ``dw`` at the phase boundaries), so Lava targets place it on the
    fallback.
    """

    name = "eqprop"

    @dataclass(frozen=True, kw_only=True)
    class Params:
        eta: float = param(unit="weight", doc="alpha / beta: weight change per unit change of trace co-activity", min=0)
        nudge_start: float = param(unit="second", doc="end of the free phase, start of the nudged phase", min=0)
        nudge_end: float = param(unit="second", doc="end of the nudged phase", min=0)
        tau_pre: float = param(default=20e-3, unit="second", doc="presynaptic rate trace time constant",
                               min=0, min_exclusive=True)
        tau_post: float = param(default=20e-3, unit="second", doc="postsynaptic rate trace time constant",
                                min=0, min_exclusive=True)
        w_min: float = param(default=0.0, unit="weight", doc="lower weight bound")
        w_max: float = param(unit="weight", doc="upper weight bound")

    @classmethod
    def lower(cls, p, dt: float):
        rule = coactivity_change(p.eta, p.tau_pre, p.tau_post, dt, p.w_min, p.w_max)
        return Lowering("canonical", canonical=rule,
                        gate=(int(round(p.nudge_start / dt)), int(round(p.nudge_end / dt))))

    @classmethod
    def problems(cls, p, duration: float):
        out = []
        if not p.nudge_end > p.nudge_start:
            out.append(("nudge_end", "nudge_end must be after nudge_start"))
        if p.nudge_end > duration + 1e-12:
            out.append(("nudge_end", f"nudge_end is after the end of the run ({duration:g} s)"))
        return out
