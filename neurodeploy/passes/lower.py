"""Lower pass: the target's part of the network -> the Loihi form
(:mod:`neurodeploy.lowering.loihi`: discretized LIF/NDLIF parameters, spike sources, synapses)."""

from __future__ import annotations

from ..core.errors import NotImplementedYet
from ..lowering.loihi import Unsupported, lower, unsupported_nodes
from .base import Compilation, PassReport


class Lower:
    name = "lower"
    requires = ("part",)
    provides = ("lowered",)

    def run(self, c: Compilation) -> PassReport:
        try:
            c.lowered = low = lower(c.part)
        except Unsupported as e:
            listing = "; ".join(f"'{u.node}': {u.reason}" for u in unsupported_nodes(c.part)) or str(e)
            raise NotImplementedYet(f"target '{c.target.name}' cannot run {listing} (a target with a fallback, "
                                    "e.g. lava or loihi2-sim, runs these nodes on torch)") from None
        return PassReport(self.name, f"{len(low.populations)} population(s), {len(low.projections)} "
                                     f"projection(s), {len(low.sources)} source(s)",
                          {"processes": {n: p.process for n, p in low.populations.items()}})
