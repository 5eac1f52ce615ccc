"""High-level blocks: parametrised sub-networks that the ``expand`` pass turns into
populations and projections. Each block kind declares its parameters on a dataclass (the spec
schema is derived from it), its expansion, and (coders) how its expanded form is recognised and
scored; the backends run it through their block lowerings (:mod:`neurodeploy.backends.base`).
"""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from ...core.data import transformed_shape
from ...core.errors import UsageError
from ...core.params import param_infos
from ...ir.nodes import ArrayRef, Weights
from ...ir.serialize import _build

BLOCKS: dict[str, type["BlockDef"]] = {}


def register_block(cls):
    if cls.kind in BLOCKS:
        raise ValueError(f"block kind {cls.kind!r} registered twice")
    BLOCKS[cls.kind] = cls
    return cls


class BlockDef:
    """A block kind: its parameters (``Params``, the spec schema), its expansion into populations
    and projections, and, for the coders, how a target lowering's output is scored.

    Coder blocks also set ``latent_model`` (the neuron model of their latent population, by which
    :func:`neurodeploy.library.blocks.coder.recognise` finds them in an expanded network) and
    ``forms``, and implement :meth:`bind` and :meth:`row`.
    """

    kind: ClassVar[str]
    Params: ClassVar[type]
    #: outputs other parts of the spec may reference as "<block>.<output>", with their sizes
    #: given by the parameter named in the value
    outputs: ClassVar[dict[str, str]] = {}
    #: the neuron model of the latent population it expands into (coders), else None
    latent_model: ClassVar[str | None] = None
    #: the network forms it can expand into (the first is the default)
    forms: ClassVar[tuple[str, ...]] = ("lateral",)
    #: the columns of ``neurodeploy eval``'s table: (header, key of a row, format)
    columns: ClassVar[tuple[tuple[str, str, str], ...]] = ()
    #: what each metric of a row means (``metrics.json``'s ``definitions``)
    definitions: ClassVar[dict[str, str]] = {}
    #: said after "compiling a <kind> block for <target> is not implemented yet: "
    compile_hint: ClassVar[str] = ""

    @classmethod
    def param_infos(cls):
        return param_infos(cls.Params)

    @classmethod
    def doc(cls) -> str:
        return (cls.__doc__ or "").strip()

    @classmethod
    def expand(cls, block, net) -> tuple[tuple, tuple]:
        """(populations, projections) that replace ``block`` in ``net`` (the ``expand`` pass)."""
        raise NotImplementedError

    @classmethod
    def bind(cls, name: str, pop, structure):
        """The :class:`~neurodeploy.library.blocks.coder.Coder` of latent population ``pop``, from
        the :class:`~neurodeploy.library.blocks.coder.Structure` read off the expanded network."""
        raise NotImplementedError

    @classmethod
    def row(cls, coder, X, T: int, raw: dict) -> tuple[dict, object]:
        """(metrics row, reconstructions (B, M)) of a lowering's output ``raw`` after T iterations."""
        raise NotImplementedError

    @classmethod
    def metadata(cls, coder) -> dict:
        """Fields of ``metrics.json`` that describe the coder (its form, its constants)."""
        return {}

    @classmethod
    def title(cls) -> str:
        """Said after the network's name when evaluating (e.g. `` (LCA)``)."""
        return ""

    @classmethod
    def headline(cls, metrics: dict) -> str:
        """Said after the block's name in the printed summary of an evaluation."""
        return ""


def decoder_ref(block, **changes):
    """The block's ``decoder`` array reference with ``changes`` (``transform``, ``scale``)."""
    d = block.params["decoder"]
    ref = d if isinstance(d, ArrayRef) else _build(ArrayRef, d)
    t = changes.get("transform")
    if ref.transform is not None and t is not None:
        raise UsageError(f"block '{block.name}': the decoder already has transform '{ref.transform}'; "
                         "give the (inputs, latent) matrix itself")
    return dataclasses.replace(ref, shape=transformed_shape(tuple(ref.shape), t), transform=t or ref.transform,
                               scale=ref.scale * changes.get("scale", 1.0))


def file_weights(ref):
    """Weights read from an array reference (kind = its source: file, inline or dataset)."""
    return Weights(ref.source, {}, data=ref, unit="1")




def expand_blocks(net):
    """``net`` with every block replaced by the populations and projections its kind expands
    into (unverified; :func:`neurodeploy.passes.expand.expand` verifies)."""
    if not net.blocks:
        return net
    pops, projs = list(net.populations), list(net.projections)
    for b in net.blocks:
        bdef = BLOCKS.get(b.kind)
        if bdef is None:
            raise UsageError(f"block '{b.name}': kind '{b.kind}' cannot be expanded")
        new_pops, new_projs = bdef.expand(b, net)
        pops.extend(new_pops)
        projs.extend(new_projs)
    return dataclasses.replace(net, populations=tuple(pops), projections=tuple(projs), blocks=())


__all__ = ["BLOCKS", "BlockDef", "decoder_ref", "expand_blocks", "file_weights", "register_block"]
