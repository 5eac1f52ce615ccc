r"""Canonical trace forms (:mod:`.canonical`) of the rate rules whose training runs on torch
(:mod:`neurodeploy.learn`), for the spiking backends to lower later. Not registered in the
spec-level registry: no spec can name them yet, so no backend has to reject them.

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

import numpy as np

from .canonical import CanonicalRule, Term, Trace


def eqprop_coactivity(alpha_over_beta: float, tau_x: float, tau_y: float, dt: float) -> CanonicalRule:
    k = np.exp(dt / tau_x + dt / tau_y) - 1.0
    c = alpha_over_beta
    terms = (Term(c, ("x1", "y0", "r")), Term(c, ("x0", "y1", "r")), Term(c, ("x0", "y0", "r")),
             Term(-c * k, ("x1", "y1", "r")))
    return CanonicalRule("eqprop_coactivity", terms, x1=Trace(tau_x), y1=Trace(tau_y),
                         notes="sum over the nudged phase = (alpha/beta) delta(x1 y1)")


def hebbian(eta: float, tau_x: float, tau_y: float, decay: float = 0.0) -> CanonicalRule:
    return CanonicalRule("hebbian", (Term(eta, ("x1", "y1", "dt")),), x1=Trace(tau_x), y1=Trace(tau_y),
                         decay=decay)


def oja(eta: float, tau_x: float, tau_y: float) -> CanonicalRule:
    return CanonicalRule("oja", (Term(eta, ("x1", "y1", "dt")), Term(-eta, ("y1", "y1", "w", "dt"))),
                         x1=Trace(tau_x), y1=Trace(tau_y))


def error_third_factor(eta: float, tau_x: float, decay: float = 0.0) -> CanonicalRule:
    return CanonicalRule("error_third_factor", (Term(-eta, ("x1", "r", "dt")),), x1=Trace(tau_x), decay=decay)
