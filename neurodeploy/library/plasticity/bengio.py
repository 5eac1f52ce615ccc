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
which is how every backend runs the spec rule ``bengio_stdp`` (:class:`BengioRule`): through its
pair-STDP path, so Lava's fixed-point learning engine runs it too. Equal in continuous time for
any spike trains (both are bilinear with the same kernel); the discrete-time forms differ only by
the coincident-pair convention (see :mod:`.stdp`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.params import param
from .base import Lowering, PlasticityRuleDef, register_rule
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


@register_rule
class BengioRule(PlasticityRuleDef):
    r"""Bengio et al. 2015's STDP-as-gradient rule in its spiking trace form.

    The rule is :math:`\Delta W \propto \rho(pre)\, \dot{s}_{post}`: presynaptic rate times the
    rate of change of the postsynaptic potential.

    The presynaptic rate is a trace with time constant ``tau_pre``, the postsynaptic "membrane
    potential" a trace of the post spikes with time constant ``tau_s``; ``dw = eta * x_pre *
    ds_post``. For a pair at :math:`\Delta = t_{post} - t_{pre}` the change is
    :math:`\eta\,\tau_s/(\tau_{pre}+\tau_s)\,e^{-\Delta/\tau_{pre}}` for :math:`\Delta > 0`
    and :math:`-\eta\,\tau_{pre}/(\tau_{pre}+\tau_s)\,e^{\Delta/\tau_s}` for
    :math:`\Delta < 0`: a window whose integral is zero (only changes of the post rate are
    learned). Every backend runs it as the pair-STDP rule with that window (exactly equal for
    all-to-all pairing), so it runs wherever ``stdp`` runs, Lava fixed point included.
    """

    name = "bengio_stdp"

    @dataclass(frozen=True, kw_only=True)
    class Params:
        eta: float = param(unit="weight", doc="learning rate: dw = eta x_pre ds_post (weight unit)", min=0)
        tau_pre: float = param(default=20e-3, unit="second", doc="presynaptic rate trace time constant",
                               min=0, min_exclusive=True)
        tau_s: float = param(default=20e-3, unit="second", doc="postsynaptic activity trace time constant",
                             min=0, min_exclusive=True)
        w_min: float = param(default=0.0, unit="weight", doc="lower weight bound")
        w_max: float = param(unit="weight", doc="upper weight bound")

    @classmethod
    def lower(cls, p, dt: float):
        q = BengioSTDPParams(eta=p.eta, tau_pre=p.tau_pre, tau_s=p.tau_s)
        return Lowering("stdp", stdp=dict(BengioSTDP.as_pair_stdp(q, p.w_min, p.w_max), multiplicative=False))
