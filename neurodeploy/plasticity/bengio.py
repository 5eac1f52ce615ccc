r"""Bengio et al. 2015's rule, ``dW_ij = eta rho(s_j) ds_i/dt``, in its spiking trace form.

Research note learning_rules.md section 1.4. The presynaptic rate is replaced by a trace ``x1``
(time constant ``tau_pre``) and the "integrated postsynaptic activity" is a trace ``y1`` of the
post spikes (``tau_s``), so ``ds/dt = y0 - y1 / tau_s`` and, in the canonical form,

    dw = eta * x1 * y0  -  (eta / tau_s) * x1 * y1 * dt

(discrete time: the decay term per step is ``(1 - exp(-dt/tau_s)) x1 y1``). The rule is bilinear
in the two spike trains, so it is a pair window (Xie & Seung 2000):

    W(D) = +eta tau_s/(tau_pre + tau_s) exp(-D/tau_pre)   for D = t_post - t_pre > 0
    W(D) = -eta tau_pre/(tau_pre + tau_s) exp(+D/tau_s)    for D < 0

whose integral over D is zero (a constant post rate gives no drift: only rate *changes* are
learned). That window is exactly pair STDP with ``a_plus = eta tau_s/(tau_pre+tau_s)``,
``a_minus = eta tau_pre/(tau_pre+tau_s)``, ``tau_post = tau_s`` (:meth:`BengioSTDP.as_pair_stdp`),
which is how it runs on Brian2 and Lava today (spec rule ``stdp``). This class is not registered
in the spec-level registry (no spec key ``bengio``): use those ``stdp`` parameters in a spec.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .canonical import CanonicalRule, Term, Trace


@dataclass(frozen=True)
class BengioSTDPParams:
    eta: float
    tau_pre: float = 20e-3
    tau_s: float = 20e-3

    def __post_init__(self):
        if not (self.tau_pre > 0 and self.tau_s > 0):
            raise ValueError(f"tau_pre and tau_s must be > 0, got {self.tau_pre}, {self.tau_s}")


class BengioSTDP:
    name = "bengio_stdp"
    Params = BengioSTDPParams

    @staticmethod
    def canonical(p: BengioSTDPParams, dt: float) -> CanonicalRule:
        """Exact discrete form of ``dw = eta x_pre (s(t+dt) - s(t))`` with ``s`` the post trace:
        ``s(t+dt) - s(t) = y0 - (e^{dt/tau_s} - 1) y1`` (``y1`` as seen in the step, see below)."""
        # traces decay first in each step, so the y1 a step sees is s_prev e^{-dt/tau}; the
        # decrement of s over the step is s_prev (1 - e^{-dt/tau}) = y1 (e^{dt/tau} - 1)
        k = np.exp(dt / p.tau_s) - 1.0
        terms = (Term(p.eta, ("x1", "y0")), Term(-p.eta * k, ("x1", "y1")))
        return CanonicalRule("bengio_stdp", terms, x1=Trace(p.tau_pre), y1=Trace(p.tau_s),
                             notes="dw = eta x_pre ds_post")

    @staticmethod
    def window(p: BengioSTDPParams, delta_t):
        d = np.asarray(delta_t, dtype=float)
        s = p.tau_pre + p.tau_s
        return np.where(d > 0, p.eta * p.tau_s / s * np.exp(-d / p.tau_pre),
                        np.where(d < 0, -p.eta * p.tau_pre / s * np.exp(d / p.tau_s), 0.0))

    @staticmethod
    def as_pair_stdp(p: BengioSTDPParams, w_min: float, w_max: float) -> dict:
        """Parameters of the spec rule ``stdp`` with the same window (amplitudes in weight units)."""
        s = p.tau_pre + p.tau_s
        return {"tau_pre": p.tau_pre, "tau_post": p.tau_s, "a_plus": p.eta * p.tau_s / s,
                "a_minus": p.eta * p.tau_pre / s, "w_min": w_min, "w_max": w_max}
