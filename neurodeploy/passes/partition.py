"""Partition pass: place every population onto Loihi 2 neurocores within the target's limits.

:func:`partition` cuts each population of a :class:`~neurodeploy.ir.Network` into contiguous
slices, one slice per neurocore, so that every core respects the per-core limits of the target
(``targets/<name>.yaml``, section ``limits``), then numbers the cores chip by chip and checks the
chip budget. The result is a :class:`CoreMap` (cores used, synapse memory per core, utilisation of
every limit). A model that cannot fit raises :class:`~neurodeploy.core.errors.CompileError` *at compile
time*, naming the population, the quantity, its value and the limit, with a hint. (Users of Lava
report models that exceed Loihi 2's limits and then hang on the chip without any message,
lava-nc/lava#826; this pass exists so that ours fail early and say why.)

Where the limits come from
--------------------------
All limits are read from ``target.limits``; a missing key means "no limit" for that quantity. The
figures and confidence tags shipped in ``targets/loihi2*.yaml`` are (see
``shared/research/loihi_lava.md`` §1; the comment of each key is copied into
:attr:`CoreMap.limit_sources`):

========================  ===========  ====================================================
key                       value        source [confidence]
========================  ===========  ====================================================
neurons_per_core          8,192        1 M neurons / 128 cores per chip [secondary]
synapse_memory_bits_..    1,048,576    128 KiB; nengo-loihi's Loihi 1 ``MAX_SYNAPSE_BITS``
                                       [loihi1-floor; Loihi 2 reported similar]
fan_in_axons_per_core     4,096        nengo-loihi ``MAX_IN_AXONS`` [loihi1-floor]
fan_out_axons_per_core    4,096        nengo-loihi ``MAX_OUT_AXONS`` [loihi1-floor]
cores_per_chip            120          Lava's mapper, ``NUM_VIRTUAL_CORES_L3`` [code]
chips                     1            the target's board
========================  ===========  ====================================================

Cost model
----------
*Neurons.* A core holds a contiguous slice ``[start, stop)`` of one population. Cores are not
shared between populations: simpler, and what Lava does per process (in the public
``magma/compiler/mapper.py`` every neurocore process builder has its own list of logical cores,
``compiled_resources``; the partitioner that fills it is in Intel's non-public extension). Only
``net.populations`` are placed. Spike sources (stimuli, unexpanded block outputs) run
outside the neurocores (host / embedded CPUs), but their projections still take input axons and
synapse memory on the cores of their targets.

*Input axons (fan-in).* The number of distinct presynaptic neurons, from any population or source,
with at least one synapse onto a neuron of the core. Two projections from the same source share the
axon of a presynaptic neuron.

*Output axons (fan-out).* One output axon per (source neuron of the core, destination core) pair
where the neuron has at least one synapse onto the destination core, over all projections. This is
nengo-loihi's ``axon_slots`` count (one target axon per source compartment and destination block)
except that two projections onto the same core share the axon, as for fan-in.

*Synapse memory.* The Loihi 1 synapse format, as encoded by nengo-loihi's
``SynapseConfig.bits_per_axon`` (research notes §1.5). For one input axon of a core and one
projection, the synapses of that axon onto the core form a synapse list stored in groups of up to
64 synapses; a group of ``n`` synapses costs ::

    ceil((n * (weight_bits + delay_bits + index_bits) + 10) / 64) * 64   bits

(10 header bits: 4 format + 6 count; memory is allocated in 64-bit words). ``index_bits`` is 0 when
the list reaches every neuron of the core exactly once (dense format, "compression 3"), otherwise
the smallest of {6, 7, ..., 12} that addresses the core's neurons (sparse format). Loihi 1's map
stops at 12 bits (4,096 addresses, enough for its 1,024 compartments); for Loihi 2 cores with more
than 4,096 neurons we extrapolate to ``ceil(log2(n))`` = 13 bits. Each projection keeps its own
synapse lists (its own format: weight and delay widths), so an axon shared by two projections pays
two headers.

* ``weight_bits``: bits stored per weight, per projection (after quantization). Default
  ``target.precision["weight_bits"]`` (8) for *every* sign: in the mixed-sign format the sign is one
  of those 8 bits (nengo-loihi ``shift_bits = 8 - weight_bits + is_mixed``; the target YAML's
  "mixed sign spends one"), so a mixed projection has 7 magnitude bits, not 9 stored bits. Change
  :data:`MIXED_SIGN_EXTRA_BITS` to budget an extra sign bit instead.
* ``delay_bits``: ``target.precision["delay_bits"]`` (6) for projections with ``delay_steps > 0``,
  else 0 (the delay is a per-projection constant, so the whole list uses one format).

Splitting
---------
A population is first cut into ``ceil(N / neurons_per_core)`` slices ("regions") of (almost) equal
size. A region whose pieces break the synapse-memory or fan-in limit by a factor ``r`` (worst
piece) is re-cut into ``max(m + 1, ceil(m * r))`` equal pieces instead of its current ``m``, and
the pass repeats until every piece fits (usually 1-3 rounds). Both costs can only fall when a
slice shrinks (fewer synapses per axon, fewer index bits, a dense list stays dense), so this
terminates; a neuron that does not fit on a core of its own cannot be placed at all and is
reported before any splitting. Output axons are additive over a slice's neurons (each neuron's
count of destination cores), so a slice with too many is cut exactly: into the fewest contiguous
pieces that fit, balanced when possible (splitting a population also raises the output axons of
the neurons that project onto it, so this repeats until nothing changes). Finally cores are
numbered population by population and assigned to chips in order: core ``c`` is on chip
``c // cores_per_chip``, the numbering of Lava's mapper (``chip_idx = core_id // num_cores``).

Simplifications
---------------
* The real Loihi 2 per-core memory is one SRAM "flexibly partitioned" between synapses, neuron
  state and routing tables (not public); we budget synapses alone against a Loihi 1-sized floor.
* Neuron state memory, dendritic accumulators, learning tags (plastic projections: pass a larger
  ``weight_bits`` to budget them), shared/convolutional weight formats ("pop16/pop32" axons) and
  graded-spike payloads are not modelled.
* No placement optimisation: populations may straddle chips and inter-chip traffic is not
  minimised (nengo-loihi's ``GreedyInterchip`` / ``PartitionInterchip`` do that).
* Slices are contiguous neuron ranges (nengo-loihi's default sequential split), not a graph
  partitioning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Optional

import numpy as np

from ..core.errors import CompileError
from ..core.io import atomic_write_json
from ..core.targets import Target
from ..ir.nodes import Network, Population, Projection
from ..library import materialize
from ..library.endpoints import endpoints
from ..library.materialize import SynapseData
from .base import Compilation, PassReport
from .estimate import capacity_error, check_target, estimate

__all__ = [
    "CoreMap",
    "CoreInfo",
    "partition",
    "synapse_memory_bits",
    "group_bits",
    "index_bits",
    "LIMIT_KEYS",
    "MIXED_SIGN_EXTRA_BITS",
]

#: Synapses per group of one axon's synapse list (nengo-loihi ``n_synapses + 1``).
GROUP_SIZE = 64
#: Header bits per group: 4 (synapse format index) + 6 (number of synapses).
GROUP_HEADER_BITS = 10
#: Memory is allocated in words of this many bits.
WORD_BITS = 64
assert GROUP_SIZE == WORD_BITS == 64  # group_bits uses shifts by 6
#: Index widths of the sparse format (nengo-loihi ``INDEX_BITS_MAP`` without the dense 0).
MIN_INDEX_BITS = 6
MAX_LOIHI1_INDEX_BITS = 12
#: Extra stored bits for a ``sign: mixed`` projection's weights when ``weight_bits`` is not given.
MIXED_SIGN_EXTRA_BITS = 0

#: The per-core / per-chip limits this pass checks, in ``target.limits``.
LIMIT_KEYS = (
    "neurons_per_core",
    "synapse_memory_bits_per_core",
    "fan_in_axons_per_core",
    "fan_out_axons_per_core",
    "cores_per_chip",
    "chips",
)
#: Utilisation keys of a core, and the limit each is measured against.
_UTIL = {
    "neurons": "neurons_per_core",
    "synapse_memory": "synapse_memory_bits_per_core",
    "fan_in": "fan_in_axons_per_core",
    "fan_out": "fan_out_axons_per_core",
}
_MAX_ROUNDS = 200
#: :func:`partition` checks the estimate (:mod:`neurodeploy.passes.estimate`) before drawing more
#: than this many synapses itself; below, the exact count is cheap and gives the exact message
ESTIMATE_FIRST_ABOVE = 1_000_000


# --------------------------------------------------------------------------------------------
# the cost model


def index_bits(n_core_neurons: int) -> int:
    """Bits of a sparse synapse's target index on a core with ``n_core_neurons`` neurons.

    The smallest of {6, ..., 12} that addresses ``n_core_neurons`` neurons (Loihi 1's format),
    extrapolated to ``ceil(log2(n))`` above 4,096 neurons (13 bits for Loihi 2's 8,192).

    Parameters
    ----------
    n_core_neurons : int
        Neurons on the core (at least 1).

    Returns
    -------
    int
    """
    n = int(n_core_neurons)
    if n < 1:
        raise ValueError(f"a core has at least one neuron, got {n}")
    return max(MIN_INDEX_BITS, (n - 1).bit_length())


def group_bits(n_synapses: np.ndarray | int, bits_per_synapse: np.ndarray | int) -> np.ndarray:
    """Memory (bits) of synapse lists of ``n_synapses`` synapses each, stored in groups of 64.

    Each group of ``n <= 64`` synapses costs ``ceil((n * bits_per_synapse + 10) / 64) * 64`` bits.

    Parameters
    ----------
    n_synapses : array_like of int
        Synapses in each list (0 costs nothing).
    bits_per_synapse : array_like of int
        Weight + delay + index bits of one synapse of each list (broadcast against ``n_synapses``).

    Returns
    -------
    numpy.ndarray of int64
        Bits of each list.
    """
    n = np.asarray(n_synapses, dtype=np.int64)
    b = np.asarray(bits_per_synapse, dtype=np.int64)
    lo, hi = (int(n.min()), int(n.max())) if n.size else (0, 0)
    if lo < 0 or (b < 0).any():
        raise ValueError("synapse counts and bits per synapse must be >= 0")
    if n.ndim == 1 and n.size and lo >= 1 and hi <= GROUP_SIZE:  # one group per list (the usual case)
        out = n * b
        out += GROUP_HEADER_BITS + WORD_BITS - 1
        out >>= 6
        out <<= 6
        return out
    # shifts instead of divisions (GROUP_SIZE == WORD_BITS == 64, all values >= 0): this runs
    # over one entry per (axon, core) list, i.e. up to one per synapse
    full, rem = n >> 6, n & 63
    words_full = (b * GROUP_SIZE + (GROUP_HEADER_BITS + WORD_BITS - 1)) >> 6
    words_rem = (rem * b + (GROUP_HEADER_BITS + WORD_BITS - 1)) >> 6
    words_rem *= rem > 0
    return (full * words_full + words_rem) << 6


def synapse_memory_bits(pre_idx: Iterable[int] | np.ndarray,
                        post_local_idx: Iterable[int] | np.ndarray,
                        n_core_neurons: int, weight_bits: int, delay_bits: int) -> int:
    """Synapse memory (bits) of one synapse format's synapses onto one core.

    A direct implementation of the cost model of this module for one projection and one core
    (the pass itself uses a vectorised version over all cores at once).

    Parameters
    ----------
    pre_idx : array_like of int
        Presynaptic neuron (input axon) of each synapse.
    post_local_idx : array_like of int
        Target neuron of each synapse, numbered on the core: ``0 <= post < n_core_neurons``.
    n_core_neurons : int
        Neurons on the core.
    weight_bits, delay_bits : int
        Stored bits per weight and per delay.

    Returns
    -------
    int
        Bits, a multiple of 64.

    Examples
    --------
    One axon reaching all 4 neurons of a core (dense, 8-bit weights): 4*8 + 10 = 42 bits, one
    64-bit word.

    >>> synapse_memory_bits([0, 0, 0, 0], [0, 1, 2, 3], 4, 8, 0)
    64
    """
    pre = np.asarray(pre_idx, dtype=np.int64).ravel()
    post = np.asarray(post_local_idx, dtype=np.int64).ravel()
    n = int(n_core_neurons)
    if pre.shape != post.shape:
        raise ValueError(f"pre_idx and post_local_idx differ in length ({pre.size} != {post.size})")
    if pre.size == 0:
        return 0
    if n < 1 or post.min() < 0 or post.max() >= n:
        raise ValueError(f"post_local_idx must lie in [0, {n})")
    axons, counts = np.unique(pre, return_counts=True)
    pairs = np.unique(pre * n + post)  # distinct (axon, neuron) pairs
    distinct = np.bincount(np.searchsorted(axons, pairs // n), minlength=axons.size)
    dense = (counts == n) & (distinct == n)
    bits = group_bits(counts, weight_bits + delay_bits + np.where(dense, 0, index_bits(n)))
    return int(bits.sum())


# --------------------------------------------------------------------------------------------
# the result


@dataclass(frozen=True)
class CoreInfo:
    """One neurocore: the slice ``[start, stop)`` of ``population`` it holds and its costs.

    ``utilisation`` maps ``neurons``, ``synapse_memory``, ``fan_in`` and ``fan_out`` to the used
    fraction of the corresponding per-core limit (``None`` where the target sets no limit).
    """

    core: int
    chip: int
    population: str
    start: int
    stop: int
    neurons: int
    synapses: int
    input_axons: int
    output_axons: int
    synapse_memory_bits: int
    utilisation: dict[str, Optional[float]]

    def to_json(self) -> dict[str, Any]:
        return {
            "core": self.core, "chip": self.chip, "population": self.population,
            "start": self.start, "stop": self.stop, "neurons": self.neurons,
            "synapses": self.synapses, "input_axons": self.input_axons,
            "output_axons": self.output_axons, "synapse_memory_bits": self.synapse_memory_bits,
            "utilisation": dict(self.utilisation),
        }


@dataclass(frozen=True)
class CoreMap:
    """Where every population lives on the chip(s), and how full each core is.

    Attributes
    ----------
    target : str
        Target name.
    cores : tuple of CoreInfo
        Every core used, by core id (ids are consecutive from 0).
    populations : dict
        Population name -> tuple of its core ids (in neuron order; a population with 0 neurons
        has none).
    chips_used : int
        Chips holding at least one core.
    limits : dict
        The limits applied (``None``: no limit), keys of :data:`LIMIT_KEYS`.
    limit_sources : dict
        Limit key -> where the figure comes from (the comment in the target file, with its
        confidence tag), or a note that the target sets no such limit.
    projection_bits : dict
        Projection name -> ``{"weight_bits", "delay_bits", "synapses"}`` used by the cost model.
    notes : tuple of str
        Anything the pass assumed that the user should know (e.g. unplaced sources).
    """

    target: str
    cores: tuple[CoreInfo, ...]
    populations: dict[str, tuple[int, ...]]
    chips_used: int
    limits: dict[str, Optional[int]]
    limit_sources: dict[str, str]
    projection_bits: dict[str, dict[str, int]] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def n_cores(self) -> int:
        """Total neurocores used."""
        return len(self.cores)

    @property
    def max_utilisation(self) -> dict[str, Optional[float]]:
        """Largest used fraction of each per-core limit over all cores."""
        return {k: _agg(self.cores, k, max) for k in _UTIL}

    @property
    def mean_utilisation(self) -> dict[str, Optional[float]]:
        """Mean used fraction of each per-core limit over all cores."""
        return {k: _agg(self.cores, k, lambda v: sum(v) / len(v)) for k in _UTIL}

    @property
    def core_capacity(self) -> Optional[int]:
        """``cores_per_chip * chips``, or None when either is unlimited."""
        cpc, chips = self.limits.get("cores_per_chip"), self.limits.get("chips")
        return None if cpc is None or chips is None else cpc * chips

    def population_cores(self, name: str) -> list[CoreInfo]:
        """The cores of population ``name``, in neuron order."""
        return [self.cores[c] for c in self.populations[name]]

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable summary (every core included)."""
        pops = {}
        for name, ids in self.populations.items():
            cs = [self.cores[c] for c in ids]
            pops[name] = {
                "cores": list(ids),
                "neurons": sum(c.neurons for c in cs),
                "synapses": sum(c.synapses for c in cs),
                "peak_utilisation": {k: _agg(cs, k, max) for k in _UTIL},
            }
        return {
            "target": self.target,
            "totals": {
                "cores": self.n_cores,
                "chips_used": self.chips_used,
                "core_capacity": self.core_capacity,
                "neurons": sum(c.neurons for c in self.cores),
                "synapses": sum(c.synapses for c in self.cores),
                "synapse_memory_bits": sum(c.synapse_memory_bits for c in self.cores),
                "max_utilisation": self.max_utilisation,
                "mean_utilisation": self.mean_utilisation,
            },
            "limits": dict(self.limits),
            "limit_sources": dict(self.limit_sources),
            "populations": pops,
            "projections": {k: dict(v) for k, v in self.projection_bits.items()},
            "cores": [c.to_json() for c in self.cores],
            "notes": list(self.notes),
        }

    def save(self, path: str | Path) -> Path:
        """Write :meth:`to_json` to ``path`` atomically."""
        return atomic_write_json(path, self.to_json())

    def table(self) -> str:
        """A compact human-readable summary: one line per population, then totals."""
        def pct(v: Optional[float]) -> str:
            return "-" if v is None else f"{100 * v:.1f}%"

        head = ("population", "neurons", "cores", "max n/core", "peak mem", "peak fan-in",
                "peak fan-out")
        rows = []
        for name, ids in self.populations.items():
            cs = [self.cores[c] for c in ids]
            rows.append((name, str(sum(c.neurons for c in cs)), str(len(cs)),
                         str(max((c.neurons for c in cs), default=0)),
                         pct(_agg(cs, "synapse_memory", max)), pct(_agg(cs, "fan_in", max)),
                         pct(_agg(cs, "fan_out", max))))
        mx = self.max_utilisation
        rows.append(("total", str(sum(c.neurons for c in self.cores)), str(self.n_cores),
                     str(max((c.neurons for c in self.cores), default=0)),
                     pct(mx["synapse_memory"]), pct(mx["fan_in"]), pct(mx["fan_out"])))
        widths = [max(len(r[k]) for r in [head, *rows]) for k in range(len(head))]

        def line(r: tuple[str, ...]) -> str:
            return "  ".join(r[0].ljust(widths[0]) if k == 0 else r[k].rjust(widths[k])
                             for k in range(len(r))).rstrip()

        cap = self.core_capacity
        title = (f"target {self.target}: {self.n_cores} neurocore(s) on {self.chips_used} chip(s)"
                 + (f" (capacity {cap} = {self.limits['cores_per_chip']} x "
                    f"{self.limits['chips']})" if cap is not None else ""))
        mean = self.mean_utilisation
        foot = "mean per core: " + ", ".join(f"{k.replace('_', ' ')} {pct(mean[k])}"
                                             for k in _UTIL)
        out = [title, line(head), *(line(r) for r in rows[:-1]), "-" * len(line(head)),
               line(rows[-1]), foot]
        out += [f"note: {n}" for n in self.notes]
        return "\n".join(out)


def _agg(cores: Iterable[CoreInfo], key: str, fn) -> Optional[float]:
    vals = [c.utilisation[key] for c in cores if c.utilisation.get(key) is not None]
    return float(fn(vals)) if vals else None


# --------------------------------------------------------------------------------------------
# the pass


@dataclass
class _Incoming:
    """One projection's synapses onto a population, sorted by (pre, post)."""

    name: str
    source: str
    n_src: int
    i: np.ndarray
    j: np.ndarray
    dup: Optional[np.ndarray]  # True where a synapse repeats the previous (pre, post) pair
    bits: int  # weight + delay bits per synapse
    src_is_population: bool  # its neurons are on cores (so their output axons count)


@dataclass
class _Eval:
    """Costs of one population's cores for given slice bounds."""

    bounds: np.ndarray
    synapses: np.ndarray
    memory: np.ndarray
    fan_in: np.ndarray
    #: source population -> number of distinct destination cores of each of its neurons
    dest_per_pre: dict[str, np.ndarray]


def partition(net: Network, target: Target, synapses: dict[str, SynapseData] | None = None,
              weight_bits: dict[str, int] | None = None) -> CoreMap:
    """Place every population of ``net`` onto neurocores of ``target``.

    Parameters
    ----------
    net : Network
        An expanded network (blocks are not placed; see the notes of the result).
    target : Target
        Its ``limits`` give the per-core and per-chip limits (missing key: no limit) and its
        ``precision`` the default ``weight_bits`` and ``delay_bits``.
    synapses : dict, optional
        Materialised synapses per projection name; projections missing here are materialised with
        :func:`neurodeploy.library.materialize.synapses`.
    weight_bits : dict, optional
        Stored bits per weight per projection (after quantization); default
        ``target.precision["weight_bits"]`` (+ :data:`MIXED_SIGN_EXTRA_BITS` for mixed sign).

    Returns
    -------
    CoreMap

    Raises
    ------
    CompileError
        A neuron whose fan-in, synapse memory or fan-out exceeds a whole core; or more cores than
        ``cores_per_chip * chips``. The message names the population, the quantity and the limit.
    """
    limits = {k: _limit(target, k) for k in LIMIT_KEYS}
    sources = _limit_sources(target, limits)
    notes: list[str] = []
    pops = [p for p in net.populations]
    pop_by_name = {p.name: p for p in pops}
    npc = limits["neurons_per_core"]

    # 1. cheap lower bounds before any synapse is materialised: neurons, and (from the IR's counts)
    # fan-in and synapse memory (neurodeploy.passes.estimate)
    capacity = _capacity(limits)
    if capacity is not None:
        need = {p.name: _ceil_div(p.size, npc) if npc else (1 if p.size else 0) for p in pops}
        if sum(need.values()) > capacity:
            raise _capacity_error(target, limits, need, {n: "neurons_per_core" for n in need},
                                  lower_bound=True)
    # the exact count below needs the synapses: bound them from the IR's counts first when drawing
    # them would cost (the compile pipeline's estimate pass always does)
    missing = [pr for pr in net.projections if not (synapses and pr.name in synapses)]
    if missing:
        est = estimate(net)
        if sum(p.upper for p in est.projections if p.name in {m.name for m in missing}) > ESTIMATE_FIRST_ABOVE:
            check_target(est, net, target)

    # 2. synapses per target population
    eps = endpoints(net)
    wbits_default = int(target.precision.get("weight_bits", 8))
    dbits_default = int(target.precision.get("delay_bits", 0))
    unknown = sorted(set(weight_bits or ()) - {pr.name for pr in net.projections})
    if unknown:
        raise ValueError(f"weight_bits names no projection of '{net.name}': {', '.join(unknown)}")
    incoming: dict[str, list[_Incoming]] = {p.name: [] for p in pops}
    proj_bits: dict[str, dict[str, int]] = {}
    for proj in net.projections:
        if proj.target not in pop_by_name:
            raise ValueError(f"projection '{proj.name}' targets '{proj.target}', not a population")
        sd = synapses.get(proj.name) if synapses else None
        if sd is None:
            sd = materialize.synapses(net, proj)
        wb = _weight_bits(proj, weight_bits, wbits_default)
        db = dbits_default if int(sd.delay_steps) > 0 else 0
        src_size = (eps[proj.source].size if proj.source in eps
                    else int(np.max(sd.i, initial=-1)) + 1)
        inc = _prepare(proj, sd, src_size, pop_by_name[proj.target].size, wb + db,
                       proj.source in pop_by_name)
        incoming[proj.target].append(inc)
        proj_bits[proj.name] = {"weight_bits": wb, "delay_bits": db, "synapses": int(inc.i.size)}
    off_core = sorted({pr.source for pr in net.projections if pr.source not in pop_by_name})
    if off_core:
        notes.append("spike sources outside the neurocores (host/embedded CPUs), counted as input "
                     "axons of their targets' cores: " + ", ".join(off_core))
    if net.blocks:
        notes.append("unexpanded blocks are not placed: " + ", ".join(b.name for b in net.blocks))

    # 3. fit each population as a target (neurons, synapse memory, fan-in)
    evals: dict[str, _Eval] = {}
    for p in pops:
        if p.size == 0:
            continue
        _check_single_neurons(p, incoming[p.name], limits, target)
        evals[p.name] = _fit(p, incoming[p.name], _initial_bounds(p.size, npc), limits, target)

    # 4. fan-out: split source slices that send to too many (neuron, core) pairs
    out_lim = limits["fan_out_axons_per_core"]
    for _ in range(_MAX_ROUNDS):
        if out_lim is None:
            break
        dest = _dest_totals(evals, pop_by_name)
        changed = False
        for name, ev in list(evals.items()):
            w = dest[name]
            if not (np.add.reduceat(w, ev.bounds[:-1]) > out_lim).any():
                continue
            worst = int(np.argmax(w))
            if w[worst] > out_lim:
                raise CompileError(
                    f"population '{name}': neuron {worst} sends spikes to {int(w[worst])} "
                    f"neurocores (fan-out: one output axon per destination core), above "
                    f"fan_out_axons_per_core = {out_lim} on target '{target.name}', so it does not "
                    f"fit a neurocore even alone. hint: reduce the connection probability or the "
                    f"size of the populations it projects to, so that its targets occupy fewer "
                    f"cores")
            new = _additive_split(ev.bounds, w, out_lim)
            evals[name] = _fit(pop_by_name[name], incoming[name], new, limits, target)
            changed = True
        if not changed:
            break
    else:  # pragma: no cover - would need a pathological network
        raise CompileError(f"fan-out splitting did not converge in {_MAX_ROUNDS} rounds on "
                           f"target '{target.name}'")
    out_axons = _fan_out(evals, pop_by_name)

    # 5. number the cores, check the chip budget
    n_cores = {n: len(ev.bounds) - 1 for n, ev in evals.items()}
    if capacity is not None and sum(n_cores.values()) > capacity:
        binding = {n: _binding_limit(ev, out_axons[n], limits) for n, ev in evals.items()}
        raise _capacity_error(target, limits, n_cores, binding, lower_bound=False)
    return _build_map(target, pops, evals, out_axons, limits, sources, proj_bits, notes)


# ---- preparation


def _limit(target: Target, key: str) -> Optional[int]:
    v = target.limits.get(key)
    if v is None:
        return None
    v = int(v)
    if v < 1:
        raise ValueError(f"target '{target.name}': limit {key} must be at least 1, got {v}")
    return v


def _limit_sources(target: Target, limits: Mapping[str, Optional[int]]) -> dict[str, str]:
    """The comment after each limit in the target file (its source and confidence tag)."""
    comments: dict[str, str] = {}
    try:
        text = Path(target.path).read_text(encoding="utf-8") if target.path else ""
    except OSError:
        text = ""
    for m in re.finditer(r"^\s+([A-Za-z_]\w*)\s*:[^#\n]*#\s*(.*?)\s*$", text, flags=re.M):
        comments.setdefault(m.group(1), m.group(2))
    out = {}
    where = target.path or target.name
    for k, v in limits.items():
        if v is None:
            out[k] = "not set by the target: no limit"
        else:
            out[k] = comments.get(k) or f"{where} (no source given)"
    return out


def _capacity(limits: Mapping[str, Optional[int]]) -> Optional[int]:
    cpc, chips = limits["cores_per_chip"], limits["chips"]
    return None if cpc is None or chips is None else cpc * chips


def _ceil_div(a: int, b: int) -> int:
    return -(-int(a) // int(b))


def _weight_bits(proj: Projection, given: Optional[Mapping[str, int]], default: int) -> int:
    if given and proj.name in given:
        wb = int(given[proj.name])
    else:
        wb = default + (MIXED_SIGN_EXTRA_BITS if proj.sign == "mixed" else 0)
    if wb < 0:
        raise ValueError(f"projection '{proj.name}': weight_bits must be >= 0, got {wb}")
    return wb


def _prepare(proj: Projection, sd: SynapseData, n_src: int, n_tgt: int, bits: int,
             src_is_population: bool) -> _Incoming:
    """Check index ranges and sort the synapses by (pre, post) (a no-op check if already so)."""
    i = np.asarray(sd.i)
    j = np.asarray(sd.j)
    if i.shape != j.shape or i.ndim != 1:
        raise ValueError(f"projection '{proj.name}': synapse arrays i and j must be 1-D and "
                         f"of equal length")
    if i.size:
        if int(i.min()) < 0 or int(i.max()) >= n_src:
            raise ValueError(f"projection '{proj.name}': presynaptic index out of [0, {n_src})")
        if int(j.min()) < 0 or int(j.max()) >= n_tgt:
            raise ValueError(f"projection '{proj.name}': postsynaptic index out of [0, {n_tgt})")
    # compact indices stay as they are (int32 from materialize: no int64 copy of every synapse);
    # only the sort key needs 64 bits
    idx = np.int32 if max(n_src, n_tgt) <= 2**31 - 1 else np.int64
    i = i.astype(idx if i.dtype.kind in "iu" and i.dtype.itemsize <= 4 else np.int64, copy=False)
    j = j.astype(idx if j.dtype.kind in "iu" and j.dtype.itemsize <= 4 else np.int64, copy=False)
    dup = None
    if i.size > 1:
        key = i.astype(np.int64)
        key *= n_tgt
        key += j
        step = np.diff(key)
        if (step < 0).any():
            order = np.argsort(key, kind="stable")
            i, j, key = i[order], j[order], key[order]
            del order
            step = np.diff(key)
        if not step.all():  # repeated (pre, post) pairs: these cannot use the dense format
            dup = np.concatenate(([False], step == 0))
        del key, step
    return _Incoming(proj.name, proj.source, n_src, i, j, dup, bits, src_is_population)


def _initial_bounds(n: int, npc: Optional[int]) -> np.ndarray:
    k = _ceil_div(n, npc) if npc else 1
    return _even_bounds(0, n, k)


def _even_bounds(start: int, stop: int, k: int) -> np.ndarray:
    """``k + 1`` bounds cutting ``[start, stop)`` into ``k`` slices whose sizes differ by <= 1."""
    n = stop - start
    k = max(1, min(k, n))
    q, r = divmod(n, k)
    sizes = np.full(k, q, dtype=np.int64)
    sizes[:r] += 1
    return np.concatenate(([start], start + np.cumsum(sizes)))


def _additive_split(bounds: np.ndarray, w: np.ndarray, limit: int) -> np.ndarray:
    """Cut every slice whose summed per-neuron cost ``w`` exceeds ``limit`` into the fewest
    contiguous pieces that respect it (balanced when that works, else greedy)."""
    parts = []
    for c in range(len(bounds) - 1):
        a, b = int(bounds[c]), int(bounds[c + 1])
        cum = np.concatenate(([0], np.cumsum(w[a:b])))
        if cum[-1] <= limit:
            parts.append(np.array([a]))
            continue
        greedy = [0]
        while greedy[-1] < b - a:  # each piece as long as the limit allows (w <= limit each)
            greedy.append(int(np.searchsorted(cum, cum[greedy[-1]] + limit, side="right")) - 1)
        m = len(greedy) - 1
        cuts = np.searchsorted(cum, cum[-1] * np.arange(1, m) / m, side="right") - 1
        even = np.concatenate(([0], cuts, [b - a]))
        if (np.diff(even) > 0).all() and (np.diff(cum[even]) <= limit).all():
            parts.append(a + even[:-1])
        else:
            parts.append(a + np.asarray(greedy[:-1]))
    parts.append(bounds[-1:])
    return np.concatenate(parts).astype(np.int64)


# ---- evaluation


def _evaluate(incoming: list[_Incoming], bounds: np.ndarray) -> _Eval:
    """Synapses, synapse memory and input axons of each core for the slices ``bounds``."""
    bounds = np.asarray(bounds, dtype=np.int64)
    sizes = np.diff(bounds)
    k = sizes.size
    core_of = np.repeat(np.arange(k, dtype=np.int32), sizes)
    ibits = np.array([index_bits(s) for s in sizes], dtype=np.int64)
    syn = np.zeros(k, dtype=np.int64)
    mem = np.zeros(k, dtype=np.int64)
    keys: dict[str, list[np.ndarray]] = {}
    for inc in incoming:
        m = inc.i.size
        if m == 0:
            continue
        c = core_of[inc.j]
        new = np.empty(m, dtype=bool)
        new[0] = True
        np.not_equal(inc.i[1:], inc.i[:-1], out=new[1:])
        new[1:] |= c[1:] != c[:-1]
        starts = np.flatnonzero(new)
        del new
        counts = np.diff(np.append(starts, m))
        gc = c[starts].astype(np.int64)
        del c
        dense = counts == sizes[gc]
        if inc.dup is not None:
            dense &= np.add.reduceat(inc.dup.astype(np.int64), starts) == 0
        bits = group_bits(counts, inc.bits + np.where(dense, 0, ibits[gc]))
        mem += np.bincount(gc, weights=bits, minlength=k).astype(np.int64)
        syn += np.bincount(gc, weights=counts, minlength=k).astype(np.int64)
        keys.setdefault(inc.source, []).append((inc.i[starts], gc))
    fan_in = np.zeros(k, dtype=np.int64)
    dest: dict[str, np.ndarray] = {}
    n_src = {inc.source: inc.n_src for inc in incoming}
    on_core = {inc.source for inc in incoming if inc.src_is_population}
    for src, ks in keys.items():
        if len(ks) == 1:  # one projection: its (pre, core) runs are distinct already
            pre, core = ks[0]
        else:  # (pre, core) pairs of several projections from one source, distinct
            pairs = np.unique(np.concatenate([p.astype(np.int64) * k + g for p, g in ks]))
            pre, core = pairs // k, pairs % k
        fan_in += np.bincount(core, minlength=k)
        if src in on_core:
            dest[src] = np.bincount(pre, minlength=n_src[src])
    return _Eval(bounds, syn, mem, fan_in, dest)


def _ratios(ev: _Eval, limits: Mapping[str, Optional[int]]) -> np.ndarray:
    """Worst used/limit ratio of each core over neurons, synapse memory and fan-in."""
    r = np.zeros(len(ev.bounds) - 1)
    for used, key in ((np.diff(ev.bounds), "neurons_per_core"),
                      (ev.memory, "synapse_memory_bits_per_core"),
                      (ev.fan_in, "fan_in_axons_per_core")):
        lim = limits[key]
        if lim is not None:
            r = np.maximum(r, used / lim)
    return r



def _fit(pop: Population, incoming: list[_Incoming], regions: np.ndarray,
         limits: Mapping[str, Optional[int]], target: Target) -> _Eval:
    """Split each slice (region) of ``regions`` into equal pieces until all fit the neuron,
    memory and fan-in limits; a region with pieces over a limit by a factor ``r`` is re-cut into
    ``max(m + 1, ceil(m * r))`` pieces instead of its ``m``."""
    regions = np.asarray(regions, dtype=np.int64)
    size = np.diff(regions)
    m = np.ones(size.size, dtype=np.int64)
    for _ in range(_MAX_ROUNDS):
        bounds = np.concatenate([_even_bounds(int(regions[k]), int(regions[k + 1]), int(m[k]))[:-1]
                                 for k in range(size.size)] + [regions[-1:]])
        ev = _evaluate(incoming, bounds)
        r = _ratios(ev, limits)
        if not (r > 1).any():
            return ev
        single = (np.diff(bounds) == 1) & (r > 1)
        if single.any():  # not reached after _check_single_neurons; kept as a guard
            c = int(np.flatnonzero(single)[0])
            raise _neuron_error(pop, int(bounds[c]), int(ev.fan_in[c]), int(ev.memory[c]), 1,
                                limits, target, incoming)
        first = np.concatenate(([0], np.cumsum(m)[:-1]))  # first piece of each region
        rmax = np.maximum.reduceat(r, first)
        bad = rmax > 1
        grow = np.maximum(m + 1, np.ceil(m * rmax).astype(np.int64))
        m = np.where(bad, np.minimum(size, grow), m)
    raise CompileError(f"population '{pop.name}': splitting did not converge in {_MAX_ROUNDS} "
                       f"rounds on target '{target.name}'")  # pragma: no cover


def _check_single_neurons(pop: Population, incoming: list[_Incoming],
                          limits: Mapping[str, Optional[int]], target: Target) -> None:
    """Raise if some neuron of ``pop`` does not fit a core even alone (fan-in or memory)."""
    fin, mlim = limits["fan_in_axons_per_core"], limits["synapse_memory_bits_per_core"]
    if (fin is None and mlim is None) or not incoming:
        return
    n = pop.size
    count = np.zeros(n, dtype=np.int64)
    mem_bound = np.zeros(n, dtype=np.int64)
    for inc in incoming:
        b = np.bincount(inc.j, minlength=n)
        count += b
        # upper bound of a lone neuron's memory: every synapse in a list of its own
        mem_bound += b * int(group_bits(1, inc.bits + MIN_INDEX_BITS))
    flagged = np.zeros(n, dtype=bool)
    if fin is not None:
        flagged |= count > fin  # fan-in <= synapses
    if mlim is not None:
        flagged |= mem_bound > mlim
    if not flagged.any():
        return
    f = np.flatnonzero(flagged)
    bounds = np.unique(np.concatenate(([0, n], f, f + 1)))
    ev = _evaluate(incoming, bounds)  # the flagged neurons alone on a core each
    c = np.searchsorted(bounds, f)
    ratio = np.zeros(f.size)
    if fin is not None:
        ratio = np.maximum(ratio, ev.fan_in[c] / fin)
    if mlim is not None:
        ratio = np.maximum(ratio, ev.memory[c] / mlim)
    bad = ratio > 1
    if bad.any():
        w = int(np.argmax(ratio))
        raise _neuron_error(pop, int(f[w]), int(ev.fan_in[c[w]]), int(ev.memory[c[w]]),
                            int(bad.sum()), limits, target, incoming)


def _neuron_error(pop: Population, neuron: int, fan_in: int, memory: int, n_bad: int,
                  limits: Mapping[str, Optional[int]], target: Target,
                  incoming: list[_Incoming]) -> CompileError:
    fin, mlim = limits["fan_in_axons_per_core"], limits["synapse_memory_bits_per_core"]
    contrib = sorted(((int(np.count_nonzero(inc.j == neuron)), inc) for inc in incoming),
                     key=lambda t: -t[0])
    nsyn = sum(k for k, _ in contrib)
    by = ", ".join(f"'{inc.name}' from '{inc.source}' {k}" for k, inc in contrib[:3] if k)
    others = f"; {n_bad} neuron(s) of '{pop.name}' exceed it" if n_bad > 1 else ""
    if fin is not None and fan_in > fin:
        return CompileError(
            f"population '{pop.name}': neuron {neuron} has fan-in {fan_in} (distinct presynaptic "
            f"neurons), above fan_in_axons_per_core = {fin} on target '{target.name}', so it does "
            f"not fit a neurocore even alone{others}. Synapses onto it: {by}. hint: reduce the "
            f"connection probability or the size of the populations projecting onto '{pop.name}'")
    return CompileError(
        f"population '{pop.name}': neuron {neuron} alone needs {memory} bits of synapse memory "
        f"({nsyn} synapses), above synapse_memory_bits_per_core = {mlim} on target "
        f"'{target.name}', so it does not fit a neurocore{others}. Synapses onto it: {by}. hint: "
        f"reduce the connection probability or the weight precision (weight_bits), or drop "
        f"synaptic delays (each costs delay_bits per synapse)")


def _dest_totals(evals: Mapping[str, _Eval], pop_by_name: Mapping[str, Population]
                 ) -> dict[str, np.ndarray]:
    """Per source population: destination cores each of its neurons sends to."""
    tot = {n: np.zeros(pop_by_name[n].size, dtype=np.int64) for n in evals}
    for ev in evals.values():
        for src, d in ev.dest_per_pre.items():
            if src in tot:
                tot[src] += d
    return tot


def _fan_out(evals: Mapping[str, _Eval], pop_by_name: Mapping[str, Population]
             ) -> dict[str, np.ndarray]:
    """Output axons of every core: summed (neuron, destination core) pairs of its slice."""
    tot = _dest_totals(evals, pop_by_name)
    return {n: np.add.reduceat(tot[n], ev.bounds[:-1]) for n, ev in evals.items()}


def _binding_limit(ev: _Eval, out: np.ndarray, limits: Mapping[str, Optional[int]]) -> str:
    """The per-core limit closest to full over a population's cores."""
    best, key = -1.0, "neurons_per_core"
    for used, k in ((np.diff(ev.bounds), "neurons_per_core"),
                    (ev.memory, "synapse_memory_bits_per_core"),
                    (ev.fan_in, "fan_in_axons_per_core"), (out, "fan_out_axons_per_core")):
        lim = limits[k]
        if lim is not None and used.size and used.max() / lim > best:
            best, key = float(used.max() / lim), k
    return key


def _capacity_error(target: Target, limits: Mapping[str, Optional[int]], need: Mapping[str, int],
                    binding: Mapping[str, str], lower_bound: bool) -> CompileError:
    return capacity_error(f"target '{target.name}'", limits["cores_per_chip"], limits["chips"],
                          dict(need), dict(binding), lower_bound)


def _build_map(target: Target, pops: list[Population], evals: Mapping[str, _Eval],
               out_axons: Mapping[str, np.ndarray], limits: Mapping[str, Optional[int]],
               sources: dict[str, str], proj_bits: dict[str, dict[str, int]],
               notes: list[str]) -> CoreMap:
    cpc = limits["cores_per_chip"]

    def frac(used: int, key: str) -> Optional[float]:
        lim = limits[key]
        return None if lim is None else used / lim

    cores: list[CoreInfo] = []
    where: dict[str, tuple[int, ...]] = {}
    for p in pops:
        ev = evals.get(p.name)
        if ev is None:
            where[p.name] = ()
            continue
        ids = []
        for c in range(len(ev.bounds) - 1):
            cid = len(cores)
            a, b = int(ev.bounds[c]), int(ev.bounds[c + 1])
            used = {"neurons": b - a, "synapse_memory": int(ev.memory[c]),
                    "fan_in": int(ev.fan_in[c]), "fan_out": int(out_axons[p.name][c])}
            cores.append(CoreInfo(
                core=cid, chip=cid // cpc if cpc else 0, population=p.name, start=a, stop=b,
                neurons=b - a, synapses=int(ev.synapses[c]), input_axons=used["fan_in"],
                output_axons=used["fan_out"], synapse_memory_bits=used["synapse_memory"],
                utilisation={k: frac(used[k], lim) for k, lim in _UTIL.items()}))
            ids.append(cid)
        where[p.name] = tuple(ids)
    return CoreMap(target=target.name, cores=tuple(cores), populations=where,
                   chips_used=len({c.chip for c in cores}), limits=dict(limits),
                   limit_sources=sources, projection_bits=proj_bits, notes=tuple(notes))


class Partition:
    """The partition pass, for targets with per-core limits (``neurons_per_core``): the core map.
    Also checks the target's delay limit (``max_delay_steps``) on the target's part."""

    name = "partition"
    requires = ("lowered", "part")
    provides = ("coremap",)

    def run(self, c: Compilation) -> PassReport:
        t, net, low = c.target, c.part, c.lowered
        max_delay = t.limits.get("max_delay_steps")
        if max_delay is not None:
            for pr in net.projections:
                d = materialize.delay_steps(pr.delay, net.simulation.dt)
                if d > max_delay:
                    raise CompileError(
                        f"projection '{pr.name}': delay of {d} steps exceeds target '{t.name}''s limit of "
                        f"{max_delay} steps (max_delay_steps, 6 delay bits); shorten the delay or use a larger dt")
        if not t.limits.get("neurons_per_core"):
            return PassReport(self.name, f"target '{t.name}' has no per-core limits: nothing to partition")
        syn = {name: SynapseData(p.i, p.j, p.w_si, p.delay_steps, 1.0) for name, p in low.projections.items()}
        c.coremap = partition(net, t, synapses=syn)
        return PassReport(self.name, f"{c.coremap.n_cores} core(s) on {c.coremap.chips_used} chip(s)",
                          c.coremap.to_json())
