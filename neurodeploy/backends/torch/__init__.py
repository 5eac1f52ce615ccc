"""The torch backend (the GPU fallback; targets ``torch`` and ``loihi2-torch``): the Loihi form
batched over trials in PyTorch, on CUDA when present, else the CPU.

``simulator.py`` is the stepper (:class:`~neurodeploy.backends.torch.simulator.TorchSim`),
``backend.py`` the :class:`~neurodeploy.backends.base.Backend` registered here, ``blocks/`` the
lowerings of the ``ipvae`` and ``lca`` blocks (and the iP-VAE torch module that ``neurodeploy
train`` trains). Importing this package does not import torch.
"""

from ..base import register_backend
from . import blocks  # noqa: F401  (registers the block lowerings)
from .backend import TorchBackend

BACKEND = register_backend(TorchBackend())
