"""Which Brian2 code generation target a run uses (``--codegen auto``), and whether Cython's
compiled code for a network's structure is already cached.

Cython is 2-8x faster than numpy per simulated step, but the first run of a new model structure
compiles every code object (80-115 s on 2 cores for the shipped models; a 1-neuron NIR import
took 114 s). ``auto`` therefore estimates both and picks the cheaper one:

* numpy:  ``steps * (NUMPY_PER_OBJECT * objects + NUMPY_PER_NEURON * neurons + NUMPY_PER_EVENT * events)``
* Cython: the same with Cython's constants, plus :data:`COMPILE_S` when the structure is not cached
  (a cache hit costs about a second of loading).

``events`` is the expected number of synaptic deliveries per step (synapses x an assumed
:data:`ASSUMED_RATE_HZ` x dt). The constants come from ``benchmarks/brian2_ei.py`` and
``benchmarks/backends.py`` on the 2-core development machine (README "Measured"); they are an
estimate, stated as one in the run line.

Whether a structure is cached: Brian2 names each compiled module by a hash of its generated
code, which only exists once Brian2 has generated it. neurodeploy keeps its own record instead:
after a Cython run it writes ``<cache>/brian2_cython/<key>.json`` listing the modules the run
loaded, where ``key`` hashes the network's structure (:func:`structure_key`: the IR with every
number replaced by "zero" / "non-zero", names, models and rules kept, plus the Brian2, Cython,
numpy and Python versions). A structure counts as cached when its record exists and every module
it lists is still on disk (so ``brian2.clear_cache('cython')`` invalidates it). ``<cache>`` is
``$NEURODEPLOY_CACHE``, else ``$XDG_CACHE_HOME/neurodeploy``, else ``~/.cache/neurodeploy``. The
key is a heuristic: a change that alters Brian2's generated code without changing the abstracted
IR would be reported as cached and compile anyway (the result's ``options`` record how many
modules were actually compiled).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from ...core.io import atomic_write_text
from ...ir.nodes import Network
from ...ir.serialize import to_dict

#: seconds Cython takes to compile a new structure (measured 80-115 s on 2 cores)
COMPILE_S = 90.0
#: seconds to load an already compiled structure
CACHED_LOAD_S = 1.0
#: per step and code object (Brian2's per-object Python overhead), s
NUMPY_PER_OBJECT, CYTHON_PER_OBJECT = 5e-6, 1.2e-6
#: per step and neuron, s
NUMPY_PER_NEURON, CYTHON_PER_NEURON = 15e-9, 2e-9
#: per synaptic event (a delivery), s
NUMPY_PER_EVENT, CYTHON_PER_EVENT = 50e-9, 10e-9
#: firing rate assumed for the number of synaptic events per step
ASSUMED_RATE_HZ = 20.0

COMPILING_MESSAGE = "compiling with Cython (first run of this structure; cached afterwards)"


@dataclass(frozen=True)
class Size:
    """What the cost estimate needs from a network."""

    steps: int
    dt: float
    neurons: int
    synapses: int
    code_objects: int


@dataclass(frozen=True)
class Decision:
    """The code generation target a run uses and why (the run line says ``reason``)."""

    codegen: str  # "cython" | "numpy"
    reason: str
    compiles: bool = False  # Cython will compile this structure first (not cached)
    numpy_s: float | None = None  # estimated run time in numpy
    cython_s: float | None = None  # estimated run time in Cython, compilation included

    def describe(self) -> str:
        return f"Brian2 code generation: {self.codegen} ({self.reason})"


def cython_available() -> tuple[bool, str]:
    """Whether Cython and a C compiler are present (and which is missing if not)."""
    if importlib.util.find_spec("Cython") is None:
        return False, "Cython is not installed"
    if not (shutil.which("cc") or shutil.which("gcc")):
        return False, "no C compiler"
    return True, ""


def size_of(net: Network) -> Size:
    """Neurons, expected synapses and Brian2 code objects of ``net`` (no arrays are built)."""
    sizes = {p.name: p.size for p in net.populations} | {s.name: getattr(s, "size", 0) or 0 for s in net.stimuli}
    neurons = sum(p.size for p in net.populations)
    synapses, objects = 0, 0
    for pr in net.projections:
        n_pre, n_post = sizes.get(pr.source, 0), sizes.get(pr.target, 0)
        c = pr.connectivity
        if c.kind == "one_to_one":
            synapses += min(n_pre, n_post)
        elif c.kind == "random":
            synapses += int((c.p or 0.0) * n_pre * n_post)
        elif c.kind == "sparse" and c.i is not None:
            synapses += len(c.i)
        elif c.kind == "sparse":
            synapses += max(n_pre, n_post)  # pairs from a file: not read here
        else:
            synapses += n_pre * n_post
        # pre pathway (push + synapses code), post pathway and the learning step when plastic
        objects += 2 + (3 if pr.plasticity is not None else 0)
    objects += 3 * len(net.populations) + len(net.stimuli) + len(net.probes) + len(net.populations)
    return Size(net.simulation.steps, net.simulation.dt, neurons, synapses, max(objects, 1))


def estimate(size: Size) -> tuple[float, float]:
    """Estimated seconds per run in numpy and in Cython (compilation not included)."""
    events = size.synapses * ASSUMED_RATE_HZ * size.dt
    numpy_step = NUMPY_PER_OBJECT * size.code_objects + NUMPY_PER_NEURON * size.neurons + NUMPY_PER_EVENT * events
    cython_step = CYTHON_PER_OBJECT * size.code_objects + CYTHON_PER_NEURON * size.neurons + CYTHON_PER_EVENT * events
    return size.steps * numpy_step, size.steps * cython_step


def _s(x: float) -> str:
    return f"{x:.0f} s" if x >= 10 else f"{x:.1f} s"


def decide(requested: str, size: Size | None, *, cached: bool, cython_ok: bool = True,
           missing: str = "", compile_s: float = COMPILE_S) -> Decision:
    """The code generation target for ``requested`` (``auto`` | ``cython`` | ``numpy``).

    ``auto``: numpy when Cython or a compiler is missing; Cython when this structure is cached;
    otherwise whichever of "numpy run" and "Cython compile + Cython run" is estimated faster
    (``size`` None: Cython, as before this estimate existed)."""
    if requested == "numpy":
        return Decision("numpy", "requested")
    if requested == "cython":
        if cached:
            return Decision("cython", "requested; compiled code for this structure is cached")
        return Decision("cython", f"requested; compiles this structure first, ~{_s(compile_s)}, cached afterwards",
                        compiles=True)
    if requested != "auto":
        raise ValueError(f"unknown code generation target {requested!r}")
    if not cython_ok:
        return Decision("numpy", f"auto: {missing or 'Cython unavailable'}")
    if cached:
        return Decision("cython", "auto: compiled code for this structure is cached")
    if size is None:
        return Decision("cython", f"auto: compiles this structure first, ~{_s(compile_s)}", compiles=True)
    t_np, t_cy = estimate(size)
    t_cy_total = compile_s + t_cy
    if t_np <= t_cy_total:
        return Decision("numpy", f"auto: ~{_s(t_np)} estimated in numpy vs ~{_s(compile_s)} to compile Cython "
                                 f"for this structure first; --codegen cython to compile anyway",
                        numpy_s=t_np, cython_s=t_cy_total)
    return Decision("cython", f"auto: ~{_s(t_np)} estimated in numpy vs ~{_s(compile_s)} compile + "
                              f"~{_s(t_cy)} in Cython; cached afterwards",
                    compiles=True, numpy_s=t_np, cython_s=t_cy_total)


# --- the record of compiled structures ----------------------------------------------------------

def cache_dir() -> Path:
    root = os.environ.get("NEURODEPLOY_CACHE")
    if root:
        return Path(root) / "brian2_cython"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "neurodeploy" / "brian2_cython"


def _abstract(x):
    """The IR with every number replaced by whether it is zero (structure, not values)."""
    if isinstance(x, bool) or x is None or isinstance(x, str):
        return x
    if isinstance(x, (int, float)):
        return "0" if x == 0 else "#"
    if isinstance(x, dict):
        return {k: _abstract(v) for k, v in sorted(x.items())}
    if isinstance(x, (list, tuple)):
        return "[array]" if len(x) > 8 and all(isinstance(v, (int, float)) for v in x) else [_abstract(v) for v in x]
    return repr(type(x))


def _version(pkg: str) -> str:
    try:
        return metadata.version(pkg)
    except metadata.PackageNotFoundError:
        return "-"


def structure_key(net: Network, poisson: str = "shared") -> str:
    """A hash of what determines Brian2's generated code for ``net`` (see the module docstring)."""
    d = to_dict(net)
    d.pop("name", None)
    d.pop("probes", None)
    d["probes"] = [(p.target, p.variable, p.indices is None, p.period is None) for p in net.probes]
    sig = {"net": _abstract(d), "poisson": poisson, "python": sys.version_info[:2], "executable": sys.executable,
           "versions": [_version(p) for p in ("brian2", "Cython", "numpy")]}
    return hashlib.sha256(json.dumps(sig, sort_keys=True, default=str).encode()).hexdigest()[:24]


def is_cached(key: str) -> bool:
    """Whether a Cython run of this structure was recorded and its compiled modules still exist."""
    path = cache_dir() / f"{key}.json"
    try:
        modules = json.loads(path.read_text()).get("modules", [])
    except (OSError, ValueError, AttributeError):
        return False
    return bool(modules) and all(os.path.exists(m) for m in modules)


def record(key: str, modules: list[str]) -> None:
    """Remember that this structure's compiled modules are ``modules`` (never raises: a cache
    that cannot be written only means the next run estimates again)."""
    if not modules:
        return
    try:
        d = cache_dir()
        d.mkdir(parents=True, exist_ok=True)
        atomic_write_text(d / f"{key}.json", json.dumps({"modules": sorted(set(modules))}, indent=1))
    except OSError:
        pass


def compiled_modules(network) -> list[str]:
    """The files of the Cython modules a ``brian2.Network`` loaded (empty for numpy)."""
    objects = list(getattr(network, "objects", []))
    if hasattr(network, "sorted_objects"):  # with the contained objects (state updaters, thresholders, ...)
        objects = network.sorted_objects
    out = []
    for obj in objects:
        for co in getattr(obj, "_code_objects", None) or []:
            for mod in (getattr(co, "compiled_code", None) or {}).values():
                f = getattr(mod, "__file__", None)
                if f:
                    out.append(os.path.abspath(f))
    return out
