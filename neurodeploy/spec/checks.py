"""Semantic checks of an IR :class:`~neurodeploy.ir.nodes.Network`.

Every rule that relates one part of a model to another (names, references, sizes, shapes,
index ranges, cycles, bounds) is written here, once. :func:`problems` returns them located by
key path (the spec's own key path, since IR lists keep the spec's order); the spec loader turns
them into diagnostics with file:line:col, and :func:`verify` raises for IR built in code.
"""

from __future__ import annotations

import math
from typing import Iterator

from ..core.errors import IRError, Problem, did_you_mean
from ..ir.nodes import (
    MAX_DENSE_SYNAPSES,
    MAX_POPULATION_SIZE,
    MAX_STEPS,
    MAX_TOTAL_NEURONS,
    SCHEDULES,
    ArrayStimulus,
    CurrentStimulus,
    Network,
    PoissonStimulus,
    SpikeTimesStimulus,
)
from ..library.blocks import BLOCKS
from ..library.endpoints import algebraic_order, endpoints
from ..library.neurons import NEURONS
from ..library.plasticity import RULES

SIGNS = ("excitatory", "inhibitory", "mixed")
CONNECTIVITY = ("dense", "one_to_one", "random", "sparse")
WEIGHT_KINDS = ("constant", "uniform", "normal", "inline", "file")


def problems(net: Network) -> list[Problem]:
    return list(_check(net))


def verify(net: Network) -> Network:
    """Raise :class:`~neurodeploy.core.errors.IRError` if ``net`` has any problem; return it."""
    errs = [p for p in problems(net) if not p.code.startswith("W")]
    if errs:
        raise IRError(errs)
    return net


def _off_grid(value: float, dt: float) -> bool:
    """True when ``value`` is not a whole number of steps of ``dt`` (beyond float noise)."""
    if not (dt > 0 and math.isfinite(value) and math.isfinite(dt)):
        return False
    k = value / dt
    return abs(k - round(k)) > 1e-6 * max(1.0, abs(k))


def _rounded(code: str, path, what: str, value: float, dt: float) -> Problem:
    """A warning that ``value`` runs as the nearest whole number of steps (every backend rounds
    a delay or a probe period with ``round(value / dt)``, ties to even)."""
    k = max(1, int(round(value / dt))) if what == "period" else int(round(value / dt))
    also = (f" (the brian2 target samples on its own {_ms(value)} clock, so traces differ between targets)"
            if what == "period" else "")
    return Problem(code, path,
                   f"{what} {_ms(value)} is not a multiple of dt ({_ms(dt)}); it is rounded to {k} "
                   f"step{'s' if k != 1 else ''} = {_ms(k * dt)}{also}",
                   f"write a multiple of dt (e.g. {_ms(k * dt)}), or use a smaller dt")


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.6g} ms"


def _ref_problem(path, name, eps, what) -> Problem:
    return Problem("ND501", path, f"{what} '{name}' does not exist",
                   did_you_mean(name, eps) or "define it under populations: or stimuli:")


def _check(net: Network) -> Iterator[Problem]:
    sim = net.simulation
    if not (sim.dt > 0 and math.isfinite(sim.dt)):
        yield Problem("ND205", ("simulation", "dt"), "dt must be positive")
    if not (1 <= sim.steps <= MAX_STEPS):
        yield Problem("ND206" if sim.steps > MAX_STEPS else "ND205", ("simulation", "duration"),
                      f"the run must have between 1 and {MAX_STEPS} steps (has {sim.steps})",
                      "check dt and duration (duration / dt = number of steps)")
    if sim.schedule not in SCHEDULES:
        yield Problem("ND204", ("simulation", "schedule"), f"unknown schedule '{sim.schedule}'",
                      did_you_mean(sim.schedule, SCHEDULES) or "one of: " + ", ".join(SCHEDULES))
    elif sim.schedule != SCHEDULES[0]:
        yield from _euler_steps(net)

    # --- names ---------------------------------------------------------------------------
    seen: dict[str, tuple] = {}
    for section, items in (("populations", net.populations), ("stimuli", net.stimuli),
                           ("projections", net.projections), ("blocks", net.blocks)):
        for i, node in enumerate(items):
            if node.name in seen:
                first = seen[node.name]
                yield Problem("ND500", (section, i, "name"),
                              f"name '{node.name}' is already used by {first[0]}[{first[1]}]",
                              "names are shared by populations, stimuli, projections and blocks")
            else:
                seen[node.name] = (section, i)
    probe_names: set[str] = set()
    for i, pr in enumerate(net.probes):
        if pr.name in probe_names:
            yield Problem("ND500", ("probes", i, "name"), f"probe name '{pr.name}' is already used")
        probe_names.add(pr.name)

    eps = endpoints(net)

    # --- populations -----------------------------------------------------------------------
    total = 0
    for i, p in enumerate(net.populations):
        path = ("populations", i)
        if p.size < 1:
            yield Problem("ND205", path + ("size",), f"size must be at least 1 (got {p.size})")
        elif p.size > MAX_POPULATION_SIZE:
            yield Problem("ND206", path + ("size",),
                          f"size {p.size} exceeds the limit of {MAX_POPULATION_SIZE} neurons per population",
                          "split the population, or check for a typo in the size")
        if 1 <= p.size <= MAX_POPULATION_SIZE:
            total += p.size
        model = NEURONS.get(p.model)
        if model is None:
            yield Problem("ND400", path + ("model",), f"unknown neuron model '{p.model}'",
                          did_you_mean(p.model, NEURONS) or "available: " + ", ".join(sorted(NEURONS)))
            continue
        if model.is_source:
            yield Problem("ND505", path + ("model",),
                          f"'{p.model}' is a spike source; declare it under stimuli:",
                          "use a stimulus with kind: poisson or kind: spike_times")
        infos = model.param_infos()
        for k in p.params:
            if k not in infos:
                yield Problem("ND401", path + ("params", k), f"'{p.model}' has no parameter '{k}'",
                              did_you_mean(k, infos) or "parameters: " + ", ".join(infos))
        for k, (info, _) in infos.items():
            ref = p.params.get(k) if info.kind == "data" else None
            if isinstance(ref, dict) and "shape" in ref and math.prod(ref["shape"]) != p.size:
                yield Problem("ND503", path + ("params", k),
                              f"'{k}' has shape {tuple(ref['shape'])}; '{p.name}' needs one value per neuron ({p.size})")
        for k in p.init:
            if k not in model.state:
                yield Problem("ND402", path + ("init", k), f"'{p.model}' has no state variable '{k}'",
                              did_you_mean(k, model.state) or "state variables: " + ", ".join(model.state))
    if total > MAX_TOTAL_NEURONS:
        yield Problem("ND206", ("populations",),
                      f"{total} neurons in all exceed the limit of {MAX_TOTAL_NEURONS}")

    # --- stimuli -----------------------------------------------------------------------------
    for i, s in enumerate(net.stimuli):
        path = ("stimuli", i)
        size = getattr(s, "size", None)
        if isinstance(s, (PoissonStimulus, SpikeTimesStimulus)):
            if size < 1:
                yield Problem("ND205", path + ("size",), f"size must be at least 1 (got {size})")
            elif size > MAX_POPULATION_SIZE:
                yield Problem("ND206", path + ("size",), f"size {size} exceeds {MAX_POPULATION_SIZE}")
        if isinstance(s, PoissonStimulus):
            if s.rate is not None and s.rate * sim.dt > 1:
                yield Problem("ND205", path + ("rate",),
                              f"rate x dt = {s.rate * sim.dt:.3g} > 1: a neuron cannot spike more than once per step",
                              "lower the rate or the time step")
            if s.rates is not None and s.rates.shape[-1] != s.size:
                yield Problem("ND503", path + ("rates",),
                              f"rates has {s.rates.shape[-1]} columns but the stimulus has size {s.size}")
        elif isinstance(s, SpikeTimesStimulus):
            for k, idx in enumerate(s.indices):
                if not 0 <= idx < max(size, 0):
                    yield Problem("ND504", path + ("spikes", k), f"neuron index {idx} is out of range for size {size}")
                    break
            seen_steps: set = set()
            for k, (idx, t) in enumerate(zip(s.indices, s.times)):
                key = (idx, int(t / sim.dt + 1e-3) if t >= 0 else -1)
                if key in seen_steps:
                    yield Problem("ND205", path + ("spikes", k),
                                  f"neuron {idx} has two spikes in the same step of dt",
                                  "a neuron spikes at most once per step; remove one or use a smaller dt")
                    break
                seen_steps.add(key)
            for k, t in enumerate(s.times):
                if t < 0:
                    yield Problem("ND205", path + ("spikes", k), "spike times must not be negative")
                    break
                if t >= sim.duration:
                    yield Problem("W100", path + ("spikes", k),
                                  f"spike time {t:g} s is after the end of the run ({sim.duration:g} s)")
                    break
        elif isinstance(s, (CurrentStimulus, ArrayStimulus)):
            if isinstance(s, ArrayStimulus) and s.encoding != "current":
                if s.target is not None:
                    yield Problem("ND505", path + ("target",),
                                  f"an array stimulus with encoding '{s.encoding}' is a source; it has no target",
                                  "connect it with a projection, or use encoding: current")
                if s.frame_duration < sim.dt:
                    yield Problem("ND205", path + ("frame_duration",), "frame_duration is shorter than dt")
                elif abs(s.frame_duration / sim.dt - round(s.frame_duration / sim.dt)) > 1e-6:
                    yield Problem("ND205", path + ("frame_duration",), "frame_duration is not a whole number of steps of dt")
                continue
            if s.target is None:
                yield Problem("ND202", path, "a current stimulus needs a 'target' population")
                continue
            tgt = eps.get(s.target)
            if tgt is None:
                yield _ref_problem(path + ("target",), s.target, eps, "target")
                continue
            if tgt.kind == "population" and tgt.model is None:
                continue
            if tgt.kind != "population" or tgt.model.current_input is None:
                what = tgt.model.name if tgt.model else tgt.kind
                yield Problem("ND505", path + ("target",),
                              f"'{s.target}' ({what}) does not take an injected current",
                              "inject into a population of a neuron model with a current input (lif, cuba_lif)")
                continue
            if isinstance(s, CurrentStimulus):
                for k, idx in enumerate(s.indices or ()):
                    if not 0 <= idx < tgt.size:
                        yield Problem("ND504", path + ("indices", k),
                                      f"index {idx} is out of range for '{s.target}' (size {tgt.size})")
                        break
                if s.times is not None:
                    if any(b <= a for a, b in zip(s.times, s.times[1:])):
                        yield Problem("ND205", path + ("times",), "times must be strictly increasing")
                    if len(s.times) != len(s.values or ()):
                        yield Problem("ND503", path + ("values",),
                                      f"{len(s.values or ())} values for {len(s.times)} times")
                if s.stop is not None and s.stop <= s.start:
                    yield Problem("ND205", path + ("stop",), "stop must be after start")
            else:
                if s.size != tgt.size:
                    yield Problem("ND503", path + ("data",),
                                  f"frames have {s.size} values but '{s.target}' has {tgt.size} neurons")
                if s.frame_duration < sim.dt:
                    yield Problem("ND205", path + ("frame_duration",), "frame_duration is shorter than dt")
                elif abs(s.frame_duration / sim.dt - round(s.frame_duration / sim.dt)) > 1e-6:
                    yield Problem("ND205", path + ("frame_duration",), "frame_duration is not a whole number of steps of dt")

    # --- projections -----------------------------------------------------------------------
    for i, pr in enumerate(net.projections):
        path = ("projections", i)
        src, tgt = eps.get(pr.source), eps.get(pr.target)
        if src is None:
            yield _ref_problem(path + ("source",), pr.source, eps, "source")
        elif src.kind == "population" and (src.model is None or src.size < 1):
            src = None  # its unknown model or bad size is reported where it is defined
        elif not (src.spiking or src.graded):
            yield Problem("ND505", path + ("source",), f"'{pr.source}' ({src.kind}) cannot be a projection source",
                          "a source is a population, a spiking stimulus, or a block output")
        if tgt is None:
            yield _ref_problem(path + ("target",), pr.target, eps, "target")
        elif tgt.kind == "population" and (tgt.model is None or tgt.size < 1):
            tgt = None  # reported where it is defined
        elif tgt.kind != "population" or tgt.model.synaptic_target is None:
            yield Problem("ND505", path + ("target",),
                          f"'{pr.target}' ({tgt.kind}) cannot receive a projection",
                          "the target must be a population of a neuron model with synaptic input")
            tgt = None
        if src is None or tgt is None or src.size < 1 or tgt.size < 1:
            n_src = n_tgt = None
        else:
            n_src, n_tgt = src.size, tgt.size
        c = pr.connectivity
        if c.kind not in CONNECTIVITY:
            yield Problem("ND204", path + ("connectivity",), f"unknown connectivity '{c.kind}'",
                          did_you_mean(c.kind, CONNECTIVITY))
        if c.kind == "random" and not (c.p is not None and 0 <= c.p <= 1):
            yield Problem("ND205", path + ("connectivity", "p"), "p must be between 0 and 1")
        if n_src is not None:
            if c.kind == "one_to_one" and n_src != n_tgt:
                yield Problem("ND503", path + ("connectivity",),
                              f"one_to_one needs equal sizes; '{pr.source}' has {n_src}, '{pr.target}' has {n_tgt}",
                              "use dense or random connectivity, or resize one side")
            expected = n_src * n_tgt * ((c.p or 0.0) if c.kind == "random" else 1.0)
            if c.kind in ("dense", "random") and expected > MAX_DENSE_SYNAPSES:
                what = f"{n_src} x {n_tgt}" + (f" x p={c.p:g}" if c.kind == "random" else "")
                yield Problem("ND206", path + ("connectivity",),
                              f"{what} = {expected:.3g} synapses exceed the limit of {MAX_DENSE_SYNAPSES:.0e}",
                              "use a lower connection probability, sparse connectivity, or smaller populations")
            if c.kind == "sparse":
                for k, (a, b) in enumerate(zip(c.i or (), c.j or ())):
                    if not (0 <= a < n_src and 0 <= b < n_tgt):
                        yield Problem("ND504", path + ("connectivity", "pairs", k),
                                      f"pair ({a}, {b}) is out of range for {n_src} x {n_tgt}")
                        break
                if c.data is not None and (len(c.data.shape) != 2 or 2 not in c.data.shape):
                    yield Problem("ND503", path + ("connectivity", "file"),
                                  f"pairs file must have shape (n, 2) or (2, n), has {c.data.shape}")
            w = pr.weights
            if w.data is not None:
                want = _weight_shape(c, n_src, n_tgt)
                if want is not None and tuple(w.data.shape) != want:
                    yield Problem("ND503", path + ("weights",),
                                  f"weights have shape {tuple(w.data.shape)}; expected {want} for {c.kind} "
                                  f"connectivity from '{pr.source}' ({n_src}) to '{pr.target}' ({n_tgt})",
                                  "dense weights are (source size, target size)")
        if pr.sign not in SIGNS:
            yield Problem("ND204", path + ("sign",), f"unknown sign '{pr.sign}'", did_you_mean(pr.sign, SIGNS))
        elif pr.sign != "mixed":
            neg = _negative_weight(pr.weights)
            if neg:
                yield Problem("ND205", path + ("weights",),
                              f"sign: {pr.sign} takes weight magnitudes, but {neg}",
                              "give non-negative weights (the sign is applied by 'sign:'), or use sign: mixed")
        yield from _graded_problems(pr, path, src, tgt)
        if pr.delay < 0:
            yield Problem("ND205", path + ("delay",), "delay must not be negative")
        elif pr.delay > sim.duration:
            yield Problem("W101", path + ("delay",), "delay is longer than the whole run")
        elif _off_grid(pr.delay, sim.dt):
            yield _rounded("W102", path + ("delay",), "delay", pr.delay, sim.dt)
        if pr.plasticity is not None:
            rule = RULES.get(pr.plasticity.rule)
            if rule is None:
                yield Problem("ND403", path + ("plasticity", "rule"),
                              f"unknown plasticity rule '{pr.plasticity.rule}'",
                              did_you_mean(pr.plasticity.rule, RULES) or "available: " + ", ".join(sorted(RULES)))
            if src is not None and not src.spiking and src.graded and rule is not None:
                yield Problem("ND505", path + ("plasticity",),
                              f"'{pr.plasticity.rule}' needs presynaptic spikes; '{pr.source}' is a graded source")
            if rule is not None:
                try:
                    wrong = rule.problems(rule.Params(**pr.plasticity.params), sim.duration)
                except TypeError:  # a missing required parameter: reported by the reader
                    wrong = []
                for key, msg in wrong:
                    yield Problem("ND205", path + ("plasticity", "params", key), msg)
            for key, (info, _) in (rule.param_infos().items() if rule is not None else ()):
                ref = pr.plasticity.params.get(key) if info.kind == "ref" else None
                if ref is None:
                    continue
                kp = path + ("plasticity", "params", key)
                mod = eps.get(ref)
                if mod is None:
                    yield _ref_problem(kp, ref, eps, key)
                elif mod.kind not in ("population", "stimulus") or not mod.spiking:
                    yield Problem("ND505", kp, f"{key} '{ref}' must be a spiking population or spike source "
                                               "(its spike trace is the third factor)")
                elif tgt is not None and mod.size != tgt.size:
                    yield Problem("ND503", kp, f"{key} '{ref}' has {mod.size} neurons; the third factor needs one "
                                               f"per postsynaptic neuron ({tgt.size} in '{pr.target}')")

    # --- probes ----------------------------------------------------------------------------
    for i, pb in enumerate(net.probes):
        path = ("probes", i)
        ep = eps.get(pb.target)
        if ep is None:
            yield _ref_problem(path + ("target",), pb.target, eps, "probe target")
            continue
        if ep.kind == "population" and ep.model is None:
            continue  # unknown model: reported where the population is defined
        if ep.kind == "projection":
            allowed = ("weights",)
        elif ep.kind == "population" and ep.model is not None:
            allowed = (() if ep.graded else ("spikes",)) + tuple(ep.model.state)
        elif ep.spiking and ep.kind in ("stimulus", "block output"):
            allowed = ("spikes",)
        else:
            allowed = ()
        if pb.variable not in allowed:
            hint = did_you_mean(pb.variable, allowed) or (
                "can record: " + ", ".join(allowed) if allowed else f"a {ep.kind} cannot be probed")
            yield Problem("ND402", path + ("record",), f"'{pb.target}' has nothing called '{pb.variable}' to record", hint)
        size = ep.size if ep.kind != "projection" else None
        if size and pb.indices:
            for k, idx in enumerate(pb.indices):
                if not 0 <= idx < size:
                    yield Problem("ND504", path + ("indices", k), f"index {idx} is out of range for '{pb.target}' (size {size})")
                    break
        if pb.period is not None and pb.period < sim.dt:
            yield Problem("ND205", path + ("period",), "period is shorter than dt")
        elif pb.period is not None and _off_grid(pb.period, sim.dt):
            yield _rounded("W103", path + ("period",), "period", pb.period, sim.dt)

    yield from _algebraic_cycles(net)

    # --- blocks ------------------------------------------------------------------------------
    graph: dict[str, str] = {}
    for i, b in enumerate(net.blocks):
        path = ("blocks", i)
        bdef = BLOCKS.get(b.kind)
        if bdef is None:
            yield Problem("ND404", path + ("kind",), f"unknown block kind '{b.kind}'",
                          did_you_mean(b.kind, BLOCKS) or "available: " + ", ".join(sorted(BLOCKS)))
            continue
        for key, (info, _) in bdef.param_infos().items():
            if info.kind != "ref" or key not in b.params:
                continue
            ref = b.params[key]
            if ref not in eps:
                yield _ref_problem(path + (key,), ref, eps, key)
            elif key == "input" and not eps[ref].graded:
                yield Problem("ND505", path + (key,),
                              f"block '{b.kind}' encodes graded values; '{ref}' ({eps[ref].kind}) sends spikes",
                              "use an array stimulus with encoding: value (or another block's output) as input")
            elif "." in ref and ref.split(".")[0] in {x.name for x in net.blocks}:
                graph[b.name] = ref.split(".")[0]
        dec = b.params.get("decoder")
        if isinstance(dec, dict) and "shape" in dec and isinstance(b.params.get("input"), str):
            inp = eps.get(b.params["input"])
            want = (inp.size, b.params.get("latent")) if inp else None
            if want and inp.size and tuple(dec["shape"]) != want:
                yield Problem("ND503", path + ("decoder",),
                              f"decoder has shape {tuple(dec['shape'])}; expected (input size, latent) = {want}")
    for start in graph:
        seen_b, cur = [start], graph.get(start)
        while cur is not None and cur not in seen_b:
            seen_b.append(cur)
            cur = graph.get(cur)
        if cur == start:
            i = next(k for k, b in enumerate(net.blocks) if b.name == start)
            cycle = " -> ".join(seen_b + [start])
            yield Problem("ND502", ("blocks", i, "input"), f"blocks form a cycle: {cycle}",
                          "a block's input cannot depend on its own output")


def _euler_steps(net: Network) -> Iterator[Problem]:
    """Under the Euler schedules (``discrete``, ``loihi``) a time constant below dt makes the
    per-step decay ``1 - dt/tau`` negative: refuse it rather than oscillate."""
    for i, p in enumerate(net.populations):
        for k in ("tau_m", "tau_syn"):
            tau = p.params.get(k)
            if isinstance(tau, (int, float)) and tau < net.simulation.dt:
                yield Problem("ND205", ("populations", i, "params", k),
                              f"{k} = {_ms(tau)} is shorter than dt ({_ms(net.simulation.dt)}): under schedule "
                              f"'{net.simulation.schedule}' the decay per step 1 - dt/{k} would be negative",
                              f"use {k} >= dt, a smaller dt, or schedule: exact")


def _graded_problems(pr, path, src, tgt) -> Iterator[Problem]:
    """Graded populations (``neurons/graded.py``) talk only to graded endpoints."""
    tgt_graded = tgt is not None and tgt.model is not None and tgt.model.graded
    if tgt_graded and src is not None and not src.graded:
        yield Problem("ND505", path + ("source",),
                      f"'{pr.target}' ({tgt.model.name}) takes graded input; '{pr.source}' sends spikes",
                      "drive a graded model from a value-encoded array stimulus, a graded population or "
                      "a block output")
    if not tgt_graded and tgt is not None and src is not None and src.kind == "population" and src.graded:
        yield Problem("ND505", path + ("target",),
                      f"'{pr.source}' ({src.model.name}) sends graded values; '{pr.target}' "
                      f"({tgt.model.name}) takes spikes",
                      "a graded population can only drive graded models (ipvae, lca, linear)")
    if tgt_graded or (src is not None and src.kind == "population" and src.graded):
        if pr.delay:
            yield Problem("ND505", path + ("delay",), "graded projections have no delay parameter",
                          "remove 'delay': stateful graded models see their sources' previous output "
                          "(one step), algebraic ones (linear) the current one")
        if pr.plasticity is not None:
            yield Problem("ND505", path + ("plasticity",),
                          f"plasticity rule '{pr.plasticity.rule}' needs spikes on both sides; "
                          f"'{pr.name}' carries graded values")


def _algebraic_cycles(net: Network) -> Iterator[Problem]:
    """A loop of algebraic populations has no evaluation order."""
    _, stuck = algebraic_order(net)
    if stuck:
        i = next(k for k, p in enumerate(net.populations) if p.name == stuck[0])
        yield Problem("ND502", ("populations", i, "model"),
                      "algebraic (linear) populations form a loop: " + ", ".join(stuck),
                      "break the loop with a stateful population (ipvae, lca)")


def _weight_shape(c, n_src, n_tgt):
    if c.kind in ("dense", "random"):
        return (n_src, n_tgt)
    if c.kind == "one_to_one":
        return (n_src,)
    if c.kind == "sparse" and c.i is not None:
        return (len(c.i),)
    return None


def _negative_weight(w) -> str | None:
    p = w.params
    if w.kind == "constant" and p.get("value", 0) < 0:
        return "the weight is negative"
    if w.kind == "uniform" and p.get("low", 0) < 0:
        return "the range includes negative values"
    if w.kind == "normal" and p.get("mean", 0) < 0:
        return "the mean is negative"
    if w.kind == "inline" and w.data is not None and w.data.values is not None:
        if _min_nested(w.data.values) < 0:
            return "some weights are negative"
    return None


def _min_nested(v) -> float:
    if isinstance(v, (tuple, list)):
        return min((_min_nested(x) for x in v), default=0.0)
    return float(v)
