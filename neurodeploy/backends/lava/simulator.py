"""Running the Loihi form on Lava: targets ``lava`` (floating point) and ``loihi2-sim``
(bit-accurate fixed point).

The IR is lowered to Lava processes (:mod:`neurodeploy.lowering.loihi` gives the float
parameters, the ``quantize`` pass the integers): populations become Lava ``LIF`` processes, or neurodeploy's
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
from tqdm import tqdm

from ...core.compat.lava import ensure_lava_importable
from ...core.errors import BackendError, NotImplementedYet
from ...core.result import Result
from ...core.targets import Target
from ...core.versions import versions
from ...ir.nodes import Network
from ...lowering.learning_engine import stdp_bounds, third_factor_encoding
from ...lowering.loihi import LoweredNetwork, third_factor_targets, weight_scale
from ...lowering.loihi_result import loihi_result
from ...passes.pipeline import lower_for
from . import procs as ndlif, procs3f
from .learning import canonical_rule, stdp_rule, third_factor_rule
from .teardown import stopped_after

log = logging.getLogger("neurodeploy.lava")

#: use Sparse connections when at most this fraction of the (post, pre) matrix is non-zero
SPARSE_BELOW = 0.2
#: never build a dense (n_post, n_pre) matrix larger than this (elements)
DENSE_MAX_ELEMENTS = 50_000_000


#: a progress bar is split into about this many Lava runs (each RunSteps call synchronises every
#: process once more: chunks are kept at least MIN_CHUNK steps long)
PROGRESS_CHUNKS = 50
MIN_CHUNK = 20
#: the bar appears only for runs that last longer than this (s), like Brian2's and torch's
PROGRESS_DELAY_S = 2.0


@dataclass
class LavaOptions:
    progress: bool = True  # a progress bar (the run in chunks of steps; same results as one run)

    #: command-line option -> field
    CLI = {"progress": "progress"}


def run(net: Network, target: Target, options: LavaOptions | None = None) -> Result:
    low, q = lower_for(net, target)
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
    data = _simulate_or_fail(f"Lava failed while running '{net.name}'", low, q, net, hardware,
                             progress=(options or LavaOptions()).progress)
    wall = time.perf_counter() - t0
    res = loihi_result(net, low, q, target, data, wall)
    res.versions = versions()
    res.options = {"select_tag": "fixed_pt" if q else "floating_pt", "processes": {
        p.name: process_name(low, p) for p in low.populations.values()}, "warnings": low.warnings}
    for w in low.warnings:
        log.warning("warning: %s", w)
    return res


def process_name(low: LoweredNetwork, pop) -> str:
    """The Lava process population ``pop`` runs as: "LIF", "NDLIF" or "NDLIF3F"."""
    return "NDLIF3F" if pop.name in third_factor_targets(low) else pop.process


def _third_factor_neuron(pr, q, dt: float, kw: dict):
    """NDLIF3F for the target population of third-factor projection ``pr``: its NDLIF
    parameters ``kw`` (the defaults where it is plain LIF: then it equals Lava's LIF), plus the
    modulator trace's decay and impulse from :func:`.learning.third_factor_encoding` (fixed
    point: a 12-bit decay and an integer impulse)."""
    fixed = q is not None
    enc = third_factor_encoding(pr.canonical, pr.modulator, dt, pr.factor, fixed, weight_scale(q, pr) if fixed else None)
    decay = float(np.exp(-1.0 / enc.taus["y2"]))
    if fixed:
        return procs3f.NDLIF3F(mod_decay=int(round(4096 * decay)), mod_impulse=int(enc.impulses["y2"]), **kw)
    return procs3f.NDLIF3F(mod_decay=decay, mod_impulse=float(enc.impulses["y2"]), **kw)


def _learning_dense(pr, q, dt: float, procs: dict):
    """A plastic projection as a LearningDense with neurodeploy's pair-STDP rule or a canonical
    rule (.learning); with a third factor, a Loihi3FLearningRule whose post traces come from the
    target's NDLIF3F neuron.

    Third-factor wiring: ``modulator.s_out -> post.a_third_factor_in`` directly (no Dense, so the
    modulator's spikes of a step enter y2 in that step, as in the reference; a Dense would add a
    step), ``post.s_out_y1/y2/y3 -> s_in_y1/y2/y3`` and ``post.s_out_bap -> s_in_bap``."""
    from lava.proc.dense.process import LearningDense
    from lava.utils.weightutils import SignMode

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


def chunks(steps: int, progress: bool) -> list[int]:
    """The RunSteps of a run of ``steps`` steps: one without a progress bar, else a first run of
    one step (Lava compiles and starts its processes there: the bar appears right after) and about
    :data:`PROGRESS_CHUNKS` of at least :data:`MIN_CHUNK` steps (they add up to ``steps``)."""
    if not progress or steps <= MIN_CHUNK:
        return [steps]
    rest = steps - 1
    size = max(MIN_CHUNK, -(-rest // PROGRESS_CHUNKS))
    out = [1] + [size] * (rest // size)
    if rest % size:
        out.append(rest % size)
    return out


def _run_steps(anchor, steps: int, cfg, progress: bool, label: str) -> None:
    """``anchor.run`` for ``steps`` steps, in chunks with a progress bar when ``progress``: Lava
    keeps every process's state between runs, so the chunks compute what one run does."""
    from lava.magma.core.run_conditions import RunSteps

    parts = chunks(steps, progress)
    if len(parts) == 1:
        anchor.run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
        return
    with tqdm(total=steps, unit="step", desc=label, leave=False, delay=PROGRESS_DELAY_S) as bar:
        for n in parts:
            anchor.run(condition=RunSteps(num_steps=n), run_cfg=cfg)
            bar.update(n)


def _simulate(low: LoweredNetwork, q, net: Network, hardware: bool = False, hybrid=None,
              progress: bool = False) -> dict:
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.source import RingBuffer
    from lava.proc.lif.process import LIF
    from lava.proc.monitor.process import Monitor
    from lava.proc.sparse.process import DelaySparse, Sparse
    from lava.utils.weightutils import SignMode

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
            procs[pop.name] = ndlif.NDLIF(**kw)  # neurodeploy's own process package (Lava model discovery)
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
                import scipy.sparse as sp  # slow to import: not at `import neurodeploy`

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
    with stopped_after(anchor):  # Ctrl-C: abandons the run (Lava's stop() would hang), exit 130
        if hardware:  # needs Intel's lava-loihi; never exercised here (no board, no package)
            from lava.magma.core.run_configs import Loihi2HwCfg

            cfg = Loihi2HwCfg()
        else:
            cfg = Loihi2SimCfg(select_tag="fixed_pt" if fixed else "floating_pt",
                               exception_proc_model_map=hybrid.model_map if hybrid is not None else None)
        _run_steps(anchor, steps, cfg, progress and not hardware, "lava")
        out = {}
        for (target, var), m in probes.items():
            data = m.get_data()
            proc_name = conns[target].name if var == "weights" else procs[target].name
            port = "s_out" if var == "spikes" else {"v": "v", "I": "u", "weights": "weights"}[var]
            out[(target, var)] = np.asarray(data[proc_name][port], dtype=float)
        if hybrid is not None:
            hybrid.collect(out)
    return out



