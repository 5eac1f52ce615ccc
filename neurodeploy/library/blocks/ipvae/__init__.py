"""The ``ipvae`` block (iterative Poisson VAE coder)."""

from . import neuron  # noqa: F401  (registers its latent neuron model)
from .block import IPVAEBlock  # noqa: F401  (registration side effect)
