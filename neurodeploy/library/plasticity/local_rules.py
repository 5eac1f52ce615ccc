r"""Canonical trace forms (:mod:`.canonical`) of the rate rules whose training runs on torch
(:mod:`neurodeploy.learn`). ``hebbian`` and ``oja`` are spec rules (:class:`HebbianRule`,
:class:`OjaRule`) that every spiking backend lowers generically; the others are building blocks
of the torch experiments (their third factor ``r`` has no spec-level source yet).

* :func:`eqprop_coactivity`: EqProp's update is the change of co-activity ``rho_i rho_j`` between
  the two ends of the nudged phase (learning_rules.md section 3.3, "STDP link"). With traces
  ``x1`` (pre) and ``y1`` (post) as the rates, the per-step change of ``x1 y1`` is the sum of
  products ``x1 y0 + x0 y1 + x0 y0 - (e^{dt/tau_x + dt/tau_y} - 1) x1 y1`` (traces as seen in the
  step, before its impulses), so the summed ``dw`` over any window equals ``(alpha/beta) [x1 y1]``
  at its end minus at its start -- exactly, in discrete time. Enable it only during the nudged
  phase (third factor ``r`` = 1 there and 0 otherwise: the terms carry ``r``).
* :func:`hebbian`: ``dw = eta x1 y1 dt`` (rates as traces), optional decay.
* :func:`oja`: ``dw = eta (x1 y1 - y1 y1 w) dt``.
* :func:`error_third_factor`: the FA / SS / KP / WM forward update ``dw = -eta x1 r dt``, with the
  error ``r`` (the postsynaptic delta, computed by whichever feedback path) delivered to the
  synapse as a signed third factor; KP's backward synapse uses the same form with pre/post
  swapped (its presynaptic side is the delta, its postsynaptic side the forward activity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.params import param
from .base import Lowering, PlasticityRuleDef, register_rule
from .canonical import CanonicalRule, Term, Trace


def eqprop_coactivity(alpha_over_beta: float, tau_x: float, tau_y: float, dt: float) -> CanonicalRule:
    k = np.exp(dt / tau_x + dt / tau_y) - 1.0
    c = alpha_over_beta
    terms = (Term(c, ("x1", "y0", "r")), Term(c, ("x0", "y1", "r")), Term(c, ("x0", "y0", "r")),
             Term(-c * k, ("x1", "y1", "r")))
    return CanonicalRule("eqprop_coactivity", terms, x1=Trace(tau_x), y1=Trace(tau_y),
                         notes="sum over the nudged phase = (alpha/beta) delta(x1 y1)")


def hebbian(eta: float, tau_x: float, tau_y: float, decay: float = 0.0,
            w_min: float = -np.inf, w_max: float = np.inf, pre_offset: float = 0.0,
            post_offset: float = 0.0) -> CanonicalRule:
    """``dw = eta (x1 - a)(y1 - b) dt - decay w dt``, expanded into products (zero terms dropped)."""
    a, b = pre_offset, post_offset
    terms = [Term(eta, ("x1", "y1", "dt"))]
    if b:
        terms.append(Term(-eta * b, ("x1", "dt")))
    if a:
        terms.append(Term(-eta * a, ("y1", "dt")))
    if a and b:
        terms.append(Term(eta * a * b, ("dt",)))
    return CanonicalRule("hebbian", tuple(terms), x1=Trace(tau_x), y1=Trace(tau_y),
                         decay=decay, w_min=w_min, w_max=w_max)


def oja(eta: float, tau_x: float, tau_y: float, w_ref: float = 1.0,
        w_min: float = -np.inf, w_max: float = np.inf) -> CanonicalRule:
    return CanonicalRule("oja", (Term(eta * w_ref, ("x1", "y1", "dt")), Term(-eta, ("y1", "y1", "w", "dt"))),
                         x1=Trace(tau_x), y1=Trace(tau_y), w_min=w_min, w_max=w_max)


_TAU = dict(unit="second", min=0, min_exclusive=True)


@register_rule
class HebbianRule(PlasticityRuleDef):
    r"""Rate-based Hebbian learning with spike traces as rate estimators.

    Traces jump by 1 at each spike and decay with ``tau_pre`` / ``tau_post``, so at a steady rate
    :math:`r` a trace hovers around :math:`r\tau`. Every step

    .. math::  \Delta w = \eta\, (x_{pre} - a)\, (y_{post} - b)\, dt \;-\; \lambda\, w\, dt

    then :math:`w` is clipped to :math:`[w_{min}, w_{max}]`. The offsets :math:`a, b`
    (``pre_offset``, ``post_offset``, default 0) make it a covariance rule of offset-coded signed
    rates: the weight mirror's mirror phase (both offset) and Kolen-Pollack's backward update
    (error neurons presynaptic, ``pre_offset``) in a spec. Event semantics: this step's spikes
    are in the traces before the product is taken (see :mod:`neurodeploy.library.plasticity.canonical`).
    """

    name = "hebbian"

    @dataclass(frozen=True, kw_only=True)
    class Params:
        eta: float = param(unit="weight/second", doc="learning rate (weight unit per second per unit trace product)", min=0)
        tau_pre: float = param(default=50e-3, doc="presynaptic rate trace time constant", **_TAU)
        tau_post: float = param(default=50e-3, doc="postsynaptic rate trace time constant", **_TAU)
        decay: float = param(default=0.0, unit="hertz", doc="weight decay rate lambda", min=0)
        pre_offset: float = param(default=0.0, doc="presynaptic trace at zero signed rate (offset coding)")
        post_offset: float = param(default=0.0, doc="postsynaptic trace at zero signed rate (offset coding)")
        w_min: float = param(default=0.0, unit="weight", doc="lower weight bound")
        w_max: float = param(unit="weight", doc="upper weight bound")

    @classmethod
    def lower(cls, p, dt: float):
        return Lowering("canonical", canonical=hebbian(p.eta, p.tau_pre, p.tau_post, p.decay, p.w_min, p.w_max,
                                                       p.pre_offset, p.post_offset))


@register_rule
class OjaRule(PlasticityRuleDef):
    r"""Oja's rule with spike-trace rates: Hebbian growth normalised by the postsynaptic rate.

    .. math::  \Delta w = \eta\, y_{post} \left(w_{ref}\, x_{pre} - y_{post}\, w\right) dt

    with traces :math:`x, y` as in ``hebbian``. A lone input at a steady rate converges to
    :math:`w = w_{ref}\, x / y`; a population of inputs to the principal direction of the input
    correlations (normalised). Then :math:`w` is clipped to :math:`[w_{min}, w_{max}]`.
    """

    name = "oja"

    @dataclass(frozen=True, kw_only=True)
    class Params:
        eta: float = param(unit="hertz", doc="learning rate per unit trace product", min=0)
        w_ref: float = param(unit="weight", doc="weight scale of the Hebbian term", min=0)
        tau_pre: float = param(default=50e-3, doc="presynaptic rate trace time constant", **_TAU)
        tau_post: float = param(default=50e-3, doc="postsynaptic rate trace time constant", **_TAU)
        w_min: float = param(default=0.0, unit="weight", doc="lower weight bound")
        w_max: float = param(unit="weight", doc="upper weight bound")

    @classmethod
    def lower(cls, p, dt: float):
        return Lowering("canonical", canonical=oja(p.eta, p.tau_pre, p.tau_post, p.w_ref, p.w_min, p.w_max))


def error_third_factor(eta: float, tau_x: float, decay: float = 0.0) -> CanonicalRule:
    return CanonicalRule("error_third_factor", (Term(-eta, ("x1", "r", "dt")),), x1=Trace(tau_x), decay=decay)
