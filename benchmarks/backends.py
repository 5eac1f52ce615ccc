"""Benchmark: the same E/I network on every backend, side by side, in one run.

Backends: Brian2 (numpy and Cython runtime targets), Lava float (`lava`), Lava fixed
(`loihi2-sim`), torch float32 (`torch`: a single trial runs the fused CPU kernel,
backends/torch/fused.py; `torch-eager`: the eager loop), torch Loihi-integer emulation
(`loihi2-torch`), and `floor-numba`: a hand-written minimal Numba loop of the same network (the
practical floor; see floor_run).

* **Time.** For each size: milliseconds per simulated step (marginal: S and 4S steps, difference
  / 3S, so set-up and compilation are excluded) and synaptic events per second (spikes delivered
  x their synapses / marginal time). The backends run *interleaved* (every backend once, then
  every backend again, ``--repeats`` times), so a change of machine load hits them all alike; the
  table shows the median and the JSON keeps every repeat, the median and the min/max.
* **Memory.** Peak resident memory (RSS) of a whole run (imports, set-up, the time loop, the
  Result) per backend and size, once with spike probes only and once with a 5-neuron ``v`` probe
  added; each cell runs in a fresh Python process (its ``ru_maxrss``; the process's import
  baseline is recorded too).
* **Batched.** Torch, many trials of the 1k network at once, and the machine's dense float32
  matmul throughput (interleaved with it, medians), to say how close the batched matmul gets
  to it (the roofline). Sizes a backend cannot do in bounded time are skipped and say so.

    .venv/bin/python benchmarks/backends.py
    .venv/bin/python benchmarks/backends.py --quick           # a few minutes: small sizes, 2 repeats
    .venv/bin/python benchmarks/backends.py --sizes 1000 10000 --batch 100 --memory-sizes 100000 1000000

Prints tables and writes benchmarks/results/backends.json (with the load average before and
after: numbers from a loaded machine are slower and scatter more; read the ratios).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import resource
import subprocess
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

#: the time loop each torch column last ran (Result.options["kernel"]: "fused-numba" or "eager (why)")
KERNEL: dict[str, str] = {}
_CPP_DIR: list[str] = []


def _cpp_dir() -> str:
    """One build directory for every cpp_standalone run of this benchmark (removed at exit)."""
    if not _CPP_DIR:
        import atexit
        import shutil
        import tempfile

        _CPP_DIR.append(tempfile.mkdtemp(prefix="nd_bench_cpp_"))
        atexit.register(shutil.rmtree, _CPP_DIR[0], True)
    return _CPP_DIR[0]


def _torch(net, column: str, kernel: str):
    res = torch_run(net, load_target("torch"), TorchOptions(progress=False, kernel=kernel))[0]
    KERNEL[column] = res.options.get("kernel", "?")
    return res


BACKENDS = {
    "brian2-numpy": (lambda n: brian2_run(n, options=Brian2Options(codegen="numpy", progress=False)), 400),
    "brian2-cython": (lambda n: brian2_run(n, options=Brian2Options(codegen="cython", progress=False)), 400),
    # Brian2's C++ standalone device: the whole run compiled to one program (rebuilt in one
    # directory, so only what changed is recompiled); its marginal cost is taken from the
    # program's own run time (standalone_run_s), without the C++ compilation
    "brian2-cpp": (lambda n: brian2_run(n, options=Brian2Options(device="cpp_standalone", progress=False,
                                                                  standalone_dir=_cpp_dir())), 400),
    "lava": (lambda n: lava_run(n, load_target("lava")), 20),
    "loihi2-sim": (lambda n: lava_run(n, load_target("loihi2-sim")), 20),
    # `torch` runs a single trial through the fused CPU kernel where it applies (issue 17,
    # backends/torch/fused.py); `torch-eager` is the eager loop, the reference it is tested against
    "torch": (lambda n: _torch(n, "torch", "auto"), 400),
    "torch-eager": (lambda n: _torch(n, "torch-eager", "eager"), 400),
    # the practical floor: a hand-written minimal Numba loop of the same network (floor_run below)
    "floor-numba": (lambda n: floor_run(n), 400),
    "loihi2-torch": (lambda n: torch_run(n, load_target("loihi2-torch"), TorchOptions(progress=False))[0], 400),
}
#: largest size each backend is run at (Lava's CPU simulator needs ~0.3 s per step at 10k)
MAX_SIZE = {"lava": 10_000, "loihi2-sim": 10_000}


class _FloorResult:
    def __init__(self, counts, wall):
        self.counts, self.wall_time_s = counts, wall


_FLOOR = {}


def floor_run(net):
    """The E/I network as the smallest loop that does the same work: one array of membrane
    potentials (both populations, their own parameters per neuron), a refractory counter, Poisson
    input drawn in the loop, and per delay a source-major CSR of every projection with that delay
    (global indices), delivered event by event from a ring buffer of spike indices; float32, one
    thread, no recording but counts. Same synapses as the spec (materialize), same equations
    (exact exponential decay of lif); what it leaves out is everything general (models, probes,
    sources of other kinds, plasticity, batches)."""
    import numba

    if "loop" not in _FLOOR:
        @numba.njit(cache=True, nogil=True)
        def loop(steps, v, ref, decay, v_rest, v_th, v_reset, t_ref, a_in, n_pop, p_bg, n_bg, seed,
                 d_of, ptr, idx, w, ring, ring_n, L, counts):
            np.random.seed(seed)
            for k in range(steps):
                slot = k % L
                # deliver what was emitted d steps ago (one CSR per delay)
                for g in range(d_of.shape[0]):
                    e = k - d_of[g]
                    if e < 0:
                        continue
                    s = e % L
                    for q in range(ring_n[s]):
                        i = ring[s, q]
                        for z in range(ptr[g, i], ptr[g, i + 1]):
                            a_in[idx[z]] += w[z]
                n = 0
                for i in range(n_pop):  # the reference's lif step (library/neurons/lif.py)
                    ref[i] -= 1
                    if ref[i] > 0:
                        a_in[i] = 0.0
                        continue
                    ref[i] = 0
                    x = v_rest[i] + (v[i] - v_rest[i]) * decay[i]
                    if x > v_th[i]:
                        x = v_reset[i]
                        ref[i] = t_ref[i]
                        counts[i] += 1
                        ring[slot, n] = i
                        n += 1
                    else:
                        x += a_in[i]
                    a_in[i] = 0.0
                    v[i] = x
                for b in range(n_bg):
                    if np.random.random() < p_bg:
                        ring[slot, n] = n_pop + b
                        n += 1
                ring_n[slot] = n
            return 0

        _FLOOR["loop"] = loop
    loop = _FLOOR["loop"]
    pops = {p.name: p for p in net.populations}
    names = list(pops)
    off = {nm: o for nm, o in zip(names, np.cumsum([0] + [pops[nm].size for nm in names]))}
    n_pop = int(sum(p.size for p in pops.values()))
    bg = next(s for s in net.stimuli if s.name == "background")
    off[bg.name] = n_pop
    n_emit = n_pop + bg.size
    dt = net.simulation.dt
    f = np.float32
    v = np.zeros(n_pop, f)
    decay, v_rest, v_th, v_reset = (np.zeros(n_pop, f) for _ in range(4))
    t_ref = np.zeros(n_pop, np.int64)
    for nm in names:
        p, o = pops[nm], off[nm]
        sl = slice(o, o + p.size)
        prm = p.params
        decay[sl] = np.exp(-dt / float(prm["tau_m"]))
        v_rest[sl], v_th[sl], v_reset[sl] = float(prm["v_rest"]), float(prm["v_th"]), float(prm["v_reset"])
        t_ref[sl] = round(float(prm["t_ref"]) / dt)
        v[sl] = mat.initial_state(net, p)["v"]
    groups = {}
    for pr in net.projections:
        syn = mat.synapses(net, pr)
        groups.setdefault(int(syn.delay_steps), []).append(
            (syn.i + off[pr.source], syn.j + off[pr.target], syn.w))  # signed already
    d_of = np.array(sorted(groups), dtype=np.int64)
    ptr = np.zeros((len(d_of), n_emit + 1), np.int64)
    idx_parts, w_parts, base = [], [], 0
    for g, d in enumerate(d_of):
        i = np.concatenate([x[0] for x in groups[d]])
        j = np.concatenate([x[1] for x in groups[d]])
        ww = np.concatenate([x[2] for x in groups[d]])
        order = np.argsort(i, kind="stable")
        ptr[g, 1:] = np.cumsum(np.bincount(i, minlength=n_emit)) + base
        ptr[g, 0] = base
        idx_parts.append(j[order])
        w_parts.append(ww[order].astype(f))
        base += len(i)
    L = int(d_of.max()) + 1
    ring = np.zeros((L, n_emit), np.int64)
    counts = np.zeros(n_pop, np.int64)
    t0 = time.perf_counter()
    loop(net.simulation.steps, v, np.zeros(n_pop, np.int64), decay, v_rest, v_th, v_reset, t_ref, np.zeros(n_pop, f),
         n_pop, float(bg.rate) * dt, bg.size, net.simulation.seed, d_of, ptr, np.concatenate(idx_parts),
         np.concatenate(w_parts), ring, np.zeros(L, np.int64), L, counts)
    wall = time.perf_counter() - t0
    return _FloorResult({nm: counts[off[nm]: off[nm] + pops[nm].size] for nm in names}, wall)


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


def measure(net, name: str, s: int, deg: dict) -> dict:
    fn, _ = BACKENDS[name]
    fn(with_steps(net, 2))  # warm-up: imports, first-call allocations, code generation caches
    t0 = time.perf_counter()
    res1 = fn(with_steps(net, s))
    w1 = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = fn(with_steps(net, 4 * s))
    w4 = time.perf_counter() - t0
    own = [getattr(r, "options", None) and r.options.get("standalone_run_s") for r in (res1, res)]
    if all(x is not None and np.isfinite(x) for x in own):  # cpp_standalone: without the C++ build
        w1, w4 = own
    # the marginal time; None when the longer run was not the slower one (load changed between them:
    # such a repeat says nothing and is left out of the median, not clamped to a number)
    ms = (w4 - w1) / (3 * s) * 1e3 if w4 > w1 else None
    events = sum(float((res.counts[k] * deg[k]).sum()) for k in res.counts if k in deg)
    events_per_step = events / (4 * s)
    # the time loop alone (the backend's own wall_time_s: no set-up, no result conversion)
    loop_ms = res.wall_time_s / (4 * s) * 1e3 if res.wall_time_s else None
    if own[1] is not None and np.isfinite(own[1]):  # cpp_standalone: the program's run, not its build
        loop_ms = own[1] / (4 * s) * 1e3
    return {"ms_per_step": ms, "loop_ms_per_step": loop_ms, "setup_s": max(w1 - ms * s / 1e3, 0.0) if ms else None,
            "synaptic_events_per_s": events_per_step / (ms / 1e3) if ms else None}


def spread(values) -> dict:
    """Median, min and max of repeated measurements (and every value, in the order measured)."""
    v = [float(x) for x in values if x is not None]
    if not v:
        return {"median": None, "min": None, "max": None, "n": 0, "all": []}
    return {"median": float(np.median(v)), "min": min(v), "max": max(v), "n": len(v), "all": v}


def summarize(reps: list[dict]) -> dict:
    """Per-repeat dicts of measure() -> each key's spread."""
    return {k: spread([r[k] for r in reps]) for k in reps[0]}


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def _proc_bytes(path: str, key: str) -> int | None:
    """A ``key: N kB`` line of a /proc file, in bytes (None if there is none)."""
    try:
        for line in Path(path).read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def mem_available() -> int | None:
    """Bytes the kernel says a new process can use without swapping (None if unknown)."""
    return _proc_bytes("/proc/meminfo", "MemAvailable")


def peak_rss() -> int:
    """This process's peak resident memory in bytes (VmHWM, else ru_maxrss)."""
    hwm = _proc_bytes("/proc/self/status", "VmHWM")
    return hwm if hwm is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def memory_cell(name: str, n: int, probe: bool, duration: float) -> dict:
    """One run in this (fresh) process; its peak RSS."""
    from neurodeploy.ir import Probe

    base = peak_rss()
    net = scaled(n, duration)
    if probe:
        net = dataclasses.replace(net, probes=net.probes + (Probe("exc.v5", "exc", "v", indices=(0, 1, 2, 3, 4)),))
    fn, _ = BACKENDS[name]
    t0 = time.perf_counter()
    res = fn(net)
    wall = time.perf_counter() - t0
    return {"peak_rss_bytes": peak_rss(), "import_rss_bytes": base, "wall_s": wall,
            "spikes": int(sum(int(c.sum()) for c in res.counts.values())),
            "probe_shape": list(res.traces["exc.v5"].values.shape) if probe else None}


#: bytes per synapse a cell may need; a cell is skipped when the machine has less free memory
#: (an estimate above what Brian2 and torch were measured to need)
MEM_BYTES_PER_SYNAPSE = 50


def memory(name: str, n: int, probe: bool, duration: float, timeout: float) -> dict:
    """``memory_cell`` in a fresh subprocess (so one cell's peak is not another's)."""
    synapses = 200 * n  # the scaled E/I network: in-degree 100 from the background + 100 recurrent
    need, avail = MEM_BYTES_PER_SYNAPSE * synapses + 2**30, mem_available()
    if avail is not None and need > avail:
        return {"skipped": f"needs ~{need / 1e9:.1f} GB, {avail / 1e9:.1f} GB available"}
    cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-cell", name, str(n), "probe" if probe else "spikes",
           str(duration)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"skipped": f"took more than {timeout:.0f} s"}
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        return {"failed": tail[0][:300], "returncode": done.returncode}
    out = json.loads(done.stdout.strip().splitlines()[-1])
    # the kernel's account of the largest child so far (a cross-check of the child's own VmHWM)
    out["children_max_rss_bytes"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return out


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
    if w4 <= w1:  # see measure()
        return {"ms_per_step": None, "ms_per_trial_step": None, "dense_matmul_gflops": None}
    ms = (w4 - w1) / (3 * s) * 1e3
    flops = sum(2.0 * trials * p_src * p_tgt for p_src, p_tgt in _dense_shapes(net))
    return {"ms_per_step": ms, "ms_per_trial_step": ms / trials, "dense_matmul_gflops": flops / (ms / 1e3) / 1e9}


def _dense_shapes(net):
    from neurodeploy.backends.torch.simulator import DENSE_MAX_ELEMENTS
    from neurodeploy.library.endpoints import endpoints

    eps = endpoints(net)
    for pr in net.projections:
        a, b = eps[pr.source].size, eps[pr.target].size
        if a * b <= DENSE_MAX_ELEMENTS:
            yield a, b


def _fmt_ms(st: dict | None) -> str:
    if not st or st.get("median") is None:
        return f"{'-':>22}"
    if st["n"] == 1:
        return f"{st['median']:>22.3f}"
    return f"{st['median']:>9.3f} [{st['min']:.3f}-{st['max']:.3f}]".rjust(22)


def _fmt_mem(cell: dict | None) -> str:
    if not cell:
        return f"{'-':>12}"
    if "peak_rss_bytes" not in cell:
        return f"{'skipped' if 'skipped' in cell else 'failed':>12}"
    return f"{cell['peak_rss_bytes'] / 1e9:>9.2f} GB"


def _table(keys: list[str], rows: list[dict], cell, width: int) -> None:
    """A header of ``keys``, a rule, and one line per row (``cell(row, key)`` formats a cell)."""
    head = f"{'neurons':>8} | " + " | ".join(f"{k:>{width}}" for k in keys)
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['neurons']:>8} | " + " | ".join(cell(r, k) for k in keys))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="*", default=[1000, 10000, 100000],
                    help="sizes of the timing rows (none: skip the timing)")
    ap.add_argument("--repeats", type=int, default=3, help="interleaved repeats of the timing (median, min/max)")
    ap.add_argument("--steps", type=int, default=None, metavar="S",
                    help="steps S of the marginal timing (S and 4S) for every backend (default: each backend's own, "
                         "400 for Brian2 and torch); a larger S lifts a fast loop's marginal above the set-up's "
                         "scatter (the fused torch kernel at 10k: ~0.02 ms x 1200 steps vs ~1 s of set-up)")
    ap.add_argument("--batch", type=int, default=1000, help="trials in the batched torch case")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "backends.json"))
    ap.add_argument("--backends", nargs="+", choices=list(BACKENDS), default=list(BACKENDS),
                    help="a subset (brian2-cython is always run: it is the baseline of the ratios)")
    ap.add_argument("--no-batch", action="store_true", help="skip the batched torch case")
    ap.add_argument("--memory-sizes", type=int, nargs="*", default=[100000, 1000000],
                    help="sizes of the peak-memory cells (none: skip them)")
    ap.add_argument("--memory-backends", nargs="+", choices=list(BACKENDS), default=["brian2-cython", "torch"])
    ap.add_argument("--memory-duration", type=float, default=0.04, help="simulated seconds of a memory cell "
                    "(default 0.04: 400 steps)")
    ap.add_argument("--memory-timeout", type=float, default=1800.0, help="seconds before a memory cell is given up")
    ap.add_argument("--quick", action="store_true",
                    help="a few minutes: sizes 1k and 10k, 2 repeats, no Lava, a 100-trial batch, memory at 10k "
                         "and 100k for 10 ms")
    ap.add_argument("--memory-cell", nargs=4, metavar=("BACKEND", "N", "PROBE", "DURATION"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.memory_cell:  # a child of memory(): one run, its peak RSS as JSON on stdout
        name, n, probe, duration = args.memory_cell
        print(json.dumps(memory_cell(name, int(n), probe == "probe", float(duration))))
        return 0
    if args.quick:
        args.sizes, args.repeats, args.batch = [1000, 10000], 2, 100
        args.memory_sizes, args.memory_duration = [10000, 100000], 0.01
        args.backends = [b for b in args.backends if b not in ("lava", "loihi2-sim")]
    for name in [k for k in BACKENDS if k not in args.backends and k != "brian2-cython"]:
        del BACKENDS[name]
    load_before = load_average()
    if args.sizes:  # fill Brian2's code cache before anything is timed
        brian2_run(scaled(1000, 0.001), options=Brian2Options(codegen="cython", progress=False))
    names = list(BACKENDS)
    rows = []
    for n in args.sizes:
        net = scaled(n, 0.001)
        deg = out_degree(net)
        reps: dict[str, list] = {k: [] for k in names if n <= MAX_SIZE.get(k, 10**9)}
        for rep in range(args.repeats):  # interleaved: every backend once per repeat
            for name in reps:
                print(f"  {n} neurons, {name}, repeat {rep + 1}/{args.repeats} ...", file=sys.stderr, flush=True)
                reps[name].append(measure(net, name, args.steps or BACKENDS[name][1], deg))
        row = {"neurons": n}
        for name in names:
            row[name] = summarize(reps[name]) if reps.get(name) else None
            if row[name] is not None and name in KERNEL:
                row[name]["kernel"] = KERNEL[name]
        rows.append(row)
    batch, peak = None, None
    peaks = []
    if not args.no_batch:
        runs = []
        for rep in range(args.repeats):  # the matmul peak and the batched run interleaved
            print(f"  batched torch: {args.batch} trials, repeat {rep + 1}/{args.repeats} ...", file=sys.stderr,
                  flush=True)
            peaks.append(matmul_gflops())
            runs.append(batched(1000, args.batch, 50))
        batch = {"neurons": 1000, "trials": args.batch, **summarize(runs)}
        fractions = [r["dense_matmul_gflops"] / p if r["dense_matmul_gflops"] else None for r, p in zip(runs, peaks)]
        batch["roofline_fraction"] = spread(fractions)
        peak = spread(peaks)
    memory_rows = []
    for n in args.memory_sizes or []:
        row = {"neurons": n, "synapses_approx": 200 * n}
        for name in args.memory_backends:
            for probe in (False, True):
                key = f"{name}{'+probe5' if probe else ''}"
                print(f"  memory: {n} neurons, {key} ...", file=sys.stderr, flush=True)
                row[key] = memory(name, n, probe, args.memory_duration, args.memory_timeout)
        memory_rows.append(row)
    load_after = load_average()

    print(f"\nE/I network, milliseconds per simulated step (dt = 0.1 ms; marginal; median [min-max] of "
          f"{args.repeats} interleaved repeats; '-' = not run)")
    _table(names, rows, lambda r, k: _fmt_ms(r[k]["ms_per_step"] if r[k] else None), 22)
    print("\nsynaptic events per second (millions, median)")
    for r in rows:
        print(f"{r['neurons']:>8} | " + " | ".join(
            f"{r[k]['synaptic_events_per_s']['median'] / 1e6:>22.2f}"
            if r[k] and r[k]["synaptic_events_per_s"]["median"] else f"{'-':>22}" for k in names))
    print("\ntime loop alone, ms per step (the backend's wall_time_s: no set-up; median [min-max])")
    for r in rows:
        print(f"{r['neurons']:>8} | " + " | ".join(_fmt_ms(r[k]["loop_ms_per_step"] if r[k] else None)
                                                    for k in names))
    print("\nratios of the medians (same run):")
    for r in rows:
        t = r["torch"]["ms_per_step"]["median"] if r.get("torch") else None
        if not t:
            continue
        parts = [f"{r['neurons']} neurons: torch is"]
        if r.get("lava") and r["lava"]["ms_per_step"]["median"]:
            parts.append(f"{r['lava']['ms_per_step']['median'] / t:.1f}x faster than Lava float,")
        fastest = min((r[k]["ms_per_step"]["median"] for k in ("brian2-numpy", "brian2-cython")
                       if r.get(k) and r[k]["ms_per_step"]["median"]), default=None)
        if fastest is None:
            continue
        parts.append(f"{fastest / t:.2f}x Brian2's fastest runtime target (> 1: torch faster)")
        print("  " + " ".join(parts))
        # issue 17's target: a single torch trial (the fused CPU kernel) >= 3x faster than Brian2 Cython
        cy = r["brian2-cython"]["ms_per_step"]["median"] if r.get("brian2-cython") else None
        extra = []
        if cy:
            extra.append(f"{cy / t:.2f}x faster than Brian2 Cython (target >= 3x: {'met' if cy / t >= 3 else 'MISSED'})")
        cpp = r["brian2-cpp"]["ms_per_step"]["median"] if r.get("brian2-cpp") else None
        if cpp:
            extra.append(f"{cpp / t:.2f}x Brian2 cpp_standalone's marginal cost (target >= 1: "
                         f"{'met' if cpp / t >= 1 else 'MISSED'})")
        for k, what in (("torch-eager", "the eager loop"), ("floor-numba", "the hand-written minimal loop")):
            o = r[k]["ms_per_step"]["median"] if r.get(k) else None
            if o:
                extra.append(f"{o / t:.2f}x {what}")
        if extra:
            print(f"  {r['neurons']} neurons: torch (kernel {r['torch'].get('kernel', '?')}) is " + "; ".join(extra)
                  + " (> 1: torch faster)")
    if batch is not None and batch["ms_per_step"]["median"] and batch["roofline_fraction"]["median"]:
        f = batch["roofline_fraction"]
        print(f"\nbatched: {batch['trials']} trials of the 1k network at once: {batch['ms_per_step']['median']:.2f} ms "
              f"per step, {batch['ms_per_trial_step']['median'] * 1e3:.1f} us per trial-step; dense matmul part "
              f"{batch['dense_matmul_gflops']['median']:.1f} GFLOP/s = {f['median'] * 100:.0f} % "
              f"[{f['min'] * 100:.0f}-{f['max'] * 100:.0f} %] of this machine's float32 matmul measured beside it "
              f"({peak['median']:.1f} GFLOP/s [{peak['min']:.1f}-{peak['max']:.1f}])")
    if memory_rows:
        keys = [f"{b}{s}" for b in args.memory_backends for s in ("", "+probe5")]
        print(f"\npeak resident memory of a whole run ({args.memory_duration * 1e3:.0f} ms simulated; a fresh process "
              f"per cell; spikes only, and +probe5 = plus a 5-neuron v probe)")
        _table(keys, memory_rows, lambda r, k: f"{_fmt_mem(r.get(k)):>20}", 20)
        for r in memory_rows:
            for k in keys:
                c = r.get(k) or {}
                if "peak_rss_bytes" not in c:
                    print(f"  {r['neurons']} {k}: {c.get('skipped') or c.get('failed')}")
    print(f"\nload average (1, 5, 15 min) before: {load_before}, after: {load_after} on {os.cpu_count()} CPUs")
    write_results(args.out, "backends", rows=rows, batched=batch, matmul_peak_gflops=peak, memory=memory_rows,
                  memory_duration_s=args.memory_duration, repeats=args.repeats, steps=args.steps, quick=args.quick,
                  load_average={"before": load_before, "after": load_after})
    return 0


if __name__ == "__main__":
    sys.exit(main())
