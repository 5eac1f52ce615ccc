r"""Canonical trace form of a local plasticity rule, and its numpy reference simulation.

Every spiking rule neurodeploy knows lowers to this one form (the shape of Loihi 2's learning
engine, research note loihi_lava.md section 3, and of Brian2's trace-STDP ``Synapses``):

* presynaptic traces ``x1, x2`` and postsynaptic traces ``y1, y2``; each decays exponentially
  with its own ``tau`` and jumps by its ``impulse`` at a spike of its neuron;
* spikes ``x0`` (pre) and ``y0`` (post): 1 in the step a spike occurs, else 0;
* the weight change per step is a **sum of products**: ``dw = sum_k c_k * prod(factors_k)``, the
  factors taken from ``x0 y0 x1 x2 y1 y2 w r`` (``w`` the weight itself, ``r`` a signed third
  factor such as a reward or an error delivered to the synapse, default 0) and the pseudo factor
  ``dt`` for terms that act every step in proportion to time (continuous terms);
* then a weight decay ``w -= decay * dt * w`` and hard bounds ``[w_min, w_max]``.

Two step semantics, chosen by ``impulses_first``:

* ``False`` (the analytic convention, used by :meth:`CanonicalRule.simulate` by default and
  matched by :meth:`PairSTDP.window`): in each step the traces first decay, the products are
  evaluated with the traces *before* this step's impulses, then the impulses are added. A
  coincident pre/post pair therefore gives no change, and a post spike ``Delta`` after a pre
  spike sees ``x1 = impulse * exp(-Delta / tau)``.
* ``True`` (the **event semantics of the spiking backends** for every rule that is not pair
  STDP, :class:`SynapseState`): in each step the traces decay, this step's impulses are added,
  then every product is evaluated (``x0`` terms at synapses whose pre spike arrived this step,
  ``y0`` terms where the post neuron spiked, ``dt`` terms everywhere). This is what Lava's
  learning engine does with ``t_epoch = 1`` (traces read at a spike or at the epoch end include
  that step's impulse, research note loihi_lava.md section 3.3), and what the Brian2 lowering
  reproduces by ordering its trace pathways before its learning pathways.
  Spikes are delivered with the weight *before* the step's change in both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

FACTORS = ("x0", "y0", "x1", "x2", "y1", "y2", "w", "r", "dt")


@dataclass(frozen=True)
class Trace:
    tau: float            # seconds, > 0
    impulse: float = 1.0


@dataclass(frozen=True)
class Term:
    coeff: float
    factors: tuple[str, ...]

    def __post_init__(self):
        bad = [f for f in self.factors if f not in FACTORS]
        if bad:
            raise ValueError(f"unknown factor(s) {bad}; allowed: {', '.join(FACTORS)}")


@dataclass(frozen=True)
class CanonicalRule:
    name: str
    terms: tuple[Term, ...]
    x1: Trace | None = None
    x2: Trace | None = None
    y1: Trace | None = None
    y2: Trace | None = None
    w_min: float = -np.inf
    w_max: float = np.inf
    decay: float = 0.0     # 1/s
    notes: str = field(default="", compare=False)

    def uses(self, factor: str) -> bool:
        return any(factor in t.factors for t in self.terms)

    def dw_string(self) -> str:
        """The rule as a ``dw = ...`` sum-of-products string in the style of Lava's
        ``Loihi2FLearningRule`` (for reading and reports; not checked against Lava's parser, and
        continuous ``dt`` terms need Lava's per-time-step dependency when lowered)."""
        parts = []
        for t in self.terms:
            parts.append(f"{t.coeff:+.6g} * " + " * ".join(t.factors))
        return "dw = " + " ".join(parts) if parts else "dw = 0"

    def traces(self):
        """The traces this rule uses: ``{name: Trace}``."""
        return {k: t for k, t in (("x1", self.x1), ("x2", self.x2), ("y1", self.y1), ("y2", self.y2))
                if t is not None}

    def check(self) -> None:
        """Every trace factor must have its trace (ValueError otherwise)."""
        have = self.traces()
        for t in self.terms:
            for f in t.factors:
                if f in ("x1", "x2", "y1", "y2") and f not in have:
                    raise ValueError(f"rule {self.name!r}: term uses {f} but the rule defines no {f} trace")

    def simulate(self, pre_steps, post_steps, n_steps: int, dt: float, w0: float = 0.0, r=None,
                 impulses_first: bool = False):
        """Clock-driven reference simulation of one synapse. ``pre_steps``/``post_steps``: step
        indices of the spikes. Returns the weight after every step (length ``n_steps``)."""
        pre = np.zeros(n_steps, bool)
        post = np.zeros(n_steps, bool)
        pre[np.asarray(pre_steps, dtype=int)] = True
        post[np.asarray(post_steps, dtype=int)] = True
        rr = np.zeros(n_steps) if r is None else np.broadcast_to(np.asarray(r, float), (n_steps,))
        traces = {k: 0.0 for k in ("x1", "x2", "y1", "y2")}
        spec = {"x1": self.x1, "x2": self.x2, "y1": self.y1, "y2": self.y2}
        decay = {k: (np.exp(-dt / t.tau) if t is not None else 0.0) for k, t in spec.items()}
        w = float(w0)
        out = np.empty(n_steps)
        for n in range(n_steps):
            for k in traces:
                traces[k] *= decay[k]
            if impulses_first:
                for k, s in (("x1", pre[n]), ("x2", pre[n]), ("y1", post[n]), ("y2", post[n])):
                    if s and spec[k] is not None:
                        traces[k] += spec[k].impulse
            env = dict(traces, x0=float(pre[n]), y0=float(post[n]), w=w, r=float(rr[n]), dt=dt)
            dw = 0.0
            for t in self.terms:
                p = t.coeff
                for f in t.factors:
                    p *= env[f]
                dw += p
            w = w + dw - self.decay * dt * w
            w = min(max(w, self.w_min), self.w_max)
            if not impulses_first:
                for k, s in (("x1", pre[n]), ("x2", pre[n]), ("y1", post[n]), ("y2", post[n])):
                    if s and spec[k] is not None:
                        traces[k] += spec[k].impulse
            out[n] = w
        return out

    def pair_dw(self, delta_t: float, dt: float, tail: float | None = None, w0: float = 0.0) -> float:
        """Weight change from one isolated pre/post pair at ``delta_t = t_post - t_pre`` (s),
        simulated long enough for every trace to vanish (``tail``, default 12 x the longest tau)."""
        taus = [t.tau for t in (self.x1, self.x2, self.y1, self.y2) if t is not None]
        tail = tail if tail is not None else 12 * max(taus)
        lead = int(round(abs(delta_t) / dt))
        t0 = 2
        pre_step = t0 + (lead if delta_t < 0 else 0)
        post_step = t0 + (lead if delta_t > 0 else 0)
        n = max(pre_step, post_step) + int(round(tail / dt)) + 1
        return float(self.simulate([pre_step], [post_step], n, dt, w0)[-1] - w0)


class SynapseState:
    """A canonical rule on many synapses at once, in the event semantics (``impulses_first``).

    ``xp`` is numpy or torch; arrays have shape ``(..., n_syn)`` (torch: a leading trial axis).
    Per step call :meth:`step` with boolean masks of the synapses whose pre spike arrived and
    whose post neuron spiked; it decays the traces, adds the impulses, applies the summed products,
    the weight decay and the bounds. Traces are kept per synapse, as the reference's and the
    torch backend's pair STDP keep theirs (this allows per-synapse delays)."""

    def __init__(self, rule: CanonicalRule, w, dt: float, xp=np):
        rule.check()
        self.rule, self.dt, self.xp = rule, float(dt), xp
        self.w = w
        self.spec = rule.traces()
        self.tr = {k: xp.zeros_like(w) for k in self.spec}
        self.decay = {k: float(np.exp(-dt / t.tau)) for k, t in self.spec.items()}

    def step(self, pre, post, r=None):
        xp = self.xp
        # spikes as numbers of the weights' dtype (torch: bool * float would round to float32)
        pre, post = (pre.astype(self.w.dtype), post.astype(self.w.dtype)) if xp is np else \
            (pre.to(self.w.dtype), post.to(self.w.dtype))
        for k, t in self.spec.items():
            self.tr[k] = self.tr[k] * self.decay[k] + (pre if k[0] == "x" else post) * t.impulse
        env = dict(self.tr, x0=pre, y0=post, w=self.w, r=r, dt=self.dt)
        dw = None
        for t in self.rule.terms:
            p = t.coeff
            for f in t.factors:
                v = env[f]
                if v is None:
                    raise ValueError(f"rule {self.rule.name!r} needs a third factor r")
                p = p * v
            dw = p if dw is None else dw + p
        w = self.w if dw is None else self.w + dw
        if self.rule.decay:
            w = w - self.rule.decay * self.dt * self.w
        lo, hi = self.rule.w_min, self.rule.w_max
        if xp is np:
            self.w = np.clip(w, lo, hi)
        else:
            self.w = w.clamp(min=None if not np.isfinite(lo) else lo, max=None if not np.isfinite(hi) else hi)
        return self.w
