"""Recordings of a Loihi-form run (Lava's Monitors, or the torch simulator's buffers) back to
neurodeploy's :class:`~neurodeploy.core.result.Result` in SI units, undoing the change of
variables of :mod:`neurodeploy.lowering.loihi` (voltage offsets, scales, the one-step input delay)."""

from __future__ import annotations

import numpy as np

from ..core.errors import NotImplementedYet
from ..core.result import Result, SpikeTrains, Trace
from ..core.targets import Target
from ..ir.nodes import Network
from ..library.neurons import get_neuron
from .loihi import LoweredNetwork, constant_currents


def _lif_input_of_step(pop, data: dict, K: float, q, low: LoweredNetwork, steps: int) -> np.ndarray:
    """The synaptic input that the reference adds to ``v`` at the end of each step.

    Lava adds it one step later (Dense delivers with one step of delay), so Lava's ``v`` in
    step k lacks it; the reference's trace includes it unless the neuron spiked or was
    refractory (its input is then discarded, and NDLIF drops it too). For ``lif`` (du = 1),
    ``u`` in step k + 1 is exactly that input times ``a = 1 - dv``.
    """
    u_next = data[(pop.name, "I")][1: steps + 1] / K
    a = 1.0 - (q.populations[pop.name].dv / 4096 if q is not None else pop.dv)
    spikes = data[(pop.name, "spikes")][:steps] != 0
    since = np.full(pop.size, 2**30, dtype=np.int64)  # steps since the last spike, as NDLIF counts
    used = np.zeros((steps, pop.size), dtype=bool)
    for k in range(steps):
        since = np.where(spikes[k], 0, since)
        used[k] = since + 1 >= pop.refractory_steps + pop.input_drop  # Lava step k+1 uses its u
        since = since + 1
    return np.where(used, u_next / a, 0.0)


def _weight_trace(pb, low: LoweredNetwork, q, data: dict, steps: int, dt: float) -> Trace:
    """Effective (signed) weights in SI, per synapse in (i, j) order, as the reference records."""
    pr = low.projections[pb.target]
    period = max(1, int(round((pb.period or dt) / dt)))
    rows = np.arange(0, steps, period)
    idx = np.arange(len(pr.i)) if pb.indices is None else np.asarray(pb.indices)
    if pr.plasticity is None:  # static: the materialised weights at every sample
        vals = np.broadcast_to(pr.w_si[idx], (len(rows), len(idx))).copy()
    else:
        W = data[(pb.target, "weights")][:steps].reshape(-1, pr.n_tgt, pr.n_src)  # Lava's (post, pre)
        lava_w = W[rows][:, pr.j[idx], pr.i[idx]]
        if q is not None:
            lava_w = lava_w * 2.0**q.projections[pr.name].weight_exp * 64 / q.populations[pr.target].K
        vals = lava_w / abs(pr.factor)  # w_lava = (target factor > 0) x effective weight
    unit = get_neuron(low.populations[pr.target].model).weight_unit
    return Trace(pb.target, "weights", unit, rows * dt, idx, vals)


def loihi_result(net: Network, low: LoweredNetwork, q, target: Target, data: dict, wall: float,
            counts: dict | None = None) -> Result:
    """Monitor-style arrays (row m = state after Lava step m + 1) -> a Result in SI units.
    Shared by the Lava and torch backends, which both simulate the Loihi form."""
    dt, steps = low.dt, low.steps
    res = Result(net.name, "lava", target.name, dt, steps, net.simulation.seed, wall_time_s=wall)
    spike_probes = {pb.target for pb in net.probes if pb.variable == "spikes"}
    for name, pop in low.populations.items():
        raw = data.get((name, "spikes"))
        s = raw[:steps] != 0 if raw is not None else None
        res.counts[name] = counts[name].astype(np.int64) if counts is not None else s.sum(axis=0).astype(np.int64)
        if name in spike_probes:
            k, i = np.nonzero(s)
            order = np.lexsort((i, k))
            res.spikes[name] = SpikeTrains(pop.size, i[order].astype(np.int64), k[order] * dt)
    for name, src in low.sources.items():
        if name in spike_probes:
            i, k = np.nonzero(src.spikes)
            order = np.lexsort((i, k))
            res.spikes[name] = SpikeTrains(src.size, i[order].astype(np.int64), k[order] * dt)
    for pb in net.probes:
        if pb.variable == "spikes":
            continue
        if pb.variable == "weights":
            res.traces[pb.name] = _weight_trace(pb, low, q, data, steps, dt)
            continue
        pop = low.populations[pb.target]
        K = q.populations[pb.target].K if q is not None else 1.0
        period = max(1, int(round((pb.period or dt) / dt)))
        rows = np.arange(0, steps, period)
        idx = np.arange(pop.size) if pb.indices is None else np.asarray(pb.indices)
        if pb.variable == "v":
            v = data[(pb.target, "v")][: steps + 1] / K
            if pop.model == "lif" and low.schedule == "exact":
                v = v[:steps] + _lif_input_of_step(pop, data, K, q, low, steps)
            vals = v[rows][:, idx] + pop.v_offset
        elif pb.variable == "I" and low.schedule != "exact":  # the Euler schedules: u = u_scale I, same step
            vals = data[(pb.target, "I")][rows][:, idx] / K / pop.u_scale
        elif pb.variable == "I":
            vals = data[(pb.target, "I")][rows + 1][:, idx] / K / (pop.u_scale * np.exp(-dt / pop.tau_syn))
        elif pb.variable == "I_ext":  # a constant injected current (the only kind Lava lowers)
            current = constant_currents(net).get(pb.target, np.zeros(pop.size))
            vals = np.broadcast_to(current[idx], (len(rows), len(idx))).copy()
        else:
            raise NotImplementedYet(f"probing '{pb.variable}' on Lava targets is not implemented yet")
        res.traces[pb.name] = Trace(pb.target, pb.variable,
                                    get_neuron(pop.model).state[pb.variable], rows * dt, idx, vals)
    return res.keep_probed_indices(net.probes)
