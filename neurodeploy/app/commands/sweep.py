"""``neurodeploy sweep SPEC``: run a spec for every combination of parameter values, seeds and
targets, in parallel and resumable (:func:`neurodeploy.sweep`; what is written:
:mod:`neurodeploy.app.sweep`)."""

from __future__ import annotations

import json
import sys

from ...core.errors import EXIT_BACKEND, EXIT_INVALID, EXIT_OK
from .. import sweep as sweep_mod

DESCRIPTION = """\
Run SPEC once for every combination of --set values, --seeds and --targets (the product), each
run in its own directory DIR/runs/<target>__<key>=<value>__seed=<n>/ (result.npz, summary.json;
with --validate the validation's report). Writes DIR/runs.csv (one row per run: target, swept
keys, seed, status, wall time and per population rate, spikes and silent fraction; also
runs.json, and runs.parquet when pyarrow is installed), DIR/aggregate.csv (per target and
variant: mean rate and its standard error over the seeds) and DIR/sweep.png (mean rate +/- SE
against the first swept key).

Finished runs (their summary.json exists) are skipped: after Ctrl-C (exit 130) or a failed run,
the same command runs only what is missing. A seed sets simulation.seed, as `run --seed` does
(connectivity, weights, inputs and initial state). Runs go to a process pool here (--jobs), or to
a Dask (--engine dask) or Ray (--engine ray) cluster at --address whose workers see DIR."""

EXAMPLES = """\
examples:
  neurodeploy sweep models/ei_network.yaml --seeds 0..99 --targets torch -o out/ei_seeds
  neurodeploy sweep models/ei_network.yaml --set tau_m=10ms,20ms --seeds 0..9 --targets torch,brian2 -o out/tau
  neurodeploy sweep models/single_lif.yaml --set neuron.tau_m=10ms,20ms,40ms --duration '100 ms' -o out/lif
  neurodeploy sweep models/cuba_chain.yaml --seeds 0..4 --targets loihi2-sim --validate -o out/val_sweep
  neurodeploy sweep models/ei_network.yaml --seeds 0..999 --engine ray --address auto -o /shared/ei

exit codes: 0 every run finished (and passed, with --validate), 1 invalid input or a failed
validation, 2 usage error, 3 a run failed (its error is in runs.csv; re-run to retry it), 130 Ctrl-C"""


def add_arguments(sp) -> None:
    sp.add_argument("spec", metavar="SPEC", help="a spec file or a shipped model's name")
    sp.add_argument("-o", "--out", metavar="DIR", required=True, help="output directory (resumable)")
    sp.add_argument("--set", action="append", metavar="KEY=V1,V2,...", default=[],
                    help="a swept key and its values, comma-separated (repeatable: the product of all keys): "
                         "tau_m=10ms,20ms, exc.tau_m='10 ms','20 ms', simulation.duration=100ms,200ms; keys as "
                         "for `run --set`, each value read like it")
    sp.add_argument("--seeds", metavar="SEEDS",
                    help="seeds: 0..99 (both ends), 1,5,9 or 0..9,20 (default: the spec's seed)")
    sp.add_argument("--targets", "--target", "-t", metavar="T1,T2", default="torch",
                    help="comma-separated targets (default: torch; see `neurodeploy info`)")
    sp.add_argument("--duration", metavar="TIME", help="simulated time of every run instead of the spec's")
    sp.add_argument("--validate", action="store_true",
                    help="each run is a validation against --reference (report.json per run; rows get pass)")
    sp.add_argument("--reference", default="brian2", help="reference target of --validate (default: brian2)")
    sp.add_argument("--tolerance-file", metavar="FILE", help="tolerances of --validate (docs/validate.md)")
    g = sp.add_argument_group("where the runs go")
    g.add_argument("--engine", choices=sweep_mod.ENGINES, default="local",
                   help="local: a joblib/loky process pool (default); dask: a Dask distributed scheduler "
                        "(pip install 'neurodeploy[dask]'); ray: a Ray cluster (pip install 'neurodeploy[ray]')")
    g.add_argument("--jobs", "-j", type=int, metavar="N",
                   help="worker processes (local engine, and a local Dask cluster; default: the CPU count; "
                        "1: in this process, one run after the other)")
    g.add_argument("--address", metavar="ADDR",
                   help="the scheduler (dask: tcp://host:8786) or cluster (ray: auto or ray://host:10001); "
                        "none: a local cluster")
    g.add_argument("--batch", choices=("auto", "on", "off"), default="auto",
                   help="run seeds of one variant as batched torch trials: auto = on a CUDA device, where the "
                        "network's connectivity does not depend on the seed (default); on: also on the CPU")
    g.add_argument("--gpus-per-task", type=float, metavar="G",
                   help="GPUs per torch run: ray (default 1 when the cluster has GPUs), dask (a worker "
                        "resource named GPU)")
    o = sp.add_argument_group("backend options (as for `run`)")
    o.add_argument("--codegen", choices=["auto", "cython", "numpy"], help="Brian2 code generation")
    o.add_argument("--torch-device", choices=["auto", "cpu", "cuda"], help="device of torch runs")
    o.add_argument("--dtype", choices=["float32", "float64"], help="float arithmetic of the torch target")
    sp.add_argument("--no-plot", action="store_true", help="no DIR/sweep.png")
    sp.add_argument("--json", action="store_true", help="print machine-readable output")
    sp.add_argument("--quiet", "-q", action="store_true", help="no progress bar or table")


def run(args) -> int:
    quiet = args.json or args.quiet
    log = None if quiet else (lambda msg: print(msg, file=sys.stderr))
    options = {k: getattr(args, k) for k in ("codegen", "torch_device", "dtype") if getattr(args, k) is not None}
    res = sweep_mod.sweep(args.spec, args.out, grid=args.set or None, seeds=args.seeds,
                          targets=[t.strip() for t in args.targets.split(",") if t.strip()],
                          validate=args.validate, reference=args.reference, tolerances=args.tolerance_file,
                          duration=args.duration, engine=args.engine, jobs=args.jobs, address=args.address,
                          batch={"auto": "auto", "on": True, "off": False}[args.batch],
                          gpus_per_task=args.gpus_per_task, options=options, progress=not quiet,
                          plot=not args.no_plot, log=log)
    if args.json:
        print(json.dumps(res.to_json(), indent=2, default=str))
    elif not args.quiet:
        print("\n".join(res.lines()))
    if res.failed:
        return EXIT_BACKEND
    return EXIT_OK if res.ok else EXIT_INVALID
