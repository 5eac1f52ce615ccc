"""The ``lca`` block (Rozell's LCA, the sparse-coding baseline)."""

from . import neuron  # noqa: F401  (registers its latent neuron model)
from .block import LCABlock  # noqa: F401  (registration side effect)
