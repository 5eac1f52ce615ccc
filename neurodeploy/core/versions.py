"""Versions of what a run used, for summaries and reports."""

from __future__ import annotations

import importlib.metadata as md
import platform

#: neurodeploy's own version (re-exported as ``neurodeploy.__version__``)
__version__ = "0.1.0"


def versions(packages: tuple[str, ...] = ("brian2", "numpy", "scipy", "lava-nc", "torch")) -> dict[str, str]:
    out = {"neurodeploy": __version__, "python": platform.python_version()}
    for p in packages:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            pass
    return out
