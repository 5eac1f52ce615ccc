"""Backends: where a model runs. Importing this package registers every backend (and each
backend's block lowerings); :mod:`.base` is the contract and the registries, :mod:`.dispatch`
runs a network on a target (with the placement pass and a hybrid run where a backend places),
:mod:`.hybrid` is the one module that joins two backends (Lava and the torch fallback), and
:mod:`.reference` the numpy reference simulators (the test oracles)."""

from . import brian2, lava, torch  # noqa: F401  (registration side effect)
from .base import BACKENDS, Backend, BackendInfo, BlockLowering, backend_statuses, block_lowering, get_backend

__all__ = ["BACKENDS", "Backend", "BackendInfo", "BlockLowering", "backend_statuses", "block_lowering", "get_backend"]
