"""Pair-based STDP in trace form."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...core.params import param
from ...ir.nodes import (
    Network,
    PlasticityRule,
    Population,
    Probe,
    Projection,
    Simulation,
    SpikeTimesStimulus,
    Weights,
)
from .base import Lowering, PlasticityRuleDef, register_rule
from .canonical import CanonicalRule, Term, Trace


@register_rule
class PairSTDP(PlasticityRuleDef):
    r"""Pair-based spike-timing-dependent plasticity (all-to-all pairing, trace form).

    Traces jump by 1 at each spike and decay exponentially:

    .. math::

        \frac{dx_{pre}}{dt} = -\frac{x_{pre}}{\tau_{pre}} \qquad
        \frac{dx_{post}}{dt} = -\frac{x_{post}}{\tau_{post}}

    On a presynaptic spike :math:`w \leftarrow w - A_- x_{post}`; on a postsynaptic spike
    :math:`w \leftarrow w + A_+ x_{pre}` (additive), then :math:`w` is clipped to
    :math:`[w_{min}, w_{max}]`. With ``multiplicative: true`` the updates are scaled by
    :math:`(w_{max} - w)` and :math:`(w - w_{min})` respectively.

    For an isolated pair with :math:`\Delta t = t_{post} - t_{pre}` the change is
    :math:`A_+ e^{-\Delta t/\tau_{pre}}` for :math:`\Delta t > 0` and
    :math:`-A_- e^{\Delta t/\tau_{post}}` for :math:`\Delta t < 0` (see :func:`window`).
    """

    name = "stdp"

    @dataclass(frozen=True, kw_only=True)
    class Params:
        tau_pre: float = param(default=20e-3, unit="second", doc="presynaptic trace time constant", min=0, min_exclusive=True)
        tau_post: float = param(default=20e-3, unit="second", doc="postsynaptic trace time constant", min=0, min_exclusive=True)
        a_plus: float = param(unit="weight", doc="potentiation amplitude (weight unit)", min=0)
        a_minus: float = param(unit="weight", doc="depression amplitude (weight unit)", min=0)
        w_min: float = param(default=0.0, unit="weight", doc="lower weight bound")
        w_max: float = param(unit="weight", doc="upper weight bound")
        multiplicative: bool = param("bool", default=False, doc="soft bounds (weight-dependent updates)")

    @staticmethod
    def window(p, delta_t):
        """Analytic weight change for one isolated pre/post pair at ``delta_t = t_post - t_pre``."""
        delta_t = np.asarray(delta_t, dtype=float)
        return np.where(delta_t > 0, p.a_plus * np.exp(-delta_t / p.tau_pre),
                        np.where(delta_t < 0, -p.a_minus * np.exp(delta_t / p.tau_post), 0.0))

    @classmethod
    def lower(cls, p, dt: float):
        return Lowering("stdp", stdp={"tau_pre": p.tau_pre, "tau_post": p.tau_post, "a_plus": p.a_plus,
                                      "a_minus": p.a_minus, "w_min": p.w_min, "w_max": p.w_max,
                                      "multiplicative": p.multiplicative})

    @staticmethod
    def canonical(p):
        """This rule in the canonical trace form (:mod:`.canonical`): ``dw = A+ y0 x1 - A- x0 y1``
        (additive), or with soft bounds ``A+ y0 x1 (w_max - w) - A- x0 y1 (w - w_min)`` expanded
        into a sum of products, then clipped to ``[w_min, w_max]``."""
        if p.multiplicative:
            terms = (Term(p.a_plus * p.w_max, ("y0", "x1")), Term(-p.a_plus, ("y0", "x1", "w")),
                     Term(-p.a_minus, ("x0", "y1", "w")), Term(p.a_minus * p.w_min, ("x0", "y1")))
        else:
            terms = (Term(p.a_plus, ("y0", "x1")), Term(-p.a_minus, ("x0", "y1")))
        return CanonicalRule("stdp", terms, x1=Trace(p.tau_pre), y1=Trace(p.tau_post),
                             w_min=p.w_min, w_max=p.w_max)


def stdp_window_net(params, delta_t, dt=1e-4, steps=3000):
    """One pre spike train and one post neuron forced to fire by a strong driver; the plastic
    synapse is too weak to matter (the STDP window experiment's and the Brian2 backend tests'
    protocol). ``delta_t = t_post - t_pre`` (s); the post neuron fires one step after its drive
    arrives. The network is built in code, not verified here (the backends verify what they run)."""
    t_post_drive = 0.1
    t_pre = t_post_drive + dt - delta_t
    return Network(
        name="stdp_pair", simulation=Simulation(dt, steps, seed=0),
        populations=(Population("post", 1, "lif", {"t_ref": 2e-3}),),
        stimuli=(SpikeTimesStimulus("pre", 1, (0,), (t_pre,)),
                 SpikeTimesStimulus("driver", 1, (0,), (t_post_drive,))),
        projections=(
            Projection("plastic", "pre", "post", Weights("constant", {"value": 0.1e-3}, unit="volt"),
                       plasticity=PlasticityRule("stdp", params)),
            Projection("drive", "driver", "post", Weights("constant", {"value": 30e-3}, unit="volt")),
        ),
        probes=(Probe("w", "plastic", "weights"), Probe("post", "post", "spikes"), Probe("pre", "pre", "spikes")),
    )
