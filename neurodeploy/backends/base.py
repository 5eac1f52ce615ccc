"""Backends: where a model runs. Each backend lives in its own sub-package, keeps its heavy
imports inside, and reports whether it can run here (and why not) without raising.

The contract every backend fills in as it lands::

    available() -> (bool, reason)      # never raises
    supports(node) -> (bool, reason)   # per IR node, for the placement pass
    build(network, target) -> Artifact
    run(artifact, ...) -> Result
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import shutil
from dataclasses import dataclass

from ..core.errors import NotImplementedYet


@dataclass(frozen=True)
class BackendInfo:
    name: str
    available: bool
    detail: str  # version or the reason it is unavailable
    implemented: bool = False
    issue: str = ""  # where the implementation lands


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def brian2_status() -> BackendInfo:
    v = _version("brian2")
    if v is None:
        return BackendInfo("brian2", False, "brian2 is not installed (pip install brian2==2.9.0, or make install)",
                           issue="Brian2 reference backend")
    cython = importlib.util.find_spec("Cython") is not None
    cc = shutil.which("cc") or shutil.which("gcc")
    codegen = "cython" if (cython and cc) else "numpy (" + ("no Cython" if not cython else "no C compiler") + ")"
    return BackendInfo("brian2", True, f"brian2 {v}; code generation: {codegen}", implemented=True,
                       issue="Brian2 reference backend")


def lava_status_info() -> BackendInfo:
    from ..core.compat.lava import lava_status

    ok, detail = lava_status()
    return BackendInfo("lava", ok, detail, implemented=True, issue="Lava backend and the Loihi 2 conversion layer")


def loihi2_status() -> BackendInfo:
    from ..core.compat.lava import has_loihi_hardware

    ok, detail = has_loihi_hardware()
    return BackendInfo("loihi2", ok, detail, implemented=True,
                       issue="deploy writes the artifact; running it needs lava-loihi and is untested")


def torch_status() -> BackendInfo:
    v = _version("torch")
    if v is None:
        return BackendInfo("torch", False, "torch is not installed (pip install torch==2.13.0, or make install)",
                           issue="GPU fallback backend")
    try:
        import torch

        if torch.cuda.is_available():
            dev = f"CUDA ({torch.cuda.get_device_name(0)})"
        else:
            dev = "CPU only (no CUDA device visible)"
    except Exception as e:  # a broken torch install must not break `info`
        return BackendInfo("torch", False, f"torch {v} fails to import: {e}", issue="GPU fallback backend")
    return BackendInfo("torch", True, f"torch {v}; device: {dev}", implemented=True,
                       issue="GPU fallback backend")


def backend_statuses() -> list[BackendInfo]:
    return [brian2_status(), lava_status_info(), loihi2_status(), torch_status()]


#: which backend implements each target's work, and the issue it lands with
PENDING = {
    "brian2": "the Brian2 reference backend",
    "lava": "the Lava backend and Loihi 2 conversion layer",
    "torch": "the GPU fallback backend",
}


def require_backend(backend: str, what: str) -> None:
    """Raise :class:`NotImplementedYet` for a backend whose implementation has not landed."""
    raise NotImplementedYet(
        f"{what} on the '{backend}' backend is not implemented yet (it lands with {PENDING.get(backend, 'a later issue')})")
