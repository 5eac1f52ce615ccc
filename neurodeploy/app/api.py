"""The public Python API. ``import neurodeploy as nd`` re-exports every function here, and the
command line (:mod:`neurodeploy.app.cli`) is a thin shell over exactly these functions
(docs/api.md).

A *spec* argument is a :class:`~neurodeploy.ir.Network`, a path to a YAML spec, or the name of a
shipped model (``"single_lif"``, ``"models/single_lif.yaml"``: see :mod:`neurodeploy.spec.models`).
A *target* is a :class:`~neurodeploy.core.targets.Target`, a target name (``"torch"``,
``"loihi2-sim"``; :func:`targets` lists them) or a path to a target YAML file.

Errors are exceptions of :class:`~neurodeploy.core.errors.NeurodeployError`: ``SpecError`` (bad
input, with located diagnostics), ``CompileError`` (a model that does not fit the target),
``BackendError``, ``NotImplementedYet``, ``UsageError``; each carries the exit code the CLI uses.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..backends import dispatch
from ..backends.base import Backend, block_lowering, get_backend
from ..core.errors import Diagnostic, NeurodeployError, Span, SpecError, UsageError
from ..core.io import Staged, atomic_write_json, check_output_file, output_dir
from ..core.plot import raster_and_traces
from ..core.result import Result
from ..core.targets import Target, available_targets, load_target
from ..interop.nir import export_nir, import_nir, read_inputs
from ..interop.onnx import export_onnx, import_onnx
from ..ir.nodes import Network
from ..learn.run import train_from_spec
from ..library.blocks.coder import Coder, find_coder, has_coder
from ..passes.base import Compilation
from ..passes.pipeline import MANIFEST, artifact_files, write
from ..passes.place import Placement
from ..passes.quantize import report_table
from ..spec import loader
from ..spec.overrides import with_duration, with_seed
from ..validation import blocks as block_eval
from ..validation.run import refuse_coders, validate as _validate
from ..validation.tolerances import Tolerances, defaults, kind_of, load_file

Log = Callable[[str], None]


def _quiet(msg: str) -> None:
    pass


# --- specs and targets ---------------------------------------------------------------------------

def load(spec, *, overrides=None, duration=None, seed: int | None = None,
         allow_outside_paths: bool | None = None) -> Network:
    """The verified network of ``spec`` (raises :class:`SpecError` with every problem located).

    ``overrides``: ``{KEY: VALUE}`` changes to the spec before it is read (``--set``; e.g.
    ``{"exc.tau_m": "10 ms", "simulation.seed": 3}``); ``duration`` (seconds or ``"50 ms"``) and
    ``seed`` replace the spec's. ``allow_outside_paths=True``: the spec may read array files
    outside its folder or by absolute path (refused by default; docs/spec.md). The other
    functions take the network this returns."""
    if isinstance(spec, Network):
        if overrides:
            raise UsageError("overrides= apply to a spec file; change a Network with dataclasses.replace")
        net = spec
    else:
        net = loader.load(spec, overrides=overrides, allow_outside_paths=allow_outside_paths)
    if duration is not None:
        net = with_duration(net, duration)
    if seed is not None:
        net = with_seed(net, seed)
    return net


def check(spec, *, overrides=None, allow_outside_paths: bool | None = None) -> tuple[Network | None, list[Diagnostic]]:
    """(the network, or None when the spec has any error; every diagnostic, warnings included).
    Never raises for bad input. ``allow_outside_paths``: as for :func:`load`."""
    return loader.check(spec, overrides=overrides, allow_outside_paths=allow_outside_paths)


def targets() -> dict[str, Target]:
    """Every target available here, by name (the shipped ones and ``$NEURODEPLOY_TARGETS``)."""
    return {name: load_target(str(path)) for name, path in available_targets().items()}


def _as_target(name_or_path) -> Target:
    """A target by name or path (raises :class:`SpecError` naming the known ones)."""
    return name_or_path if isinstance(name_or_path, Target) else load_target(str(name_or_path))


def backend(target) -> Backend:
    """The backend object that runs ``target`` (:class:`~neurodeploy.backends.base.Backend`):
    ``backend("torch").options(...)`` builds run options, ``.statuses()`` says whether it works here."""
    return get_backend(_as_target(target).backend)


# --- simulating --------------------------------------------------------------------------------

def simulate(spec, target, *, duration=None, seed: int | None = None, trials: int | None = None,
             overrides=None, allow_fallback: bool = True, options=None, **kw) -> Result | list[Result]:
    """Simulate ``spec`` on ``target``; a :class:`~neurodeploy.core.result.Result`
    (``.to_pandas()`` for DataFrames).

    ``duration``, ``seed``, ``overrides``: as for :func:`load`. ``trials=N``: N independent
    trials with seeds ``seed, seed + 1, ...`` (one network structure, each trial its own input
    spikes and initial state), returned as a list; batched in one run on torch. Keywords ``kw`` (or
    ``options``, a dict or the backend's options object, ``nd.backend(target).options(...)``): the
    backend's run options (``codegen="numpy"`` for Brian2, ``device="cuda"``, ``dtype="float64"``
    for torch, ``progress=False``); an unknown one is a :class:`UsageError` listing them.
    ``allow_fallback=False``: nodes a Lava target cannot host are an error instead of running on
    its torch fallback."""
    net, t = load(spec, overrides=overrides, duration=duration, seed=seed), _as_target(target)
    seeds = None
    if trials is not None:
        if int(trials) < 1:
            raise UsageError(f"trials must be >= 1, got {trials}")
        seeds = tuple(net.simulation.seed + k for k in range(int(trials)))
    opts = get_backend(t.backend).options(options, **kw)
    results = dispatch.simulate(net, t, opts, seeds=seeds, allow_fallback=allow_fallback)
    return results if trials is not None else results[0]


def build(spec, target, *, duration=None, seed: int | None = None, overrides=None, options=None, **kw):
    """The backend's own simulator object for ``spec``, built and not run: on ``brian2`` the
    Brian2 objects (``.network`` is a ``brian2.Network``; ``.groups``, ``.synapses``,
    ``.spike_monitors``, ``.state_monitors``), on ``torch`` / ``loihi2-torch`` a
    :class:`~neurodeploy.backends.torch.simulator.TorchSim`. Other backends raise
    :class:`NotImplementedYet`."""
    net, t = load(spec, overrides=overrides, duration=duration, seed=seed), _as_target(target)
    b = get_backend(t.backend)
    return b.build(net, t, b.options(options, **kw))


def placement(spec, target, *, allow_fallback: bool = True) -> Placement:
    """Where every node of ``spec`` runs on ``target`` (the target, or its fallback, and why)."""
    return dispatch.plan(load(spec), _as_target(target), allow_fallback)


# --- compiling and deploying ---------------------------------------------------------------------

@dataclass
class Compiled:
    """What :func:`compile` produced: for a spiking network its :class:`Compilation` (placement,
    Loihi form, integers, core map, one report per pass), for a coder block its compile report;
    ``files``: what was written (with ``out=``)."""

    network: Network
    target: Target
    compilation: Compilation | None = None
    report: dict | None = None
    files: dict[str, Path] = field(default_factory=dict)
    summary: str = ""

    def to_json(self) -> dict:
        out: dict[str, Any] = {"ok": True, "files": {k: str(v) for k, v in self.files.items()}}
        if self.report is not None:
            out["report"] = self.report
        c = self.compilation
        if c is not None:
            out.update(quantization=c.quantized.report if c.quantized else None,
                       coremap=c.coremap.to_json() if c.coremap else None,
                       placement=c.placement.to_json() if c.placement else None, timings_s=c.timings)
        return out

    @property
    def warnings(self) -> list[str]:
        return list(self.compilation.lowered.warnings) if self.compilation is not None else []


def compile(spec, target, *, out=None, allow_fallback: bool = True, log: Log | None = None) -> Compiled:
    """Compile ``spec`` for ``target``: the passes (expand, place, lower, quantize, partition) for
    a spiking network, the block's compile lowering for a coder (the ``ipvae`` Loihi 2 resource
    report). With ``out`` the artifact and its reports are written there. Targets without an
    artifact (``brian2``, float ``torch``) raise :class:`NotImplementedYet`."""
    net, t = load(spec), _as_target(target)
    if has_coder(net):
        coder = find_coder(net)
        if out is None:
            raise UsageError("compiling a coder block writes its artifact: give out=")
        low = block_lowering(t, coder.kind)
        with output_dir(out, marker=MANIFEST, owns=artifact_files(out)) as st:  # checked before compiling
            report, files = low.compile(net, coder, t, st.path, log=log)
            return Compiled(net, t, report=report, files=st.final(files), summary=low.summary(report))
    if out is None:
        c = get_backend(t.backend).compile(net, t, allow_fallback=allow_fallback)
        return Compiled(net, t, compilation=c, summary=_compilation_text(c))
    with output_dir(out, marker=MANIFEST, owns=artifact_files(out)) as st:
        c = get_backend(t.backend).compile(net, t, allow_fallback=allow_fallback)
        compiled = Compiled(net, t, compilation=c, summary=_compilation_text(c))
        compiled.files = st.final(write(c, net, st.path))
    return compiled


def _compilation_text(c: Compilation) -> str:
    low = c.lowered
    lines = [f"compiled {low.name} for {c.target.name}: "
             + ", ".join(f"{n} -> {p.process}" for n, p in low.populations.items())]
    if c.quantized is not None:
        lines.append(report_table(c.quantized.report))
    if c.coremap is not None:
        lines.append(c.coremap.table())
    if c.placement is not None and c.target.fallback:
        lines.append(c.placement.table())
    return "\n".join(lines)


@dataclass
class RunOutputs:
    """A simulation written to a directory (``result.npz``, ``summary.json``, ``raster.png``)."""

    result: Result
    result_path: Path | None = None
    summary_path: Path | None = None
    plot_path: Path | None = None

    def to_json(self) -> dict:
        return {"ok": True, "summary": self.result.summary(), "files": {
            "result": str(self.result_path), "summary": str(self.summary_path),
            "plot": str(self.plot_path) if self.plot_path else None}}

    def lines(self) -> list[str]:
        s = self.result.summary()
        out = [f"{s['network']} on {s['target']} ({s['options'].get('codegen', s['backend'])}): "
               f"{s['wall_time_s']:.2f} s wall for {s['duration_s'] * 1e3:g} ms simulated"]
        width = max([len(k) for k in s["populations"]] + [10])
        out.append(f"  {'population':<{width}} {'size':>8} {'spikes':>9} {'rate (Hz)':>10} {'silent':>7}")
        for name, p in s["populations"].items():
            out.append(f"  {name:<{width}} {p['size']:>8} {p['spikes']:>9} {p['mean_rate_hz']:>10.2f} "
                       f"{p['silent_fraction'] * 100:>6.1f}%")
        out.append(f"wrote {self.result_path}, {self.summary_path}" + (f", {self.plot_path}" if self.plot_path else ""))
        return out


#: what a run writes: ``summary.json`` is its marker (present exactly when the run finished)
RUN_MARKER, RUN_FILES = "summary.json", ("result.npz", "raster.png")


def write_result(result: Result, out, plot: bool = False) -> RunOutputs:
    """Write ``result.npz``, ``raster.png`` (with ``plot``) and ``summary.json`` into ``out``, all
    or nothing (:func:`~neurodeploy.core.io.output_dir`): ``summary.json`` is moved into place
    last, so its presence means the run finished; a previous run's files there are replaced."""
    with output_dir(out, marker=RUN_MARKER, owns=RUN_FILES) as st:
        return _final(_write_result(result, st.path, plot), st)


def _write_result(result: Result, out: Path, plot: bool) -> RunOutputs:
    outs = RunOutputs(result)
    outs.result_path = result.save(out / "result.npz")
    if plot:
        outs.plot_path = raster_and_traces(result, out / "raster.png")
    outs.summary_path = result.save_summary(out / RUN_MARKER)
    return outs


def _final(outs: RunOutputs, st: Staged) -> RunOutputs:
    """``outs`` with its paths where they are after the staged directory is moved into place."""
    return dataclasses.replace(outs, result_path=st.final(outs.result_path),
                               summary_path=st.final(outs.summary_path), plot_path=st.final(outs.plot_path))


@dataclass
class Evaluation:
    """A coder evaluated on a target (``metrics.json``, ``reconstructions.png``)."""

    metrics: dict
    coder: Coder

    def to_json(self) -> dict:
        return {"ok": True, **{k: v for k, v in self.metrics.items() if k != "versions"}}

    def lines(self) -> list[str]:
        m, bdef = self.metrics, self.coder.block
        im = m["images"]
        out = [f"{m['network']} block '{m['block']}'{bdef.headline(m)} on {m['target']} [{m['runner']}]: "
               f"{im['count']} images ({im['selection']}" + (f", {im['dataset']}" if "dataset" in im else "")
               + f"), seed {m['seed']}"]
        out.append("  " + " ".join(f"{h:>6}" if key == "T" else f"{h:>7}" for h, key, _ in bdef.columns))
        for r in m["results"]:
            cells = []
            for _, key, spec in bdef.columns:
                v = r.get(key)
                cells.append(f"{'-':>7}" if v is None else format(v, spec))
            out.append("  " + " ".join(cells))
        out.append(f"wrote {', '.join(m['files'].values())}")
        return out


def evaluate(spec, target, out, *, images: int | None = None, iterations=None, seed: int | None = None,
             batch: int | None = None, device: str = "auto", progress: bool = False, overrides=None,
             threads: int | None = None, log: Log | None = None) -> Evaluation:
    """Evaluate the spec's coder (an ``ipvae`` or ``lca`` block, or its expanded form) on
    ``target``: reconstruction R^2, zero fraction and their distance to the ideal corner per
    number of iterations T; writes ``out/metrics.json`` and ``out/reconstructions.png``.

    ``images=N``: the first N images of the dataset's held-out split (default: the spec's own
    samples); ``iterations``: the Ts to report (default: the block's); ``batch``: images per
    Brian2 / Lava run; ``device``: torch's; ``threads``: torch's CPU threads (default: every core,
    the images run as one batch)."""
    net, t = load(spec, overrides=overrides), _as_target(target)
    if batch is not None and batch < 1:
        raise UsageError(f"batch must be >= 1, got {batch}")
    if threads is not None and threads < 1:
        raise UsageError(f"--threads {threads}: expected a whole number >= 1")
    coder = find_coder(net)
    block_eval.check(coder, t)  # unsupported targets: before anything is printed or loaded
    (log or _quiet)(f"evaluating {net.name}{coder.block.title()} on {t.name} ...")
    before = None
    if threads is not None and t.backend == "torch":
        import torch

        before = torch.get_num_threads()
        torch.set_num_threads(threads)
    try:
        m = block_eval.eval_to_dir(net, t, out, images=images, iterations=iterations,
                                   seed=net.simulation.seed if seed is None else seed, progress=progress,
                                   torch_device=device, batch=batch, coder=coder)
    finally:
        if before is not None:
            torch.set_num_threads(before)
    return Evaluation(m, coder)


def run(spec, target, out, *, duration=None, seed: int | None = None, overrides=None, plot: bool = False,
        allow_fallback: bool = True, log: Log | None = None, device: str = "auto", options=None,
        **kw) -> RunOutputs | Evaluation:
    """:func:`simulate` and write the result to ``out`` (:func:`write_result`); ``options`` /
    ``kw``: the backend's run options (:func:`simulate`). A spec whose network is a coder is
    evaluated instead, on its own images (:func:`evaluate`; ``device``: torch's)."""
    net, t = load(spec, overrides=overrides, duration=duration, seed=seed), _as_target(target)
    b = get_backend(t.backend)
    opts = b.options(options, **kw)
    if has_coder(net):
        if duration is not None:
            raise UsageError("a coder runs its block's iterations on each image; --duration does not apply "
                             "(`neurodeploy eval SPEC --iterations T ...` sets how many)")
        return evaluate(net, t, out, log=log, device=device, progress=bool(getattr(opts, "progress", False)))
    extra = b.describe(t, opts, net)
    (log or _quiet)(f"running {net.name} on {t.name}: {net.simulation.steps} steps of "
                    f"{net.simulation.dt * 1e3:g} ms ({net.simulation.duration * 1e3:g} ms simulated)"
                    + (f"; {extra}" if extra else ""))
    with output_dir(out, marker=RUN_MARKER, owns=RUN_FILES) as st:  # checked and locked before simulating
        result = dispatch.simulate(net, t, opts, allow_fallback=allow_fallback)[0]
        return _final(_write_result(result, st.path, plot), st)


@dataclass
class Deployment:
    """What :func:`deploy` did: the compile step (if the target has an artifact) and the run."""

    compiled: Compiled | None
    ran: RunOutputs | Evaluation | None


def deploy(spec, target, out, *, allow_fallback: bool = True, log: Log | None = None) -> Deployment:
    """Compile ``spec`` for ``target`` into ``out`` (where the target has an artifact), then run
    it there: simulate a spiking network (``result.npz``), evaluate a coder (``metrics.json``).
    On Loihi 2 hardware that is not present the artifact is written and
    :class:`NotImplementedYet` is raised after it. ``out`` is written all or nothing
    (:func:`~neurodeploy.core.io.output_dir`)."""
    net, t = load(spec), _as_target(target)
    say = log or _quiet
    markers = (MANIFEST, RUN_MARKER, block_eval.MARKER)
    owns = artifact_files(out) + RUN_FILES + block_eval.FILES
    if has_coder(net):
        coder = find_coder(net)
        low = block_lowering(t, coder.kind)
        compiled = None
        with output_dir(out, marker=markers, owns=owns) as st:
            if low.compiles(t):
                report, files = low.compile(net, coder, t, st.path, log=log)
                compiled = Compiled(net, t, report=report, files=st.final(files), summary=low.summary(report))
                say(f"compiled the deployable artifact for {out}")
            _commit_then(st, low.check, t, coder)  # e.g. Loihi 2 hardware: after the artifact, before any run
            ev = evaluate(net, t, st.path, log=log)
            ev.metrics["files"] = st.final(ev.metrics["files"])
        return Deployment(compiled, ev)
    backend_ = get_backend(t.backend)
    with output_dir(out, marker=markers, owns=owns) as st:
        compiled = compile(net, t, out=st.path, allow_fallback=allow_fallback)
        compiled.files = st.final(compiled.files)
        say(compiled.summary)
        for w in compiled.warnings:
            say(f"warning: {w}")
        say(f"compiled the deployable artifact: {', '.join(str(v) for v in compiled.files.values())}")
        _commit_then(st, backend_.check_target, t)  # exits 3 on missing hardware, after the artifact is on disk
        result = dispatch.simulate(net, t, backend_.options({"progress": False}, strict=False),
                                   allow_fallback=allow_fallback)[0]
        ran = _final(_write_result(result, st.path, plot=False), st)
    return Deployment(compiled, ran)


def _commit_then(st: Staged, check: Callable, *args) -> None:
    """``check(*args)``; when it raises, what is staged (the artifact) is moved into place first."""
    try:
        check(*args)
    except NeurodeployError:
        st.commit()
        raise


# --- interchange and training -------------------------------------------------------------------

FORMATS = (".nir", ".onnx")


def _format(path, what: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"{what} {str(path)!r}: unknown format {suffix or '(no suffix)'!r}; "
                         f"expected one of {', '.join(FORMATS)}")
    return suffix[1:]


def import_model(file, out, *, dt: float | None = None, steps: int | None = None, time_unit: str = "auto",
                 input=None, repair: bool = False, onnx_as: str = "auto", report=None,
                 schedule: str | None = None) -> dict:
    """Convert a NIR graph or an ONNX model (by suffix) into a spec at ``out`` (plus an ``.npz`` of
    its arrays). NIR (docs/interop.md): ``dt`` (s), ``steps``, ``time_unit`` of the file's time
    constants, ``input`` (a .npy/.csv of input spikes), ``repair``; ``report``: also write the
    import report there; ``schedule``: what one step means in the spec (default: the producer's,
    recognised from the file, else ``exact``; docs/spec.md#schedule). ONNX: ``onnx_as`` ``auto``,
    ``decoder`` or ``dense``. Returns
    ``{"format", "network", "report"}`` (NIR) or ``{"format", "written"}`` (ONNX)."""
    fmt = _format(file, "input file")
    if not Path(file).exists():
        raise SpecError([Diagnostic("ND100", "file not found", Span(str(file)))])
    check_output_file(out, "output spec")  # before any work: exit 2 naming the path and why
    if report:
        check_output_file(report, "--report")
    if fmt == "onnx":
        return {"format": fmt, "written": import_onnx(file, out, onnx_as)}
    inputs = read_inputs(input) if input else None
    net, rep = import_nir(file, out, dt=dt, first_columns=str(input or "").endswith(".csv"), steps=steps,
                          time_unit=time_unit or "auto", inputs=inputs, repair=repair, schedule=schedule)
    if report:
        atomic_write_json(report, rep)
    return {"format": fmt, "network": net, "report": rep}


def export_model(spec, out, *, time_unit: str = "s", onnx_iterations: int | None = None, report=None) -> dict:
    """Write ``spec`` as a NIR graph or (its ipvae block, rate form unrolled) an ONNX model, by
    ``out``'s suffix. Returns ``{"format", "report"}`` (NIR: what NIR cannot carry; also written
    to ``report``) or ``{"format", "written"}`` (ONNX)."""
    fmt = _format(out, "output file")
    check_output_file(out)  # before any work: exit 2 naming the path and why
    if report:
        check_output_file(report, "--report")
    if fmt == "onnx":
        return {"format": fmt, "written": export_onnx(spec, out, onnx_iterations)}
    rep = export_nir(spec, out, time_unit=time_unit or "s")
    if report:
        atomic_write_json(report, rep)
    return {"format": fmt, "report": rep}


def train(spec, out=None, *, epochs: int | None = None, device: str = "auto", threads: int | None = None,
          progress: bool = True, plots: bool = True) -> dict:
    """Train the coder of a training file (models/train/*.yaml; docs/ipvae.md) on the fallback
    (PyTorch, CUDA when present); writes the decoder, ONNX files, a deployable spec, metrics and
    plots into ``out`` (default ``out/train/<name>``) and returns the metrics."""
    return train_from_spec(spec, out, epochs=epochs, device=device, threads=threads, progress=progress,
                           plots=plots)


# --- validating ----------------------------------------------------------------------------------

def validate(spec, target, out, *, reference="brian2", tolerances=None, reuse: bool = False,
             steps: int | None = None, duration=None, seed: int | None = None, overrides=None,
             codegen: str = "auto", device: str = "auto", threads: int | None = None, log: Log | None = None) -> dict:
    """Run ``reference`` and ``target`` on the same inputs and seeds, compare them with stated
    metrics and tolerances, write ``out/report.json`` and ``out/report.html``; returns the report
    (``report["verdict"]["pass"]``). ``tolerances``: a :class:`Tolerances`, a tolerance YAML file
    (docs/validate.md) or None for the target kind's defaults. ``steps``: only the first N steps.
    ``threads``: CPU threads of torch runs (default 1 per single trial)."""
    net, t, ref = load(spec, overrides=overrides, duration=duration, seed=seed), _as_target(target), _as_target(reference)
    refuse_coders(net)
    if steps is not None:
        if steps < 1:
            raise UsageError(f"--steps {steps}: must be at least 1")
        net = dataclasses.replace(net, simulation=dataclasses.replace(
            net.simulation, steps=min(steps, net.simulation.steps)))
    kind = kind_of(t)
    if isinstance(tolerances, Tolerances):
        tol = tolerances
    elif tolerances is not None:
        tol = load_file(tolerances, kind, [p.name for p in net.populations], [pb.name for pb in net.probes])
    else:
        tol = defaults(kind)
    (log or _quiet)(f"validating {net.name} on {t.name} against {ref.name} ({kind} tolerances)")
    return _validate(net, t, ref, out, tol, reuse=reuse, codegen=codegen, torch_device=device,
                     quiet=log is None, threads=threads)


__all__ = ["Compiled", "Deployment", "Evaluation", "RunOutputs", "backend", "build", "check", "compile", "deploy",
           "evaluate", "export_model", "import_model", "load", "placement", "run", "simulate", "targets", "train",
           "validate", "write_result"]
