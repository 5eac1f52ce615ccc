"""The model library: neuron models, plasticity rules and blocks, each one file (or package) per
concept with its parameters, its maths and a numpy reference step, registered where it is
defined; plus what every backend shares about a network's data (:mod:`.endpoints`,
:mod:`.materialize`). Importing this package registers everything."""

from . import blocks, neurons, plasticity  # noqa: F401  (registration side effect)
