"""``neurodeploy import`` / ``neurodeploy export``: NIR graphs and ONNX models in and out, by the
file's suffix (``.nir``: :mod:`neurodeploy.interop.nir`, ``.onnx``: :mod:`neurodeploy.interop.onnx`),
through :func:`neurodeploy.import_model` and :func:`neurodeploy.export_model`. The parser is built
once, before the suffix is known, so the options of both formats are on both commands (ONNX's
carry an ``--onnx-`` prefix)."""

from __future__ import annotations

import json
from pathlib import Path

from ...core.data import DataError, array_header
from ...core.errors import Diagnostic, SpecError, Span, UsageError
from ...core.units import Dim, UnitParseError, parse_quantity
from ...ir.nodes import SCHEDULES
from .. import api


def add_import_arguments(sp) -> None:
    g = sp.add_argument_group("NIR import options")
    g.add_argument("--dt", metavar="TIME", default=None,
                   help="simulation time step, e.g. '0.1 ms' (default: the graph's neurodeploy metadata, else "
                        "0.1 ms); NIR's spike-as-one-step-pulse convention makes weights depend on it")
    g.add_argument("--steps", type=int, default=None, help="simulation steps (default 1000)")
    g.add_argument("--time-unit", choices=["auto", "s", "ms", "step"], default="auto",
                   help="unit of the file's time constants and delays (auto: a heuristic, see docs/interop.md)")
    g.add_argument("--input", metavar="FILE", default=None,
                   help="spikes for the graph's Input: .npy or .csv, shape (steps, neurons), 0/1 per step (a CSV "
                        "with more columns than the Input has neurons: the first ones, as in the NIR paper's CSVs)")
    g.add_argument("--repair", action="store_true",
                   help="read a file that fails NIR's type check (shapes checked by element count instead)")
    g.add_argument("--schedule", choices=SCHEDULES, default=None,
                   help="what one time step means in the written spec (docs/spec.md#schedule); default: the "
                        "producer's, recognised from the file (snnTorch's export -> discrete), else exact; the "
                        "report says which and why")
    g.add_argument("--report", metavar="FILE", default=None, help="also write the report as JSON")
    g.add_argument("--json", action="store_true", help="print machine-readable output")
    g = sp.add_argument_group("ONNX import options")
    g.add_argument("--onnx-as", choices=("auto", "decoder", "dense"), default="auto",
                   help="read the graph as a linear ipvae decoder or as dense layers (default: auto)")


def add_export_arguments(sp) -> None:
    g = sp.add_argument_group("NIR export options")
    g.add_argument("--time-unit", choices=["s", "ms"], default="s", help="unit of exported time constants (default s)")
    g.add_argument("--report", metavar="FILE", default=None, help="also write the report of dropped fields as JSON")
    g.add_argument("--json", action="store_true", help="print machine-readable output")
    g = sp.add_argument_group("ONNX export options")
    g.add_argument("--onnx-iterations", type=int, metavar="T", default=None,
                   help="iterations to unroll (default: the ipvae block's 'iterations')")


def _parse_dt(text) -> float | None:
    if text is None:
        return None
    try:
        val, dims = parse_quantity(str(text), None)
    except UnitParseError as e:
        raise UsageError(f"--dt {text!r}: {e}") from None
    if dims != Dim("second").dimensions:
        raise UsageError(f"--dt {text!r} is not a time; write e.g. '0.1 ms'")
    if not val > 0:
        raise UsageError(f"--dt {text!r} must be > 0")
    return float(val)


def _print_table(report: dict, title: str) -> None:
    print(title)
    for k, v in report["nodes"].items():
        print(f"  {k:<24} -> {v if isinstance(v, str) else v['becomes']}")
    for key in ("dropped", "approximated"):
        for d in report[key]:
            print(f"  {key}: {d['node']}: {d['what']} ({d['why']})")
    for n in report.get("notes", []):
        print(f"  note: {n.get('node', n.get('what', ''))}: {n['detail']}")


def _bad_input(path, code: str, message: str, hint: str | None = None) -> SpecError:
    return SpecError([Diagnostic(code, message, Span(str(path)), "--input", hint)])


def check_input_file(path) -> None:
    """``--input``: a bad file is invalid input (exit 1, :class:`SpecError` naming it), not a usage
    error. An .npy is checked like a spec's array files (header, size, every value finite)."""
    p = Path(path)
    if not p.exists():
        raise _bad_input(path, "ND600", "--input file not found", "check the path (relative to the current directory)")
    if not p.is_file():
        raise _bad_input(path, "ND600", "--input is not a file")
    if p.suffix not in (".npy", ".csv"):
        raise _bad_input(path, "ND601", f"--input '{p.name}' is neither .npy nor .csv",
                         "spikes as an array (steps, neurons) of 0/1: numpy.save(...) or a CSV")
    if p.suffix == ".npy":
        try:
            array_header(p)
        except DataError as e:
            raise _bad_input(path, e.code, f"--input {e.message}", e.hint) from None


def run_import(args) -> int:
    dt = _parse_dt(args.dt)
    if args.input:
        check_input_file(args.input)
    try:
        done = api.import_model(args.file, args.out, dt=dt, steps=args.steps, time_unit=args.time_unit,
                                input=args.input, repair=args.repair, onnx_as=args.onnx_as, report=args.report,
                                schedule=args.schedule)
    except UsageError as e:
        # what the importer's reader says about the --input file itself (a CSV that is not numeric,
        # not a (steps, neurons) array) is invalid input too
        if args.input and str(e).startswith(f"--input {args.input}:"):
            raise _bad_input(args.input, "ND601", str(e)) from None
        raise
    if done["format"] == "onnx":
        w = done["written"]
        what = (f"linear decoder, {w['shape'][0]} x {w['shape'][1]}" if w["kind"] == "decoder"
                else f"{len(w['layers'])} dense layers")
        if args.json:
            print(json.dumps({"ok": True, **w}, indent=2))
        else:
            print(f"wrote {w['spec']} and {w['weights']} ({what})")
        return 0
    net, report = done["network"], done["report"]
    if args.json:
        print(json.dumps({"ok": True, "spec": str(args.out), "report": report}, indent=2, default=str))
    else:
        _print_table(report, f"{args.file} -> {args.out} ({len(net.populations)} populations, "
                             f"{len(net.projections)} projections, {len(net.stimuli)} stimuli; time unit "
                             f"{report['time_unit']['unit']}: {report['time_unit']['reason']})")
    return 0


def run_export(args) -> int:
    done = api.export_model(args.spec, args.out, time_unit=args.time_unit, onnx_iterations=args.onnx_iterations,
                            report=args.report)
    if done["format"] == "onnx":
        w = done["written"]
        if args.json:
            print(json.dumps({"ok": True, **w}, indent=2))
        else:
            print(f"wrote {w['file']} (iP-VAE rate form, {w['iterations']} iterations, block '{w['block']}')")
        return 0
    report = done["report"]
    if args.json:
        print(json.dumps({"ok": True, "file": str(args.out), "report": report}, indent=2, default=str))
    else:
        _print_table(report, f"{args.spec} -> {args.out}")
    return 0
