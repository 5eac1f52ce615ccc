"""Bounds checked before anything is allocated (specs, data files, interchange files).

They live here, below the IR, because the readers of users' files (``core.data``) check them
before an IR exists; :mod:`neurodeploy.ir.nodes` re-exports them.
"""

from __future__ import annotations

import os
import re

from .errors import UsageError

MAX_POPULATION_SIZE = 10_000_000
MAX_TOTAL_NEURONS = 50_000_000
MAX_STEPS = 1_000_000_000
MAX_DENSE_SYNAPSES = 1_000_000_000
MAX_ARRAY_ELEMENTS = 200_000_000

# Interchange files from others (NIR / HDF5, ONNX): checked from the headers, before any data is read
#: bytes of all arrays of one NIR or ONNX file (declared shape x item size), and of the file itself
MAX_INTERCHANGE_BYTES = 512 * 2**20
#: bytes of all variable-length strings of one NIR file (node types, edges, metadata)
MAX_INTERCHANGE_STRING_BYTES = 64 * 2**20
#: groups, datasets and links in one NIR file
MAX_INTERCHANGE_OBJECTS = 200_000
#: NIR graphs nested in each other
MAX_GRAPH_NESTING = 32

# Memory: every command estimates what it will hold from the IR's counts before it draws anything
# (neurodeploy.passes.estimate) and refuses a model over this budget.
#: environment variable overriding the budget: bytes, or a number with a unit (500MB, 8GiB, 1.5G);
#: ``none`` or ``0`` disables the check
MEMORY_BUDGET_ENV = "NEURODEPLOY_MEMORY_BUDGET"
#: part of the memory available when a command starts that the default budget allows
MEMORY_BUDGET_FRACTION = 0.9

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def parse_bytes(text: str) -> int | None:
    """``'8GiB'`` -> 8589934592; ``'none'``/``'0'`` -> None (no budget). UsageError if malformed."""
    t = str(text).strip().lower().replace(" ", "")
    if t in ("none", "off", "0", "unlimited"):
        return None
    m = re.fullmatch(r"([0-9]+(?:\.[0-9]*)?(?:e[0-9]+)?)([a-z]*)", t)
    if not m or m.group(2) not in _UNITS:
        raise UsageError(f"{MEMORY_BUDGET_ENV}={text!r} is not a size; hint: write bytes or e.g. 500MB, 8GiB, "
                         "or none to switch the memory check off")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def available_memory() -> int | None:
    """Bytes of RAM available now (Linux ``MemAvailable``, else physical pages), None if unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def memory_budget() -> int | None:
    """The memory budget of a command: :data:`MEMORY_BUDGET_ENV` when set, else
    :data:`MEMORY_BUDGET_FRACTION` of :func:`available_memory` (None: no check)."""
    env = os.environ.get(MEMORY_BUDGET_ENV)
    if env is not None and env.strip():
        return parse_bytes(env)
    avail = available_memory()
    return None if avail is None else int(avail * MEMORY_BUDGET_FRACTION)


def memory_budget_source() -> str:
    """Where :func:`memory_budget` comes from, for messages."""
    env = os.environ.get(MEMORY_BUDGET_ENV)
    if env is not None and env.strip():
        return f"{MEMORY_BUDGET_ENV}={env.strip()}"
    return f"{int(MEMORY_BUDGET_FRACTION * 100)} % of the memory available; set {MEMORY_BUDGET_ENV} to change it"


def format_bytes(n: float) -> str:
    """``1.5 GB``-style (powers of 1000)."""
    for unit, f in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if abs(n) >= f:
            return f"{n / f:.1f} {unit}"
    return f"{int(n)} B"
