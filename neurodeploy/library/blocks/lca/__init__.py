"""The ``lca`` block (Rozell's LCA, the sparse-coding baseline)."""

from .block import LCABlock  # noqa: F401  (registration side effect)
