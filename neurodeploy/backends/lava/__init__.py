"""The Lava backend (targets ``lava``, ``loihi2-sim``, ``loihi2``): Intel Lava's CPU simulation in
floating point and bit-accurate fixed point, and the path to Loihi 2 hardware.

``simulator.py`` runs the Loihi form (:mod:`neurodeploy.lowering.loihi`) as Lava processes;
``backend.py`` is the :class:`~neurodeploy.backends.base.Backend` registered here; ``procs/``,
``procs3f/`` and ``bridge/`` hold neurodeploy's own Lava processes (packages of their own, since
Lava's ProcessModel discovery imports every module in a Process's directory); ``blocks/`` the
lowerings of the ``ipvae`` and ``lca`` blocks. Importing this package does not import Lava.
"""

from ..base import register_backend
from . import blocks  # noqa: F401  (registers the block lowerings)
from .backend import LavaBackend

BACKEND = register_backend(LavaBackend())
