"""High-level blocks (the iP-VAE and LCA coders). Importing this package registers every block."""

from . import ipvae, lca  # noqa: F401  (registration side effect)
from .base import BLOCKS, BlockDef, decoder_ref, file_weights, register_block

__all__ = ["BLOCKS", "BlockDef", "decoder_ref", "file_weights", "register_block"]
