"""The Lava process that hosts the torch part of a hybrid run (:mod:`neurodeploy.backends.hybrid`).

A package of its own because Lava's ProcessModel discovery executes every module in a Process's
directory under its bare name: only ``process.py`` and ``models.py`` (absolute imports, no side
effects) live here. Importing this package imports neither Lava nor torch: ``TorchPart`` and
``make_model`` are imported on first attribute access.
"""

from __future__ import annotations

from typing import Any

from ..procs import lazy_attribute

_LAZY = {
    "TorchPart": "neurodeploy.backends.lava.bridge.process",
    "make_model": "neurodeploy.backends.lava.bridge.models",
}


def __getattr__(name: str) -> Any:
    return lazy_attribute(globals(), _LAZY, name)
