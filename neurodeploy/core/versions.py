"""Versions of what a run used, for summaries and reports."""

from __future__ import annotations

import importlib.metadata as md
import platform


def versions(packages: tuple[str, ...] = ("brian2", "numpy", "scipy", "lava-nc", "torch")) -> dict[str, str]:
    from .. import __version__

    out = {"neurodeploy": __version__, "python": platform.python_version()}
    for p in packages:
        try:
            out[p] = md.version(p)
        except md.PackageNotFoundError:
            pass
    return out
