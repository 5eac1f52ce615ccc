"""IR -> Lava LIF parameters (floating point), with no Lava import.

Lava's CUBA LIF, per time step ``m``::

    u[m] = u[m-1] (1 - du) + a_in[m]
    v[m] = v[m-1] (1 - dv) + u[m] + bias        spike if v > vth, then v = 0

and a ``Dense`` connection delivers in step ``m`` what its sources emitted in step ``m-1``.
neurodeploy's reference semantics (Brian2's schedule, see docs/running.md) integrate exactly,
then threshold, then add this step's synaptic input. The two agree *exactly* under this change of
variables, derived in the comments of :func:`lower_population`:

* ``v_lava = v - v_rest`` (``lif``) or ``v - v_leak`` (``cuba_lif``): Lava's potential decays to 0;
* ``dv = 1 - exp(-dt/tau_m)``; ``bias = dv * R_m * (I_bias + I_ext)`` (a constant current only);
* ``lif``: ``du = 1`` (u holds only this step's input) and weights ``w_lava = exp(-dt/tau_m) w``;
* ``cuba_lif``: ``du = 1 - exp(-dt/tau_syn)``, ``u_lava = d I`` with
  ``d = R_m tau_syn/(tau_syn - tau_m) (a_s - a_m)`` and weights ``w_lava = d w``;
* a Brian2 delay of ``k`` steps is a Lava ``DelayDense``/``DelaySparse`` delay of ``k``.

Under ``simulation.schedule`` (docs/spec.md#schedule) other than ``exact`` there is no change of
variables: ``discrete`` and ``loihi`` *are* Euler schemes, so the parameters pass through as Lava
means them (``dv = dt/tau_m``, ``du = dt/tau_syn`` or 1, ``lif`` weights unscaled, ``cuba_lif``
weights ``R_m dt/tau_m w``, no input dropped after a spike). ``loihi`` keeps Lava's one-step
latency (from spike sources too, as a RingBuffer feeding a Dense); ``discrete`` delivers a
zero-delay connection within the step (:func:`discrete_order`, :func:`schedule_delay`), which
Lava cannot: its populations are reported unsupported on Lava (they run on the torch fallback).

Populations whose semantics plain Lava ``LIF`` cannot express (refractoriness, a reset value
other than the resting/leak potential, reset by subtraction, or ``lif``'s loss of input that
arrives while the potential is clamped) use neurodeploy's ``NDLIF`` process
(:mod:`neurodeploy.backends.lava.procs`), which adds exactly those rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import CompileError
from ..ir.nodes import ArrayStimulus, CurrentStimulus, Network, PoissonStimulus, SpikeTimesStimulus
from ..library import materialize as mat
from ..library.endpoints import endpoints
from ..library.neurons import NEURONS, euler_models, get_neuron
from ..library.plasticity import lowering
from .learning_engine import canonical_encoding, stdp_bounds, third_factor_encoding

SUPPORTED_MODELS = ("lif", "cuba_lif", "if")
#: bound on the (neurons x steps) spike array a Lava RingBuffer source holds in memory
RINGBUFFER_MAX_CELLS = 200_000_000


@dataclass
class LoweredPopulation:
    name: str
    size: int
    model: str  # neurodeploy model
    process: str  # "LIF" (Lava's) or "NDLIF" (neurodeploy's)
    du: float
    dv: float
    vth: float  # Lava units (volts, shifted)
    bias: np.ndarray  # (size,) volts per step
    v_reset: float  # shifted; 0 for Lava's LIF
    reset_mode: int  # 0 = set to v_reset, 1 = subtract vth
    refractory_steps: int
    input_drop: int
    v_offset: float  # v = v_lava + v_offset
    u_scale: float  # u_lava = u_scale * (neurodeploy's synaptic state), 0 when there is none
    weight_factor: float  # w_lava = weight_factor * w
    v0: np.ndarray
    u0: np.ndarray
    tau_m: float
    tau_syn: float | None
    dt: float
    v_lsb: float | None = None  # the spec's fixed_point.v_lsb (volts per integer unit of v)


@dataclass
class LoweredProjection:
    name: str
    source: str
    target: str
    i: np.ndarray
    j: np.ndarray
    w: np.ndarray  # Lava units (volts on v per spike), signed
    delay_steps: int
    sign: str
    n_src: int
    n_tgt: int
    w_si: np.ndarray  # the effective weights in the spec's unit, for reports
    #: pair-STDP parameters (SI) of a plastic projection; for a canonical-form rule only its
    #: bounds (``w_min``, ``w_max``) and ``rule``, the form itself in ``canonical``
    plasticity: dict | None = None
    factor: float = 1.0  # w_lava = factor * w_si (the target's weight factor; negative if inhibitory)
    canonical: object | None = None  # plasticity.canonical.CanonicalRule, for rules other than pair STDP
    modulator: dict | None = None  # the third factor's source (plasticity.Lowering.modulator)
    gate: tuple | None = None  # or a phase gate (plasticity.Lowering.gate)
    #: schedule ``discrete``: delivered in the step it was emitted (after its source stepped)
    same_step: bool = False

    def matrix(self):
        """(n_post, n_pre) sparse matrix, as Lava wants it (repeated pairs summed)."""
        import scipy.sparse as sparse  # scipy is slow to import: only where a matrix is built

        return sparse.csr_matrix((self.w, (self.j, self.i)), shape=(self.n_tgt, self.n_src))

    def dense(self) -> np.ndarray:
        return self.matrix().toarray()


@dataclass
class LoweredSource:
    name: str
    size: int
    spikes: np.ndarray  # (size, steps) bool


@dataclass
class LoweredNetwork:
    name: str
    dt: float
    steps: int
    populations: dict[str, LoweredPopulation] = field(default_factory=dict)
    projections: dict[str, LoweredProjection] = field(default_factory=dict)
    sources: dict[str, LoweredSource] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)  # what the lowering cannot reproduce exactly
    schedule: str = "exact"  # the spec's simulation.schedule


class Unsupported(Exception):
    """A node that the Lava targets cannot express; ``node`` and ``reason`` say which and why."""

    def __init__(self, node: str, reason: str):
        super().__init__(f"'{node}': {reason}")
        self.node, self.reason = node, reason


def unsupported_nodes(net: Network, same_step: bool = False) -> list[Unsupported]:
    """Every node of ``net`` that the Lava targets cannot run, with the reason (empty if none).
    ``same_step``: the caller delivers within a step (torch), so schedule ``discrete`` is fine."""
    out: list[Unsupported] = []
    if net.simulation.schedule == "discrete" and not same_step:
        for p in net.populations:
            out.append(Unsupported(p.name, "schedule 'discrete' delivers a spike through a zero-delay connection "
                                           "within its step; Lava delivers one step late (use schedule 'loihi', "
                                           "or the torch / reference targets)"))
    if net.simulation.schedule != "exact":
        for p in net.populations:
            if p.model not in euler_models() and p.model in NEURONS and not NEURONS[p.model].graded:
                out.append(Unsupported(p.name, f"neuron model '{p.model}' has no '{net.simulation.schedule}' "
                                               f"schedule (models with one: {', '.join(euler_models())})"))
    constant_currents(net, out)
    for p in net.populations:
        if p.model not in SUPPORTED_MODELS:
            graded = p.model in NEURONS and NEURONS[p.model].graded
            out.append(Unsupported(p.name, f"graded model '{p.model}' is not part of a spiking netlist: "
                                           "`neurodeploy eval` runs iP-VAE / LCA coders (their own Lava processes)"
                                   if graded else f"neuron model '{p.model}' has no Lava lowering"))
            continue
        prm = get_neuron(p.model).make_params(p.params)
        if p.model == "cuba_lif" and prm.reset_mode == "subtract" and prm.v_reset != prm.v_leak:
            out.append(Unsupported(p.name, "reset by subtraction needs v_reset == v_leak on Lava"))
    for s in net.stimuli:
        if isinstance(s, ArrayStimulus) and s.encoding in ("value", "current"):
            out.append(Unsupported(s.name, f"array stimuli with encoding '{s.encoding}' have no Lava lowering yet"))
    for pr in net.projections:
        pl = pr.plasticity
        if pl is None:
            continue
        lw = lowering(pl.rule, pl.params, net.simulation.dt)
        why = _plastic_problem(lw, pr, net)
        if why:
            out.append(Unsupported(pr.name, why))
    for b in net.blocks:
        out.append(Unsupported(b.name, "blocks are expanded first (neurodeploy.passes.expand); a coder is "
                                       "evaluated with `neurodeploy eval`"))
    return out


def constant_currents(net: Network, problems: list | None = None) -> dict[str, np.ndarray]:
    """Per population, the injected current if it is constant over the whole run (else report)."""
    sizes = {p.name: p.size for p in net.populations}
    out: dict[str, np.ndarray] = {}
    for s in net.stimuli:
        if not isinstance(s, CurrentStimulus):
            continue
        constant = s.amplitude is not None and s.start <= 0 and (s.stop is None or s.stop >= net.simulation.duration)
        if not constant:
            if problems is not None:
                problems.append(Unsupported(s.name, "only currents that are constant over the whole run lower to "
                                                    "Lava (as a bias); time-varying ones run on the torch fallback or the brian2 target"))
            continue
        cur = out.setdefault(s.target, np.zeros(sizes[s.target]))
        idx = list(s.indices) if s.indices is not None else slice(None)
        cur[idx] += s.amplitude
    return out


def lower_population(net: Network, pop, current: np.ndarray | None) -> LoweredPopulation:
    dt = net.simulation.dt
    model = get_neuron(pop.model)
    p = model.make_params(pop.params)
    init = mat.initial_state(net, pop)
    i_ext = np.zeros(pop.size) if current is None else current
    if pop.model == "if":
        # ``lif`` in the limit tau_m -> inf (a_m = 1, dv = 0; bias = dt I / C_m), with v measured
        # from v_reset so that Lava's reset to 0 is the model's; lowered (and recorded) as ``lif``.
        subtract = p.reset_mode == "subtract"
        return LoweredPopulation(
            name=pop.name, size=pop.size, model="lif", process="NDLIF", du=1.0, dv=0.0,
            vth=float(p.v_th - p.v_reset), bias=np.broadcast_to(dt * (p.I_bias + i_ext) / p.C_m, (pop.size,)).astype(float),
            v_reset=0.0, reset_mode=1 if subtract else 0, refractory_steps=0,
            # to_value: the input of the spike step is lost (as lif's); subtract keeps it
            input_drop=0 if subtract or net.simulation.schedule != "exact" else 2, v_offset=float(p.v_reset), u_scale=0.0, weight_factor=1.0,
            v0=init["v"] - p.v_reset, u0=np.zeros(pop.size), tau_m=float("inf"), tau_syn=None, dt=dt)
    if net.simulation.schedule != "exact":
        return _euler_population(net, pop, p, init, i_ext)
    a_m = np.exp(-dt / p.tau_m)
    dv = 1.0 - a_m
    n_ref = int(round(p.t_ref / dt))
    if pop.model == "lif":
        # Reference, step k: v_k = v_inf + (v_{k-1} + w_{k-1} - v_inf) a_m, where w_{k-1} is the
        # input added after the threshold of step k-1. Lava, step k: v = a_m v + u + bias with
        # u = a_in = input of step k-1 (Dense's one-step delay) and du = 1. Equal when
        # u = a_m w and bias = (1 - a_m)(v_inf - v_rest).
        offset = p.v_rest
        du, u_scale, wfac, tau_syn = 1.0, 0.0, a_m, None
        bias = dv * p.R_m * (p.I_bias + i_ext)
        u0 = np.zeros(pop.size)
        # input arriving while v is clamped is lost; in Lava it arrives one step later, so it is
        # dropped one step longer (and at the step after a spike even without refractoriness)
        input_drop = 1 if n_ref > 0 else 2
        reset_mode, v_reset = 0, p.v_reset - p.v_rest
    else:
        # Reference: I_k = a_s I_{k-1} + w_k; v_k = a_m v_{k-1} + (1 - a_m) v_inf + d I_{k-1} with
        # d = R tau_s/(tau_s - tau_m) (a_s - a_m). Lava: u[k] = a_s u[k-1] + a_in[k] and v adds u[k]
        # in the same step, so u[k] = d I_{k-1} and a_in = d w.
        a_s = np.exp(-dt / p.tau_syn)
        if np.isclose(p.tau_syn, p.tau_m):
            d = p.R_m * (dt / p.tau_m) * a_m
        else:
            d = p.R_m * p.tau_syn / (p.tau_syn - p.tau_m) * (a_s - a_m)
        offset = p.v_leak
        du, tau_syn = 1.0 - a_s, p.tau_syn
        u_scale, wfac = d / a_s, d  # u before the first step holds d I_0 / a_s
        bias = dv * p.R_m * (p.I_bias + i_ext)
        u0 = u_scale * init["I"]
        input_drop = 0
        reset_mode = 1 if p.reset_mode == "subtract" else 0
        v_reset = 0.0 if reset_mode else p.v_reset - p.v_leak
    plain = n_ref == 0 and input_drop == 0 and reset_mode == 0 and v_reset == 0.0
    return LoweredPopulation(
        name=pop.name, size=pop.size, model=pop.model, process="LIF" if plain else "NDLIF",
        du=float(du), dv=float(dv), vth=float(p.v_th - offset), bias=np.broadcast_to(bias, (pop.size,)).astype(float),
        v_reset=float(v_reset), reset_mode=reset_mode, refractory_steps=n_ref, input_drop=input_drop,
        v_offset=float(offset), u_scale=float(u_scale), weight_factor=float(wfac),
        v0=init["v"] - offset, u0=u0, tau_m=float(p.tau_m), tau_syn=tau_syn, dt=dt)


def _euler_population(net: Network, pop, p, init, i_ext) -> LoweredPopulation:
    """Schedules ``discrete`` and ``loihi``: the model's Euler step is Lava's LIF as Lava means
    it, so the parameters pass through (``u`` holds ``R_m dt/tau_m I`` for ``cuba_lif``)."""
    dt = net.simulation.dt
    n_ref = int(round(p.t_ref / dt))
    dv = euler_decay(net, p.tau_m)
    bias = dv * p.R_m * (p.I_bias + i_ext)
    if pop.model == "lif":
        offset, du, u_scale, wfac, tau_syn, u0 = p.v_rest, 1.0, 0.0, 1.0, None, np.zeros(pop.size)
        reset_mode, v_reset = 0, p.v_reset - p.v_rest
    else:
        offset, du, tau_syn = p.v_leak, euler_decay(net, p.tau_syn), p.tau_syn
        u_scale = wfac = p.R_m * dv
        u0 = u_scale * init["I"]
        reset_mode = 1 if p.reset_mode == "subtract" else 0
        v_reset = 0.0 if reset_mode else p.v_reset - p.v_leak
    plain = n_ref == 0 and reset_mode == 0 and v_reset == 0.0
    return LoweredPopulation(
        name=pop.name, size=pop.size, model=pop.model, process="LIF" if plain else "NDLIF",
        du=float(du), dv=float(dv), vth=float(p.v_th - offset), bias=np.broadcast_to(bias, (pop.size,)).astype(float),
        v_reset=float(v_reset), reset_mode=reset_mode, refractory_steps=n_ref, input_drop=0,
        v_offset=float(offset), u_scale=float(u_scale), weight_factor=float(wfac),
        v0=init["v"] - offset, u0=u0, tau_m=float(p.tau_m), tau_syn=tau_syn, dt=dt)


def euler_decay(net: Network, tau: float) -> float:
    """The decay per step ``dt/tau`` of the Euler schedules. Under ``loihi`` it is Lava's 12-bit
    constant as Lava's converters compute it (``int(4096 dt/tau)``, truncated; e.g. NIR's Lava
    LIF of the NIR paper: dt/tau = 0.04 -> dv = 163), divided by 4096, in every backend, so that
    float runs and the integers of ``loihi2-sim`` mean the same neuron."""
    x = net.simulation.dt / tau
    if net.simulation.schedule == "loihi":
        return math.floor(min(x, 1.0) * 4096 + 1e-9) / 4096
    return x


def discrete_order(net: Network) -> tuple[list[str], set[str]]:
    """Schedule ``discrete``: the populations in the order they step within a time step, and the
    names of the projections delivered within the step (zero delay, source earlier in that
    order; sources are always earlier). The order is a topological one of the zero-delay
    projections between populations (reverse DFS post-order from the spec's order); a zero-delay
    projection that closes a cycle (a recurrent one) delivers one step later, as snnTorch's
    recurrent layers do."""
    names = [p.name for p in net.populations]
    succ: dict[str, list[str]] = {n: [] for n in names}
    for pr in net.projections:
        if pr.source in succ and pr.target in succ and mat.delay_steps(pr.delay, net.simulation.dt) == 0:
            succ[pr.source].append(pr.target)
    seen, post = set(), []
    for root in names:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(succ[root]))]
        while stack:  # iterative DFS
            node, it = stack[-1]
            nxt = next((m for m in it if m not in seen), None)
            if nxt is None:
                post.append(node)
                stack.pop()
            else:
                seen.add(nxt)
                stack.append((nxt, iter(succ[nxt])))
    order = post[::-1]
    pos = {n: i for i, n in enumerate(order)}
    same = {pr.name for pr in net.projections if mat.delay_steps(pr.delay, net.simulation.dt) == 0
            and (pr.source not in pos or (pr.target in pos and pos[pr.source] < pos[pr.target]))}
    return order, same


def schedule_delay(net: Network, pr, delay_steps: int, same: set[str] | None = None) -> tuple[int, bool]:
    """(delay in the Lava form, same-step flag) of projection ``pr`` with ``delay_steps`` of
    spec delay under the network's schedule. The Lava form makes a spike emitted in step ``k``
    part of the input of step ``k + 1 + delay`` (from sources and populations alike): that is
    the ``loihi`` schedule as it stands, and ``exact`` through the change of variables.
    ``discrete`` wants step ``k + delay`` (a zero-delay projection that closes a cycle: ``k + 1``),
    so one step less, and ``same_step`` when that is the emitting step itself."""
    if net.simulation.schedule != "discrete":
        return delay_steps, False
    if delay_steps == 0:
        same = discrete_order(net)[1] if same is None else same
        return (0, True) if pr.name in same else (0, False)
    return delay_steps - 1, False


def initial_values(net: Network, pop, low: LoweredPopulation) -> tuple[np.ndarray, np.ndarray]:
    """(v0, u0) of population ``pop`` in the Loihi form ``low``, drawn with ``net``'s seed: the
    same change of variables as :func:`lower_population` (``v - v_offset``; ``u = u_scale I``), so
    a batch of trials with other seeds needs the lowering once, not once per trial."""
    init = mat.initial_state(net, pop)
    u0 = low.u_scale * init["I"] if "I" in init and low.u_scale else np.zeros(pop.size)
    return init["v"] - low.v_offset, u0


def lower(net: Network) -> LoweredNetwork:
    """Float Lava parameters for every node. Raises :class:`Unsupported` for the first node
    that cannot be lowered (call :func:`unsupported_nodes` for all of them)."""
    bad = unsupported_nodes(net, same_step=True)
    if bad:
        raise bad[0]
    dt, steps = net.simulation.dt, net.simulation.steps
    eps = endpoints(net)
    currents = constant_currents(net)
    low = LoweredNetwork(net.name, dt, steps, schedule=net.simulation.schedule)
    same = discrete_order(net)[1] if net.simulation.schedule == "discrete" else set()
    for pop in net.populations:
        low.populations[pop.name] = lp = lower_population(net, pop, currents.get(pop.name))
        lp.v_lsb = pop.v_lsb
    for s in net.stimuli:
        if isinstance(s, (PoissonStimulus, SpikeTimesStimulus)) or (isinstance(s, ArrayStimulus) and s.encoding == "rate"):
            if s.size * steps > RINGBUFFER_MAX_CELLS:
                raise CompileError(
                    f"stimulus '{s.name}': Lava's RingBuffer holds {s.size} x {steps} = {s.size * steps:.3g} "
                    f"(neuron, step) cells, more than {RINGBUFFER_MAX_CELLS:.0e}; run fewer steps on Lava, "
                    "or use the brian2 target for long runs")
            idx, k = mat.source_spikes(net, s)
            data = np.zeros((s.size, steps), dtype=bool)
            data[idx, k] = True
            low.sources[s.name] = LoweredSource(s.name, s.size, data)
    for pr in net.projections:
        syn = mat.synapses(net, pr)
        tgt = low.populations[pr.target]
        d, same_step = schedule_delay(net, pr, syn.delay_steps, same)
        low.projections[pr.name] = lp = LoweredProjection(
            pr.name, pr.source, pr.target, syn.i, syn.j, syn.w * tgt.weight_factor, d, pr.sign,
            eps[pr.source].size, eps[pr.target].size, syn.w, None, tgt.weight_factor * syn.sign,
            same_step=same_step)
        if pr.plasticity is not None:
            attach_plasticity(lp, pr, net.simulation.dt)
    return low


def _plastic_problem(lw, pr, net: Network) -> str:
    """Why Lava's learning engine cannot run projection ``pr``'s rule ('' if it can; fixed-point
    limits are checked by the backend's ``unsupported`` with the target)."""
    if lw.problem():
        return lw.problem()
    if lw.modulator is not None:  # Loihi3FLearningRule + NDLIF3F (backends/lava/procs3f), float only
        mod = lw.modulator["source"]
        if mod == pr.target:
            return (f"'{pr.plasticity.rule}': the modulator is the target population itself; NDLIF3F takes "
                    "the modulator's spikes in the same step, which would be a loop without delay")
        mods = {}  # third-factor target -> [(projection, modulator)]
        for p in net.projections:
            plw = lowering(p.plasticity.rule, p.plasticity.params, net.simulation.dt) if p.plasticity else None
            if plw is not None and plw.modulator is not None:
                mods.setdefault(p.target, []).append((p.name, plw.modulator["source"]))
        others = [name for name, _ in mods[pr.target] if name != pr.name]
        if others:
            return (f"'{pr.plasticity.rule}': another third-factor projection ({', '.join(others)}) targets "
                    f"'{pr.target}'; its NDLIF3F neuron sends one modulator trace (one per target population)")
        seen, m = {pr.target}, mod
        while m in mods and m not in seen:  # NDLIF3F neurons modulating each other in a ring deadlock
            seen.add(m)
            m = mods[m][0][1]
        if m in seen:
            return (f"'{pr.plasticity.rule}': its modulator '{mod}' is, through other third factors, modulated "
                    f"by '{pr.target}' (a loop without delay: modulator spikes reach NDLIF3F in their own step)")
    if lw.gate is not None:
        return (f"'{pr.plasticity.rule}': the learning engine has no phase gate (it would need a third factor "
                "or rewriting dw at the phase boundaries; not generated yet)")
    if lw.kind == "stdp" and lw.stdp.get("multiplicative"):
        return "multiplicative (soft-bound) STDP has no lowering to Lava's learning engine"
    if mat.delay_steps(pr.delay, net.simulation.dt) > 0:
        return "plastic projections with a delay: Lava's LearningDense has no delays"
    if lw.w_min != 0.0:
        return (f"'{pr.plasticity.rule}' with w_min != 0: Lava's learning engine only saturates weights at 0")
    if pr.sign == "mixed" and pr.weights.kind in ("normal", "inline", "file"):
        return "plastic projections on Lava need sign: excitatory or inhibitory (the learning engine keeps one sign)"
    if lw.kind == "canonical":
        try:
            if lw.modulator is not None:
                third_factor_encoding(lw.canonical, lw.modulator, net.simulation.dt, 1.0, False)
            else:
                canonical_encoding(lw.canonical, net.simulation.dt, 1.0, False)
        except CompileError as e:
            return f"'{pr.plasticity.rule}' on Lava's learning engine: {e}"
    return ""


def attach_plasticity(lp: LoweredProjection, pr, dt: float) -> None:
    """Put the spec rule of projection ``pr`` on its lowered form ``lp`` (see the fields)."""
    lw = lowering(pr.plasticity.rule, pr.plasticity.params, dt)
    if lw.kind == "stdp":
        lp.plasticity, lp.canonical = dict(lw.stdp), None
    else:
        lp.plasticity = {"rule": pr.plasticity.rule, "w_min": lw.w_min, "w_max": lw.w_max}
        lp.canonical, lp.modulator, lp.gate = lw.canonical, lw.modulator, lw.gate


def weight_scale(q, pr) -> float:
    """Integer weight-mantissa units per Lava-float weight unit of plastic projection ``pr``."""
    return q.populations[pr.target].K / (64 * 2.0**q.projections[pr.name].weight_exp)


def third_factor_targets(low: LoweredNetwork) -> dict:
    """Target population -> its projection with a third factor (the lowering allows one per
    target); these populations run as Lava's NDLIF3F (:mod:`neurodeploy.backends.lava.procs3f`)."""
    return {pr.target: pr for pr in low.projections.values() if pr.modulator is not None}


def learning_checks(low: LoweredNetwork, q=None) -> None:
    """Encode every plastic projection of ``low`` for the learning engine in the target's number
    format (``q``: the quantized integers of a fixed-point target, else None): raises
    :class:`~neurodeploy.core.errors.CompileError` when a constant cannot be expressed
    (:class:`~neurodeploy.core.errors.NotImplementedYet` for a third factor in fixed point), and
    appends to ``low.warnings`` what the engine does not enforce or realises only approximately."""
    for pr in low.projections.values():
        if pr.plasticity is None:
            continue
        scale = weight_scale(q, pr) if q is not None else None
        for problem in stdp_bounds(pr.plasticity, pr.factor, q is not None, scale).problems:
            low.warnings.append(f"projection '{pr.name}': {problem}")
        if pr.canonical is not None:
            if pr.modulator is not None:
                enc = third_factor_encoding(pr.canonical, pr.modulator, low.dt, pr.factor, q is not None, scale)
            else:
                enc = canonical_encoding(pr.canonical, low.dt, pr.factor, q is not None, scale)
            off = [f"product {n + 1}: {r:.4f}" for n, r in enumerate(enc.ratios) if abs(r - 1) > 1e-9]
            if off:
                low.warnings.append(f"projection '{pr.name}': learning-engine constants realised/wanted "
                                    + ", ".join(off) + f" (rule: dw = {enc.dw})")
