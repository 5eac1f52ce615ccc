"""Brian2 backend: the reference simulator every other target is validated against.

The network is built from the IR with Brian2's own objects:

* populations -> ``NeuronGroup`` with the neuron model's ``equations``, ``threshold``,
  ``reset_code`` and ``refractory`` (no per-model branch here), parameters in the group's
  namespace as Brian2 quantities, integrated with ``method="exact"`` (all shipped models are
  linear between spikes);
* spike sources -> ``SpikeGeneratorGroup`` fed with the spikes drawn once by
  :mod:`neurodeploy.library.materialize` (so every backend sees the same input), or ``PoissonGroup``
  (``poisson="native"``: Brian2 draws them, seeded; statistically equivalent);
* injected currents -> ``TimedArray`` s read into the model's current input each step
  (``run_regularly``);
* projections -> ``Synapses`` with the materialised connectivity, weights and delay;
  ``stdp`` plasticity as event-driven pre/post traces;
* probes -> ``SpikeMonitor`` / ``StateMonitor`` (``when="end"``: the state after step k is
  stored at time k dt, as in the numpy reference).

Code generation (:mod:`.codegen`): ``auto`` uses Cython when its compiled code for this
network's structure is cached, or when the run is long enough for the first compilation
(~1.5 min) to pay off, and numpy otherwise (or when Cython or a C compiler is missing);
``device="cpp_standalone"`` compiles the whole run to C++ for long simulations.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from contextlib import contextmanager
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np
from tqdm import tqdm

from ...core.errors import BackendError, NotImplementedYet
from ...core.result import Result, SpikeTrains, Trace
from ...core.units import _eval_unit
from ...core.versions import versions
from ...ir.nodes import (
    ArrayStimulus,
    Block,
    CurrentStimulus,
    Network,
    PoissonStimulus,
    Population,
    SpikeTimesStimulus,
)
from ...library import materialize as mat
from ...library.endpoints import endpoints
from ...library.neurons import NEURONS, get_neuron
from ...library.plasticity import lowering
from ...lowering.loihi import discrete_order, euler_decay
from . import codegen as cg

log = logging.getLogger("neurodeploy.brian2")

CODEGEN_TARGETS = ("auto", "cython", "numpy")
DEVICES = ("runtime", "cpp_standalone")


@dataclass
class Brian2Options:
    codegen: str = "auto"  # auto | cython | numpy
    device: str = "runtime"  # runtime | cpp_standalone
    poisson: str = "shared"  # shared (materialised, identical across backends) | native (PoissonGroup)
    progress: bool = True
    standalone_dir: str | None = None
    extra: dict = field(default_factory=dict)

    #: command-line option -> field
    CLI = {"codegen": "codegen", "device": "device", "poisson": "poisson", "progress": "progress"}


def supports(net: Network, node) -> tuple[bool, str]:
    """Whether this backend can simulate ``node`` of ``net`` (with the reason if not)."""
    if isinstance(node, ArrayStimulus) and node.encoding == "value":
        return False, ("graded (encoding: value) sources drive coder blocks, which `neurodeploy eval` runs "
                       "(not part of a spiking network)")
    pr = getattr(node, "plasticity", None)
    if pr is not None:
        why = _canonical_problem(lowering(pr.rule, pr.params, net.simulation.dt))
        if why:
            return False, f"plasticity rule '{pr.rule}': {why}"
    if isinstance(node, Block):
        return False, "blocks are expanded and run by `neurodeploy eval` (neurodeploy.passes.expand)"
    sched = net.simulation.schedule
    if sched != "exact" and pr is not None:
        return False, f"schedule '{sched}': plasticity on Brian2 runs under schedule 'exact' only"
    if sched != "exact" and isinstance(node, Population) and node.model not in EULER_JUMP_MODELS:
        return False, (f"schedule '{sched}': neuron model '{node.model}' is not expressible on Brian2 (its Euler "
                       f"step updates the synaptic current before v, Brian2 integrates both at once; models "
                       f"with this schedule on Brian2: {', '.join(EULER_JUMP_MODELS)}; the torch and "
                       "reference targets run it)")
    model = NEURONS.get(getattr(node, "model", None) or "")
    if model is not None and model.graded:
        return False, (f"graded model '{model.name}' is not part of a spiking network: `neurodeploy eval` "
                       "runs iP-VAE / LCA coders (Brian2: a Poisson run_regularly network)")
    return True, ""


#: models whose Euler step Brian2 expresses: schedules ``discrete`` and ``loihi`` (``cuba_lif`` and
#: ``cuba_li``: the current is stepped by hand before the synaptic input, then v integrates, see
#: _euler_schedule)
EULER_JUMP_MODELS = ("lif", "if", "cuba_lif", "li", "cuba_li")
#: the models whose synaptic current is stepped by hand under an Euler schedule
_EULER_CUBA = ("cuba_lif", "cuba_li")
#: cuba_lif's synaptic current under an Euler schedule: a plain variable, decayed by a custom operation
_CUBA_CURRENT = "dI/dt = -I / tau_syn : amp\n"


def _euler_schedule(net: Network, groups: dict, synapses: dict, b2, cuba: set) -> None:
    """Schedules ``discrete`` and ``loihi`` (docs/spec.md#schedule) as Brian2 ``when``/``order``:
    the groups integrate with forward Euler (``groups`` slot), then, in the ``thresholds`` slot,
    every population's incoming pathways deliver before its threshold, populations in
    :func:`~neurodeploy.lowering.loihi.discrete_order` (sources first). A zero-delay pathway runs
    after its source's threshold (the spike crosses it within the step) unless it closes a cycle
    (then before: it pushes the source's previous spikes, one step later); delays:
    :func:`_euler_delay`. ``cuba``: the ``cuba_lif`` populations, whose current decays by a custom
    operation before their input arrives and whose state update (v alone) runs after it."""
    pos = {n: i for i, n in enumerate(_step_order(net))}
    for name, g in groups.items():
        # a SpikeGeneratorGroup emits as a code runner of its own, other groups through their thresholder
        th = g.thresholder["spike"] if "spike" in getattr(g, "thresholder", {}) else g
        th.when, th.order = "thresholds", (4 * pos[name] + 3 if name in pos else -1)  # sources first
        if name in pos and name in cuba:  # I = (1 - dt/tau_syn) I, the input, then v (u then v)
            g.state_updater.when, g.state_updater.order = "thresholds", 4 * pos[name] + 2
            g.run_regularly("I = I * nd_a_syn", when="thresholds", order=4 * pos[name], name=f"nd_decay_{name}")
    for name, (S, syn) in synapses.items():
        S.pre.when, S.pre.order = "thresholds", 4 * pos[S.target.name[len("nd_pop_"):]] + 1


def choose_codegen(requested: str, net: Network | None = None, poisson: str = "shared") -> str:
    """The code generation target of a run (:func:`decide_codegen`; ``net`` None: without the
    run-time estimate, Cython whenever it is available)."""
    return decide_codegen(requested, net, poisson).codegen


def decide_codegen(requested: str, net: Network | None = None, poisson: str = "shared") -> cg.Decision:
    """:func:`.codegen.decide` for ``net``: is its structure cached, and the estimated numpy and
    Cython run times (``--codegen auto``)."""
    ok, missing = cg.cython_available()
    if requested == "numpy":
        return cg.decide(requested, None, cached=False)
    if not ok:
        if requested == "cython":
            raise BackendError(f"--codegen cython: {missing} (pip install Cython, or a C compiler; "
                               "--codegen numpy needs neither)")
        log.info("brian2: %s; using the (slower) numpy code generation target", missing)
        return cg.decide(requested, None, cached=False, cython_ok=False, missing=missing)
    cached = net is not None and cg.is_cached(cg.structure_key(net, poisson))
    return cg.decide(requested, cg.size_of(net) if net is not None else None, cached=cached)


def _unit(name: str):
    from brian2.core.namespace import DEFAULT_UNITS
    from brian2.units.fundamentalunits import Unit

    if name in ("1", None):
        return Unit(1)

    return _eval_unit(name) if name not in DEFAULT_UNITS else DEFAULT_UNITS[name]


def _step_order(net: Network) -> list[str]:
    """The order the populations step in under an Euler schedule (see :func:`_euler_schedule`)."""
    return discrete_order(net)[0] if net.simulation.schedule == "discrete" else [p.name for p in net.populations]


def _euler_delay(net: Network, pr, d: int) -> int:
    """Brian2 delay (steps) of projection ``pr`` (``d`` steps in the spec) under an Euler schedule.
    A pathway runs just before its target's threshold: it pushes its source's spikes of this
    step if the source thresholds earlier, else those of the previous step (one step later).
    Wanted: a spike of step k is input of step k + e, e = d + 1 (``loihi``); e = d, or 1 for a
    zero-delay projection that closes a cycle (``discrete``)."""
    pos = {n: i for i, n in enumerate(_step_order(net))}
    stale = pr.source in pos and pos[pr.source] >= pos[pr.target]
    e = d + 1 if net.simulation.schedule == "loihi" else max(d, 1 if stale else 0)
    return e - 1 if stale else e


def _namespace(model, p) -> dict:
    ns = {}
    for name, (info, _) in model.param_infos().items():
        if info.kind == "quantity":
            ns[name] = getattr(p, name) * _unit(info.unit)
    return ns


def run(net: Network, target_name: str = "brian2", options: Brian2Options | None = None) -> Result:
    """Build the network in Brian2, run it, and return a :class:`Result`."""
    opts = options or Brian2Options()
    if opts.codegen not in CODEGEN_TARGETS or opts.device not in DEVICES or opts.poisson not in ("shared", "native"):
        raise BackendError(f"invalid Brian2 options: {opts}")
    for group in (net.stimuli, net.projections, net.blocks):
        for node in group:
            ok, why = supports(net, node)
            if not ok:
                raise BackendError(f"brian2 cannot run '{node.name}': {why}")
    if net.simulation.schedule != "exact":
        for node in net.populations:
            ok, why = supports(net, node)
            if not ok:
                raise NotImplementedYet(f"brian2 cannot run '{node.name}': {why}")
    import brian2 as b2

    prefs_before = b2.prefs.codegen.target
    decision = decide_codegen(opts.codegen, net, opts.poisson) if opts.device == "runtime" else None
    codegen = decision.codegen if decision is not None else "cython"
    standalone_dir = None
    if opts.device == "cpp_standalone":
        standalone_dir = opts.standalone_dir or tempfile.mkdtemp(prefix="neurodeploy_b2_")
        b2.set_device("cpp_standalone", directory=standalone_dir, build_on_run=True)
    else:
        b2.prefs.codegen.target = codegen
    try:
        t0 = time.perf_counter()
        built = build(net, opts)
        b2.seed(net.simulation.seed)
        duration = net.simulation.steps * net.simulation.dt * b2.second
        kw = {}
        if opts.device == "cpp_standalone":
            kw["report"] = None
        elif opts.progress:
            kw["report"], kw["report_period"] = _progress(duration), 1 * b2.second
        cache_before = _cython_cache_files() if codegen == "cython" and opts.device == "runtime" else None
        if cache_before is not None and decision.compiles and opts.progress:
            log.info(cg.COMPILING_MESSAGE)
        built.network.run(duration, namespace={}, **kw)
        if opts.device == "runtime":
            check_completed(built.network, duration, net.simulation.dt)
        wall = time.perf_counter() - t0
        result = _collect(net, built, target_name, wall)
        result.options = {"codegen": codegen if opts.device == "runtime" else "cpp_standalone",
                          "device": opts.device, "poisson": opts.poisson}
        if decision is not None:
            result.options["codegen_reason"] = decision.reason
        if cache_before is not None:
            modules = cg.compiled_modules(built.network)
            result.options["cython_modules_compiled"] = len(_cython_cache_files() - cache_before)
            cg.record(cg.structure_key(net, opts.poisson), modules)
        if opts.device == "cpp_standalone":  # the compiled program's own run time, without compilation
            result.options["standalone_run_s"] = float(getattr(b2.device, "_last_run_time", float("nan")))
        return result
    except BackendError:
        raise
    except Exception as e:
        raise BackendError(f"Brian2 failed while running '{net.name}': {type(e).__name__}: {e}") from e
    finally:
        if opts.device == "cpp_standalone":
            b2.device.reinit()
            b2.device.activate()
            b2.set_device("runtime")
            if standalone_dir and not opts.standalone_dir:
                shutil.rmtree(standalone_dir, ignore_errors=True)
        b2.prefs.codegen.target = prefs_before


def _cython_cache_files() -> set[str]:
    """The compiled modules in Brian2's Cython cache now (to count what a run compiled)."""
    try:
        from brian2.codegen.runtime.cython_rt.extension_manager import get_cython_cache_dir

        d = os.path.expanduser(get_cython_cache_dir() or "")
        return {f for f in os.listdir(d) if f.endswith((".so", ".pyd"))} if d and os.path.isdir(d) else set()
    except Exception:  # noqa: BLE001 - only a count for the result's options
        return set()


@contextmanager
def interrupts_raise():
    """Ctrl-C during a Brian2 run raises :class:`KeyboardInterrupt`. Brian2's own SIGINT handler
    (``prefs.core.stop_on_keyboard_interrupt``, on by default) turns it into ``Network.stop()``:
    the run returns normally after the current step, with truncated recordings that would be
    saved as a finished run (issue 16). The preference is restored afterwards."""
    import brian2 as b2

    _callable_previous_handler(b2)
    before = b2.prefs.core.stop_on_keyboard_interrupt
    b2.prefs.core.stop_on_keyboard_interrupt = False
    try:
        yield
    finally:
        b2.prefs.core.stop_on_keyboard_interrupt = before


def _callable_previous_handler(b2) -> None:
    """Brian2 replaces the SIGINT handler when it is imported and calls the one it found for every
    interrupt it does not turn into a stop. Where Python started with SIGINT ignored (a process
    started in the background by a shell without job control) that is ``SIG_IGN``, not callable,
    and a SIGINT (``kill -INT``) crashed the run with "'Handlers' object is not callable". Keep
    what the process asked for: ignore it (``SIG_IGN``), or interrupt (``SIG_DFL``)."""
    handler = getattr(b2, "_int_handler", None)
    prev = getattr(handler, "previous_handler", None)
    if handler is None or prev is None or callable(prev):
        return
    handler.previous_handler = (lambda sig, frame: None) if prev == signal.SIG_IGN else signal.default_int_handler


def check_completed(network, duration, dt: float) -> None:
    """Raise :class:`KeyboardInterrupt` when ``network`` stopped before ``duration`` (a stop
    requested by Brian2's Ctrl-C handler), so a cut-short run is never taken for a finished one."""
    t, want = float(network.t), float(duration)
    if t < want - 0.5 * dt:
        raise KeyboardInterrupt(f"Brian2 stopped at t = {t * 1e3:g} ms of {want * 1e3:g} ms")


def _progress(duration):
    bar = {"b": None}

    def report(elapsed, completed, start, total):
        # Brian2 calls this every second of wall time; show a bar only for runs that last
        if bar["b"] is None:
            if completed >= 1.0 or float(elapsed) < 2.0:
                return
            bar["b"] = tqdm(total=100, unit="%", desc="brian2", leave=False,
                            bar_format="{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}")
        bar["b"].n = int(completed * 100)
        bar["b"].refresh()
        if completed >= 1.0:
            bar["b"].close()

    return report


@dataclass
class Built:
    network: object
    groups: dict
    synapses: dict
    spike_monitors: dict
    state_monitors: dict


def build(net: Network, opts: Brian2Options) -> Built:
    import brian2 as b2

    dt = net.simulation.dt * b2.second
    eps = endpoints(net)
    objects, groups, synapses, smons, tmons = [], {}, {}, {}, {}
    drives = mat.current_drives(net)

    euler = net.simulation.schedule != "exact"
    cuba = set()
    for pop in net.populations:
        model = get_neuron(pop.model)
        p = model.make_params(pop.params)
        if euler and hasattr(p, "tau_m"):  # loihi: Lava's 12-bit decay, as the time constant it stands for
            d = euler_decay(net, p.tau_m)
            p = dataclasses.replace(p, tau_m=net.simulation.dt / d if d > 0 else float("inf"))
        ns = _namespace(model, p)
        eqs = model.equations
        if euler and pop.model in _EULER_CUBA:
            assert _CUBA_CURRENT in eqs, f"{pop.model}'s equations changed: update _CUBA_CURRENT"
            eqs = eqs.replace(_CUBA_CURRENT, "I : amp\n")
            ns["nd_a_syn"] = 1.0 - euler_decay(net, p.tau_syn)
            cuba.add(pop.name)
        code = []
        for k, d in enumerate(d for d in drives if d.target == pop.name):
            ta = f"nd_drive{k}"
            if d.frames is not None:
                frames = np.vstack([d.frames, np.zeros((1, d.frames.shape[1]))])  # silent after the last frame
                ns[ta] = b2.TimedArray(frames * b2.amp, dt=d.frame_steps * dt)
                code.append(f"{ta}(t, i)")
            else:
                ns[ta] = b2.TimedArray(np.append(d.amplitude, 0.0) * b2.amp, dt=dt)
                eqs += f"\nnd_mask{k} : 1 (constant)"
                code.append(f"{ta}(t) * nd_mask{k}")
        g = b2.NeuronGroup(pop.size, eqs, threshold=model.threshold, reset=model.reset_code(p),
                           refractory=model.refractory or False, method="euler" if euler else model.brian2_method,
                           namespace=ns, dt=dt,
                           name=f"nd_pop_{pop.name}")
        for var, values in mat.initial_state(net, pop).items():
            setattr(g, var, values * _unit(model.state[var]))
        for k, d in enumerate(d for d in drives if d.target == pop.name):
            if d.frames is None:
                setattr(g, f"nd_mask{k}", d.mask)
        if code and model.current_input:
            g.run_regularly(f"{model.current_input} = " + " + ".join(code), when="start", name=f"nd_drive_{pop.name}")
        groups[pop.name] = g
        objects.append(g)

    for s in net.stimuli:
        if isinstance(s, CurrentStimulus) or (isinstance(s, ArrayStimulus) and s.encoding == "current"):
            continue
        if opts.poisson == "native" and isinstance(s, PoissonStimulus):
            rates = mat.load_array(s.rates, mat.base_dir(net)) if s.rates is not None else s.rate
            g = b2.PoissonGroup(s.size, rates=np.asarray(rates) * b2.Hz, dt=dt, name=f"nd_src_{s.name}")
        elif opts.poisson == "native" and isinstance(s, ArrayStimulus):
            frames = mat._frames(net, s) * s.gain
            ta = b2.TimedArray(np.vstack([frames, np.zeros((1, frames.shape[1]))]) * b2.Hz,
                               dt=mat.frame_steps(net, s) * dt)
            g = b2.PoissonGroup(s.size, rates="nd_rates(t, i)", dt=dt, name=f"nd_src_{s.name}",
                                namespace={"nd_rates": ta})
        elif isinstance(s, (PoissonStimulus, SpikeTimesStimulus, ArrayStimulus)):
            idx, k = mat.source_spikes(net, s)
            g = b2.SpikeGeneratorGroup(s.size, idx, k * dt, dt=dt, name=f"nd_src_{s.name}")
        groups[s.name] = g
        objects.append(g)

    for pr in net.projections:
        syn = mat.synapses(net, pr)
        tgt_model = get_neuron(eps[pr.target].model.name)
        wunit = tgt_model.weight_unit
        target_var = tgt_model.synaptic_target
        low = (lowering(pr.plasticity.rule, pr.plasticity.params, net.simulation.dt)
               if pr.plasticity is not None else None)
        canonical = low is not None and low.kind == "canonical"
        if low is None:
            model, on_pre, on_post, ns = f"w : {wunit}", f"{target_var}_post += w", None, {}
        elif not canonical:
            model, on_pre, on_post, ns = _stdp(low.stdp, wunit, target_var, syn.sign)
        else:
            model, on_pre, on_post, ns, every_step = _canonical(low.canonical, wunit, target_var, syn.sign,
                                                                net.simulation.dt, low.modulator, low.gate,
                                                                net.simulation.steps)
        delay = (_euler_delay(net, pr, syn.delay_steps) if euler else syn.delay_steps) * dt
        if canonical:  # every pre pathway has the projection's delay
            delay = {k: delay for k in on_pre}
        S = b2.Synapses(groups[pr.source], groups[pr.target], model=model, on_pre=on_pre, on_post=on_post,
                        delay=delay, dt=dt, namespace=ns, method="exact",
                        name=f"nd_proj_{pr.name}")
        S.connect(i=syn.i, j=syn.j)
        if canonical:
            # event semantics: delivery (old weight), then the trace impulses, then the products
            S.pre.order, S.pre_trace.order, S.post_trace.order = -3, -2, -2
            for name in ("pre_learn", "post_learn"):
                if name in on_pre or name in (on_post or {}):
                    getattr(S, name).order = -1
            S.run_regularly(every_step, when="after_synapses", name=f"nd_learn_{pr.name}")
            if low.modulator is not None:  # neuron j of the modulator bumps the trace of every synapse onto j
                M = b2.Synapses(groups[low.modulator["source"]], S, on_pre="r_mod_post += 1", dt=dt,
                                name=f"nd_mod_{pr.name}")
                M.connect(i=syn.j, j=np.arange(len(syn.j)))
                M.pre.order = -2  # with the trace impulses, before the learning step
                objects.append(M)
        S.w = (syn.w * syn.sign if pr.plasticity is not None else syn.w) * _unit(wunit)
        synapses[pr.name] = (S, syn)
        objects.append(S)

    if euler:
        _euler_schedule(net, groups, synapses, b2, cuba)
    rec_spikes = {pb.target for pb in net.probes if pb.variable == "spikes"}
    for name, g in groups.items():
        if name in rec_spikes or name in {p.name for p in net.populations}:
            m = b2.SpikeMonitor(g, record=name in rec_spikes, name=f"nd_spikes_{name}")
            if euler:  # after every threshold of the step
                m.when = "end"
            smons[name] = m
            objects.append(m)
    for pb in net.probes:
        if pb.variable == "spikes":
            continue
        record = True if pb.indices is None else list(pb.indices)
        period = (pb.period or net.simulation.dt) * b2.second
        if pb.variable == "weights":
            src = synapses[pb.target][0]
            var = "w"
        else:
            src = groups[pb.target]
            var = pb.variable
        m = b2.StateMonitor(src, var, record=record, dt=period, when="end", name=f"nd_probe_{len(tmons)}")
        tmons[pb.name] = (pb, m)
        objects.append(m)
    return Built(b2.Network(*objects), groups, synapses, smons, tmons)


def _stdp(params: dict, wunit: str, target_var: str, sign: float):
    """Pair STDP (see :mod:`neurodeploy.library.plasticity.stdp`) as Brian2 event-driven traces."""
    import brian2 as b2

    u = _unit(wunit)
    ns = {"tau_pre": params["tau_pre"] * b2.second, "tau_post": params["tau_post"] * b2.second,
          "a_plus": params["a_plus"] * u, "a_minus": params["a_minus"] * u,
          "w_min": params.get("w_min", 0.0) * u, "w_max": params["w_max"] * u, "w_sign": sign}
    model = (f"w : {wunit}\n"
             f"dapre/dt = -apre / tau_pre : {wunit} (event-driven)\n"
             f"dapost/dt = -apost / tau_post : {wunit} (event-driven)")
    if params.get("multiplicative"):
        dep, pot = "apost * (w - w_min) / (w_max - w_min)", "apre * (w_max - w) / (w_max - w_min)"
    else:
        dep, pot = "apost", "apre"
    on_pre = (f"{target_var}_post += w_sign * w\n"
              "apre += a_plus\n"
              f"w = clip(w + {dep}, w_min, w_max)")
    on_post = ("apost -= a_minus\n"
               f"w = clip(w + {pot}, w_min, w_max)")
    return model, on_pre, on_post, ns


def _canonical_problem(low) -> str:
    """Why a canonical rule has no Brian2 lowering ('' if it has one)."""
    if low.kind != "canonical" or low.problem():
        return low.problem()
    return ""


def _canonical(rule, wunit: str, target_var: str, sign: float, dt: float, modulator: dict | None = None,
               gate: tuple | None = None, steps: int = 0):
    """A canonical-form rule (:mod:`neurodeploy.library.plasticity.canonical`) as Brian2 ``Synapses``.

    Traces are clock-driven synaptic variables (exact exponential decay each step, in the
    ``groups`` slot); pathways, in this order within the ``synapses`` slot: ``pre`` delivers with
    the weight before the step's change, ``pre_trace``/``post_trace`` add the impulses,
    ``pre_learn``/``post_learn`` accumulate the ``x0``/``y0`` products into ``dw_acc``; a
    ``run_regularly`` after the synapses adds the continuous (``dt``) products and the weight
    decay, applies the step's change and clips -- the event semantics of the reference and of
    Lava's learning engine. Returns ``(model, on_pre, on_post, namespace, every_step_code)``."""
    import brian2 as b2

    u = _unit(wunit)
    ns = {"w_sign": sign, "w_min": max(rule.w_min, -1e30) * u, "w_max": min(rule.w_max, 1e30) * u}
    lines = [f"w : {wunit}", f"dw_acc : {wunit}"]
    pre_trace, post_trace = [], []
    for k, tr in rule.traces().items():
        ns[f"tau_{k}"] = tr.tau * b2.second
        ns[f"imp_{k}"] = tr.impulse
        lines.append(f"d{k}/dt = -{k} / tau_{k} : 1 (clock-driven)")
        (pre_trace if k[0] == "x" else post_trace).append(f"{k} += imp_{k}")
    if modulator is not None:  # the third factor r = (modulator trace - offset), bumped by nd_mod_*
        ns["tau_mod"], ns["mod_offset"] = modulator["tau"] * b2.second, modulator["offset"]
        lines.append("dr_mod/dt = -r_mod / tau_mod : 1 (clock-driven)")
    r_code = "(r_mod - mod_offset)"
    if gate is not None:  # a phase gate: 1 in steps k0 < k <= k1, as a TimedArray of the step
        k = np.arange(steps + 1)
        ns["nd_gate"] = b2.TimedArray(((k > gate[0]) & (k <= gate[1])).astype(float), dt=dt * b2.second)
        r_code = "nd_gate(t)"
    # y0 inside an x0 product (a pre and a post spike in the same step): a flag the post_trace
    # pathway sets before the learning pathways run, cleared after the step's update (only rules
    # that have such a product pay for it)
    same_step = any("x0" in t.factors and "y0" in t.factors for t in rule.terms)
    if same_step:
        lines.append("y0s : 1")
    groups = {"x0": [], "y0": [], "dt": []}
    for n, t in enumerate(rule.terms):
        dep = "x0" if "x0" in t.factors else "y0" if "y0" in t.factors else "dt"
        p_w = t.factors.count("w")
        coeff = t.coeff * (dt ** t.factors.count("dt"))
        ns[f"c_{n}"] = coeff if p_w == 1 else coeff * u ** (1 - p_w)  # unit: weight^(1 - powers of w)
        body = " * ".join([f"c_{n}"] + [r_code if f == "r" else "y0s" if f == "y0" else f
                                        for f in t.factors if f not in (dep, "dt")])
        groups[dep].append(body)
    on_pre = {"pre": f"{target_var}_post += w_sign * w",
              "pre_trace": "\n".join(pre_trace) or "dw_acc += 0 * w"}
    on_post = {"post_trace": "\n".join(post_trace + (["y0s = 1"] if same_step else [])) or "dw_acc += 0 * w"}
    if groups["x0"]:
        on_pre["pre_learn"] = "dw_acc += " + " + ".join(groups["x0"])
    if groups["y0"]:
        on_post["post_learn"] = "dw_acc += " + " + ".join(groups["y0"])
    step = "dw_acc + " + " + ".join(groups["dt"]) if groups["dt"] else "dw_acc"
    if rule.decay:
        ns["w_decay"] = rule.decay * dt
        step += " - w_decay * w"
    every = f"w = clip(w + {step}, w_min, w_max)\ndw_acc = 0 * w" + ("\ny0s = 0" if same_step else "")
    return "\n".join(lines), on_pre, on_post, ns, every


def _collect(net: Network, built: Built, target: str, wall: float) -> Result:
    import brian2 as b2

    dt = net.simulation.dt
    res = Result(net.name, "brian2", target, dt, net.simulation.steps, net.simulation.seed,
                 wall_time_s=wall, versions=versions())
    pops = {p.name for p in net.populations}
    rec = {pb.target for pb in net.probes if pb.variable == "spikes"}
    for name, m in built.spike_monitors.items():
        if name in pops:
            res.counts[name] = np.asarray(m.count[:], dtype=np.int64)
        if name in rec:
            t = np.asarray(m.t_[:], dtype=float)
            res.spikes[name] = SpikeTrains(len(built.groups[name]), np.asarray(m.i[:], dtype=np.int64),
                                           np.rint(t / dt) * dt)
    for name, (pb, m) in built.state_monitors.items():
        var = "w" if pb.variable == "weights" else pb.variable
        values = np.asarray(getattr(m, var + "_")).T  # (T, n)
        if pb.variable == "weights":
            syn = built.synapses[pb.target][1]
            pr = next(p for p in net.projections if p.name == pb.target)
            if pr.plasticity is not None:
                values = values * syn.sign
            unit = pr.weights.unit
            index = np.arange(values.shape[1]) if pb.indices is None else np.asarray(pb.indices)
        else:
            pop = next(p for p in net.populations if p.name == pb.target)
            unit = get_neuron(pop.model).state[pb.variable]
            index = np.arange(values.shape[1]) if pb.indices is None else np.asarray(pb.indices)
        t = np.rint(np.asarray(m.t_[:]) / dt) * dt
        res.traces[name] = Trace(pb.target, pb.variable, unit, t, index, values)
    del b2
    return res.keep_probed_indices(net.probes)
