"""The numpy reference simulator: the executable meaning of a network.

It steps every population with its neuron model's pure-numpy ``reference_step`` and delivers
spikes through the materialised synapses (the same arrays every backend gets), following the
order of Brian2's default schedule within a step:

1. sources emit their spikes; every population integrates and thresholds;
2. spikes are delivered (a delay of ``d`` steps lands ``d`` steps later; plastic synapses run
   their pre-synaptic update on arrival, then the post-synaptic update for this step's spikes);
3. synaptic input is added and spiking neurons reset.

Under ``simulation.schedule: discrete`` or ``loihi`` (docs/spec.md#schedule) each population
steps with its model's ``euler_step`` instead, and a spike emitted in step ``k`` through a
projection of ``d`` steps of delay is part of the input of step ``k + e``: ``loihi``: ``e = d + 1``
(Lava's Dense, from sources too); ``discrete``: ``e = d``, populations stepping in the
topological order of the zero-delay projections (:func:`~neurodeploy.lowering.loihi.discrete_order`),
a zero-delay projection that closes a cycle ``e = 1``.

It is slow (a Python loop over steps) and meant as the test oracle for the real backends on
small networks, not as a backend.
"""

from __future__ import annotations

import dataclasses
import math
import time

import numpy as np

from ...core.errors import NotImplementedYet
from ...core.result import Result, SpikeTrains, Trace
from ...ir.nodes import ArrayStimulus, Network, PoissonStimulus, SpikeTimesStimulus
from ...library import materialize as mat
from ...library.endpoints import endpoints
from ...library.neurons import euler_models, get_neuron
from ...library.plasticity import lowering
from ...library.plasticity.canonical import SynapseState
from ...lowering.loihi import discrete_order, euler_decay


class _Plastic:
    """Pair STDP on one projection, in the same trace form as the Brian2 lowering."""

    def __init__(self, syn: mat.SynapseData, params: dict, dt: float):
        self.i, self.j, self.sign = syn.i, syn.j, syn.sign
        self.w = syn.w * syn.sign  # magnitudes (or signed weights for sign: mixed)
        self.apre = np.zeros(len(self.i))
        self.apost = np.zeros(len(self.i))
        self.p = params
        self.dpre = np.exp(-dt / params["tau_pre"])
        self.dpost = np.exp(-dt / params["tau_post"])
        self.mult = bool(params.get("multiplicative", False))
        self.span = params["w_max"] - params.get("w_min", 0.0)

    def decay(self):
        self.apre *= self.dpre
        self.apost *= self.dpost

    def on_pre(self, arrived: np.ndarray, n_tgt: int) -> np.ndarray:
        s = arrived[self.i]
        out = np.zeros(n_tgt)
        np.add.at(out, self.j[s], self.sign * self.w[s])
        self.apre[s] += self.p["a_plus"]
        dw = self.apost[s] * ((self.w[s] - self.p.get("w_min", 0.0)) / self.span if self.mult else 1.0)
        self.w[s] = np.clip(self.w[s] + dw, self.p.get("w_min", 0.0), self.p["w_max"])
        return out

    def on_post(self, post_spikes: np.ndarray, spikes: dict | None = None) -> None:
        s = post_spikes[self.j]
        self.apost[s] -= self.p["a_minus"]
        dw = self.apre[s] * ((self.p["w_max"] - self.w[s]) / self.span if self.mult else 1.0)
        self.w[s] = np.clip(self.w[s] + dw, self.p.get("w_min", 0.0), self.p["w_max"])

    def effective(self) -> np.ndarray:
        return self.sign * self.w


class _CanonicalPlastic:
    """Any other rule, through its canonical trace form (:class:`~.plasticity.canonical.SynapseState`,
    event semantics): delivery with the step's old weights, then impulses, then the products."""

    def __init__(self, syn: mat.SynapseData, rule, dt: float, modulator: dict | None = None,
                 gate: tuple | None = None):
        self.i, self.j, self.sign = syn.i, syn.j, syn.sign
        self.state = SynapseState(rule, syn.w * syn.sign, dt)
        self.pre = np.zeros(len(self.i), dtype=bool)
        self.mod, self.gate, self.k = modulator, gate, 0
        if modulator is not None:  # the third factor: the modulator's spike trace, offset-coded
            self.mod_trace = 0.0  # becomes an array (modulator size = target size) at the first step
            self.mod_decay = float(np.exp(-dt / modulator["tau"]))

    def decay(self):
        pass  # SynapseState.step decays

    def on_pre(self, arrived: np.ndarray, n_tgt: int) -> np.ndarray:
        self.pre = arrived[self.i]
        out = np.zeros(n_tgt)
        np.add.at(out, self.j[self.pre], self.sign * self.state.w[self.pre])
        return out

    def on_post(self, post_spikes: np.ndarray, spikes: dict | None = None) -> None:
        r = None
        if self.mod is not None:
            self.mod_trace = self.mod_trace * self.mod_decay + spikes[self.mod["source"]]
            r = self.mod_trace[self.j] - self.mod["offset"]
        elif self.gate is not None:  # a phase gate: 1 in steps k0 < k <= k1
            r = float(self.gate[0] < self.k <= self.gate[1])
        self.k += 1
        self.state.step(self.pre, post_spikes[self.j], r)

    def effective(self) -> np.ndarray:
        return self.sign * self.state.w


def simulate(net: Network) -> Result:
    t0 = time.perf_counter()
    dt, steps = net.simulation.dt, net.simulation.steps
    eps = endpoints(net)
    pops = {p.name: p for p in net.populations}
    models = {n: get_neuron(p.model) for n, p in pops.items()}
    params = {n: models[n].make_params(p.params) for n, p in pops.items()}
    states = {n: mat.initial_state(net, p) for n, p in pops.items()}
    drives = mat.current_drives(net)

    # spike sources: per-step index lists
    src_events: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}
    for s in net.stimuli:
        if isinstance(s, (PoissonStimulus, SpikeTimesStimulus)) or (isinstance(s, ArrayStimulus) and s.encoding == "rate"):
            idx, k = mat.source_spikes(net, s)
            src_events[s.name] = (idx, np.searchsorted(k, np.arange(steps + 1)), s.size)
        elif isinstance(s, ArrayStimulus) and s.encoding == "value":
            raise NotImplementedError("graded (encoding: value) sources are not simulated by the reference yet")

    # projections
    static, plastic, arrivals = [], [], {}
    for pr in net.projections:
        syn = mat.synapses(net, pr)
        n_src, n_tgt = eps[pr.source].size, eps[pr.target].size
        L = syn.delay_steps + 1
        arrivals[pr.name] = np.zeros((L, n_src), dtype=bool)
        if pr.plasticity is not None:
            low = lowering(pr.plasticity.rule, pr.plasticity.params, dt)
            pl = (_Plastic(syn, low.stdp, dt) if low.kind == "stdp"
                  else _CanonicalPlastic(syn, low.canonical, dt, low.modulator, low.gate))
            plastic.append((pr, syn, pl))
        else:
            import scipy.sparse as sparse  # slow to import: not at `import neurodeploy`

            W = sparse.csr_matrix((syn.w, (syn.i, syn.j)), shape=(n_src, n_tgt))
            static.append((pr, syn, W.T.tocsr()))

    rec_spikes = {pb.target for pb in net.probes if pb.variable == "spikes"}
    spike_log: dict[str, list] = {n: [] for n in rec_spikes}
    counts = {n: np.zeros(p.size, dtype=np.int64) for n, p in pops.items()}
    traces = {}
    for pb in net.probes:
        if pb.variable == "spikes":
            continue
        period = max(1, int(round((pb.period or dt) / dt)))
        traces[pb.name] = (pb, period, [], [])

    if net.simulation.schedule != "exact":
        _euler(net, models, params, states, drives, src_events, static, plastic, spike_log, counts, traces)
    for k in range(steps if net.simulation.schedule == "exact" else 0):
        spikes: dict[str, np.ndarray] = {}
        for name, (idx, bounds, size) in src_events.items():
            s = np.zeros(size, dtype=bool)
            s[idx[bounds[k]:bounds[k + 1]]] = True
            spikes[name] = s
        i_ext = {n: np.zeros(p.size) for n, p in pops.items()}
        for d in drives:
            i_ext[d.target] = i_ext[d.target] + d.at(k)
        zero = {n: np.zeros(p.size) for n, p in pops.items()}
        for n in pops:  # pass 1: spikes do not depend on this step's synaptic input
            _, spikes[n] = models[n].reference_step(params[n], states[n], {"I_ext": i_ext[n], "syn": zero[n]}, dt)
        syn_in = zero
        for pr, syn, WT in static:
            buf = arrivals[pr.name]
            buf[(k + syn.delay_steps) % len(buf)] |= spikes[pr.source]
            arrived = buf[k % len(buf)]
            syn_in[pr.target] = syn_in[pr.target] + WT @ arrived.astype(float)
            buf[k % len(buf)] = False
        for pr, syn, pl in plastic:
            pl.decay()
            buf = arrivals[pr.name]
            buf[(k + syn.delay_steps) % len(buf)] |= spikes[pr.source]
            arrived = buf[k % len(buf)]
            syn_in[pr.target] = syn_in[pr.target] + pl.on_pre(arrived, len(syn_in[pr.target]))
            buf[k % len(buf)] = False
            pl.on_post(spikes[pr.target], spikes)
        for n in pops:  # pass 2
            states[n], s2 = models[n].reference_step(params[n], states[n], {"I_ext": i_ext[n], "syn": syn_in[n]}, dt)
            counts[n] += s2
        for n in rec_spikes:
            idx = np.flatnonzero(spikes[n])
            if len(idx):
                spike_log[n].append((idx, np.full(len(idx), k)))
        _record(traces, k, dt, states, lambda name: _weights_now(name, static, plastic))

    res = Result(net.name, "numpy-reference", "reference", dt, steps, net.simulation.seed, counts=counts)
    for n in rec_spikes:
        size = eps[n].size
        if spike_log[n]:
            i = np.concatenate([a for a, _ in spike_log[n]])
            kk = np.concatenate([b for _, b in spike_log[n]])
        else:
            i = kk = np.zeros(0, dtype=np.int64)
        res.spikes[n] = SpikeTrains(size, i.astype(np.int64), kk * dt)
    for name, (pb, period, ts, vals) in traces.items():
        unit = _probe_unit(net, pb)
        n_rec = len(vals[0]) if vals else 0
        index = np.arange(n_rec) if pb.indices is None else np.asarray(pb.indices)
        res.traces[name] = Trace(pb.target, pb.variable, unit, np.asarray(ts), index, np.asarray(vals).reshape(len(ts), -1))
    res.wall_time_s = time.perf_counter() - t0
    return res.keep_probed_indices(net.probes)


def _euler(net, models, params, states, drives, src_events, static, plastic, spike_log, counts, traces) -> None:
    """The time loop under the Euler schedules (see the module docstring); fills the recordings."""
    sched, dt = net.simulation.schedule, net.simulation.dt
    if plastic:
        raise NotImplementedYet(f"plastic projections under schedule '{sched}' are not implemented yet "
                                f"('{plastic[0][0].name}'); schedule 'exact' runs them")
    for p in net.populations:
        if p.model not in euler_models():
            raise NotImplementedYet(f"population '{p.name}': neuron model '{p.model}' has no '{sched}' schedule "
                                    f"(models with one: {', '.join(euler_models())})")
    order, same = discrete_order(net) if sched == "discrete" else ([p.name for p in net.populations], set())
    if sched == "loihi":  # Lava's 12-bit decays: the time constants they stand for
        for n, prm in params.items():
            taus = {k: dt / d if (d := euler_decay(net, getattr(prm, k))) > 0 else math.inf
                    for k in ("tau_m", "tau_syn") if hasattr(prm, k)}
            params[n] = dataclasses.replace(prm, **taus)
    conns = []  # (source, target, steps after emission it arrives, W^T)
    for pr, syn, WT in static:
        d = syn.delay_steps
        e = d + 1 if sched == "loihi" else (d if d > 0 or pr.name in same else 1)
        conns.append((pr.source, pr.target, e, WT))
    H = max([e for *_, e, _ in conns], default=0) + 1
    sizes = {p.name: p.size for p in net.populations}
    sizes.update({n: size for n, (_, _, size) in src_events.items()})
    hist = {n: np.zeros((H, size), dtype=bool) for n, size in sizes.items()}
    rec = set(spike_log)
    for k in range(net.simulation.steps):
        for name, (idx, bounds, size) in src_events.items():
            s = np.zeros(size, dtype=bool)
            s[idx[bounds[k]:bounds[k + 1]]] = True
            hist[name][k % H] = s
            if name in rec and s.any():
                spike_log[name].append((np.flatnonzero(s), np.full(int(s.sum()), k)))
        i_ext = {n: np.zeros(size) for n, size in sizes.items() if n in states}
        for d in drives:
            i_ext[d.target] = i_ext[d.target] + d.at(k)
        for n in order:
            syn = np.zeros(sizes[n])
            for src, tgt, e, WT in conns:
                if tgt == n and k - e >= 0:
                    syn += WT @ hist[src][(k - e) % H].astype(float)
            states[n], s = models[n].euler_step(params[n], states[n], {"I_ext": i_ext[n], "syn": syn}, dt)
            hist[n][k % H] = s
            counts[n] += s
            if n in rec and s.any():
                idx = np.flatnonzero(s)
                spike_log[n].append((idx, np.full(len(idx), k)))
        _record(traces, k, net.simulation.dt, states, lambda name: _weights_now(name, static, ()))


def _weights_now(name: str, static, plastic) -> np.ndarray:
    """The present weights of projection ``name`` (a plastic one's effective weights)."""
    for pr, _, pl in plastic:
        if pr.name == name:
            return pl.effective()
    return next(syn.w for pr, syn, _ in static if pr.name == name)


def _record(traces, k: int, dt: float, states, weights) -> None:
    """Append step ``k`` to every trace whose period it falls on."""
    for pb, period, ts, vals in traces.values():
        if k % period:
            continue
        ts.append(k * dt)
        v = weights(pb.target) if pb.variable == "weights" else states[pb.target][pb.variable]
        vals.append(v if pb.indices is None else v[list(pb.indices)])


def _probe_unit(net: Network, pb) -> str:
    if pb.variable == "weights":
        pr = next(p for p in net.projections if p.name == pb.target)
        return pr.weights.unit
    pop = next(p for p in net.populations if p.name == pb.target)
    return get_neuron(pop.model).state[pb.variable]
