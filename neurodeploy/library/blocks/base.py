"""High-level blocks: parametrised sub-networks that the ``expand`` pass turns into
populations and projections. Each block kind declares its parameters on a dataclass (the spec
schema is derived from it). The expansion itself lands with the issue that owns each block.
"""

from __future__ import annotations

from typing import ClassVar

from ...core.params import param_infos

BLOCKS: dict[str, type["BlockDef"]] = {}


def register_block(cls):
    if cls.kind in BLOCKS:
        raise ValueError(f"block kind {cls.kind!r} registered twice")
    BLOCKS[cls.kind] = cls
    return cls


class BlockDef:
    kind: ClassVar[str]
    Params: ClassVar[type]
    #: outputs other parts of the spec may reference as "<block>.<output>", with their sizes
    #: given by the parameter named in the value
    outputs: ClassVar[dict[str, str]] = {}

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


def decoder_ref(block, **changes):
    """The block's ``decoder`` array reference with ``changes`` (``transform``, ``scale``)."""
    import dataclasses

    from ...ir.nodes import ArrayRef
    from ...ir.serialize import _build

    from ...core.data.arrays import transformed_shape
    from ...core.errors import UsageError

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
    from ...ir.nodes import Weights

    return Weights(ref.source, {}, data=ref, unit="1")


__all__ = ["BLOCKS", "BlockDef", "decoder_ref", "file_weights", "register_block"]
