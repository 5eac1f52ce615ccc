"""High-level blocks: parametrised sub-networks that the ``expand`` pass turns into
populations and projections. Each block kind declares its parameters on a dataclass (the spec
schema is derived from it). The expansion itself lands with the issue that owns each block.
"""

from __future__ import annotations

from typing import ClassVar

from ..params import param_infos

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


from . import ipvae  # noqa: E402,F401
from . import lca  # noqa: E402,F401

__all__ = ["BLOCKS", "BlockDef", "register_block"]
