"""Validating a target against a reference: run both on the same inputs and seeds (or reuse
stored runs), compare them per population and per probe with stated tolerances, write
``DIR/report.json`` and ``DIR/report.html`` (the layout is in ``neurodeploy validate --help`` and
docs/validate.md)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

from ..backends.base import get_backend
from ..backends.dispatch import simulate
from ..core.errors import NeurodeployError, NotImplementedYet, SpecError, UsageError
from ..core.io import atomic_write_json, atomic_write_text, output_dir
from ..core.result import Result
from ..core.targets import load_target
from ..ir import to_json
from ..library.blocks.coder import has_coder
from ..library.neurons.graded import graded_parts
from ..passes.pipeline import write
from ..passes.quantize import report_table
from .compare import check_size, compare, with_all_spike_probes
from .report import figures, render_html
from .tolerances import defaults, kind_of, load_file


#: what validate writes: ``report.json`` (and each run's ``summary.json``) present exactly when it finished;
#: ``compile/`` is removed when a new validation does not compile
MARKERS, FILES = ("report.json", "summary.json"), ("report.html", "compile")


def _log(msg: str, quiet: bool = False) -> None:
    if not quiet:
        sys.stderr.write(msg + "\n")


def ir_hash(net) -> str:
    return hashlib.sha256(to_json(net).encode()).hexdigest()


def backend_options(target, codegen: str = "auto", torch_device: str = "auto", threads: int | None = None):
    """The run options of ``target``'s backend for a validation run (no progress bars)."""
    return get_backend(target.backend).options({"codegen": codegen, "torch_device": torch_device,
                                                "threads": threads, "progress": False}, strict=False)


def _stored(run_dir: Path, digest: str, target_name: str):
    meta, npz = run_dir / "run.json", run_dir / "result.npz"
    if not (meta.is_file() and npz.is_file()):
        return None
    try:
        info = json.loads(meta.read_text())
    except (OSError, ValueError):
        return None
    if info.get("ir_sha256") != digest or info.get("target") != target_name:
        return None
    return Result.load(npz)


def obtain(net, target, run_dir: Path, digest: str, reuse: bool, options: dict, quiet: bool,
           write_dir: Path | None = None):
    """The Result of ``net`` on ``target``: stored under ``run_dir`` (``reuse`` and same IR hash)
    or a fresh run, saved under ``write_dir`` (default ``run_dir``; validate's staging directory).
    Returns (result, how)."""
    if reuse:
        r = _stored(run_dir, digest, target.name)
        if r is not None:
            _log(f"  {target.name}: reusing {run_dir / 'result.npz'} (same IR)", quiet)
            return r, "reused"
        _log(f"  {target.name}: no stored run of this IR under {run_dir}; running", quiet)
    _log(f"  running {net.name} on {target.name} ({net.simulation.steps} steps)...", quiet)
    t0 = time.perf_counter()
    r = simulate(net, target, options)[0]
    w = run_dir if write_dir is None else write_dir
    r.save(w / "result.npz")
    atomic_write_json(w / "run.json", {"ir_sha256": digest, "target": target.name,
                                       "options": dataclasses.asdict(options)})
    r.save_summary(w / "summary.json")  # last: its presence means this run finished
    _log(f"  {target.name}: {time.perf_counter() - t0:.1f} s", quiet)
    return r, "ran"


def compile_reports(net, target, out_dir: Path) -> str | None:
    """Write `compile`'s reports for targets that compile (Lava, Loihi 2 integers) and return them
    as text; None for targets that do not compile."""
    backend = get_backend(target.backend)
    if not backend.compiles(target):
        return None
    try:
        compiled = backend.compile(net, target)
    except NeurodeployError as e:  # the comparison stands without the compile reports
        return f"(not compiled: {e})"
    write(compiled, net, out_dir)
    lines = [f"compiled {net.name} for {target.name}: " + ", ".join(
        f"{n} -> {p.process}" for n, p in compiled.lowered.populations.items())]
    if compiled.quantized is not None:
        lines.append(report_table(compiled.quantized.report))
    if compiled.coremap is not None:
        lines.append(compiled.coremap.table())
    lines.append(f"files: {out_dir}/")
    return "\n".join(lines)


def write_report(out: Path, report: dict, verdict: dict, compile_text: str | None,
                 plots: bool = True) -> tuple[Path, Path]:
    report = dict(report, verdict={k: v for k, v in verdict.items() if k != "arrays"})
    jpath = atomic_write_json(out / "report.json", report)
    figs = figures(verdict, report["reference"], report["target"]) if plots else []
    hpath = atomic_write_text(out / "report.html", render_html(report, figs, compile_text))
    return jpath, hpath


def validate(net, target, reference, out_dir, tolerances=None, reuse: bool = False, codegen: str = "auto",
             torch_device: str = "auto", quiet: bool = True, compile: bool = True, plots: bool = True,
             threads: int | None = None) -> dict:
    """Run (or reuse) ``reference`` and ``target`` on ``net``, compare, write the report; returns
    the report dict (``report["verdict"]["pass"]``)."""
    check_size(net.simulation.steps, sum(p.size for p in net.populations))  # before running anything
    out = Path(out_dir)
    tol = tolerances or defaults(kind_of(target))
    for t in (reference, target):
        get_backend(t.backend).check_target(t)  # e.g. Loihi 2 hardware: before minutes on the other run
    netv = with_all_spike_probes(net)
    digest = ir_hash(netv)
    # all or nothing (core.io.output_dir): checked and locked before any run, written into a staging
    # directory, moved into place at the end (report.json and each run's summary.json last); stored
    # runs (--reuse) are read from `out` itself
    with output_dir(out_dir, marker=MARKERS, owns=FILES) as st:  # out_dir as given: "" is refused, not "."
        ref, how_ref = obtain(netv, reference, out / "reference", digest, reuse,
                              backend_options(reference, codegen, torch_device, threads), quiet, st.path / "reference")
        tgt, how_tgt = obtain(netv, target, out / "target", digest, reuse,
                              backend_options(target, codegen, torch_device, threads), quiet, st.path / "target")
        verdict = compare(ref, tgt, tol)
        compile_text = compile_reports(netv, target, st.path / "compile") if compile else None
        if compile_text is not None:
            compile_text = compile_text.replace(str(st.path), str(out))
        report = {"format": "neurodeploy-validation", "version": 1, "network": net.name, "target": target.name,
                  "reference": reference.name, "ir_sha256": digest, "runs": {"reference": how_ref, "target": how_tgt},
                  "files": {"reference": str(out / "reference" / "result.npz"),
                            "target": str(out / "target" / "result.npz")},
                  "tolerances": tol.to_json()}
        jpath, hpath = st.final(write_report(st.path, report, verdict, compile_text, plots))
    report["verdict"] = {k: v for k, v in verdict.items() if k != "arrays"}
    report["files"].update({"report_json": str(jpath), "report_html": str(hpath)})
    return report


def compare_files(ref_path, tgt_path, out_dir, tolerance_file=None, quiet: bool = True) -> dict:
    """``--compare``: the verdict for two stored result.npz files."""
    runs = []
    for p in (ref_path, tgt_path):
        p = Path(p)
        if p.is_dir():
            p = p / "result.npz"
        if not p.is_file():
            raise UsageError(f"--compare: {p} is not a file; give two result.npz files written by `neurodeploy run`")
        try:
            runs.append(Result.load(p))
        except (ValueError, KeyError, OSError) as e:
            raise UsageError(f"--compare: {p} is not a readable neurodeploy result: {e}") from None
    ref, tgt = runs
    try:
        kind = kind_of(load_target(tgt.target))
    except SpecError:  # a target that is not known here: fall back to the strict float64 defaults
        kind = "float64"
    tol = load_file(tolerance_file, kind, list(ref.counts), list(ref.traces)) if tolerance_file else defaults(kind)
    verdict = compare(ref, tgt, tol)
    ref_file = Path(ref_path) / "result.npz" if Path(ref_path).is_dir() else Path(ref_path)
    digest = hashlib.sha256(ref_file.read_bytes()).hexdigest()
    report = {"format": "neurodeploy-validation", "version": 1, "network": ref.network, "target": tgt.target,
              "reference": ref.target, "ir_sha256": "n/a (stored results; sha256 of the reference file " + digest + ")",
              "runs": {"reference": "stored", "target": "stored"},
              "files": {"reference": str(ref_path), "target": str(tgt_path)}, "tolerances": tol.to_json()}
    with output_dir(out_dir, marker=MARKERS, owns=FILES) as st:
        jpath, hpath = st.final(write_report(st.path, report, verdict, None))
    report["verdict"] = {k: v for k, v in verdict.items() if k != "arrays"}
    report["files"].update({"report_json": str(jpath), "report_html": str(hpath)})
    return report


def refuse_coders(net) -> None:
    """iP-VAE / LCA coders (blocks or graded populations) are compared by their metrics, not
    by spike trains: exit 3 pointing to what does that."""
    what = graded_parts(net)
    if what:
        hint = ("`neurodeploy eval SPEC -t TARGET` on each target and benchmarks/ipvae_backends.py (means over "
                ">= 500 image runs, stated Monte-Carlo tolerances) compare coders across backends"
                if has_coder(net) else "expand or remove them")
        raise NotImplementedYet(f"'{net.name}' has {what}: validate compares spike trains of spiking networks; {hint}")
