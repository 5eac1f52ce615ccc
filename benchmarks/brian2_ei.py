"""Benchmark: the E/I network (models/ei_network.yaml) at 1k, 10k and 50k neurons on Brian2.

Measures wall time per simulated second for Brian2's numpy and Cython code-generation targets
(and, optionally, cpp_standalone), in one run on one machine, and reports Cython's speed-up as
a ratio against numpy measured in the same run. The network is scaled keeping 80 % excitatory
neurons and a constant in-degree (the connection probability falls as 1/N), so the activity
stays comparable across sizes; the Poisson background (1,000 sources at 20 Hz) is unchanged.

For cpp_standalone the cost is the compiled program's own run time (Brian2 measures it); its
setup is code generation plus C++ compilation. Otherwise the per-simulated-second cost is the
*marginal* cost: each point is run for D/4 and for D
simulated seconds and the difference is divided by 3D/4, so the fixed cost of building the
network and generating code (reported separately as "setup") does not inflate it. The one-off
Cython compilation is excluded (a warm-up run fills Brian2's cache first; its time is reported).

    .venv/bin/python benchmarks/brian2_ei.py                  # 1k, 10k, 50k; numpy and cython
    .venv/bin/python benchmarks/brian2_ei.py --sizes 1000 --duration 0.5 --targets numpy
    .venv/bin/python benchmarks/brian2_ei.py --targets numpy cython cpp_standalone

Prints a table and writes benchmarks/results/brian2_ei.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import neurodeploy as nd  # noqa: E402
from neurodeploy.backends.brian2.simulator import Brian2Options, run  # noqa: E402
from results_io import write_results  # noqa: E402


def scaled(n: int, duration: float):
    base = nd.load(str(ROOT / "models" / "ei_network.yaml"))
    n_exc, n_inh = int(0.8 * n), n - int(0.8 * n)
    scale = 1000 / n  # base model has 1000 neurons: keep the in-degree constant
    pops = (dataclasses.replace(base.populations[0], size=n_exc),
            dataclasses.replace(base.populations[1], size=n_inh))
    projs = []
    for pr in base.projections:
        c = pr.connectivity
        if pr.source in ("exc", "inh"):
            c = dataclasses.replace(c, p=c.p * scale)
        projs.append(dataclasses.replace(pr, connectivity=c))
    sim = dataclasses.replace(base.simulation, steps=int(round(duration / base.simulation.dt)))
    net = dataclasses.replace(base, name=f"ei_{n}", populations=pops, projections=tuple(projs), simulation=sim,
                              probes=tuple(p for p in base.probes if p.variable == "spikes"))
    return nd.spec.verify(net)


def _timed(net, target: str):
    if target == "cpp_standalone":
        opts = Brian2Options(codegen="auto", device="cpp_standalone", progress=False)
    else:
        opts = Brian2Options(codegen=target, progress=False)
    t0 = time.perf_counter()
    res = run(net, options=opts)
    return time.perf_counter() - t0, res


def measure(net, target: str) -> dict:
    if target == "cpp_standalone":  # compile time (~20 s) swamps differences: use the program's own time
        wall, res = _timed(net, target)
        run_s = res.options["standalone_run_s"]
        rates = res.rates()
        return {"wall_s": wall, "wall_per_sim_s": run_s / net.simulation.duration, "setup_s": wall - run_s,
                "rate_exc_hz": rates["exc"], "rate_inh_hz": rates["inh"]}
    steps = net.simulation.steps
    short = dataclasses.replace(net, simulation=dataclasses.replace(net.simulation, steps=max(1, steps // 4)))
    w_short, _ = _timed(short, target)
    w_full, res = _timed(net, target)
    d_full, d_short = net.simulation.duration, short.simulation.duration
    per_s = max(w_full - w_short, 0.0) / (d_full - d_short)
    rates = res.rates()
    return {"wall_s": w_full, "wall_per_sim_s": per_s, "setup_s": max(w_full - per_s * d_full, 0.0),
            "rate_exc_hz": rates["exc"], "rate_inh_hz": rates["inh"]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 50000])
    ap.add_argument("--duration", type=float, default=0.2, help="simulated seconds per measurement")
    ap.add_argument("--targets", nargs="+", default=["numpy", "cython"],
                    choices=["numpy", "cython", "cpp_standalone"])
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "brian2_ei.json"))
    args = ap.parse_args()

    compile_s = None
    if "cython" in args.targets:  # fill Brian2's Cython cache (the same code objects at every size)
        t0 = time.perf_counter()
        measure(scaled(1000, 0.001), "cython")
        compile_s = time.perf_counter() - t0
    rows = []
    for n in args.sizes:
        net = scaled(n, args.duration)
        row = {"neurons": n, "steps": net.simulation.steps}
        for target in args.targets:
            print(f"  {n} neurons, {target} ...", file=sys.stderr, flush=True)
            row[target] = measure(net, target)
        if "numpy" in row and "cython" in row:
            row["cython_speedup_vs_numpy"] = row["numpy"]["wall_per_sim_s"] / row["cython"]["wall_per_sim_s"]
        if "numpy" in row and "cpp_standalone" in row:
            row["standalone_speedup_vs_numpy"] = row["numpy"]["wall_per_sim_s"] / row["cpp_standalone"]["wall_per_sim_s"]
        rows.append(row)

    print(f"\nE/I network on Brian2: wall-clock seconds per simulated second, marginal "
          f"(dt = 0.1 ms; {args.duration:g} s simulated per point; setup in brackets)")
    head = f"{'neurons':>8} | " + " | ".join(f"{t:>20}" for t in args.targets)
    if "cython" in args.targets and "numpy" in args.targets:
        head += " | cython/numpy speed-up"
    print(head)
    print("-" * len(head))
    for r in rows:
        line = f"{r['neurons']:>8} | " + " | ".join(
            f"{r[t]['wall_per_sim_s']:>9.2f} ({r[t]['setup_s']:>6.1f} s)" for t in args.targets)
        if "cython_speedup_vs_numpy" in r:
            line += f" | {r['cython_speedup_vs_numpy']:>8.2f}x"
        print(line)
    if compile_s is not None:
        print(f"(one-off Cython compilation before the table: {compile_s:.1f} s; cached afterwards)")
    write_results(args.out, "brian2_ei", duration_s=args.duration, rows=rows, cython_compile_s=compile_s)
    return 0


if __name__ == "__main__":
    sys.exit(main())
