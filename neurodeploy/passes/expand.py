"""The ``expand`` pass: high-level blocks become populations and projections.

Each block kind says how it expands (``BlockDef.expand``; see :mod:`neurodeploy.library.blocks.ipvae.block`
and :mod:`neurodeploy.library.blocks.lca.block`). The expanded nodes are named ``<block>.<part>``, so a
reference to a block output elsewhere in the spec (``coder.latents``, ``coder.readout``) names
the expanded population directly. Weight matrices are not copied: they are array references
to the block's decoder with a ``transform`` (``transpose``, ``gram``) and a ``scale``
(:class:`~neurodeploy.ir.nodes.ArrayRef`), so ``ir.json`` stays small and every consumer
that materialises the weights gets the same matrices.

The expanded network holds graded populations (:mod:`neurodeploy.library.neurons.graded`):
:func:`neurodeploy.backends.reference.graded.simulate_graded` runs it in numpy, the iP-VAE and LCA
lowerings (``neurodeploy eval``) recognise it (:func:`neurodeploy.validation.blocks.coder_of`).
"""

from __future__ import annotations

from ..ir.nodes import Network
from ..library.blocks.base import expand_blocks
from ..spec import verify
from .base import Compilation, PassReport


def expand(net: Network, check: bool = True) -> Network:
    """``net`` with every block replaced by its populations and projections (verified when
    ``check``). A network without blocks is returned as is."""
    if not net.blocks:
        return net
    out = expand_blocks(net)
    return verify(out) if check else out


def expansion_summary(before: Network, after: Network) -> list[str]:
    """One line per node the expansion added (for ``neurodeploy compile`` / ``inspect``)."""
    old = {p.name for p in before.populations} | {p.name for p in before.projections}
    lines = []
    for p in after.populations:
        if p.name not in old:
            lines.append(f"population {p.name}: {p.size} x {p.model}")
    for pr in after.projections:
        if pr.name not in old:
            w = pr.weights
            how = w.kind
            if w.data is not None:
                how = f"{w.data.path or w.data.source}" + (f" [{w.data.transform}]" if w.data.transform else "")
                how += f" x {w.data.scale:.6g}" if w.data.scale != 1 else ""
            elif w.kind == "constant":
                how = f"{w.params['value']:.6g}"
            lines.append(f"projection {pr.name}: {pr.source} -> {pr.target} ({pr.connectivity.kind}, {how})")
    return lines


class Expand:
    """The expand pass: ``net`` without blocks (each replaced by what it expands into)."""

    name = "expand"
    requires = ("net",)
    provides = ("net",)

    def run(self, c: Compilation) -> PassReport:
        before, c.net = c.net, expand(c.net)
        lines = expansion_summary(before, c.net)
        return PassReport(self.name, f"{len(before.blocks)} block(s) expanded", {"added": lines})
