"""The block lowerings of the lava backend: one module (or package) per block kind, each registering
a :class:`~neurodeploy.backends.base.BlockLowering`. Every module here is imported, so a new block
kind needs no edit to this file (nor to the CLI, the API or another backend)."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
