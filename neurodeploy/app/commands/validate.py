"""``neurodeploy validate``: run the reference and the target on the same inputs and seeds,
compare them per population and per probe, write ``DIR/report.json`` and ``DIR/report.html``.

Exit codes: 0 every checked metric passes, 1 any fails (or the input is invalid), 2 usage
error, 3 a backend could not run (e.g. ``--target loihi2`` without the hardware).

Layout of DIR::

    reference/result.npz, summary.json, run.json   the reference run (run.json: IR hash, target)
    target/result.npz, summary.json, run.json      the target run
    compile/quantization.json, coremap.json, ...   `compile` reports (Lava / Loihi targets)
    report.json                                    verdict, every metric, tolerance and its source
    report.html                                    self-contained readable report with plots

``--reuse`` re-compares stored runs whose IR hash and target match instead of re-running;
``--compare A/result.npz B/result.npz`` compares two stored results without a spec.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import sys
import time
from pathlib import Path

from ...core.errors import EXIT_INVALID, EXIT_OK, UsageError


def add_arguments(sp) -> None:
    sp.add_argument("spec", metavar="SPEC", nargs="?", help="the spec (not needed with --compare)")
    sp.add_argument("--target", "-t", help="target to validate")
    sp.add_argument("--reference", default="brian2", help="reference target (default: brian2)")
    sp.add_argument("--tolerance-file", metavar="FILE", help="YAML file overriding the default tolerances "
                                                              "(format: docs/validate.md)")
    sp.add_argument("-o", "--out", metavar="DIR", required=True, help="output directory (report.json + report.html)")
    sp.add_argument("--json", action="store_true", help="print the machine-readable verdict")
    sp.add_argument("--reuse", action="store_true",
                    help="reuse DIR/reference and DIR/target runs of the same IR instead of re-running them")
    sp.add_argument("--compare", nargs=2, metavar=("REF_NPZ", "TARGET_NPZ"),
                    help="compare two stored result.npz files (no spec, nothing is run)")
    sp.add_argument("--steps", type=int, default=None, help="validate only the first N steps of the spec")
    sp.add_argument("--codegen", choices=["auto", "cython", "numpy"], default="auto",
                    help="Brian2 code generation for a brian2 run (default auto)")
    sp.add_argument("--torch-device", choices=["auto", "cpu", "cuda"], default="auto", help="device of torch runs")


def _log(msg: str, quiet: bool = False) -> None:
    if not quiet:
        sys.stderr.write(msg + "\n")


def ir_hash(net) -> str:
    from ...ir import to_json

    return hashlib.sha256(to_json(net).encode()).hexdigest()


def backend_options(target, codegen: str = "auto", torch_device: str = "auto") -> dict:
    if target.backend == "brian2":
        return {"codegen": codegen, "progress": False}
    if target.backend == "lava":
        return {"progress": False}
    if target.backend == "torch":
        opts = {"device": torch_device, "progress": False}
        if target.number_format in ("float32", "float64"):
            opts["dtype"] = target.number_format
        return opts
    return {}


def _stored(run_dir: Path, digest: str, target_name: str):
    from ...core.result import Result

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


def obtain(net, target, run_dir: Path, digest: str, reuse: bool, options: dict, quiet: bool):
    """The Result of ``net`` on ``target``: stored (``reuse`` and same IR hash) or a fresh run,
    saved under ``run_dir``. Returns (result, how)."""
    from ...core.io import atomic_write_json
    from ..runner import simulate

    if reuse:
        r = _stored(run_dir, digest, target.name)
        if r is not None:
            _log(f"  {target.name}: reusing {run_dir / 'result.npz'} (same IR)", quiet)
            return r, "reused"
        _log(f"  {target.name}: no stored run of this IR under {run_dir}; running", quiet)
    _log(f"  running {net.name} on {target.name} ({net.simulation.steps} steps)...", quiet)
    t0 = time.perf_counter()
    r = simulate(net, target, **options)
    r.save(run_dir / "result.npz")
    r.save_summary(run_dir / "summary.json")
    atomic_write_json(run_dir / "run.json", {"ir_sha256": digest, "target": target.name, "options": options})
    _log(f"  {target.name}: {time.perf_counter() - t0:.1f} s", quiet)
    return r, "ran"


def compile_reports(net, target, out_dir: Path) -> str | None:
    """Write `compile`'s reports for targets that compile (Lava, Loihi 2 integers) and return them
    as text; None for targets that do not compile."""
    from ...passes import pipeline as compiler
    from ...core.errors import NeurodeployError

    if target.backend == "brian2" or (target.backend == "torch" and target.number_format != "fixed"):
        return None
    try:
        compiled = compiler.compile_network(net, target)
    except NeurodeployError as e:  # the comparison stands without the compile reports
        return f"(not compiled: {e})"
    compiler.write(compiled, net, out_dir)
    lines = [f"compiled {net.name} for {target.name}: " + ", ".join(
        f"{n} -> {p.process}" for n, p in compiled.lowered.populations.items())]
    if compiled.quantized is not None:
        from ...passes.quantize import report_table

        lines.append(report_table(compiled.quantized.report))
    if compiled.coremap is not None:
        lines.append(compiled.coremap.table())
    lines.append(f"files: {out_dir}/")
    return "\n".join(lines)


def write_report(out: Path, report: dict, verdict: dict, compile_text: str | None,
                 plots: bool = True) -> tuple[Path, Path]:
    from ...core.io import atomic_write_json, atomic_write_text
    from ...validate.report import figures, render_html

    report = dict(report, verdict={k: v for k, v in verdict.items() if k != "arrays"})
    jpath = atomic_write_json(out / "report.json", report)
    figs = figures(verdict, report["reference"], report["target"]) if plots else []
    hpath = atomic_write_text(out / "report.html", render_html(report, figs, compile_text))
    return jpath, hpath


def validate(net, target, reference, out_dir, tolerances=None, reuse: bool = False, codegen: str = "auto",
             torch_device: str = "auto", quiet: bool = True, compile: bool = True, plots: bool = True) -> dict:
    """Run (or reuse) ``reference`` and ``target`` on ``net``, compare, write the report; returns
    the report dict (``report["verdict"]["pass"]``)."""
    from ..runner import require_loihi2_hardware
    from ...validate.compare import check_size, compare, with_all_spike_probes
    from ...validate.tolerances import defaults, kind_of

    check_size(net.simulation.steps, sum(p.size for p in net.populations))  # before running anything
    out = Path(out_dir)
    tol = tolerances or defaults(kind_of(target))
    for t in (reference, target):
        if t.device == "loihi2":
            require_loihi2_hardware()  # before spending minutes on the other run
    netv = with_all_spike_probes(net)
    digest = ir_hash(netv)
    ref, how_ref = obtain(netv, reference, out / "reference", digest, reuse,
                          backend_options(reference, codegen, torch_device), quiet)
    tgt, how_tgt = obtain(netv, target, out / "target", digest, reuse,
                          backend_options(target, codegen, torch_device), quiet)
    verdict = compare(ref, tgt, tol)
    compile_text = compile_reports(netv, target, out / "compile") if compile else None
    report = {"format": "neurodeploy-validation", "version": 1, "network": net.name, "target": target.name,
              "reference": reference.name, "ir_sha256": digest, "runs": {"reference": how_ref, "target": how_tgt},
              "files": {"reference": str(out / "reference" / "result.npz"), "target": str(out / "target" / "result.npz")},
              "tolerances": tol.to_json()}
    jpath, hpath = write_report(out, report, verdict, compile_text, plots)
    report["verdict"] = {k: v for k, v in verdict.items() if k != "arrays"}
    report["files"].update({"report_json": str(jpath), "report_html": str(hpath)})
    return report


def compare_files(ref_path, tgt_path, out_dir, tolerance_file=None, quiet: bool = True) -> dict:
    """``--compare``: the verdict for two stored result.npz files."""
    from ...core.errors import SpecError
    from ...core.result import Result
    from ...core.targets import load_target
    from ...validate.compare import compare
    from ...validate.tolerances import defaults, kind_of, load_file

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
    jpath, hpath = write_report(Path(out_dir), report, verdict, None)
    report["verdict"] = {k: v for k, v in verdict.items() if k != "arrays"}
    report["files"].update({"report_json": str(jpath), "report_html": str(hpath)})
    return report


def _print_summary(report: dict) -> None:
    v = report["verdict"]
    print(f"{report['network']}: {report['target']} vs {report['reference']} ({report['tolerances']['kind']} "
          f"tolerances): {'PASS' if v['pass'] else 'FAIL'}")
    for scope, group in (("population", v["populations"]), ("probe", v["probes"])):
        for name, info in group.items():
            parts = []
            for k, c in info["metrics"].items():
                mark = "" if c["pass"] is None else (" ok" if c["pass"] else " FAIL")
                val = "n/a" if c["value"] is None else f"{c['value']:.4g}"
                parts.append(f"{k}={val}{mark}")
            print(f"  {scope} {name}: " + ", ".join(parts))
    for f in v["failures"]:
        print(f"  failed: {f}")
    print(f"wrote {report['files']['report_json']}, {report['files']['report_html']}")


def _refuse_coders(net) -> None:
    """iP-VAE / LCA coders (blocks or graded populations) are compared by their metrics, not
    by spike trains: exit 3 pointing to what does that."""
    from ...validate.blocks import has_coder
    from ...core.errors import NotImplementedYet
    from ...library.neurons.graded import graded_parts

    what = graded_parts(net)
    if what:
        hint = ("`neurodeploy eval SPEC -t TARGET` on each target and benchmarks/ipvae_backends.py (means over "
                ">= 500 image runs, stated Monte-Carlo tolerances) compare coders across backends"
                if has_coder(net, "ipvae") or has_coder(net, "lca") else "expand or remove them")
        raise NotImplementedYet(f"'{net.name}' has {what}: validate compares spike trains of spiking networks; {hint}")


def run(args) -> int:
    from ...spec import load
    from ...core.targets import load_target
    from ...validate.tolerances import defaults, kind_of, load_file

    quiet = bool(args.json)
    if args.compare:
        if args.spec or args.target:
            raise UsageError("--compare takes two result.npz files; give no SPEC or --target with it")
        report = compare_files(args.compare[0], args.compare[1], args.out, args.tolerance_file, quiet)
    else:
        if not args.spec or not args.target:
            raise UsageError("validate needs SPEC and --target (or --compare REF_NPZ TARGET_NPZ)")
        net = load(args.spec)
        _refuse_coders(net)
        target = load_target(args.target)
        reference = load_target(args.reference)
        if args.steps is not None:
            if args.steps < 1:
                raise UsageError(f"--steps {args.steps}: must be at least 1")
            net = dataclasses.replace(net, simulation=dataclasses.replace(
                net.simulation, steps=min(args.steps, net.simulation.steps)))
        kind = kind_of(target)
        tol = (load_file(args.tolerance_file, kind, [p.name for p in net.populations],
                         [pb.name for pb in net.probes]) if args.tolerance_file else defaults(kind))
        _log(f"validating {net.name} on {target.name} against {reference.name} ({kind} tolerances)", quiet)
        report = validate(net, target, reference, args.out, tol, reuse=args.reuse, codegen=args.codegen,
                          torch_device=args.torch_device, quiet=quiet)
    if args.json:
        print(json.dumps({"ok": report["verdict"]["pass"], "report": report}, indent=2, default=str))
    else:
        _print_summary(report)
    return EXIT_OK if report["verdict"]["pass"] else EXIT_INVALID


__all__ = ["add_arguments", "run", "validate", "compare_files"]
