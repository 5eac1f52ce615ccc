"""What every benchmark writes beside its table: one JSON file, atomically, with the machine and
the versions that produced it."""

from __future__ import annotations

import os
import platform

from neurodeploy.core.versions import versions
from neurodeploy.core.io import atomic_write_json


def write_results(path, benchmark: str, **fields) -> None:
    atomic_write_json(path, {"benchmark": benchmark, **fields,
                             "machine": {"platform": platform.platform(), "cpus": os.cpu_count()},
                             "versions": versions()})
    print(f"wrote {os.path.relpath(path)}")
