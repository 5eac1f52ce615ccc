"""Benchmark: Lava float (`lava`) and bit-accurate fixed point (`loihi2-sim`) on the E/I network,
per-step time at 100, 1k and 10k neurons, against Brian2 (numpy target) in the same run; and the
compile time (lower + quantize + partition) of a ~1M-synapse model.

Per-step time is the marginal cost: each point runs S and 4S steps and divides the difference
by 3S (S = 25 for Lava, 1000 for Brian2), so Lava's process start-up and compilation (reported as "setup") are excluded. The E/I
network is models/ei_network.yaml scaled as in brian2_ei.py (constant in-degree). Lava runs one
OS process per Lava process (here 2 LIF + 1 source + 6 connections + monitors) on this machine's
2 cores, which is what dominates at small sizes.

    .venv/bin/python benchmarks/lava_ei.py
    .venv/bin/python benchmarks/lava_ei.py --sizes 100 1000 --steps 20

Prints a table and writes benchmarks/results/lava_ei.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from brian2_ei import scaled  # noqa: E402

from neurodeploy.backends.brian2.simulator import Brian2Options  # noqa: E402
from neurodeploy.backends.brian2.simulator import run as brian2_run  # noqa: E402
from neurodeploy.backends.lava.simulator import run as lava_run  # noqa: E402
from neurodeploy.passes.pipeline import compile_network  # noqa: E402
from neurodeploy.core.targets import load_target  # noqa: E402
from results_io import write_results  # noqa: E402

RUNNERS = {
    "brian2-numpy": lambda net: brian2_run(net, options=Brian2Options(codegen="numpy", progress=False)),
    "lava": lambda net: lava_run(net, load_target("lava")),
    "loihi2-sim": lambda net: lava_run(net, load_target("loihi2-sim")),
}


def with_steps(net, steps):
    return dataclasses.replace(net, simulation=dataclasses.replace(net.simulation, steps=steps))


def per_step(net, runner, s: int) -> dict:
    t0 = time.perf_counter()
    RUNNERS[runner](with_steps(net, s))
    w1 = time.perf_counter() - t0
    t0 = time.perf_counter()
    RUNNERS[runner](with_steps(net, 4 * s))
    w4 = time.perf_counter() - t0
    ms = max(w4 - w1, 0.0) / (3 * s) * 1e3
    return {"ms_per_step": ms, "setup_s": max(w1 - ms * s / 1e3, 0.0), "wall_4s_s": w4}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100, 1000, 10000])
    ap.add_argument("--steps", type=int, default=25, help="S for Lava: each point runs S and 4S steps")
    ap.add_argument("--brian2-steps", type=int, default=1000, help="S for Brian2 (its steps are much cheaper)")
    ap.add_argument("--compile-neurons", type=int, default=5000, help="size of the ~1M-synapse compile test")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "lava_ei.json"))
    args = ap.parse_args()
    rows = []
    for n in args.sizes:
        net = scaled(n, 0.001)
        row = {"neurons": n}
        for r in RUNNERS:
            print(f"  {n} neurons, {r} ...", file=sys.stderr, flush=True)
            row[r] = per_step(net, r, args.brian2_steps if r.startswith("brian2") else args.steps)
        row["lava_vs_brian2"] = row["lava"]["ms_per_step"] / max(row["brian2-numpy"]["ms_per_step"], 1e-9)
        row["fixed_vs_float"] = row["loihi2-sim"]["ms_per_step"] / max(row["lava"]["ms_per_step"], 1e-9)
        rows.append(row)

    net = scaled(args.compile_neurons, 0.001)
    t0 = time.perf_counter()
    compiled = compile_network(net, load_target("loihi2-sim"))
    compile_s = time.perf_counter() - t0
    n_syn = sum(len(p.i) for p in compiled.lowered.projections.values())
    comp = {"neurons": args.compile_neurons, "synapses": n_syn, "compile_s": compile_s,
            "timings_s": compiled.timings, "cores": compiled.coremap.to_json().get("totals")}

    print("\nE/I network: milliseconds per simulated step (dt = 0.1 ms), marginal; setup in brackets")
    head = f"{'neurons':>8} | " + " | ".join(f"{r:>20}" for r in RUNNERS) + " | lava/brian2 | fixed/float"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['neurons']:>8} | " + " | ".join(
            f"{r[k]['ms_per_step']:>9.2f} ({r[k]['setup_s']:>5.1f} s)" for k in RUNNERS)
            + f" | {r['lava_vs_brian2']:>10.1f}x | {r['fixed_vs_float']:>10.2f}x")
    print(f"\ncompile for loihi2-sim (lower + quantize + partition), {comp['neurons']} neurons, "
          f"{n_syn:,} synapses: {compile_s:.2f} s "
          f"({', '.join(f'{k} {v:.2f} s' for k, v in compiled.timings.items())})")
    write_results(args.out, "lava_ei", steps_S=args.steps, rows=rows, compile=comp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
