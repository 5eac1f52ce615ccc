"""Resource estimate: what a network needs, from the IR's counts alone, before anything is drawn.

Every command that materialises synapses (``compile``, ``run``/``validate`` on every backend, the
hybrid Lava + torch run) first calls this module, so a model over the target's limits or over the
memory budget fails in well under a second, naming the limit, instead of drawing 10^8 synapses
and being killed. The counts come from the IR (:func:`neurodeploy.library.materialize.synapse_counts`):
population sizes, the connectivity kind and ``p``, listed pairs, probes x steps.

Two kinds of bound, used for two kinds of decision:

* **lower bounds** refuse a model on a target's limits (``targets/<name>.yaml``): the synapses and
  the fan-in a ``random`` projection has with overwhelming probability (mean - 7 sigma of its
  binomial count), so a model that would fit is never refused here; the exact check stays in the
  partition pass;
* **upper bounds** (mean + 7 sigma) size the memory a command will hold, checked against the
  memory budget (:func:`neurodeploy.core.limits.memory_budget`: ``NEURODEPLOY_MEMORY_BUDGET``, else
  90 % of the RAM available when the command starts).

The per-synapse costs below are peak bytes measured per command (``benchmarks/compile.py``,
``docs/running.md`` "Memory bounds"); they are budgets, not promises, and err high.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..core.errors import CompileError
from ..core.limits import format_bytes, memory_budget, memory_budget_source
from ..core.targets import Target
from ..ir.nodes import Network
from ..library.endpoints import endpoints
from ..library.materialize import SynapseCount, synapse_counts

#: peak bytes held per synapse while a command builds its model (measured, rounded up; see docs)
BYTES_PER_SYNAPSE = {
    "compile": 128,  # draw (int32 i, j + float64 w), lowering (CSR), quantize, partition, the .npz
    "brian2": 200,  # not measured here (conservative): Brian2 synapse arrays, code-object copies, spike queue
    "torch": 64,  # the draw plus the CSR / dense matrix of the fallback
    "lava": 96,  # the draw, the lowering, Lava's Sparse / Dense weight matrices
    "reference": 64,
}
#: bytes per neuron (state, parameters, buffers) for every command: generous
BYTES_PER_NEURON = 512
#: bytes per recorded value (float64)
BYTES_PER_SAMPLE = 8
#: the part of a fixed-size budget any run needs (interpreter, numpy, the backend's imports)
BASE_BYTES = 0


@dataclass
class Estimate:
    """What ``net`` needs, from its counts: neurons, synapses per projection (expected, lower and
    upper bounds, fan-in bounds) and bytes of recordings."""

    network: str
    neurons: int
    populations: dict[str, int]
    projections: list[SynapseCount] = field(default_factory=list)
    record_values: int = 0  # values the probes of state variables / weights hold
    steps: int = 0

    @property
    def synapses_expected(self) -> float:
        return sum(p.expected for p in self.projections)

    @property
    def synapses_upper(self) -> int:
        return sum(p.upper for p in self.projections)

    @property
    def synapses_lower(self) -> int:
        return sum(p.lower for p in self.projections)

    def memory_bytes(self, command: str, trials: int = 1) -> int:
        """Peak bytes ``command`` (``compile`` or a backend name) holds, from the upper bounds;
        ``trials`` runs at once (a batch) hold their own states and recordings."""
        per = BYTES_PER_SYNAPSE.get(command, max(BYTES_PER_SYNAPSE.values()))
        rec = 0 if command == "compile" else self.record_values * BYTES_PER_SAMPLE
        return BASE_BYTES + per * self.synapses_upper + max(1, trials) * (BYTES_PER_NEURON * self.neurons + rec)

    def to_json(self) -> dict:
        return {"network": self.network, "neurons": self.neurons,
                "synapses": {"expected": self.synapses_expected, "lower": self.synapses_lower,
                             "upper": self.synapses_upper},
                "projections": {p.name: {"expected": p.expected, "lower": p.lower, "upper": p.upper,
                                         "fan_in_lower": p.fan_in_lower, "fan_in_upper": p.fan_in_upper}
                                for p in self.projections},
                "record_values": self.record_values,
                "memory_bytes": {c: self.memory_bytes(c) for c in BYTES_PER_SYNAPSE}}


def estimate(net: Network) -> Estimate:
    """The counts of ``net`` (no synapse, weight or spike is drawn; no data file is read beyond
    what the IR already holds: array shapes)."""
    eps = endpoints(net)
    pops = {p.name: int(p.size) for p in net.populations}
    est = Estimate(net.name, sum(pops.values()), pops, steps=int(net.simulation.steps))
    for pr in net.projections:
        est.projections.append(synapse_counts(net, pr, eps[pr.source].size, eps[pr.target].size))
    dt, steps = net.simulation.dt, int(net.simulation.steps)
    syn = {p.name: p.upper for p in est.projections}
    for pb in net.probes:
        if pb.variable == "spikes":
            continue  # data-dependent, recorded as indices; bounded by the backends while running
        samples = steps if not pb.period else max(1, math.ceil(steps / max(1, round(pb.period / dt))))
        if pb.variable == "weights":
            width = len(pb.indices) if pb.indices is not None else syn.get(pb.target, 0)
        else:
            width = len(pb.indices) if pb.indices is not None else (
                eps[pb.target].size if pb.target in eps else 0)
        est.record_values += int(width) * int(samples)
    return est


# --- target limits (lower bounds: never refuse a model that fits) ------------------------------


def check_target(est: Estimate, net: Network, target: Target) -> None:
    """Raise :class:`CompileError` naming the limit when ``net`` (the target's part) cannot fit
    ``target``'s per-core / per-chip limits, whatever the draw. The partition pass does the exact
    check once the synapses exist."""
    lim = target.limits or {}
    npc = _int(lim.get("neurons_per_core"))
    cpc, chips = _int(lim.get("cores_per_chip")), _int(lim.get("chips"))
    mem = _int(lim.get("synapse_memory_bits_per_core"))
    fin = _int(lim.get("fan_in_axons_per_core"))
    where = f"target '{target.name}' ({target.path or 'targets/' + target.name + '.yaml'})"
    check_neurons(est, target)
    if fin:
        worst = _fan_in_lower(est)
        if worst:
            pop, n, srcs = max(worst.values(), key=lambda t: t[1])
            if n > fin:
                raise CompileError(
                    f"population '{pop}': every neuron has a fan-in of at least {n} distinct presynaptic "
                    f"neurons ({srcs}), above fan_in_axons_per_core = {fin} of {where}, so no neuron fits "
                    "a neurocore even alone (estimated from the connection probabilities before drawing "
                    f"any synapse). hint: reduce the connection probability or the size of the populations "
                    f"projecting onto '{pop}'")
    if not (cpc and chips):
        return
    wbits = int((target.precision or {}).get("weight_bits", 8))
    dbits = int((target.precision or {}).get("delay_bits", 0))
    dt = net.simulation.dt
    bits: dict[str, int] = {name: 0 for name in est.populations}
    for p in est.projections:
        if p.target in bits:
            delayed = int(round(p.delay / dt)) > 0
            bits[p.target] += p.lower * (wbits + (dbits if delayed else 0))
    need, bound_by = {}, {}
    for name, size in est.populations.items():
        by = {"neurons_per_core": -(-size // npc) if npc else (1 if size else 0),
              "synapse_memory_bits_per_core": -(-bits[name] // mem) if mem else 0,
              "fan_in_axons_per_core": _cores_by_fan_in(est, name, size, fin) if fin else 0}
        bound_by[name] = max(by, key=by.get)
        need[name] = by[bound_by[name]]
    total = sum(need.values())
    if total > cpc * chips:
        raise capacity_error(where, cpc, chips, need, bound_by, lower_bound=True,
                             how=f" (estimated from the IR's counts before drawing any synapse: "
                                 f"{est.synapses_lower:,} synapses at least, {wbits} weight bits each)")


def capacity_error(where: str, cpc: int, chips: int, need: dict, bound_by: dict, lower_bound: bool,
                   how: str = "") -> CompileError:
    """The error for a model whose populations ``need`` more neurocores than ``where`` has
    (``bound_by``: the limit that sets each population's count; ``how``: how it was counted)."""
    total = sum(need.values())
    top = sorted(need.items(), key=lambda t: -t[1])[:3]
    most = ", ".join(f"'{n}' {k} (bound by {bound_by[n]})" for n, k in top)
    return CompileError(
        f"the model needs {'at least ' if lower_bound else ''}{total} neurocores{how}, but {where} has "
        f"cores_per_chip x chips = {cpc} x {chips} = {cpc * chips}; populations using the most cores: "
        f"{most}. hint: reduce those populations' sizes or connection probabilities, lower weight_bits, "
        f"or use a target with more chips (chips: {-(-total // cpc)} would hold {total} cores)")


def check_neurons(est: Estimate, target: Target) -> None:
    """Raise :class:`CompileError` when ``est`` has more neurons than ``target``'s chips hold."""
    lim = target.limits or {}
    npc = _int(lim.get("neurons_per_core"))
    cpc, chips = _int(lim.get("cores_per_chip")), _int(lim.get("chips"))
    if npc and cpc and chips and est.neurons > npc * cpc * chips:
        where = f"target '{target.name}' ({target.path or 'targets/' + target.name + '.yaml'})"
        big = max(est.populations.items(), key=lambda t: t[1])
        raise CompileError(
            f"the model has {est.neurons} neurons (the largest population, '{big[0]}', {big[1]}), more than "
            f"{where} holds: neurons_per_core x cores_per_chip x chips = {npc} x {cpc} x {chips} = "
            f"{npc * cpc * chips}. hint: reduce the populations' sizes, or use a target with more chips "
            f"or --target {target.fallback or 'torch'}")


def _fan_in_lower(est: Estimate) -> dict[str, tuple[str, int, str]]:
    """Per target population: (name, a lower bound of every neuron's fan-in, from what)."""
    by: dict[str, dict[str, int]] = {}
    for p in est.projections:
        if p.target in est.populations and p.fan_in_lower > 0:
            d = by.setdefault(p.target, {})
            d[p.source] = max(d.get(p.source, 0), p.fan_in_lower)  # one source's axons are shared
    return {t: (t, sum(d.values()), ", ".join(f"'{s}' >= {n}" for s, n in d.items())) for t, d in by.items()}


#: standard deviations below the mean for the fan-in of a slice of neurons: a union over every
#: contiguous slice of a population (up to 10^14) still leaves a failure probability below 1e-5
SLICE_SIGMAS = 10.0


def _slice_fan_in_lower(est: Estimate, target: str, m: int) -> int:
    """A lower bound of the fan-in (distinct presynaptic neurons) of any ``m`` neurons of
    ``target``: per source, the most of its projections' bounds (axons are shared), summed."""
    by: dict[str, int] = {}
    for p in est.projections:
        if p.target != target:
            continue
        if p.kind == "dense":
            lo = p.n_src
        elif p.kind == "one_to_one":
            lo = min(m, p.n_src)
        elif p.kind == "random":  # each source neuron reaches one of the m: Binomial(n_src, q)
            q = -math.expm1(m * math.log1p(-min(p.p, 1.0))) if p.p < 1.0 else 1.0
            mean = p.n_src * q
            lo = max(0, int(mean - SLICE_SIGMAS * math.sqrt(max(mean * (1.0 - q), 0.0)) - 1.0))
        else:
            lo = 0
        by[p.source] = max(by.get(p.source, 0), lo)
    return sum(by.values())


def _cores_by_fan_in(est: Estimate, target: str, size: int, fin: int) -> int:
    """Fewest cores for ``target`` under the fan-in limit: a core holds at most the largest ``m``
    whose slice fan-in bound stays within ``fin`` (a partition into K slices has one of at least
    ceil(size / K) neurons, and fan-in only grows with the slice)."""
    if size == 0 or _slice_fan_in_lower(est, target, 1) > fin:
        return 0  # a single neuron over the limit is reported by the fan-in check above
    lo, hi = 1, size
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _slice_fan_in_lower(est, target, mid) <= fin:
            lo = mid
        else:
            hi = mid - 1
    return -(-size // lo)


def _int(v) -> int | None:
    return None if v is None else int(v)


# --- memory budget (upper bounds) --------------------------------------------------------------


def check_memory(est: Estimate, command: str, budget: int | None = None, trials: int = 1) -> int:
    """Raise :class:`CompileError` when ``command`` would hold more than the memory budget
    (``budget`` bytes; default :func:`~neurodeploy.core.limits.memory_budget`); returns the
    estimated bytes."""
    need = est.memory_bytes(command, trials)
    budget = memory_budget() if budget is None else budget
    if budget is not None and need > budget:
        per = BYTES_PER_SYNAPSE.get(command, max(BYTES_PER_SYNAPSE.values()))
        what = "compiling" if command == "compile" else f"running on {command}"
        biggest = sorted(est.projections, key=lambda p: -p.upper)[:2]
        top = ", ".join(f"'{p.name}' up to {p.upper:,}" for p in biggest)
        rec = (f" + {format_bytes(max(1, trials) * est.record_values * BYTES_PER_SAMPLE)} of recordings"
               if command != "compile" and est.record_values else "")
        raise CompileError(
            f"{what} '{est.network}' needs about {format_bytes(need)} ({est.synapses_upper:,} synapses at most "
            f"x {per} bytes{rec}; largest projections: {top or 'none'}), more than the memory budget of "
            f"{format_bytes(budget)} ({memory_budget_source()}). hint: reduce the populations or connection "
            "probabilities, record fewer neurons, or raise the budget with NEURODEPLOY_MEMORY_BUDGET "
            "(e.g. 32GiB) if the machine has the memory")
    return need


def check_compile(net: Network, target: Target, part: Network | None = None) -> Estimate:
    """Both checks for ``compile``: the target's limits on ``part`` (the target's part of the
    network), the memory budget on the whole network."""
    est = estimate(net)
    check_target(est if part is None or part is net else estimate(part), part or net, target)
    check_memory(est, "compile")
    return est


def check_run(net: Network, backend: str, trials: int = 1) -> Estimate:
    """The memory budget of a run of ``net`` on ``backend`` (before it builds anything)."""
    est = estimate(net)
    check_memory(est, backend, trials=trials)
    return est
