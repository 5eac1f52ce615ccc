"""Spec v1 (YAML) -> IR.

:func:`load` reads a spec file, checks its structure, types and units (collecting every
problem), builds the IR and runs :func:`neurodeploy.spec.checks` on it; the semantic problems it
finds are located in the user's source through the reader's key-path map. The format is
documented in ``docs/spec.md``.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import math
import os
from pathlib import Path
from typing import Any

from ..core.data import DATASETS, TRANSFORMS, DataError, array_header, dataset_shape, transformed_shape
from ..core.errors import Diagnostic, SpecError, format_path, one_of
from ..core.limits import MAX_ARRAY_ELEMENTS
from ..core.params import REQUIRED, param_infos
from ..core.reader import Reader
from ..core.source import YList, YMap, YScalar, load_yaml_file
from ..core.targets import shipped_dir
from ..core.units import Dim
from ..ir import nodes as ir
from ..ir.serialize import _plain, to_dict
from ..library.blocks import BLOCKS
from ..library.neurons import NEURONS
from ..library.plasticity import RULES
from .checks import CONNECTIVITY, SIGNS, problems
from .models import resolve
from .overrides import apply_overrides

SPEC_VERSIONS = (1,)
TOP_KEYS = ["neurodeploy", "name", "description", "simulation", "populations", "stimuli",
            "projections", "probes", "blocks"]
STIMULUS_KEYS = {
    "poisson": ["name", "kind", "size", "rate", "rates"],
    "spike_times": ["name", "kind", "size", "spikes"],
    "current": ["name", "kind", "target", "amplitude", "start", "stop", "times", "values", "indices"],
    "array": ["name", "kind", "data", "encoding", "frame_duration", "gain", "target"],
}
ENCODINGS = {"rate": "hertz", "current": "amp", "value": "1"}
WEIGHT_INIT = {"constant": ["value"], "uniform": ["low", "high"], "normal": ["mean", "std"]}

#: whether specs may read array files outside their folder when a caller does not say
#: (``--allow-outside-paths`` sets it for one command; see :func:`outside_paths_allowed`)
_ALLOW_OUTSIDE: contextvars.ContextVar[bool] = contextvars.ContextVar("allow_outside_paths", default=False)
OUTSIDE_HINT = ("move the file into the spec's folder; if you trust this spec, pass --allow-outside-paths "
                "(Python: allow_outside_paths=True)")


@contextlib.contextmanager
def outside_paths_allowed(allowed: bool = True):
    """Within the block, specs loaded without an explicit ``allow_outside_paths`` may (``allowed``)
    or may not read array files outside their folder (docs/spec.md, "Files a spec may read")."""
    token = _ALLOW_OUTSIDE.set(bool(allowed))
    try:
        yield
    finally:
        _ALLOW_OUTSIDE.reset(token)


def load(path: str | Path, display: str | None = None, overrides=None, *,
         allow_outside_paths: bool | None = None) -> ir.Network:
    """Load and check a spec file (or a shipped model by name, :mod:`.models`). Raises
    :class:`~neurodeploy.core.errors.SpecError` listing every problem (warnings alone do not
    raise). ``overrides``: ``--set`` assignments applied first (:func:`.overrides.apply_overrides`).
    ``allow_outside_paths``: see :func:`check`."""
    net, diags = check(path, display, overrides, allow_outside_paths=allow_outside_paths)
    if net is None:
        raise SpecError([d for d in diags if d.severity == "error"] or diags)
    return net


def check(path: str | Path, display: str | None = None, overrides=None, *,
          allow_outside_paths: bool | None = None) -> tuple[ir.Network | None, list[Diagnostic]]:
    """Load a spec; return (the IR, or None when there is any error; all diagnostics, warnings
    included). Never raises for bad input. ``allow_outside_paths``: whether ``file:`` may name an
    absolute path or a file outside the spec's folder (None: as :func:`outside_paths_allowed`
    says, by default no)."""
    if allow_outside_paths is None:
        allow_outside_paths = _ALLOW_OUTSIDE.get()
    resolved = resolve(path)
    if resolved != Path(path):  # a shipped model by name: name the file it is
        display = str(resolved)
    path = resolved
    display = display or str(path)
    src, root, diags = load_yaml_file(path, display)
    if root is None:
        return None, diags
    r = Reader(src)
    r.diags.extend(diags)
    apply_overrides(root, overrides, r.diags)
    net = _Builder(r, Path(path).parent, allow_outside_paths).build(root, display)
    if net is None:
        return None, _sorted(r.diags)
    for p in problems(net):
        if r.has_error_at(p.path):
            continue  # already reported where it started; don't cascade
        prefer_key = p.code in ("ND401", "ND402", "ND500")
        severity = "warning" if p.code.startswith("W") else "error"
        code = "ND205" if severity == "warning" else p.code
        d = src.diag(code, r.locate(p.path, prefer_key), p.message, format_path(p.path), p.hint)
        if severity == "warning":
            d = Diagnostic(d.code, d.message, d.span, d.path, d.hint, "warning", d.source_line)
        r.diags.append(d)
    diags = _sorted(r.diags)
    return (None if any(d.severity == "error" for d in diags) else net), diags


def _sorted(diags: list[Diagnostic]) -> list[Diagnostic]:
    return sorted(diags, key=lambda d: (d.span.line, d.span.col))


def data_root(spec_dir: Path) -> Path:
    """The folder a spec's ``file:`` paths must stay inside: the spec's own folder (symlinks
    resolved), or for the models shipped with neurodeploy the whole shipped ``models/`` folder
    (their specs share ``models/weights/``)."""
    root = Path(os.path.realpath(spec_dir))
    shipped = Path(os.path.realpath(shipped_dir("_models")))
    return shipped if root == shipped or shipped in root.parents else root


def outside_reason(base_dir: Path, rel: str) -> str | None:
    """Why ``file: rel`` of a spec in ``base_dir`` is outside what it may read, or None."""
    if Path(rel).is_absolute() or Path(rel).drive:
        return f"'{rel}' is an absolute path; a spec reads files inside its own folder only"
    root = data_root(base_dir)
    target = Path(os.path.realpath(base_dir / rel))
    if target != root and root not in target.parents:
        how = "through a symbolic link " if ".." not in Path(rel).parts else ""
        return f"'{rel}' leads {how}outside the spec's folder ({root}); a spec reads files inside it only"
    return None


#: neuron models whose integer scale a spec may state (``fixed_point``: the Loihi LIF lowering)
FIXED_POINT_MODELS = ("lif", "cuba_lif", "if")

class _Builder:
    def __init__(self, r: Reader, base_dir: Path, allow_outside_paths: bool = False):
        self.r = r
        self.base_dir = base_dir
        self.allow_outside_paths = allow_outside_paths
        self.model_of: dict[str, Any] = {}  # population name -> neuron model class

    # --- top level -----------------------------------------------------------------------------
    def build(self, root, display: str) -> ir.Network | None:
        r = self.r
        m = r.mapping(root, (), TOP_KEYS, required=["neurodeploy", "name", "simulation"],
                      what="the spec")
        if m is None:
            r.diags[-1] = r.src.diag("ND200", root.span, f"a spec is a mapping of sections; got a {type(root).__name__[1:].lower()}",
                                     hint="start with 'neurodeploy: 1', 'name:', 'simulation:' and 'populations:'")
            return None
        version_node = m.get("neurodeploy")
        version = 1
        if version_node is not None:
            v = r.integer(version_node, ("neurodeploy",), default=None)
            if v is not None and v not in SPEC_VERSIONS:
                r.error("ND700", version_node, ("neurodeploy",), f"spec version {v} is not supported",
                        f"this neurodeploy reads spec version(s) {', '.join(map(str, SPEC_VERSIONS))}")
            version = v if v in SPEC_VERSIONS else 1
        name = r.string(m.get("name"), ("name",), "unnamed") if "name" in m.entries else "unnamed"
        desc = r.string(m.get("description"), ("description",)) if "description" in m.entries else ""
        sim = self.simulation(m.get("simulation")) if "simulation" in m.entries else ir.Simulation(1e-4, 1)
        # Populations first: projections need their models to know the weights' unit.
        pops = tuple(self.population(n, ("populations", i)) for i, n in
                     enumerate(r.seq(m.get("populations"), ("populations",))))
        stims = tuple(s for s in (self.stimulus(n, ("stimuli", i), sim) for i, n in
                                  enumerate(r.seq(m.get("stimuli"), ("stimuli",)))) if s is not None)
        projs = tuple(self.projection(n, ("projections", i)) for i, n in
                      enumerate(r.seq(m.get("projections"), ("projections",))))
        probes = tuple(self.probe(n, ("probes", i)) for i, n in
                       enumerate(r.seq(m.get("probes"), ("probes",))))
        blocks = tuple(self.block(n, ("blocks", i)) for i, n in
                       enumerate(r.seq(m.get("blocks"), ("blocks",))))
        if not pops and not blocks and not r.has_error_at(("populations",)):
            r.error("ND202", m, ("populations",), "the spec defines no populations and no blocks",
                    "add a 'populations:' list")
        return ir.Network(name=name, simulation=sim, populations=pops, stimuli=stims,
                          projections=projs, probes=probes, blocks=blocks, description=desc,
                          spec_version=version, origin=display)

    def simulation(self, node) -> ir.Simulation:
        r, path = self.r, ("simulation",)
        m = r.mapping(node, path, ["dt", "duration", "steps", "seed", "schedule"], required=["dt"], what="simulation",
                      hints={"dt": "e.g. dt: 0.1 ms"})
        if m is None:
            return ir.Simulation(dt=1e-4, steps=1)
        dt = r.quantity(m.get("dt"), path + ("dt",), Dim("second"), lo=0, lo_exclusive=True,
                        default=1e-4) if "dt" in m.entries else 1e-4
        steps = 1
        if "duration" in m.entries and "steps" in m.entries:
            r.error("ND207", m.key_span("steps"), path + ("steps",), "give either 'duration' or 'steps', not both")
        elif "duration" in m.entries:
            dur = r.quantity(m.get("duration"), path + ("duration",), Dim("second"), lo=0,
                             lo_exclusive=True, default=dt)
            steps = int(round(dur / dt))
            if steps >= 1 and abs(steps * dt - dur) > 1e-9 * max(dur, 1e-12) + 1e-12:
                r.error("ND205", m.get("duration"), path + ("duration",),
                        f"duration is not a whole number of steps of dt ({dur / dt:.6g} steps)",
                        f"use e.g. duration: {steps * dt * 1e3:g} ms, or give 'steps:'", severity="warning")
            if steps < 1 and not r.has_error_at(path):
                r.error("ND205", m.get("duration"), path + ("duration",), "duration is shorter than one step of dt")
                steps = 1
        elif "steps" in m.entries:
            steps = r.integer(m.get("steps"), path + ("steps",), lo=1, hi=ir.MAX_STEPS, default=1)
        else:
            r.error("ND202", m, path + ("duration",), "simulation needs 'duration' or 'steps'",
                    "e.g. duration: 100 ms")
        seed = r.integer(m.get("seed"), path + ("seed",), lo=0, hi=2**32 - 1) if "seed" in m.entries else 0
        schedule = ir.SCHEDULES[0]
        if "schedule" in m.entries:
            schedule = r.choice(m.get("schedule"), path + ("schedule",), ir.SCHEDULES, default=ir.SCHEDULES[0])
        return ir.Simulation(dt=dt, steps=steps, seed=seed, schedule=schedule)

    # --- populations ---------------------------------------------------------------------------
    def population(self, node, path) -> ir.Population:
        r = self.r
        m = r.mapping(node, path, ["name", "size", "model", "params", "init", "fixed_point"],
                      required=["name", "size", "model"], what="a population")
        placeholder = f"<{format_path(path)}>"
        if m is None:
            return ir.Population(placeholder, 1, "?")
        name = r.name(m.get("name"), path + ("name",), placeholder) if "name" in m.entries else placeholder
        size = r.integer(m.get("size"), path + ("size",), default=1) if "size" in m.entries else 1
        model_name = r.string(m.get("model"), path + ("model",), "?") if "model" in m.entries else "?"
        model = NEURONS.get(model_name)
        self.model_of[name] = model
        params: dict[str, Any] = {}
        if "params" in m.entries:
            params = self.params_with_data(m.get("params"), path + ("params",), model.Params if model else None,
                                           f"model '{model_name}'", check_unknown=False)
        init: dict[str, ir.Init] = {}
        if "init" in m.entries:
            im = r.mapping(m.get("init"), path + ("init",), list((m.get("init").entries if isinstance(m.get("init"), YMap) else {})), what="init")
            for var, (_, vnode) in (im.entries.items() if im else ()):
                unit = model.state.get(var) if model else None
                init[var] = self.init_value(vnode, path + ("init", var), Dim(unit) if unit else None)
        v_lsb = None
        if "fixed_point" in m.entries:
            v_lsb = self.fixed_point(m.get("fixed_point"), path + ("fixed_point",))
            if model is not None and model_name not in FIXED_POINT_MODELS:
                r.error("ND207", m.key_span("fixed_point"), path + ("fixed_point",),
                        f"model '{model_name}' has no stated fixed-point scale (the integer targets choose it)",
                        f"fixed_point applies to {', '.join(FIXED_POINT_MODELS)}; remove it here")
        return ir.Population(name, size, model_name, params, init, v_lsb)

    def fixed_point(self, node, path) -> float | None:
        """A population's ``fixed_point: {v_lsb: 62.5 uV}``: the voltage of one integer unit of
        ``v`` on the integer targets (the scale Lava or a chip run used), > 0."""
        r = self.r
        m = r.mapping(node, path, ["v_lsb"], required=["v_lsb"], what="fixed_point")
        if m is None or "v_lsb" not in m.entries:
            return None
        v = r.quantity(m.get("v_lsb"), path + ("v_lsb",), Dim("volt"), lo=0, hi=1, lo_exclusive=True, default=None)
        return v

    def init_value(self, node, path, dim) -> ir.Init:
        r = self.r
        if isinstance(node, YMap):
            m = r.mapping(node, path, ["uniform", "normal"], what="an initial value")
            if m is None or len(m.entries) != 1:
                if m is not None:
                    r.error("ND207", node, path, "give exactly one of 'uniform: [low, high]' or 'normal: [mean, std]'")
                return ir.Init("constant", 0.0)
            kind, (_, vnode) = next(iter(m.entries.items()))
            items = r.seq(vnode, path + (kind,))
            if len(items) != 2:
                if not r.has_error_at(path + (kind,)):
                    r.error("ND503", vnode, path + (kind,), f"'{kind}' takes two values",
                            "uniform: [low, high] or normal: [mean, std]")
                return ir.Init("constant", 0.0)
            a = r.quantity(items[0], path + (kind, 0), dim)
            b = r.quantity(items[1], path + (kind, 1), dim, lo=0 if kind == "normal" else None)
            if kind == "uniform" and b < a:
                r.error("ND205", vnode, path + (kind,), "uniform: high is below low")
            return ir.Init(kind, a, b)
        return ir.Init("constant", r.quantity(node, path, dim))

    # --- stimuli -------------------------------------------------------------------------------
    def stimulus(self, node, path, sim: ir.Simulation):
        r = self.r
        kinds = list(STIMULUS_KEYS)
        if not isinstance(node, YMap):
            r.mapping(node, path, [], what="a stimulus")
            return None
        kind = r.choice(node.get("kind"), path + ("kind",), kinds) if "kind" in node.entries else None
        if "kind" not in node.entries:
            r.error("ND202", node, path + ("kind",), "a stimulus needs 'kind'", one_of(kinds))
        if kind is None:
            return None
        m = r.mapping(node, path, STIMULUS_KEYS[kind], required=["name"], what=f"a {kind} stimulus")
        placeholder = f"<{format_path(path)}>"
        name = r.name(m.get("name"), path + ("name",), placeholder) if "name" in m.entries else placeholder
        get = m.get
        if kind == "poisson":
            size = self._required_int(m, path, "size", "a poisson stimulus")
            rate = rates = None
            if ("rate" in m.entries) == ("rates" in m.entries):
                r.error("ND207" if "rate" in m.entries else "ND202", m, path + ("rate",),
                        "give exactly one of 'rate' (one rate for all) or 'rates' (an array, one per neuron)")
            if "rate" in m.entries:
                rate = r.quantity(get("rate"), path + ("rate",), Dim("hertz"), lo=0, default=0.0)
            if "rates" in m.entries:
                rates = self.array_ref(get("rates"), path + ("rates",), "hertz")
            return ir.PoissonStimulus(name, size, rate, rates)
        if kind == "spike_times":
            size = self._required_int(m, path, "size", "a spike_times stimulus")
            indices, times = [], []
            for k, e in enumerate(r.seq(get("spikes"), path + ("spikes",)) if "spikes" in m.entries else []):
                em = r.mapping(e, path + ("spikes", k), ["neuron", "times"], required=["neuron", "times"],
                               what="a spike train")
                if em is None or "neuron" not in em.entries or "times" not in em.entries:
                    continue
                idx = r.integer(em.get("neuron"), path + ("spikes", k, "neuron"), lo=0)
                for q, tn in enumerate(r.seq(em.get("times"), path + ("spikes", k, "times"))):
                    flat = ("spikes", len(times))
                    r.spans[path + flat] = tn.span  # lets verify locate problems per spike
                    if r.has_error_at(path + ("spikes", k)):
                        r.bad_paths.add(path + flat)
                    indices.append(idx)
                    times.append(r.quantity(tn, path + ("spikes", k, "times", q), Dim("second")))
            if "spikes" not in m.entries:
                r.error("ND202", m, path + ("spikes",), "a spike_times stimulus needs 'spikes'",
                        "spikes: [{neuron: 0, times: [10 ms, 20 ms]}]")
            return ir.SpikeTimesStimulus(name, size, tuple(indices), tuple(times))
        if kind == "current":
            target = r.ref(get("target"), path + ("target",)) if "target" in m.entries else None
            amp = start = 0.0
            stop = times = values = indices = None
            has_const, has_wave = "amplitude" in m.entries, ("times" in m.entries or "values" in m.entries)
            if has_const == has_wave:
                r.error("ND207" if has_const else "ND202", m, path + ("amplitude",),
                        "give either 'amplitude' (constant current) or 'times' and 'values' (piecewise constant)")
            if has_const:
                amp = r.quantity(get("amplitude"), path + ("amplitude",), Dim("amp"))
                if "start" in m.entries:
                    start = r.quantity(get("start"), path + ("start",), Dim("second"), lo=0)
                if "stop" in m.entries:
                    stop = r.quantity(get("stop"), path + ("stop",), Dim("second"), lo=0)
            else:
                amp = None
                times = tuple(r.quantity(n, path + ("times", k), Dim("second"), lo=0)
                              for k, n in enumerate(r.seq(get("times"), path + ("times",))))
                values = tuple(r.quantity(n, path + ("values", k), Dim("amp"))
                               for k, n in enumerate(r.seq(get("values"), path + ("values",))))
            if "indices" in m.entries:
                indices = self.indices(get("indices"), path + ("indices",))
            if target is None:
                r.error("ND202", m, path + ("target",), "a current stimulus needs 'target'")
            return ir.CurrentStimulus(name, target or "", amp, start, stop, times, values, indices)
        # array
        for req in ("data", "encoding"):
            if req not in m.entries:
                r.error("ND202", m, path + (req,), f"an array stimulus needs '{req}'",
                        one_of(ENCODINGS) if req == "encoding" else "data: {dataset: digits, samples: [0, 1, 2]}")
        enc = r.choice(get("encoding"), path + ("encoding",), list(ENCODINGS), "value") if "encoding" in m.entries else "value"
        data = self.array_ref(get("data"), path + ("data",), "1") if "data" in m.entries else ir.ArrayRef("inline", (1, 1), values=((0.0,),))
        if len(data.shape) not in (1, 2):
            r.error("ND503", get("data"), path + ("data",),
                    f"array data must be 1-D (one frame) or 2-D (frames x neurons); has shape {data.shape}",
                    "reshape images to (n_images, pixels)")
            data = ir.ArrayRef("inline", (1, 1), values=((0.0,),))
        frame = r.quantity(get("frame_duration"), path + ("frame_duration",), Dim("second"), lo=0,
                           lo_exclusive=True, default=sim.duration) if "frame_duration" in m.entries else sim.duration
        gain = r.quantity(get("gain"), path + ("gain",), Dim(ENCODINGS[enc])) if "gain" in m.entries else 1.0
        if "gain" not in m.entries and enc != "value":
            r.error("ND202", m, path + ("gain",), f"encoding '{enc}' needs 'gain' (in {ENCODINGS[enc]})",
                    "e.g. gain: 100 Hz" if enc == "rate" else "e.g. gain: 1 nA")
        target = r.ref(get("target"), path + ("target",)) if "target" in m.entries else None
        if enc == "current" and target is None:
            r.error("ND202", m, path + ("target",), "encoding 'current' needs a 'target' population")
        return ir.ArrayStimulus(name, data, enc, frame, gain, target)

    def _required_int(self, m: YMap, path, key, what) -> int:
        if key not in m.entries:
            self.r.error("ND202", m, path + (key,), f"{what} needs '{key}'")
            return 1
        return self.r.integer(m.get(key), path + (key,), default=1)

    def indices(self, node, path) -> tuple[int, ...] | None:
        """A list of ints, or {start, stop, step}, or 'all' (None)."""
        r = self.r
        if isinstance(node, YScalar) and node.value == "all":
            return None
        if isinstance(node, YMap):
            m = r.mapping(node, path, ["start", "stop", "step"], required=["stop"], what="an index range")
            if m is None or "stop" not in m.entries:
                return None
            start = r.integer(m.get("start"), path + ("start",), lo=0) if "start" in m.entries else 0
            stop = r.integer(m.get("stop"), path + ("stop",), lo=0, hi=ir.MAX_POPULATION_SIZE)
            step = r.integer(m.get("step"), path + ("step",), lo=1) if "step" in m.entries else 1
            if stop <= start:
                r.error("ND205", node, path, "the range is empty (stop <= start)")
            return tuple(range(start, stop, step))
        items = r.seq(node, path, what="list of indices, a range {start, stop, step}, or 'all'")
        return tuple(r.integer(n, path + (k,), lo=0) for k, n in enumerate(items))

    # --- array data ----------------------------------------------------------------------------
    def array_ref(self, node, path, unit: str, extra_keys: tuple = ()) -> ir.ArrayRef:
        """{file: x.npy, key?}, {dataset: digits, samples?}, {inline: [...]}; optional scale/unit.
        ``extra_keys``: keys of an enclosing mapping that shares the node (sparse connectivity)."""
        r = self.r
        dummy = ir.ArrayRef("inline", (1,), values=(0.0,))
        m = r.mapping(node, path, ["file", "key", "dataset", "samples", "inline", "unit", "scale", "transform",
                                   *extra_keys], what="array data")
        if m is None:
            return dummy
        sources = [k for k in ("file", "dataset", "inline") if k in m.entries]
        if len(sources) != 1:
            r.error("ND207" if sources else "ND202", m, path,
                    "array data needs exactly one of 'file', 'dataset' or 'inline'",
                    "e.g. {file: weights.npy} or {dataset: digits, samples: [0, 1]}")
            return dummy
        scale = 1.0
        if "unit" in m.entries:
            unit_node = m.get("unit")
            text = r.string(unit_node, path + ("unit",))
            probe = YScalar("1 " + text, unit_node.span) if text else unit_node
            scale = r.quantity(probe, path + ("unit",), Dim(unit) if unit else None, default=1.0)
        elif unit not in ("1", None):
            r.error("ND303", m, path + ("unit",), f"array values need a unit (expected {unit})",
                    f"add e.g. unit: {Dim(unit).example().split(' ', 1)[1]}")
        if "scale" in m.entries:
            scale *= r.number(m.get("scale"), path + ("scale",))
        ref = self._array_source(m, path, sources[0], scale, unit or "1")
        if ref is None or "transform" not in m.entries:
            return ref or dummy
        transform = r.choice(m.get("transform"), path + ("transform",), list(TRANSFORMS))
        if transform is None:
            return dummy
        try:
            shape = transformed_shape(ref.shape, transform)
        except DataError as e:
            r.error(e.code, m.get("transform"), path + ("transform",), e.message, e.hint)
            return dummy
        if math.prod(shape) > MAX_ARRAY_ELEMENTS:
            r.error("ND206", m.get("transform"), path + ("transform",),
                    f"transform '{transform}' gives shape {shape}: {math.prod(shape):.3g} values exceed the limit "
                    f"of {MAX_ARRAY_ELEMENTS:.0e}")
            return dummy
        return dataclasses.replace(ref, shape=shape, transform=transform)

    def _array_source(self, m, path, src: str, scale: float, unit: str) -> ir.ArrayRef | None:
        """The ArrayRef of one of ``file`` / ``dataset`` / ``inline`` (None after an error)."""
        r = self.r
        if src == "inline":
            values = self._nested_numbers(m.get("inline"), path + ("inline",))
            if values is None:
                return None
            shape = _shape_of(values)
            if shape is None:
                r.error("ND503", m.get("inline"), path + ("inline",), "inline rows have different lengths")
                return None
            return ir.ArrayRef("inline", shape, values=values, scale=scale, unit=unit)
        if src == "dataset":
            ds = r.choice(m.get("dataset"), path + ("dataset",), list(DATASETS))
            if ds is None:
                return None
            samples = None
            if "samples" in m.entries:
                sn = m.get("samples")
                if isinstance(sn, YScalar) and isinstance(sn.value, int) and not isinstance(sn.value, bool):
                    count = r.integer(sn, path + ("samples",), lo=1, hi=DATASETS[ds][1])
                    samples = tuple(range(count))
                else:
                    samples = self.indices(sn, path + ("samples",))
                    n = DATASETS[ds][1]
                    if samples and max(samples) >= n:
                        r.error("ND504", sn, path + ("samples",), f"dataset '{ds}' has {n} samples (0..{n - 1})")
                        samples = None
            return ir.ArrayRef("dataset", dataset_shape(ds, samples), dataset=ds, samples=samples,
                               scale=scale, unit=unit)
        rel = r.string(m.get("file"), path + ("file",))
        key = r.string(m.get("key"), path + ("key",)) if "key" in m.entries else None
        if not rel:
            return None
        if "\0" in rel:
            r.error("ND601", m.get("file"), path + ("file",), "the file name contains a NUL character")
            return None
        if not self.allow_outside_paths and (why := outside_reason(self.base_dir, rel)):
            r.error("ND601", m.get("file"), path + ("file",), why, OUTSIDE_HINT)
            return None
        try:
            shape, _ = array_header(self.base_dir / rel, key)
        except DataError as e:
            r.error(e.code, m.get("file"), path + ("file",), e.message, e.hint)
            return None
        return ir.ArrayRef("file", shape, path=rel, key=key, scale=scale, unit=unit)

    def _nested_numbers(self, node, path):
        r = self.r
        if isinstance(node, YList):
            out = []
            for k, n in enumerate(node.items):
                v = self._nested_numbers(n, path + (k,))
                if v is None:
                    return None
                out.append(v)
            return tuple(out)
        v = r.number(node, path, default=None)
        return v

    # --- projections ---------------------------------------------------------------------------
    def projection(self, node, path) -> ir.Projection:
        r = self.r
        keys = ["name", "source", "target", "weights", "connectivity", "delay", "sign", "plasticity"]
        m = r.mapping(node, path, keys, required=["source", "target", "weights"], what="a projection")
        placeholder = f"<{format_path(path)}>"
        if m is None:
            return ir.Projection(placeholder, "", "", ir.Weights("constant", {"value": 0.0}))
        source = r.ref(m.get("source"), path + ("source",)) if "source" in m.entries else ""
        target = r.ref(m.get("target"), path + ("target",)) if "target" in m.entries else ""
        name = (r.name(m.get("name"), path + ("name",), placeholder) if "name" in m.entries
                else f"{source.replace('.', '_')}_to_{target.replace('.', '_')}")
        model = self.model_of.get(target)
        wunit = model.weight_unit if model else None
        weights = (self.weights(m.get("weights"), path + ("weights",), wunit) if "weights" in m.entries
                   else ir.Weights("constant", {"value": 0.0}))
        conn = self.connectivity(m.get("connectivity"), path + ("connectivity",)) if "connectivity" in m.entries else ir.Connectivity("dense")
        delay = r.quantity(m.get("delay"), path + ("delay",), Dim("second"), lo=0) if "delay" in m.entries else 0.0
        sign = r.choice(m.get("sign"), path + ("sign",), SIGNS, "mixed") if "sign" in m.entries else "mixed"
        plast = self.plasticity(m.get("plasticity"), path + ("plasticity",), wunit) if "plasticity" in m.entries else None
        return ir.Projection(name, source, target, weights, conn, delay, sign, plast)

    def weights(self, node, path, wunit) -> ir.Weights:
        r = self.r
        dim = Dim(wunit) if wunit else None
        unit = wunit or "1"
        if isinstance(node, YScalar):
            return ir.Weights("constant", {"value": r.quantity(node, path, dim)}, unit=unit)
        if not isinstance(node, YMap):
            r.mapping(node, path, [], what="weights")
            return ir.Weights("constant", {"value": 0.0}, unit=unit)
        if "init" in node.entries:
            kind = r.choice(node.get("init"), path + ("init",), list(WEIGHT_INIT), "constant")
            fields = WEIGHT_INIT.get(kind, [])
            m = r.mapping(node, path, ["init"] + fields, required=fields, what=f"'{kind}' weights")
            vals = {f: r.quantity(m.get(f), path + (f,), dim, lo=0 if f == "std" else None)
                    for f in fields if m is not None and f in m.entries}
            if kind == "uniform" and vals.get("high", 0) < vals.get("low", 0):
                r.error("ND205", node, path, "uniform weights: high is below low")
            return ir.Weights(kind, vals, unit=unit)
        if "inline" in node.entries or "file" in node.entries:
            data = self.array_ref(node, path, unit if wunit else None)
            return ir.Weights(data.source, {}, data=data, unit=unit)
        r.error("ND202", node, path, "weights need 'init', 'inline' or 'file' (or a single quantity)",
                "e.g. weights: 0.5 mV, or weights: {init: normal, mean: 0.5 mV, std: 0.1 mV}")
        return ir.Weights("constant", {"value": 0.0}, unit=unit)

    def connectivity(self, node, path) -> ir.Connectivity:
        r = self.r
        if isinstance(node, YScalar):
            if node.value in ("random", "sparse"):
                example = "{kind: random, p: 0.1}" if node.value == "random" else "{kind: sparse, pairs: [[0, 1]]}"
                r.error("ND202", node, path, f"'{node.value}' connectivity needs parameters",
                        f"write connectivity: {example}")
                return ir.Connectivity("dense")
            kind = r.choice(node, path, ["dense", "one_to_one"], "dense")
            return ir.Connectivity(kind or "dense")
        m = r.mapping(node, path, ["kind", "p", "allow_self", "pairs", "file", "key"], required=["kind"],
                      what="connectivity")
        if m is None or "kind" not in m.entries:
            return ir.Connectivity("dense")
        kind = r.choice(m.get("kind"), path + ("kind",), CONNECTIVITY, "dense")
        allowed = {"dense": [], "one_to_one": [], "random": ["p", "allow_self"],
                   "sparse": ["pairs", "file", "key", "allow_self"]}[kind]
        for k in m.entries:
            if k != "kind" and k not in allowed:
                r.error("ND201", m.key_span(k), path + (k,), f"'{k}' does not apply to {kind} connectivity",
                        ("keys for " + kind + ": " + ", ".join(allowed)) if allowed else None)
        allow_self = r.boolean(m.get("allow_self"), path + ("allow_self",), True) if "allow_self" in m.entries else True
        if kind == "random":
            if "p" not in m.entries:
                r.error("ND202", m, path + ("p",), "random connectivity needs 'p' (connection probability)")
                return ir.Connectivity("random", p=0.0)
            p = r.number(m.get("p"), path + ("p",), lo=0, hi=1)
            return ir.Connectivity("random", p=p, allow_self=allow_self)
        if kind == "sparse":
            if ("pairs" in m.entries) == ("file" in m.entries):
                r.error("ND207" if "pairs" in m.entries else "ND202", m, path,
                        "sparse connectivity needs exactly one of 'pairs' ([[i, j], ...]) or 'file'")
                return ir.Connectivity("sparse", i=(), j=())
            if "file" in m.entries:
                data = self.array_ref(m, path, None, extra_keys=("kind", "allow_self"))
                return ir.Connectivity("sparse", data=data, allow_self=allow_self)
            ii, jj = [], []
            for k, pn in enumerate(r.seq(m.get("pairs"), path + ("pairs",))):
                items = r.seq(pn, path + ("pairs", k))
                if len(items) != 2:
                    if not r.has_error_at(path + ("pairs", k)):
                        r.error("ND503", pn, path + ("pairs", k), "a pair is [source index, target index]")
                    continue
                ii.append(r.integer(items[0], path + ("pairs", k, 0), lo=0))
                jj.append(r.integer(items[1], path + ("pairs", k, 1), lo=0))
            return ir.Connectivity("sparse", i=tuple(ii), j=tuple(jj), allow_self=allow_self)
        return ir.Connectivity(kind)

    def plasticity(self, node, path, wunit) -> ir.PlasticityRule | None:
        r = self.r
        m = r.mapping(node, path, ["rule", "params"], required=["rule"], what="plasticity")
        if m is None or "rule" not in m.entries:
            return None
        rule = r.string(m.get("rule"), path + ("rule",), "?")
        rdef = RULES.get(rule)
        params = {}
        if rdef is not None:
            params = r.params(m.get("params"), path + ("params",), rdef.Params, wunit, f"rule '{rule}'",
                              fill_defaults=False)
        elif "params" in m.entries:
            params = r.params(m.get("params"), path + ("params",), None, wunit, f"rule '{rule}'", check_unknown=False)
        return ir.PlasticityRule(rule, params)

    # --- probes and blocks ---------------------------------------------------------------------
    def probe(self, node, path) -> ir.Probe:
        r = self.r
        m = r.mapping(node, path, ["name", "target", "record", "indices", "period"],
                      required=["target", "record"], what="a probe")
        if m is None:
            return ir.Probe(f"<{format_path(path)}>", "", "spikes")
        target = r.ref(m.get("target"), path + ("target",)) if "target" in m.entries else ""
        record = r.name(m.get("record"), path + ("record",), "spikes") if "record" in m.entries else "spikes"
        name = (r.name(m.get("name"), path + ("name",), f"<{format_path(path)}>") if "name" in m.entries
                else f"{target}.{record}")
        indices = self.indices(m.get("indices"), path + ("indices",)) if "indices" in m.entries else None
        period = r.quantity(m.get("period"), path + ("period",), Dim("second"), lo=0, lo_exclusive=True,
                            default=None) if "period" in m.entries else None
        return ir.Probe(name, target, record, indices, period)

    def block(self, node, path) -> ir.Block:
        r = self.r
        placeholder = f"<{format_path(path)}>"
        if not isinstance(node, YMap):
            r.mapping(node, path, [], what="a block")
            return ir.Block(placeholder, "?")
        kind = r.string(node.get("kind"), path + ("kind",), "?") if "kind" in node.entries else "?"
        if "kind" not in node.entries:
            r.error("ND202", node, path + ("kind",), "a block needs 'kind'", one_of(BLOCKS))
        bdef = BLOCKS.get(kind)
        name = r.name(node.get("name"), path + ("name",), placeholder) if "name" in node.entries else placeholder
        if "name" not in node.entries:
            r.error("ND202", node, path + ("name",), "a block needs 'name'")
        if bdef is None:
            return ir.Block(name, kind)  # verify reports the unknown kind with a suggestion
        params = self.params_with_data(node, path, bdef.Params, f"block '{kind}'", skip=("name", "kind"),
                                       fill_defaults=True)
        return ir.Block(name, kind, params)

    def params_with_data(self, node, path, cls, what: str, skip=(), **kw) -> dict:
        """``r.params`` for ``cls``, plus its ``data`` parameters read as array references (plain
        JSON data in the result); a missing required one is an error naming ``what``."""
        r = self.r
        infos = param_infos(cls) if cls is not None else {}
        data_keys = [k for k, (i, _) in infos.items() if i.kind == "data"]
        if not isinstance(node, YMap) or not data_keys:
            return r.params(node, path, cls, None, what, **kw)
        rest = YMap({k: v for k, v in node.entries.items() if k not in (*skip, *data_keys)}, node.span)
        params = r.params(rest, path, cls, None, what, **kw)
        for k in data_keys:
            if k in node.entries:
                params[k] = _plain(to_dict(self.array_ref(node.get(k), path + (k,), "1")))
            elif infos[k][1] is REQUIRED:
                r.error("ND202", node, path + (k,), f"{what} needs '{k}'", infos[k][0].doc)
        return params


def _shape_of(values) -> tuple[int, ...] | None:
    if not isinstance(values, tuple):
        return ()
    if not values:
        return (0,)
    inner = [_shape_of(v) for v in values]
    if any(s is None or s != inner[0] for s in inner):
        return None
    return (len(values), *inner[0])

