"""Benchmark: `compile` of a ~20M-synapse model, the old path against the new one in the same run
(issue 20, "Compile").

* **baseline** (the path before the change, kept here): the random connectivity drawn with one
  ``rng.choice`` call per source neuron, int64 index arrays, and ``lava_params.npz`` written with
  ``np.savez_compressed`` (zlib);
* **new**: the vectorised draw (:func:`neurodeploy.library.materialize.choose_sorted`, the same
  synapses), int32 indices, ``lava_params.npz`` uncompressed.

Both compile the same network (models/ei_network.yaml scaled to ``--neurons`` at constant
in-degree, ~200 synapses per neuron: 100k neurons ~ 20M synapses) for loihi2-sim's limits with
enough chips to hold it (the partition pass runs in full), then write the artifact. Each
(mode, repeat) runs in a fresh subprocess, interleaved (baseline, new, baseline, new, ...), so
peak RSS is per mode; the table shows medians and the spread (min-max). The two paths' artifacts
are compared: the same synapses and weights.

    .venv/bin/python benchmarks/compile.py                 # 100k neurons, 2 repeats
    .venv/bin/python benchmarks/compile.py --neurons 20000 --repeats 1

Prints a table and writes benchmarks/results/compile.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import numpy as np  # noqa: E402

MODES = ("baseline", "new")


def _per_row_choice(rng, n, k):
    """The draw before the change: one ``choice`` call per source neuron (int64)."""
    if len(k) == 0:
        return np.zeros(0, np.int64)
    return np.concatenate([np.sort(rng.choice(n, kk, replace=False)) for kk in k])


@contextlib.contextmanager
def _baseline():
    from neurodeploy.library import materialize

    saved = materialize.choose_sorted, materialize._index_dtype
    materialize.choose_sorted = _per_row_choice
    materialize._index_dtype = lambda n: np.int64
    try:
        yield
    finally:
        materialize.choose_sorted, materialize._index_dtype = saved


def _target(chips: int):
    """loihi2-sim's limits, with ``chips`` chips (the shipped target holds 120 cores)."""
    from neurodeploy.core.targets import load_target

    src = Path(load_target("loihi2-sim").path).read_text()
    path = Path(tempfile.mkdtemp(prefix="nd_bench_target_")) / "loihi2-sim-bench.yaml"
    path.write_text(src.replace("name: loihi2-sim", "name: loihi2-sim-bench")
                    .replace("  chips: 1\n", f"  chips: {chips}\n"))
    return load_target(str(path))


def one(mode: str, neurons: int, chips: int, out: str) -> dict:
    """Compile and write once in this process; returns the timings (seconds) and peak RSS."""
    from brian2_ei import scaled

    from neurodeploy.passes.estimate import estimate
    from neurodeploy.passes.pipeline import compile_network, write

    net = scaled(neurons, 0.01)
    target = _target(chips)
    ctx = _baseline() if mode == "baseline" else contextlib.nullcontext()
    with ctx:
        t0 = time.perf_counter()
        c = compile_network(net, target)
        t1 = time.perf_counter()
        write(c, net, out, compress=(mode == "baseline"))
        t2 = time.perf_counter()
    synapses = sum(int(p.i.size) for p in c.lowered.projections.values())
    return {"mode": mode, "neurons": neurons, "synapses": synapses,
            "expected_synapses": int(estimate(net).synapses_expected),
            "passes_s": t1 - t0, "write_s": t2 - t1, "total_s": t2 - t0,
            "pass_timings_s": c.timings, "cores": c.coremap.n_cores if c.coremap else None,
            "npz_bytes": (Path(out) / "lava_params.npz").stat().st_size,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def _same_artifact(a: Path, b: Path) -> bool:
    with np.load(a / "lava_params.npz") as za, np.load(b / "lava_params.npz") as zb:
        if sorted(za.files) != sorted(zb.files):
            return False
        return all(np.array_equal(za[k], zb[k]) for k in za.files)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--chips", type=int, default=64, help="chips of the loihi2-sim-like target")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "compile.json"))
    ap.add_argument("--one", choices=MODES, help=argparse.SUPPRESS)
    ap.add_argument("--dir", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(one(a.one, a.neurons, a.chips, a.dir)))
        return 0

    load = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="nd_bench_compile_"))
    runs = []
    for r in range(a.repeats):
        for mode in MODES:  # interleaved
            d = work / f"{mode}_{r}"
            p = subprocess.run([sys.executable, __file__, "--one", mode, "--neurons", str(a.neurons),
                                "--chips", str(a.chips), "--dir", str(d)],
                               capture_output=True, text=True, cwd=ROOT)
            if p.returncode != 0:
                print(p.stdout, p.stderr, file=sys.stderr)
                return 1
            runs.append(json.loads(p.stdout.strip().splitlines()[-1]))
            print(f"  {mode:8s} repeat {r}: {runs[-1]['total_s']:.1f} s", flush=True)
    same = _same_artifact(work / "baseline_0", work / "new_0")

    def stat(mode, key):
        v = [x[key] for x in runs if x["mode"] == mode]
        return {"median": statistics.median(v), "min": min(v), "max": max(v)}

    rows = {m: {k: stat(m, k) for k in ("total_s", "passes_s", "write_s", "peak_rss_mb", "npz_bytes")}
            for m in MODES}
    lower = {m: statistics.median(x["pass_timings_s"].get("lower_s", 0.0) for x in runs if x["mode"] == m)
             for m in MODES}
    speedup = rows["baseline"]["total_s"]["median"] / rows["new"]["total_s"]["median"]
    syn = runs[0]["synapses"]
    print(f"\ncompile of {a.neurons:,} neurons / {syn:,} synapses (loihi2-sim limits, {a.chips} chips, "
          f"{runs[0]['cores']} cores), {a.repeats} interleaved repeat(s) per mode; load average at start "
          f"{load[0]:.2f} on {os.cpu_count()} cores")
    head = f"{'path':9s} {'total s':>16s} {'passes s':>9s} {'lower s':>8s} {'write s':>8s} {'peak RSS MB':>12s} {'npz MB':>8s}"
    print(head)
    print("-" * len(head))
    for m in MODES:
        t = rows[m]["total_s"]
        print(f"{m:9s} {t['median']:7.1f} ({t['min']:.1f}-{t['max']:.1f}) {rows[m]['passes_s']['median']:9.1f} "
              f"{lower[m]:8.1f} {rows[m]['write_s']['median']:8.1f} {rows[m]['peak_rss_mb']['median']:12.0f} "
              f"{rows[m]['npz_bytes']['median'] / 1e6:8.0f}")
    print(f"speed-up (median total): {speedup:.2f}x; same synapses and weights in both artifacts: {same}")
    from results_io import write_results

    write_results(a.out, "compile", neurons=a.neurons, synapses=syn, chips=a.chips, repeats=a.repeats,
                  load_average_at_start=load, runs=runs, summary=rows, lower_s_median=lower,
                  speedup_median_total=speedup, same_artifact=same)
    return 0


if __name__ == "__main__":
    sys.exit(main())
