"""High-level blocks (the iP-VAE and LCA coders). Importing this package registers every block:
each module or package here other than the shared :mod:`.base` and :mod:`.coder` is one block kind,
imported below, so a new kind needs no edit to this file."""

import importlib
import pkgutil

from .base import BLOCKS, BlockDef, decoder_ref, expand_blocks, file_weights, register_block

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "coder"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["BLOCKS", "BlockDef", "decoder_ref", "expand_blocks", "file_weights", "register_block"]
