"""High-level blocks (the iP-VAE and LCA coders). Importing this package registers every block."""

from .base import BLOCKS, BlockDef, decoder_ref, expand_blocks, file_weights, register_block
from . import ipvae, lca  # noqa: E402,F401  (registration side effect)

__all__ = ["BLOCKS", "BlockDef", "decoder_ref", "expand_blocks", "file_weights", "register_block"]
