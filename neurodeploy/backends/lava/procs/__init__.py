"""Custom Lava Processes of neurodeploy: the NDLIF neuron and its numpy reference.

* ``process.py``: :class:`NDLIF`, Lava's CUBA LIF plus Brian2-style refractoriness
  (``refractory_steps``, ``input_drop``) and reset (``reset_mode``, ``v_reset``).
* ``models.py``: its ProcessModels for CPU simulation (``Loihi2SimCfg``), tags ``floating_pt``
  (:class:`PyNDLIFModelFloat`) and ``fixed_pt`` (:class:`PyNDLIFModelFixed`, bit-accurate like
  Lava's ``PyLifModelBitAcc``).
* ``reference.py``: the same dynamics in plain numpy (:func:`ndlif_float_step`,
  :func:`ndlif_fixed_step`), the tests' oracle.

This is a package of its own because Lava's ProcessModel discovery imports every module in a
Process's directory; nothing else may live here.

Importing this package does not import Lava: the numpy reference is imported eagerly, the Lava
classes (``NDLIF``, ``PyNDLIFModelFloat``, ``PyNDLIFModelFixed``) on first attribute access,
through :func:`neurodeploy.core.compat.lava.ensure_lava_importable` (which raises
:class:`~neurodeploy.core.errors.BackendError` when Lava is unusable).
"""

from __future__ import annotations

import importlib
from typing import Any

from neurodeploy.backends.lava.procs.reference import (
    SINCE_NEVER,
    ndlif_fixed_step,
    ndlif_float_step,
    ndlif_initial_state,
    ndlif_run,
)

__all__ = [
    "NDLIF",
    "PyNDLIFModelFixed",
    "PyNDLIFModelFloat",
    "SINCE_NEVER",
    "ndlif_fixed_step",
    "ndlif_float_step",
    "ndlif_initial_state",
    "ndlif_run",
]

_LAZY = {
    "NDLIF": "neurodeploy.backends.lava.procs.process",
    "PyNDLIFModelFloat": "neurodeploy.backends.lava.procs.models",
    "PyNDLIFModelFixed": "neurodeploy.backends.lava.procs.models",
}


def lazy_attribute(namespace: dict, table: dict, name: str) -> Any:
    """Module ``__getattr__`` body: import ``name`` from ``table[name]`` on first access and keep it
    in ``namespace`` (the module's globals), so that Lava is imported only when a process is used."""
    module = table.get(name)
    if module is None:
        raise AttributeError(f"module {namespace['__name__']!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    namespace[name] = value
    return value


def __getattr__(name: str) -> Any:
    return lazy_attribute(globals(), _LAZY, name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
