"""What a name in a network refers to, and the evaluation order of algebraic populations.

Used by the spec checks (:mod:`neurodeploy.spec.checks`), the materialisation of the IR's data
(:mod:`neurodeploy.library.materialize`) and every backend: a projection's source or target, a
probe's target or a block's output is an :class:`Endpoint` with a size and, for populations, the
registered neuron model.
"""

from __future__ import annotations

from ..ir.nodes import ArrayStimulus, Network, PoissonStimulus, SpikeTimesStimulus
from .blocks.base import BLOCKS
from .neurons import NEURONS


class Endpoint:
    """What a name refers to when used as a projection source/target or probe target."""

    def __init__(self, name, size, kind, model=None, spiking=True, graded=False, node=None):
        self.name, self.size, self.kind, self.model = name, size, kind, model
        self.spiking, self.graded, self.node = spiking, graded, node


def endpoints(net: Network) -> dict[str, Endpoint]:
    """Every referable name: populations, stimuli, projections, and block outputs."""
    eps: dict[str, Endpoint] = {}
    for p in net.populations:
        model = NEURONS.get(p.model)
        graded = bool(model is not None and model.graded)
        eps.setdefault(p.name, Endpoint(p.name, p.size, "population", model, spiking=not graded, graded=graded,
                                        node=p))
    for s in net.stimuli:
        if isinstance(s, (PoissonStimulus, SpikeTimesStimulus)):
            ep = Endpoint(s.name, s.size, "stimulus", NEURONS[s.model], spiking=True, node=s)
        elif isinstance(s, ArrayStimulus):
            ep = Endpoint(s.name, s.size, "stimulus", None, spiking=s.encoding == "rate",
                          graded=s.encoding == "value", node=s)
        else:
            ep = Endpoint(s.name, 0, "injection", None, spiking=False, node=s)
        eps.setdefault(s.name, ep)
    for pr in net.projections:
        eps.setdefault(pr.name, Endpoint(pr.name, 0, "projection", spiking=False, node=pr))
    for b in net.blocks:
        eps.setdefault(b.name, Endpoint(b.name, 0, "block", spiking=False, node=b))
        bdef = BLOCKS.get(b.kind)
        if bdef is None:
            continue
        for out, size_param in bdef.outputs.items():
            size = b.params.get(size_param)
            if isinstance(size, str):  # size of a referenced node
                ref = eps.get(size)
                size = ref.size if ref else 0
            eps[f"{b.name}.{out}"] = Endpoint(f"{b.name}.{out}", int(size or 0), "block output",
                                              spiking=True, graded=True, node=b)
    return eps


def algebraic_order(net: Network) -> tuple[list[str], list[str]]:
    """(order, stuck): the algebraic (stateless, same-step) populations in dependency order, and
    those that cannot be ordered because they are in or behind a loop of algebraic populations."""
    alg = [p.name for p in net.populations if p.model in NEURONS and NEURONS[p.model].algebraic]
    deps = {n: {pr.source for pr in net.projections if pr.target == n and pr.source in alg} for n in alg}
    order: list[str] = []
    while True:
        ready = [n for n in alg if n not in order and deps[n] <= set(order)]
        if not ready:
            return order, [n for n in alg if n not in order]
        order.extend(ready)
