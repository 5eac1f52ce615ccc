"""The Brian2 backend (target ``brian2``): the reference simulator every other target is
validated against.

``simulator.py`` builds Brian2 objects from the IR and runs them; ``backend.py`` is the
:class:`~neurodeploy.backends.base.Backend` registered here; ``blocks/`` the lowerings of the
``ipvae`` and ``lca`` blocks. Importing this package does not import Brian2.
"""

from ..base import register_backend
from . import blocks  # noqa: F401  (registers the block lowerings)
from .backend import Brian2Backend

BACKEND = register_backend(Brian2Backend())
