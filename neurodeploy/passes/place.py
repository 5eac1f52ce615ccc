"""Placement pass: put every node of a network onto the target, or onto its fallback.

For a target with a ``fallback`` (``targets/<name>.yaml``; the Lava targets name ``torch``), each
node (population, stimulus, projection, plasticity rule) is checked with the target backend's
``unsupported(net) -> {node: reason}``, handed to :func:`place` by the caller (the pass sees no
backend; for Lava: what the Loihi form cannot express, fixed-point learning constants out of
range, populations larger than the whole chip). What is not supported
goes to the fallback, with the reason; then placement is closed under the rules that keep every
computation in one place:

* a population is placed with what drives its state: a population fed by a current stimulus or
  a projection placed on the fallback goes to the fallback too ("pulled");
* a projection runs where its target population runs (its synaptic state and input live there),
  and so does every current stimulus into a population;
* a spike source runs on the fallback if every projection it feeds does, else on the target.

A projection whose source and target run in different places is an **exchange point**: spikes
cross between Lava and torch there, every step (:mod:`neurodeploy.backends.hybrid`).

A target without a fallback (``fallback: null``), or ``--no-fallback`` on the command line,
turns every fallback placement into a :class:`~neurodeploy.core.errors.CompileError` naming the node
and the reason. Nodes that neither side can run (the fallback's own ``unsupported``; blocks,
which are expanded first) raise :class:`~neurodeploy.core.errors.NotImplementedYet`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..core.errors import CompileError, NotImplementedYet
from ..core.targets import Target
from ..ir.nodes import ArrayStimulus, CurrentStimulus, Network, SpikeTimesStimulus
from ..library.endpoints import endpoints
from ..library.plasticity import RULES
from .base import Compilation, PassReport, Unsupported
from .estimate import check_compile, check_neurons, estimate

TARGET, FALLBACK = "target", "fallback"


@dataclass
class NodePlacement:
    node: str
    kind: str  # population | stimulus | projection | plasticity
    where: str  # target | fallback
    reason: str = ""
    exchange: str = ""  # projections: "fallback -> target" / "target -> fallback" when they cross


@dataclass
class Placement:
    target: str
    fallback: str | None
    nodes: list[NodePlacement] = field(default_factory=list)

    def where(self, node: str) -> str:
        return next(n.where for n in self.nodes if n.node == node and n.kind != "plasticity")

    @property
    def on_fallback(self) -> set[str]:
        return {n.node for n in self.nodes if n.where == FALLBACK and n.kind != "plasticity"}

    @property
    def exchanges(self) -> list[NodePlacement]:
        return [n for n in self.nodes if n.exchange]

    @property
    def hybrid(self) -> bool:
        return bool(self.on_fallback) and any(n.where == TARGET for n in self.nodes if n.kind == "population")

    def to_json(self) -> dict:
        return {"target": self.target, "fallback": self.fallback,
                "on_fallback": sorted(self.on_fallback),
                "exchange_points": [n.node for n in self.exchanges],
                "nodes": [dataclasses.asdict(n) for n in self.nodes]}

    def table(self) -> str:
        fb = self.fallback or "none"
        rows = [(n.kind, n.node, self.target if n.where == TARGET else fb,
                 (f"[exchange {n.exchange}] " if n.exchange else "") + (n.reason or "supported"))
                for n in self.nodes]
        w = [max([len(r[i]) for r in rows] + [len(h)]) for i, h in enumerate(("kind", "node", "runs on"))]
        lines = [f"placement for target {self.target} (fallback: {fb}): "
                 f"{len(self.on_fallback)} node(s) on the fallback, {len(self.exchanges)} exchange point(s)",
                 f"  {'kind':<{w[0]}}  {'node':<{w[1]}}  {'runs on':<{w[2]}}  why"]
        lines += [f"  {k:<{w[0]}}  {n:<{w[1]}}  {o:<{w[2]}}  {r}" for k, n, o, r in rows]
        return "\n".join(lines)


def _is_current(s) -> bool:
    return isinstance(s, CurrentStimulus) or (isinstance(s, ArrayStimulus) and s.encoding == "current")


def place(net: Network, target: Target, unsupported: Unsupported | None = None,
          fallback_unsupported: Unsupported | None = None, allow_fallback: bool = True) -> Placement:
    """Place every node of ``net`` (see the module docstring). ``unsupported``: the target
    backend's answer for ``net``; ``None`` for a backend that runs every node it can itself (every
    node is placed on the target). ``fallback_unsupported``: the fallback backend's."""
    plan = Placement(target.name, target.fallback)
    if unsupported is None:  # e.g. brian2 and torch: no placement, every node on the target
        for p in net.populations:
            plan.nodes.append(NodePlacement(p.name, "population", TARGET))
        for s in net.stimuli:
            plan.nodes.append(NodePlacement(s.name, "stimulus", TARGET))
        for pr in net.projections:
            plan.nodes.append(NodePlacement(pr.name, "projection", TARGET))
        return plan
    if net.blocks:
        raise NotImplementedYet(f"'{net.name}' has blocks ({', '.join(b.name for b in net.blocks)}): expand "
                                "them first (neurodeploy.passes.expand); coders run with `neurodeploy eval`")
    reasons = unsupported(net)
    fb = set(reasons)
    pulled: dict[str, str] = {}
    pops = {p.name for p in net.populations}

    def pull(item: str, by: str, why: str) -> bool:
        """Put ``item`` on the fallback because ``by`` runs there; True if that is news."""
        if by in fb and item not in fb:
            fb.add(item)
            pulled[item] = why
            return True
        return False

    modulated = [(pr, m) for pr in net.projections if (m := _modulator(pr)) is not None]
    changed = True
    while changed:  # close under "a population runs with what drives it, a projection with its target"
        changed = False
        for s in net.stimuli:
            if _is_current(s):
                changed |= pull(s.target, s.name, f"driven by '{s.name}', which runs on the fallback")
        for pr in net.projections:
            if pr.target in pops:
                changed |= pull(pr.target, pr.name, f"its input projection '{pr.name}' runs on the fallback")
        for pr in net.projections:
            changed |= pull(pr.name, pr.target, f"its target '{pr.target}' runs on the fallback")
        for pr, mod in modulated:  # a third factor reaches its neuron directly: both sides together
            changed |= pull(mod, pr.name, f"it is the third factor of '{pr.name}', which runs on the fallback")
            changed |= pull(pr.name, mod, f"its modulator '{mod}' runs on the fallback, and a third factor "
                                          "cannot cross the exchange point")
        for s in net.stimuli:
            if _is_current(s):
                changed |= pull(s.name, s.target, f"its target '{s.target}' runs on the fallback")
    for s in net.stimuli:  # spike sources go where all their consumers are
        if _is_current(s) or s.name in fb:
            continue
        consumers = [pr for pr in net.projections if pr.source == s.name]
        if consumers and all(pr.name in fb for pr in consumers):
            fb.add(s.name)
            pulled[s.name] = "every projection it feeds runs on the fallback"
    if fb and (not allow_fallback or not target.fallback):
        why = "--no-fallback was given" if target.fallback else f"target '{target.name}' allows no fallback"
        listing = "; ".join(f"'{n}': {reasons.get(n) or pulled[n]}" for n in _ordered(net, fb))
        raise CompileError(f"target '{target.name}' cannot run {listing} ({why}; drop --no-fallback or pick a "
                           f"target with a fallback to run these nodes on {target.fallback or 'torch'})")
    if fb and fallback_unsupported is not None:
        bad = {n: why for n, why in fallback_unsupported(net).items() if n in fb}
        if bad:
            raise NotImplementedYet("neither target '{}' nor its fallback '{}' can run {}".format(
                target.name, target.fallback, "; ".join(f"'{n}': {why}" for n, why in bad.items())))

    def side(n):
        return FALLBACK if n in fb else TARGET

    def why(n):
        return reasons.get(n) or pulled.get(n, "")

    for p in net.populations:
        plan.nodes.append(NodePlacement(p.name, "population", side(p.name), why(p.name)))
    for s in net.stimuli:
        plan.nodes.append(NodePlacement(s.name, "stimulus", side(s.name), why(s.name)))
    for pr in net.projections:
        ex = f"{side(pr.source)} -> {side(pr.target)}" if side(pr.source) != side(pr.target) else ""
        plan.nodes.append(NodePlacement(pr.name, "projection", side(pr.name),
                                        reasons.get(pr.name) or pulled.get(pr.name, ""), ex))
        if pr.plasticity is not None:
            plan.nodes.append(NodePlacement(f"{pr.name}.{pr.plasticity.rule}", "plasticity", side(pr.name),
                                            reasons.get(pr.name) or pulled.get(pr.name, "")))
    return plan


def _modulator(pr) -> str | None:
    """The population or source giving a plastic projection's third factor (None if none)."""
    if pr.plasticity is None:
        return None
    rdef = RULES.get(pr.plasticity.rule)
    if rdef is None:
        return None
    refs = [pr.plasticity.params.get(k) for k, (i, _) in rdef.param_infos().items() if i.kind == "ref"]
    return next((r for r in refs if r), None)


def _ordered(net: Network, names: set[str]) -> list[str]:
    order = [n.name for g in (net.populations, net.stimuli, net.projections) for n in g]
    return [n for n in order if n in names]


def split(net: Network, plan: Placement) -> tuple[Network | None, Network | None]:
    """The target part and the fallback part of ``net`` as networks of their own (None if empty).

    An emitter on the other side that feeds a part appears in it as a placeholder: an empty
    ``spike_times`` source of the same name and size, whose spikes the hybrid run supplies.
    Names, sizes and the seed are kept, so every seeded draw (synapses, initial values, Poisson
    spikes) is the same as in the whole network."""
    eps = endpoints(net)
    out = []
    for mine in (TARGET, FALLBACK):
        keep = {n.node for n in plan.nodes if n.where == mine and n.kind != "plasticity"}
        pops = tuple(p for p in net.populations if p.name in keep)
        if not pops:
            out.append(None)
            continue
        projs = tuple(pr for pr in net.projections if pr.name in keep)
        stims = [s for s in net.stimuli if s.name in keep]
        outside = []
        for pr in projs:
            if pr.source not in keep and pr.source not in outside:
                outside.append(pr.source)
        stims += [SpikeTimesStimulus(name, eps[name].size) for name in outside]
        probes = tuple(pb for pb in net.probes if pb.target in keep)
        out.append(dataclasses.replace(net, populations=pops, stimuli=tuple(stims), projections=projs,
                                       probes=probes))
    return out[0], out[1]


def external_emitters(part: Network, plan: Placement, mine: str) -> list[str]:
    """The placeholders of ``part`` (emitters that run on the other side)."""
    keep = {n.node for n in plan.nodes if n.where == mine}
    return [s.name for s in part.stimuli if s.name not in keep]


class Place:
    """The placement pass: ``placement`` and the target's ``part`` of the network."""

    name = "place"
    requires = ("net",)
    provides = ("placement", "part")

    def run(self, c: Compilation) -> PassReport:
        c.placement = place(c.net, c.target, c.unsupported, c.fallback_unsupported, c.allow_fallback)
        c.part = c.net
        if c.placement.on_fallback:
            c.part, _ = split(c.net, c.placement)  # fallback emitters feeding it become placeholders
            if c.part is None:
                check_neurons(estimate(c.net), c.target)  # over the chip: name the limit (exit 1)
                why = "; ".join(f"'{n.node}': {n.reason}" for n in c.placement.nodes
                                if n.kind == "population" and n.reason)
                raise NotImplementedYet(f"target '{c.target.name}' can run none of '{c.net.name}''s populations: "
                                        f"every node is placed on the fallback ({why or 'no reason given'}); "
                                        f"use --target {c.target.fallback}")
        # before any later pass draws a synapse: the target's limits on its part, the memory budget
        est = check_compile(c.net, c.target, c.part)
        fb = sorted(c.placement.on_fallback)
        return PassReport(self.name, f"{len(fb)} node(s) on the fallback, {len(c.placement.exchanges)} "
                                     "exchange point(s)", {**c.placement.to_json(), "estimate": est.to_json()})
