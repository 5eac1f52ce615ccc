"""Benchmark: the same E/I network on every backend, side by side, in one run.

Backends: Brian2 (numpy and Cython runtime targets), Lava float (`lava`), Lava fixed
(`loihi2-sim`), torch float32 (`torch`) and torch Loihi-integer emulation (`loihi2-torch`).
For each size: milliseconds per simulated step (marginal: S and 4S steps, difference / 3S, so
set-up and compilation are excluded) and synaptic events per second (spikes delivered x their
synapses / marginal time). Plus a batched case (torch, many trials of the 1k network at once)
and the machine's dense float32 matmul throughput, to say how close the batched matmul gets to
it (the roofline). Sizes a backend cannot do in bounded time are skipped and say so.

    .venv/bin/python benchmarks/backends.py
    .venv/bin/python benchmarks/backends.py --sizes 1000 10000 --batch 100

Prints a table and writes benchmarks/results/backends.json. Numbers are from a shared 2-core
machine: read the ratios.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from brian2_ei import scaled  # noqa: E402

from neurodeploy.library import materialize as mat  # noqa: E402
from neurodeploy.backends.brian2.simulator import Brian2Options  # noqa: E402
from neurodeploy.backends.brian2.simulator import run as brian2_run  # noqa: E402
from neurodeploy.backends.lava.simulator import run as lava_run  # noqa: E402
from neurodeploy.backends.torch.simulator import TorchOptions  # noqa: E402
from neurodeploy.backends.torch.simulator import run as torch_run  # noqa: E402
from neurodeploy.core.targets import load_target  # noqa: E402
from results_io import write_results  # noqa: E402

BACKENDS = {
    "brian2-numpy": (lambda n: brian2_run(n, options=Brian2Options(codegen="numpy", progress=False)), 400),
    "brian2-cython": (lambda n: brian2_run(n, options=Brian2Options(codegen="cython", progress=False)), 400),
    "lava": (lambda n: lava_run(n, load_target("lava")), 20),
    "loihi2-sim": (lambda n: lava_run(n, load_target("loihi2-sim")), 20),
    "torch": (lambda n: torch_run(n, load_target("torch"), TorchOptions(progress=False))[0], 400),
    "loihi2-torch": (lambda n: torch_run(n, load_target("loihi2-torch"), TorchOptions(progress=False))[0], 400),
}
#: largest size each backend is run at (Lava's CPU simulator needs ~0.3 s per step at 10k)
MAX_SIZE = {"lava": 10_000, "loihi2-sim": 10_000}


def with_steps(net, steps):
    return dataclasses.replace(net, simulation=dataclasses.replace(net.simulation, steps=steps))


def out_degree(net) -> dict[str, np.ndarray]:
    """Synapses leaving each neuron of each emitter (to count delivered synaptic events)."""
    deg: dict[str, np.ndarray] = {}
    for pr in net.projections:
        syn = mat.synapses(net, pr)
        size = {**{p.name: p.size for p in net.populations}, **{s.name: s.size for s in net.stimuli
                                                                 if hasattr(s, "size")}}[pr.source]
        deg[pr.source] = deg.get(pr.source, np.zeros(size)) + np.bincount(syn.i, minlength=size)
    return deg


def measure(net, name: str, s: int) -> dict:
    fn, _ = BACKENDS[name]
    fn(with_steps(net, 2))  # warm-up: imports, first-call allocations, code generation caches
    t0 = time.perf_counter()
    fn(with_steps(net, s))
    w1 = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = fn(with_steps(net, 4 * s))
    w4 = time.perf_counter() - t0
    ms = max(w4 - w1, 1e-9) / (3 * s) * 1e3
    deg = out_degree(net)
    events = sum(float((res.counts[k] * deg[k]).sum()) for k in res.counts if k in deg)
    events_per_step = events / (4 * s)
    # the time loop alone (the backend's own wall_time_s: no set-up, no result conversion)
    loop_ms = res.wall_time_s / (4 * s) * 1e3 if res.wall_time_s else None
    return {"ms_per_step": ms, "loop_ms_per_step": loop_ms, "setup_s": max(w1 - ms * s / 1e3, 0.0),
            "synaptic_events_per_s": events_per_step / (ms / 1e3)}


def matmul_gflops() -> float:
    import torch

    a = torch.randn(2048, 2048)
    b = torch.randn(2048, 2048)
    a @ b
    t0 = time.perf_counter()
    for _ in range(5):
        a @ b
    return 5 * 2 * 2048**3 / (time.perf_counter() - t0) / 1e9


def batched(n: int, trials: int, s: int) -> dict:
    import torch

    net = scaled(n, 0.001)
    seeds = tuple(range(trials))
    opts = TorchOptions(progress=False, trial_seeds=seeds)
    torch_run(with_steps(net, 2), load_target("torch"), opts)  # warm-up
    t0 = time.perf_counter()
    torch_run(with_steps(net, s), load_target("torch"), opts)
    w1 = time.perf_counter() - t0
    t0 = time.perf_counter()
    torch_run(with_steps(net, 4 * s), load_target("torch"), opts)
    w4 = time.perf_counter() - t0
    ms = max(w4 - w1, 1e-9) / (3 * s) * 1e3
    flops = sum(2.0 * trials * p_src * p_tgt for p_src, p_tgt in _dense_shapes(net))
    del torch
    return {"neurons": n, "trials": trials, "ms_per_step": ms, "ms_per_trial_step": ms / trials,
            "dense_matmul_gflops": flops / (ms / 1e3) / 1e9}


def _dense_shapes(net):
    from neurodeploy.backends.torch.simulator import DENSE_MAX_ELEMENTS
    from neurodeploy.library.endpoints import endpoints

    eps = endpoints(net)
    for pr in net.projections:
        a, b = eps[pr.source].size, eps[pr.target].size
        if a * b <= DENSE_MAX_ELEMENTS:
            yield a, b


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 100000])
    ap.add_argument("--batch", type=int, default=1000, help="trials in the batched torch case")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "backends.json"))
    ap.add_argument("--backends", nargs="+", choices=list(BACKENDS), default=list(BACKENDS),
                    help="a subset (brian2-cython is always run: it is the baseline of the ratios)")
    ap.add_argument("--no-batch", action="store_true", help="skip the batched torch case")
    args = ap.parse_args()
    for name in [k for k in BACKENDS if k not in args.backends and k != "brian2-cython"]:
        del BACKENDS[name]
    brian2_run(scaled(1000, 0.001), options=Brian2Options(codegen="cython", progress=False))  # fill the cache
    rows = []
    for n in args.sizes:
        net = scaled(n, 0.001)
        row = {"neurons": n}
        for name, (_, s) in BACKENDS.items():
            if n > MAX_SIZE.get(name, 10**9):
                row[name] = None
                continue
            print(f"  {n} neurons, {name} ...", file=sys.stderr, flush=True)
            row[name] = measure(net, name, s)
        rows.append(row)
    batch, peak = None, matmul_gflops()
    if not args.no_batch:
        print(f"  batched torch: {args.batch} trials ...", file=sys.stderr, flush=True)
        batch = batched(1000, args.batch, 50)
        batch["roofline_fraction"] = batch["dense_matmul_gflops"] / peak

    names = list(BACKENDS)
    print("\nE/I network, milliseconds per simulated step (dt = 0.1 ms; marginal; '-' = not run)")
    head = f"{'neurons':>8} | " + " | ".join(f"{k:>13}" for k in names)
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['neurons']:>8} | " + " | ".join(
            f"{r[k]['ms_per_step']:>13.3f}" if r[k] else f"{'-':>13}" for k in names))
    print("\nsynaptic events per second (millions)")
    for r in rows:
        print(f"{r['neurons']:>8} | " + " | ".join(
            f"{r[k]['synaptic_events_per_s'] / 1e6:>13.2f}" if r[k] else f"{'-':>13}" for k in names))
    print("\ntime loop alone, ms per step (the backend's wall_time_s: no set-up)")
    for r in rows:
        print(f"{r['neurons']:>8} | " + " | ".join(
            f"{r[k]['loop_ms_per_step']:>13.3f}" if r[k] and r[k].get("loop_ms_per_step") else f"{'-':>13}"
            for k in names))
    print("\nratios (same run):")
    for r in rows:
        if not r.get("torch"):
            continue
        t = r["torch"]["ms_per_step"]
        parts = [f"{r['neurons']} neurons: torch is"]
        if r.get("lava"):
            parts.append(f"{r['lava']['ms_per_step'] / t:.1f}x faster than Lava float,")
        fastest = min(r[k]["ms_per_step"] for k in ("brian2-numpy", "brian2-cython") if r.get(k))
        parts.append(f"{fastest / t:.2f}x Brian2's fastest runtime target")
        print("  " + " ".join(parts))
    if batch is not None:
        print(f"\nbatched: {batch['trials']} trials of the 1k network at once: {batch['ms_per_step']:.2f} ms per step, "
              f"{batch['ms_per_trial_step'] * 1e3:.1f} us per trial-step; dense matmul part "
              f"{batch['dense_matmul_gflops']:.1f} GFLOP/s = {batch['roofline_fraction'] * 100:.0f} % of this machine's "
              f"float32 matmul ({peak:.1f} GFLOP/s)")
    write_results(args.out, "backends", rows=rows, batched=batch, matmul_peak_gflops=peak)
    return 0


if __name__ == "__main__":
    sys.exit(main())
