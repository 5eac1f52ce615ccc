"""Neuron models. Importing this package registers every shipped model (the coders' latent models
register with their blocks, :mod:`neurodeploy.library.blocks`; importing :mod:`neurodeploy.library`
registers both)."""

from . import cuba_lif, graded, integrate_fire, leaky_integrator, lif, sources  # noqa: F401  (registration side effect)
from .base import NEURONS, NeuronModel, euler_models, get_neuron, register_neuron

__all__ = ["NEURONS", "NeuronModel", "euler_models", "get_neuron", "register_neuron"]
