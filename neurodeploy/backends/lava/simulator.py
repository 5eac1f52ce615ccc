"""Lava backend: targets ``lava`` (floating point) and ``loihi2-sim`` (bit-accurate fixed point).

The IR is lowered to Lava processes (:mod:`.lowering` gives the float parameters, the
``quantize`` pass the integers): populations become Lava ``LIF`` processes, or neurodeploy's
``NDLIF`` (:mod:`.procs`) where refractoriness or reset rules need it; spike sources become
``RingBuffer`` s holding the spikes drawn by :mod:`neurodeploy.library.materialize` (the same spikes
every backend sees); projections become ``Dense``/``Sparse`` (``DelayDense``/``DelaySparse``
with delays); probes become ``Monitor`` s. The run uses ``Loihi2SimCfg`` with
``select_tag="floating_pt"`` or ``"fixed_pt"``; results come back in the common Result format,
converted to SI units.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np

from ...core.errors import BackendError, NotImplementedYet
from ...ir.nodes import Network
from ...library.neurons import get_neuron
from ...core.result import Result, SpikeTrains, Trace
from ...core.targets import Target
from ...lowering.loihi import LoweredNetwork, Unsupported, _constant_currents, lower, unsupported_nodes

log = logging.getLogger("neurodeploy.lava")

#: use Sparse connections when at most this fraction of the (post, pre) matrix is non-zero
SPARSE_BELOW = 0.2
#: never build a dense (n_post, n_pre) matrix larger than this (elements)
DENSE_MAX_ELEMENTS = 50_000_000


@dataclass
class LavaOptions:
    progress: bool = True


def available() -> tuple[bool, str]:
    from ...core.compat.lava import lava_status

    return lava_status()


def unsupported(net: Network, target=None) -> dict[str, str]:
    """Node name -> reason, for every node of ``net`` a Lava target cannot run: what the lowering
    cannot express (:func:`.lowering.unsupported_nodes`) and, with the target's limits, a
    population larger than all its cores together. The placement pass asks this once per net."""
    out = {u.node: u.reason for u in reversed(unsupported_nodes(net))}  # the first reason wins
    if target is not None and target.number_format == "fixed":
        out.update({k: v for k, v in _fixed_rule_problems(net).items() if k not in out})
    limits = target.limits if target is not None else {}
    per_core, cores, chips = (limits.get(k) for k in ("neurons_per_core", "cores_per_chip", "chips"))
    if per_core and cores and chips:
        for pop in net.populations:
            if pop.name not in out and pop.size > per_core * cores * chips:
                out[pop.name] = (f"{pop.size} neurons exceed the chip ({per_core} per core x {cores} cores x "
                                 f"{chips} chip(s) = {per_core * cores * chips})")
    return out


def _fixed_rule_problems(net: Network) -> dict[str, str]:
    """Plastic projections whose canonical rule has no fixed-point encoding (their constants,
    after the quantize pass picked the weight scale, are out of the learning engine's range)."""
    if not any(p.plasticity is not None for p in net.projections):
        return {}
    from ...core.errors import CompileError
    from ...passes.quantize import quantize
    from .learning import canonical_encoding, third_factor_encoding

    try:
        low = lower(net)
        q = quantize(low)
    except Exception:  # noqa: BLE001 - something else is unsupported; compile reports it
        return {}
    out = {}
    for pr in low.projections.values():
        if pr.canonical is None:
            continue
        try:
            if pr.modulator is not None:
                third_factor_encoding(pr.canonical, pr.modulator, low.dt, pr.factor, True, weight_scale(q, pr))
            else:
                canonical_encoding(pr.canonical, low.dt, pr.factor, True, weight_scale(q, pr))
        except (CompileError, NotImplementedYet) as e:
            out[pr.name] = f"'{pr.plasticity['rule']}' in fixed point: {e}"
    return out


def supports(node: str, net: Network, target=None) -> tuple[bool, str]:
    """(ok, reason) for one node of ``net`` on a Lava target (see :func:`unsupported`)."""
    why = unsupported(net, target).get(node)
    return why is None, why or ""


def compile_network(net: Network, target: Target):
    """Lower (and for fixed-point targets quantize) ``net``. Returns (lowered, quantized or None)."""
    try:
        low = lower(net)
    except Unsupported as e:
        others = unsupported_nodes(net)
        listing = "; ".join(f"'{u.node}': {u.reason}" for u in others) or str(e)
        raise NotImplementedYet(f"target '{target.name}' cannot run {listing} "
                                "(a target with a fallback, e.g. lava or loihi2-sim, runs these nodes on torch)") from None
    q = None
    if target.number_format == "fixed":
        from ...passes.quantize import quantize

        q = quantize(low)
    from .learning import canonical_encoding, stdp_bounds, third_factor_encoding

    for pr in low.projections.values():
        if pr.plasticity is None:
            continue
        scale = weight_scale(q, pr) if q is not None else None
        for problem in stdp_bounds(pr.plasticity, pr.factor, q is not None, scale).problems:
            low.warnings.append(f"projection '{pr.name}': {problem}")
        if pr.canonical is not None:  # raises CompileError when a constant cannot be expressed
            if pr.modulator is not None:  # NotImplementedYet in fixed point
                enc = third_factor_encoding(pr.canonical, pr.modulator, low.dt, pr.factor, q is not None, scale)
            else:
                enc = canonical_encoding(pr.canonical, low.dt, pr.factor, q is not None, scale)
            off = [f"product {n + 1}: {r:.4f}" for n, r in enumerate(enc.ratios) if abs(r - 1) > 1e-9]
            if off:
                low.warnings.append(f"projection '{pr.name}': learning-engine constants realised/wanted "
                                    + ", ".join(off) + f" (rule: dw = {enc.dw})")
    return low, q


def weight_scale(q, pr) -> float:
    """Integer weight-mantissa units per Lava-float weight unit of plastic projection ``pr``."""
    return q.populations[pr.target].K / (64 * 2.0**q.projections[pr.name].weight_exp)


def run(net: Network, target: Target, options: LavaOptions | None = None) -> Result:
    from ...core.compat.lava import ensure_lava_importable
    from ...core.versions import versions

    if target.fallback and not net.blocks:  # the placement pass puts what Lava cannot host on the fallback
        from ...passes.place import place

        plan = place(net, target)  # asks unsupported() once
        if plan.on_fallback:
            from .. import hybrid

            return hybrid.run(net, target, plan, progress=(options or LavaOptions()).progress)
    low, q = compile_network(net, target)
    hardware = target.device == "loihi2"
    if hardware:
        custom = [p.name for p in low.populations.values() if process_name(low, p) != "LIF"]
        if custom:
            raise NotImplementedYet(
                f"populations {custom} need neurodeploy's NDLIF neuron (refractoriness/reset rules) or "
                "NDLIF3F (a third factor), which have "
                "no Loihi 2 microcode; only Lava's own LIF runs on the chip")
    ensure_lava_importable()
    t0 = time.perf_counter()
    data = _simulate_or_fail(f"Lava failed while running '{net.name}'", low, q, net, hardware)
    wall = time.perf_counter() - t0
    res = _result(net, low, q, target, data, wall)
    res.versions = versions()
    res.options = {"select_tag": "fixed_pt" if q else "floating_pt", "processes": {
        p.name: process_name(low, p) for p in low.populations.values()}, "warnings": low.warnings}
    for w in low.warnings:
        log.warning("warning: %s", w)
    return res


def third_factor_targets(low: LoweredNetwork) -> dict:
    """Target population -> its projection with a third factor (the lowering allows one per
    target); these populations run as NDLIF3F (:mod:`.procs3f`)."""
    return {pr.target: pr for pr in low.projections.values() if pr.modulator is not None}


def process_name(low: LoweredNetwork, pop) -> str:
    """The Lava process population ``pop`` runs as: "LIF", "NDLIF" or "NDLIF3F"."""
    return "NDLIF3F" if pop.name in third_factor_targets(low) else pop.process


def _third_factor_neuron(pr, q, dt: float, kw: dict):
    """NDLIF3F for the target population of third-factor projection ``pr``: its NDLIF
    parameters ``kw`` (the defaults where it is plain LIF: then it equals Lava's LIF), plus the
    modulator trace's decay and impulse from :func:`.learning.third_factor_encoding` (fixed
    point: a 12-bit decay and an integer impulse)."""
    from .learning import third_factor_encoding
    from .procs3f import NDLIF3F

    fixed = q is not None
    enc = third_factor_encoding(pr.canonical, pr.modulator, dt, pr.factor, fixed, weight_scale(q, pr) if fixed else None)
    decay = float(np.exp(-1.0 / enc.taus["y2"]))
    if fixed:
        return NDLIF3F(mod_decay=int(round(4096 * decay)), mod_impulse=int(enc.impulses["y2"]), **kw)
    return NDLIF3F(mod_decay=decay, mod_impulse=float(enc.impulses["y2"]), **kw)


def _learning_dense(pr, q, dt: float, procs: dict):
    """A plastic projection as a LearningDense with neurodeploy's pair-STDP rule or a canonical
    rule (.learning); with a third factor, a Loihi3FLearningRule whose post traces come from the
    target's NDLIF3F neuron.

    Third-factor wiring: ``modulator.s_out -> post.a_third_factor_in`` directly (no Dense, so the
    modulator's spikes of a step enter y2 in that step, as in the reference; a Dense would add a
    step), ``post.s_out_y1/y2/y3 -> s_in_y1/y2/y3`` and ``post.s_out_bap -> s_in_bap``."""
    from lava.proc.dense.process import LearningDense
    from lava.utils.weightutils import SignMode

    from .learning import canonical_rule, stdp_bounds, stdp_rule, third_factor_rule

    fixed = q is not None
    if fixed:
        qp = q.projections[pr.name]
        scale = weight_scale(q, pr)
        W = qp.weights.toarray()
        extra = dict(weight_exp=qp.weight_exp, num_weight_bits=qp.num_weight_bits)
    else:
        scale, W, extra = None, pr.dense(), {}
    bounds = stdp_bounds(pr.plasticity, pr.factor, fixed, scale)
    if pr.modulator is not None:
        rule = third_factor_rule(pr.canonical, pr.modulator, dt, pr.factor, fixed, scale)
    elif pr.canonical is not None:
        rule = canonical_rule(pr.canonical, dt, pr.factor, fixed, scale)
    else:
        rule = stdp_rule(pr.plasticity, dt, pr.factor, fixed, scale)
    mode = SignMode.EXCITATORY if bounds.sign_mode == "excitatory" else SignMode.INHIBITORY
    conn = LearningDense(weights=W, learning_rule=rule, sign_mode=mode, **extra)
    procs[pr.source].s_out.connect(conn.s_in)
    conn.a_out.connect(procs[pr.target].a_in)
    post = procs[pr.target]
    if pr.modulator is not None:
        if pr.modulator["source"] not in procs:  # unsupported() keeps such projections off Lava
            raise NotImplementedYet(f"projection '{pr.name}': its modulator '{pr.modulator['source']}' is not "
                                    "in the Lava part (a third factor cannot cross the exchange point)")
        procs[pr.modulator["source"]].s_out.connect(post.a_third_factor_in)
        post.s_out_bap.connect(conn.s_in_bap)
        post.s_out_y1.connect(conn.s_in_y1)
        post.s_out_y2.connect(conn.s_in_y2)
        post.s_out_y3.connect(conn.s_in_y3)
    else:
        post.s_out.connect(conn.s_in_bap)  # the post spikes the learning rule needs
    return conn


def _simulate_or_fail(failure: str, *args, **kwargs) -> dict:
    """:func:`_simulate`, any error but ours raised as a :class:`BackendError` that starts with
    ``failure`` (the plain and the hybrid Lava runs)."""
    try:
        return _simulate(*args, **kwargs)
    except (BackendError, NotImplementedYet):
        raise
    except Exception as e:
        raise BackendError(f"{failure}: {type(e).__name__}: {e}") from e


def _simulate(low: LoweredNetwork, q, net: Network, hardware: bool = False, hybrid=None) -> dict:
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor
    from lava.proc.sparse.process import DelaySparse, Sparse
    from lava.utils.weightutils import SignMode
    from scipy import sparse as sp

    fixed = q is not None
    steps = low.steps + 1  # one extra step: u of step k+1 carries the synaptic state of step k
    procs, monitors = {}, []
    third = third_factor_targets(low)
    for pop in low.populations.values():
        kw = dict(shape=(pop.size,), name=f"nd_{pop.name}")
        if fixed:
            qp = q.populations[pop.name]
            kw.update(u=qp.u0, v=qp.v0, du=qp.du, dv=qp.dv, vth=qp.vth, bias_mant=qp.bias_mant,
                      bias_exp=qp.bias_exp)
        else:
            kw.update(u=pop.u0, v=pop.v0, du=pop.du, dv=pop.dv, vth=pop.vth, bias_mant=pop.bias, bias_exp=0)
        if pop.process == "NDLIF":
            kw.update(refractory_steps=pop.refractory_steps, input_drop=pop.input_drop, reset_mode=pop.reset_mode,
                      v_reset=q.populations[pop.name].v_reset if fixed else pop.v_reset)
        if pop.name in third:
            procs[pop.name] = _third_factor_neuron(third[pop.name], q, low.dt, kw)
        elif pop.process == "NDLIF":
            from .procs import NDLIF  # neurodeploy's own process package (Lava model discovery)

            procs[pop.name] = NDLIF(**kw)
        else:
            procs[pop.name] = LIF(**kw)
    for src in low.sources.values():
        if hybrid is not None and src.name in hybrid.outputs:  # spikes from the torch part
            procs[src.name] = hybrid.outputs[src.name]
            continue
        data = np.zeros((src.size, steps), dtype=np.int32)
        data[:, : low.steps] = src.spikes
        procs[src.name] = RingBuffer(data=data)
    conns = {}
    for pr in low.projections.values():
        if pr.plasticity is not None:
            conns[pr.name] = _learning_dense(pr, q, low.dt, procs)
            continue
        if fixed:
            qp = q.projections[pr.name]
            Wm = qp.weights
            mode = {"mixed": SignMode.MIXED, "excitatory": SignMode.EXCITATORY,
                    "inhibitory": SignMode.INHIBITORY}[qp.sign_mode]
            extra = dict(weight_exp=qp.weight_exp, num_weight_bits=qp.num_weight_bits, sign_mode=mode)
        else:
            Wm, extra = pr.matrix(), {}
        density = Wm.nnz / max(Wm.shape[0] * Wm.shape[1], 1)
        use_sparse = density <= SPARSE_BELOW or Wm.shape[0] * Wm.shape[1] > DENSE_MAX_ELEMENTS
        W = None if use_sparse else Wm.toarray()
        if use_sparse:
            if pr.delay_steps:
                D = sp.csr_matrix((np.full(Wm.nnz, pr.delay_steps, dtype=int), Wm.indices, Wm.indptr),
                                  shape=Wm.shape)
                conn = DelaySparse(weights=Wm, delays=D, **extra)
            else:
                conn = Sparse(weights=Wm, **extra)
        elif pr.delay_steps:
            conn = DelayDense(weights=W, delays=np.full(W.shape, pr.delay_steps, dtype=int), **extra)
        else:
            conn = Dense(weights=W, **extra)
        procs[pr.source].s_out.connect(conn.s_in)
        conn.a_out.connect(procs[pr.target].a_in)
        conns[pr.name] = conn
    probes = {}
    for name in low.populations:
        m = Monitor()
        m.probe(procs[name].s_out, steps)
        monitors.append(m)
        probes[(name, "spikes")] = m
    wanted = {(pb.target, pb.variable) for pb in net.probes if pb.target in low.populations}
    # lif: v's trace needs this step's input, which Lava adds one step later (see _result)
    wanted |= {(t, "I") for t, var in wanted if var == "v" and low.populations[t].model == "lif"}
    for target, var in sorted(wanted):
        lava_var = {"v": "v", "I": "u"}.get(var)
        if lava_var is None:
            continue
        m = Monitor()
        m.probe(getattr(procs[target], lava_var), steps)
        monitors.append(m)
        probes[(target, var)] = m
    for pb in net.probes:
        if pb.variable == "weights" and low.projections[pb.target].plasticity is not None \
                and (pb.target, "weights") not in probes:
            m = Monitor()
            m.probe(conns[pb.target].weights, steps)
            monitors.append(m)
            probes[(pb.target, "weights")] = m
    if hybrid is not None:  # neurodeploy.backends.hybrid: the torch part's process, wired in
        hybrid.attach(procs, probes, monitors)
    anchor = next(p for p in procs.values() if hasattr(p, "run"))
    try:
        if hardware:  # needs Intel's lava-loihi; never exercised here (no board, no package)
            from lava.magma.core.run_configs import Loihi2HwCfg

            cfg = Loihi2HwCfg()
        else:
            cfg = Loihi2SimCfg(select_tag="fixed_pt" if fixed else "floating_pt",
                               exception_proc_model_map=hybrid.model_map if hybrid is not None else None)
        anchor.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
        out = {}
        for (target, var), m in probes.items():
            data = m.get_data()
            proc_name = conns[target].name if var == "weights" else procs[target].name
            port = "s_out" if var == "spikes" else {"v": "v", "I": "u", "weights": "weights"}[var]
            out[(target, var)] = np.asarray(data[proc_name][port], dtype=float)
        if hybrid is not None:
            hybrid.collect(out)
    finally:
        anchor.stop()
    return out


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


def _result(net: Network, low: LoweredNetwork, q, target: Target, data: dict, wall: float,
            counts: dict | None = None) -> Result:
    """Monitor-style arrays (row m = state after Lava step m + 1) -> a Result in SI units.
    Shared with the torch backend, which simulates the same Lava form."""
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
            if pop.model == "lif":
                v = v[:steps] + _lif_input_of_step(pop, data, K, q, low, steps)
            vals = v[rows][:, idx] + pop.v_offset
        elif pb.variable == "I":
            vals = data[(pb.target, "I")][rows + 1][:, idx] / K / (pop.u_scale * np.exp(-dt / pop.tau_syn))
        elif pb.variable == "I_ext":  # a constant injected current (the only kind Lava lowers)
            current = _constant_currents(net).get(pb.target, np.zeros(pop.size))
            vals = np.broadcast_to(current[idx], (len(rows), len(idx))).copy()
        else:
            raise NotImplementedYet(f"probing '{pb.variable}' on Lava targets is not implemented yet")
        res.traces[pb.name] = Trace(pb.target, pb.variable,
                                    get_neuron(pop.model).state[pb.variable], rows * dt, idx, vals)
    return res.keep_probed_indices(net.probes)
