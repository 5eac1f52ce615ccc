"""The ``ipvae`` block (iterative Poisson VAE coder)."""

from .block import IPVAEBlock  # noqa: F401  (registration side effect)
