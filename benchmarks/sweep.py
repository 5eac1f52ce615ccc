"""Benchmark: an N-seed sweep of ``models/ei_network.yaml`` on torch from one command, against N
separate ``neurodeploy run`` invocations (estimated from ``--baseline`` of them), and Ctrl-C /
resume.

1. ``--baseline K`` separate ``neurodeploy run ... --seed s`` processes (seeds 0..K-1), timed one
   by one; N of them are estimated as N x their mean.
2. ``neurodeploy sweep models/ei_network.yaml --seeds 0..N-1 --targets torch -o DIR`` (one
   process, its progress bar on stderr), timed; its rows of seeds 0..K-1 must equal the separate
   runs' summaries (spike counts and rates), and with ``--check-all`` every seed's row is checked
   against an in-process ``nd.simulate`` and the aggregate against their mean and SE.
3. Ctrl-C: the sweep of ``--interrupt-seeds`` seeds into a fresh DIR is sent SIGINT after
   ``--interrupt-after`` seconds (exit 130 expected), then run again: only the missing runs run.

    .venv/bin/python benchmarks/sweep.py                      # N=100, K=5
    .venv/bin/python benchmarks/sweep.py --seeds 20 --baseline 3 --jobs 2

Prints a table and writes benchmarks/results/sweep.json (with the load average: numbers from a
loaded machine are slower; read the ratio).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from results_io import write_results

ROOT = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "neurodeploy"]
SPEC = "models/ei_network.yaml"


def _run(cmd, **kw) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, cwd=ROOT, **kw)
    return time.perf_counter() - t0, p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seeds", type=int, default=100)
    ap.add_argument("--baseline", type=int, default=5, help="separate `neurodeploy run` processes to time")
    ap.add_argument("--jobs", type=int, default=None, help="sweep --jobs (default: the CPU count)")
    ap.add_argument("--check-all", action="store_true", help="compare every row with an in-process run")
    ap.add_argument("--interrupt-seeds", type=int, default=20)
    ap.add_argument("--interrupt-after", type=float, default=20.0)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "sweep.json"))
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="nd-sweep-bench-"))
    load_before = os.getloadavg()
    try:
        # 1. separate processes
        single = []
        for s in range(args.baseline):
            dt, p = _run(CLI + ["run", SPEC, "-t", "torch", "-o", str(tmp / f"single{s}"), "--seed", str(s), "--quiet"],
                         capture_output=True, text=True)
            if p.returncode:
                sys.exit(f"neurodeploy run failed: {p.stderr}")
            single.append(dt)
            print(f"  run --seed {s}: {dt:.2f} s", flush=True)
        # 2. one sweep
        cmd = CLI + ["sweep", SPEC, "--seeds", f"0..{args.seeds - 1}", "--targets", "torch", "-o", str(tmp / "sweep"),
                     "--no-plot"] + (["--jobs", str(args.jobs)] if args.jobs else [])
        sweep_s, p = _run(cmd)  # its progress bar and table on this terminal
        if p.returncode:
            sys.exit(f"sweep failed ({p.returncode})")
        summary = {"aggregate": json.loads((tmp / "sweep" / "aggregate.json").read_text())["rows"]}
        rows = json.loads((tmp / "sweep" / "runs.json").read_text())["rows"]
        for s in range(args.baseline):
            one = json.loads((tmp / f"single{s}" / "summary.json").read_text())["populations"]
            row = rows[s]
            assert row["seed"] == s
            for pop, v in one.items():
                assert (row[f"{pop}.spikes"], row[f"{pop}.rate_hz"]) == (v["spikes"], v["mean_rate_hz"]), (s, pop)
        checked = args.baseline
        if args.check_all:
            import neurodeploy as nd

            rates = {}
            for row in rows:
                r = nd.simulate(SPEC, "torch", seed=row["seed"], progress=False)
                for pop, c in r.counts.items():
                    assert row[f"{pop}.spikes"] == int(c.sum()), (row["seed"], pop)
                    rates.setdefault(pop, []).append(r.rates()[pop])
            agg = summary["aggregate"][0]
            for pop, x in rates.items():
                x = np.asarray(x)
                assert abs(agg[f"{pop}.mean_rate_hz"] - x.mean()) < 1e-5
                assert abs(agg[f"{pop}.se_rate_hz"] - x.std(ddof=1) / np.sqrt(len(x))) < 1e-5
            checked = len(rows)
        # 3. Ctrl-C and resume
        icmd = CLI + ["sweep", SPEC, "--seeds", f"0..{args.interrupt_seeds - 1}", "--targets", "torch",
                      "-o", str(tmp / "interrupted"), "--quiet"] + (["--jobs", str(args.jobs)] if args.jobs else [])
        proc = subprocess.Popen(icmd, cwd=ROOT, stderr=subprocess.PIPE, text=True)
        time.sleep(args.interrupt_after)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=120)
        done_before = len(list((tmp / "interrupted" / "runs").glob("*/summary.json")))
        resume_s, p2 = _run(icmd[:-1] + ["--json"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        resumed = json.loads(p2.stdout)
        interrupt = {"rc": proc.returncode, "finished_before_resume": done_before, "resume_rc": p2.returncode,
                     "resume_ran": resumed["ran"], "resume_skipped": resumed["skipped"], "resume_s": round(resume_s, 2),
                     "stderr_tail": err.strip().splitlines()[-1:] if err else []}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    est = float(np.mean(single)) * args.seeds
    table = [("separate `neurodeploy run` (mean of %d)" % args.baseline, f"{np.mean(single):.2f} s per run"),
             (f"{args.seeds} separate runs (estimated)", f"{est:.1f} s"),
             (f"one `neurodeploy sweep` of {args.seeds} seeds (jobs={args.jobs or os.cpu_count()})",
              f"{sweep_s:.1f} s ({sweep_s / args.seeds:.2f} s per run)"),
             ("speed-up (estimated separate / sweep)", f"{est / sweep_s:.2f}x"),
             ("rows equal to separate runs", f"{checked} of {args.seeds} checked"),
             ("Ctrl-C", f"exit {interrupt['rc']}, {interrupt['finished_before_resume']} of {args.interrupt_seeds} "
                        f"finished; re-run: ran {interrupt['resume_ran']}, skipped {interrupt['resume_skipped']}, "
                        f"exit {interrupt['resume_rc']}")]
    width = max(len(a) for a, _ in table)
    for a, b in table:
        print(f"{a:<{width}}  {b}")
    write_results(args.out, "sweep", seeds=args.seeds, jobs=args.jobs or os.cpu_count(), single_run_s=single,
                  separate_estimate_s=round(est, 2), sweep_s=round(sweep_s, 2), speedup=round(est / sweep_s, 3),
                  rows_checked=checked, aggregate=summary["aggregate"], interrupt=interrupt,
                  load_average={"before": load_before, "after": os.getloadavg()})


if __name__ == "__main__":
    main()
