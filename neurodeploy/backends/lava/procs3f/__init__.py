"""neurodeploy's third-factor neuron for Lava: :class:`NDLIF3F` (NDLIF that sends a modulator's
spike trace as y2 to ``LearningDense`` s with a ``Loihi3FLearningRule``).

* ``process_3f.py``: the :class:`NDLIF3F` Process;
* ``models_3f.py``: its ProcessModels (``floating_pt``, ``fixed_pt``).

A package of its own because Lava's ProcessModel discovery imports every module in a Process's
directory. Importing it does not import Lava; the classes load on first attribute access.
"""

from __future__ import annotations

from typing import Any

from neurodeploy.backends.lava.procs import lazy_attribute

__all__ = ["NDLIF3F", "PyNDLIF3FModelFixed", "PyNDLIF3FModelFloat"]

_LAZY = {
    "NDLIF3F": "neurodeploy.backends.lava.procs3f.process_3f",
    "PyNDLIF3FModelFloat": "neurodeploy.backends.lava.procs3f.models_3f",
    "PyNDLIF3FModelFixed": "neurodeploy.backends.lava.procs3f.models_3f",
}


def __getattr__(name: str) -> Any:
    return lazy_attribute(globals(), _LAZY, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
