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

import json

from ...core.errors import EXIT_INVALID, EXIT_OK, UsageError
from ...validation.run import _log, compare_files
from .. import api


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
    sp.add_argument("--threads", type=int, default=None, metavar="N",
                    help="CPU threads of torch runs (default: 1 for a single trial)")


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


def run(args, overrides: dict | None = None) -> int:
    """``neurodeploy validate``; ``overrides``: the command line's --set."""
    quiet = bool(args.json)
    if args.compare:
        if args.spec or args.target or overrides or args.duration or args.seed is not None:
            raise UsageError("--compare takes two result.npz files; give no SPEC, --target or overrides with it")
        report = compare_files(args.compare[0], args.compare[1], args.out, args.tolerance_file, quiet)
    else:
        if not args.spec or not args.target:
            raise UsageError("validate needs SPEC and --target (or --compare REF_NPZ TARGET_NPZ)")
        report = api.validate(args.spec, args.target, args.out, reference=args.reference,
                              tolerances=args.tolerance_file, reuse=args.reuse, steps=args.steps,
                              duration=args.duration, seed=args.seed, overrides=overrides,
                              codegen=args.codegen, device=args.torch_device, threads=args.threads,
                              log=None if quiet else _log)
    if args.json:
        print(json.dumps({"ok": report["verdict"]["pass"], "report": report}, indent=2, default=str))
    else:
        _print_summary(report)
    return EXIT_OK if report["verdict"]["pass"] else EXIT_INVALID
