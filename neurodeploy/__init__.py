"""neurodeploy: describe a spiking model once in YAML; compile, validate and deploy it.

Public API (the CLI is a thin shell over it)::

    import neurodeploy as nd
    net = nd.load("models/single_lif.yaml")      # spec -> verified IR (raises SpecError)
    net, diagnostics = nd.check("models/x.yaml")  # never raises for bad input
    text = nd.ir.to_json(net)                     # lossless IR JSON
"""

__version__ = "0.1.0"

from . import ir  # noqa: E402
from .core.errors import NeurodeployError, SpecError  # noqa: E402
from .spec import check, load  # noqa: E402

__all__ = ["__version__", "ir", "load", "check", "NeurodeployError", "SpecError"]
