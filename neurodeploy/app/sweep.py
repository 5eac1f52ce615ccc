"""Sweeps: one spec run for every combination of parameter values, seeds and targets
(``neurodeploy sweep``, :func:`sweep`), in parallel, resumable, with a tidy table of the runs
and an aggregate plot.

A sweep is the product ``variants x seeds x targets``: ``grid={"tau_m": ["10 ms", "20 ms"]}``
(``--set tau_m=10ms,20ms`` on the command line: a comma-separated list of values per key, each
value read like ``--set``'s) gives one variant per combination of values; ``seeds`` sets
``simulation.seed`` of each run (as ``neurodeploy run --seed``: connectivity, weights, inputs and
initial state all come from it). Every run writes its own directory ``DIR/runs/<name>/`` through
the API (:func:`~neurodeploy.app.api.run`, :func:`~neurodeploy.app.api.write_result`,
:func:`~neurodeploy.app.api.validate` with ``validate=True``), so each file is written atomically
and ``summary.json`` (``report.json`` and ``report.html`` for a validation) exists only for a
finished run.

What is written into ``DIR``:

=====================  =================================================================
``sweep.json``         the sweep: spec, grid, seeds, targets, options, the IR hash of each
                       variant (a re-run with a changed spec is refused instead of mixing
                       old and new runs), the runs and their directories
``runs/<name>/``       one run: ``result.npz`` + ``summary.json`` (or the validation's
                       ``report.json`` / ``report.html`` with ``reference/`` and ``target/``)
``runs.csv``           one row per run (``runs.parquet`` too when pyarrow is installed;
                       ``runs.json`` the same rows): target, each swept key, seed, status,
                       wall time, and per population ``<pop>.rate_hz``, ``<pop>.spikes``,
                       ``<pop>.silent_fraction`` (validations: ``pass``, ``failures``)
``aggregate.csv``      per target and variant: runs, and per population the mean rate over
                       the seeds with its standard error (``aggregate.json`` the same)
``sweep.png``          mean rate +/- SE per population against the first swept key
=====================  =================================================================

Resuming: a run whose ``summary.json`` exists is not run again; the table is always rebuilt from
the run directories, so a sweep stopped with Ctrl-C (exit 130) and started again with the same
command finishes only what is missing.

Engines: ``local`` (default) runs on a joblib/loky process pool of ``jobs`` workers (``jobs=1``:
in this process, one after the other); ``dask`` submits to a Dask distributed scheduler at
``address`` (none: a local cluster of ``jobs`` worker processes); ``ray`` to a Ray cluster at
``address`` (none: a local Ray), asking for ``gpus_per_task`` GPUs for torch runs when the
cluster has GPUs. The workers of ``dask`` and ``ray`` write into ``DIR`` themselves: it must be
on a file system they all see.

Batched trials: on the torch backend, runs that differ only in their seed can run as trials of
one batched simulation. They equal separate runs only where the network's connectivity and
weights do not depend on the seed (torch's trials share the structure of the first seed; checked
here, per variant); on the CPU a batched run of a sparse network is slower than separate
event-driven runs (measured), so ``batch="auto"`` batches only on a CUDA device.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..backends import dispatch
from ..backends.base import get_backend
from ..core.errors import NeurodeployError, UsageError
from ..core.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from ..core.plot import pyplot, save_figure
from ..ir import to_json
from ..ir.nodes import Network
from ..library import materialize as mat
from ..library.blocks.coder import has_coder
from ..spec.overrides import with_seed
from . import api

Log = Callable[[str], None]

#: at most this many runs in one sweep (bounded before anything is planned or allocated)
MAX_RUNS = 100_000
#: engines
ENGINES = ("local", "dask", "ray")
#: backends whose runs stay in the sweep's own process, one after the other: Lava's runtime needs
#: the ``fork`` start method, and loky's and Dask's worker processes have fixed another one
#: (measured: a Lava run in a loky worker fails with "needs the 'fork' multiprocessing start method")
SERIAL_BACKENDS: frozenset[str] = frozenset({"lava"})
#: bound on (step x trial x recorded or input neuron) cells of one batched torch run
BATCH_CELLS = 200_000_000
#: at most this many trials in one batched torch run
BATCH_MAX = 64


# --- the sweep's grid -----------------------------------------------------------------------------

def split_values(text: str) -> list[str]:
    """``"10ms,20ms"`` -> ``["10ms", "20ms"]``: commas at the top level only (``[1, 2]`` and quoted
    text stay one value)."""
    out, depth, quote, cur = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{(":
            depth += 1
        elif ch in "]})":
            depth -= 1
        elif ch == "," and depth == 0:
            out.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    out.append("".join(cur).strip())
    return out


def parse_grid(items) -> list[tuple[str, list]]:
    """The swept keys and their values, in order: from ``["KEY=V1,V2", ...]`` (the command line)
    or a mapping ``{KEY: [V1, V2]}`` (a single value: one value)."""
    if items is None:
        return []
    pairs = []
    if isinstance(items, dict):
        for k, v in items.items():
            vals = list(v) if isinstance(v, (list, tuple, range)) else [v]
            pairs.append((str(k).strip(), vals))
    else:
        for item in ([items] if isinstance(items, str) else items):
            key, sep, value = str(item).partition("=")
            if not sep or not key.strip():
                raise UsageError(f"--set {item!r}: expected KEY=VALUE[,VALUE...], e.g. --set tau_m=10ms,20ms "
                                 "or --set exc.tau_m='10 ms','20 ms'")
            vals = split_values(value)
            if any(not v for v in vals):
                raise UsageError(f"--set {item!r}: an empty value in the list (values are separated by commas)")
            pairs.append((key.strip(), vals))
    seen = set()
    for key, vals in pairs:
        if key in seen:
            raise UsageError(f"--set {key}: given twice; list every value once: --set {key}=A,B")
        if not vals:
            raise UsageError(f"--set {key}: no values")
        seen.add(key)
    return pairs


def parse_seeds(seeds) -> list[int] | None:
    """Seeds from ``"0..99"`` (both ends included), ``"1,5,9"``, ``"0..9,20"``, an int or a list;
    None: the spec's seed."""
    if seeds is None:
        return None
    if isinstance(seeds, (int, np.integer)) and not isinstance(seeds, bool):
        out = [int(seeds)]
    elif isinstance(seeds, str):
        out = []
        for part in seeds.split(","):
            part = part.strip()
            m = re.fullmatch(r"(-?\d+)\s*\.\.\s*(-?\d+)", part)
            if m:
                a, b = int(m.group(1)), int(m.group(2))
                if b < a:
                    raise UsageError(f"--seeds {seeds!r}: '{part}' counts down; write the smaller seed first")
                if b - a + 1 > MAX_RUNS:
                    raise UsageError(f"--seeds {seeds!r}: more than {MAX_RUNS} seeds")
                out.extend(range(a, b + 1))
            elif re.fullmatch(r"-?\d+", part):
                out.append(int(part))
            else:
                raise UsageError(f"--seeds {seeds!r}: '{part}' is not a seed or a range; e.g. --seeds 0..99 "
                                 "or --seeds 1,2,7")
    else:
        try:
            out = [int(s) for s in seeds]
        except (TypeError, ValueError):
            raise UsageError(f"seeds must be integers, a range or a string such as '0..99', got {seeds!r}") from None
    if not out:
        raise UsageError("no seeds given")
    dup = sorted(s for s, c in Counter(out).items() if c > 1)
    if dup:
        raise UsageError(f"seeds given twice: {', '.join(map(str, dup[:5]))}")
    return out


def _slug(text: str) -> str:
    s = re.sub(r"\s+", "", str(text))
    s = re.sub(r"[^A-Za-z0-9.+\-=]", "_", s)
    return s[:60] or "_"


def _text(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class RunPlan:
    """One run of a sweep."""

    name: str  # its directory under DIR/runs
    target: str
    variant: int  # index into Plan.variants
    seed: int


@dataclass
class Plan:
    keys: list[str]
    variants: list[dict]  # key -> value, per variant
    nets: list[Network]  # the loaded network of each variant (spec's seed)
    seeds: list[int]
    targets: list[str]
    runs: list[RunPlan]


def _digest(net: Network) -> str:
    return hashlib.sha256(to_json(net).encode()).hexdigest()


def plan(spec, grid=None, seeds=None, targets=("torch",), *, duration=None) -> Plan:
    """Every run of a sweep, with each variant's network loaded and checked (a bad value is a
    located :class:`SpecError` before anything runs)."""
    pairs = parse_grid(grid)
    seed_list = parse_seeds(seeds)
    targets = [t.strip() for t in targets.split(",") if t.strip()] if isinstance(targets, str) else list(targets or [])
    if not targets:
        raise UsageError("no targets given; e.g. --targets torch,reference")
    if len(set(targets)) != len(targets):
        raise UsageError(f"targets given twice: {', '.join(targets)}")
    for t in targets:
        api._as_target(t)  # unknown target: the error names the known ones
    n_variants = math.prod(len(v) for _, v in pairs)
    total = n_variants * len(seed_list or [0]) * len(targets)
    if total > MAX_RUNS:
        raise UsageError(f"this sweep has {total} runs, more than the limit of {MAX_RUNS}; split it")
    keys = [k for k, _ in pairs]
    variants = [dict(zip(keys, combo)) for combo in itertools.product(*(v for _, v in pairs))]
    nets = []
    for v in variants:
        if isinstance(spec, Network) and v:
            raise UsageError("a sweep over --set values needs a spec file or a shipped model's name, not a Network")
        net = api.load(spec, overrides={k: val for k, val in v.items()} or None, duration=duration)
        if has_coder(net):
            raise UsageError(f"'{net.name}' is a coder (an ipvae or lca block): a sweep simulates spiking "
                             "networks; evaluate coders with `neurodeploy eval`")
        nets.append(net)
    if seed_list is None:
        seed_list = sorted({n.simulation.seed for n in nets})
    width = len(str(max(abs(s) for s in seed_list)))
    runs, names = [], set()
    for t in targets:
        for vi, v in enumerate(variants):
            for s in seed_list:
                parts = [_slug(t)] + [f"{_slug(k)}={_slug(_text(val))}" for k, val in v.items()] + \
                        [f"seed={'-' if s < 0 else ''}{abs(s):0{width}d}"]
                name = "__".join(parts)
                if name in names:  # two values that differ only in characters a file name cannot hold
                    name = f"{name}__{len(runs)}"
                names.add(name)
                runs.append(RunPlan(name, t, vi, s))
    return Plan(keys, variants, nets, seed_list, targets, runs)


# --- running --------------------------------------------------------------------------------------

def finished(run_dir: Path, validate: bool) -> bool:
    """Whether ``run_dir`` holds a finished run (the files written last exist)."""
    if validate:
        return (run_dir / "report.json").exists() and (run_dir / "report.html").exists()
    return (run_dir / "summary.json").exists()


def _execute(task: dict) -> list[dict]:
    """Run one task (in a worker): one run, a validation, or a batch of seeds on torch. Returns one
    ``{"name", "ok", "error"}`` per run; errors are caught and reported, Ctrl-C is not."""
    names = [name for name, _, _ in task["runs"]]
    try:
        if task["kind"] == "batch":
            net = task["net"]
            seeds = tuple(s for _, s, _ in task["runs"])
            results = dispatch.simulate(with_seed(net, seeds[0]), api._as_target(task["target"]),
                                        task["options"], seeds=seeds)
            for (_, seed, run_dir), r in zip(task["runs"], results):
                r.seed = seed
                api.write_result(r, run_dir)
        else:
            (_, seed, run_dir), = task["runs"]
            net = with_seed(task["net"], seed)
            if task["kind"] == "validate":
                api.validate(net, task["target"], run_dir, reference=task["reference"],
                             tolerances=task.get("tolerances"), codegen=task.get("codegen") or "auto",
                             device=task.get("device") or "auto")
            else:
                api.run(net, task["target"], run_dir, options=task["options"])
        return [{"name": n, "ok": True, "error": None} for n in names]
    except KeyboardInterrupt:
        raise
    except NeurodeployError as e:
        msg = f"{type(e).__name__}: {e}"
    except Exception as e:  # noqa: BLE001  (a bug in neurodeploy or a backend: recorded, the sweep goes on)
        msg = f"internal error: {type(e).__name__}: {e}"
    return [{"name": n, "ok": False, "error": msg} for n in names]


def structure_depends_on_seed(net: Network, a: int, b: int) -> bool:
    """Whether connectivity, weights or delays of ``net`` differ between seeds ``a`` and ``b``."""
    na, nb = with_seed(net, a), with_seed(net, b)
    for pr in net.projections:
        sa, sb = mat.synapses(na, pr), mat.synapses(nb, pr)
        if not (np.array_equal(sa.i, sb.i) and np.array_equal(sa.j, sb.j) and np.array_equal(sa.w, sb.w)
                and sa.delay_steps == sb.delay_steps):
            return True
    return False


def _cuda() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def _batch_size(net: Network) -> int:
    steps = net.simulation.steps + 1
    probed = {pb.target for pb in net.probes}
    per_trial = steps * (sum(s.size for s in net.stimuli)
                         + sum(p.size for p in net.populations if p.name in probed))
    return int(max(1, min(BATCH_MAX, BATCH_CELLS // max(per_trial, 1))))


@dataclass
class SweepResult:
    """What :func:`sweep` did: every run's row (``rows``; :meth:`to_pandas`), the aggregate per
    target and variant, the files written, and how many runs ran, were skipped (finished before)
    or failed."""

    out: Path
    rows: list[dict]
    aggregate: list[dict]
    files: dict[str, Path] = field(default_factory=dict)
    ran: int = 0
    skipped: int = 0
    failed: int = 0
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)

    def to_pandas(self):
        """The rows as a pandas DataFrame (pandas is imported here)."""
        import pandas as pd

        return pd.DataFrame(self.rows)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and all(r.get("pass", True) is not False for r in self.rows)

    def to_json(self) -> dict:
        return {"ok": self.ok, "runs": len(self.rows), "ran": self.ran, "skipped": self.skipped,
                "failed": self.failed, "wall_s": round(self.wall_s, 3), "notes": self.notes,
                "aggregate": self.aggregate, "files": {k: str(v) for k, v in self.files.items()}}

    def lines(self) -> list[str]:
        out = [(f"sweep: {len(self.rows)} runs ({self.ran} ran, {self.skipped} finished before, "
                f"{self.failed} failed) in {self.wall_s:.1f} s")]
        out += [f"note: {n}" for n in self.notes]
        pops = sorted({k[:-len(".mean_rate_hz")] for a in self.aggregate for k in a if k.endswith(".mean_rate_hz")})
        head = ["target"] + self.keys + ["runs"] + [f"{p} rate (Hz)" for p in pops]
        table = [head]
        for a in self.aggregate:
            cells = [a["target"]] + [_text(a[k]) for k in self.keys] + [str(a["runs"])]
            for p in pops:
                m, se = a.get(f"{p}.mean_rate_hz"), a.get(f"{p}.se_rate_hz")
                cells.append("-" if m is None else f"{m:.3f}" + ("" if se is None else f" ± {se:.3f}"))
            table.append(cells)
        widths = [max(len(r[i]) for r in table) for i in range(len(head))]
        out += ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in table]
        for r in self.rows:
            if r["status"] == "error":
                out.append(f"  failed {r['run']}: {r['error']}")
        if self.files:
            out.append("wrote " + ", ".join(str(p) for p in self.files.values()))
        return out


def sweep(spec, out, *, grid=None, seeds=None, targets=("torch",), validate: bool = False,
          reference: str = "brian2", tolerances=None, duration=None, engine: str = "local",
          jobs: int | None = None, address: str | None = None, batch="auto", gpus_per_task: float | None = None,
          options: dict | None = None, progress: bool = True, plot: bool = True,
          log: Log | None = None) -> SweepResult:
    """Run ``spec`` for every combination of ``grid`` values, ``seeds`` and ``targets`` into
    ``out`` (layout: :mod:`neurodeploy.app.sweep`); finished runs are skipped.

    ``grid``: ``{KEY: [VALUE, ...]}`` or ``["KEY=V1,V2", ...]`` (keys as for ``overrides``:
    ``tau_m``, ``exc.tau_m``, ``simulation.duration``); ``seeds``: ``"0..99"``, a list, or None
    for the spec's seed; ``validate``: each run is a validation against ``reference``
    (:func:`~neurodeploy.app.api.validate`) instead of a plain run; ``engine``: ``local``
    (joblib/loky, ``jobs`` workers, default: the CPU count), ``dask`` or ``ray`` (``address`` of
    the scheduler / cluster; none: a local one); ``batch``: ``"auto"`` (batched torch trials on a
    CUDA device where the variants differ only in seed and the structure does not depend on it),
    True, or False; ``options``: backend options by their command-line names (``dtype``,
    ``torch_device``, ``codegen``, ...), applied to the targets whose backend has them."""
    say = log or api._quiet
    t0 = time.perf_counter()
    if engine not in ENGINES:
        raise UsageError(f"engine {engine!r}: expected one of {', '.join(ENGINES)}")
    if jobs is not None and jobs < 1:
        raise UsageError(f"jobs must be >= 1, got {jobs}")
    if batch not in ("auto", True, False):
        raise UsageError(f"batch must be 'auto', True or False, got {batch!r}")
    if address and engine == "local":
        raise UsageError("--address is for --engine dask or ray")
    p = plan(spec, grid, seeds, targets, duration=duration)
    out = Path(out)
    runs_dir = out / "runs"
    options = dict(options or {})
    opts = {}
    for t in p.targets:
        b = api.backend(t)
        opts[t] = b.options({**options, "progress": False}, strict=False)
    config = {"spec": spec.name if isinstance(spec, Network) else str(spec), "grid": [[k, [_text(v) for v in vals]]
              for k, vals in parse_grid(grid)], "seeds": p.seeds, "targets": p.targets, "validate": validate,
              "reference": reference if validate else None, "duration": None if duration is None else str(duration),
              "options": {k: v for k, v in sorted(options.items()) if v is not None}}
    digests = {_variant_key(v): _digest(n) for v, n in zip(p.variants, p.nets)}
    _check_previous(out, digests, config)
    atomic_write_json(out / "sweep.json", {
        "format": "neurodeploy-sweep", "version": 1, **config,
        "variants": [{"values": {k: _text(x) for k, x in v.items()}, "ir_sha256": _digest(n)}
                     for v, n in zip(p.variants, p.nets)],
        "runs": [{"name": r.name, "target": r.target, "seed": r.seed,
                  **{k: _text(x) for k, x in p.variants[r.variant].items()}} for r in p.runs]})

    todo = [r for r in p.runs if not finished(runs_dir / r.name, validate)]
    skipped = len(p.runs) - len(todo)
    notes: list[str] = []
    tasks = _tasks(p, todo, runs_dir, opts, validate, reference, tolerances, options, engine, batch, notes)
    workers = jobs or os.cpu_count() or 1
    say(f"sweep of {p.nets[0].name}: {len(p.runs)} runs ({len(p.variants)} variant{'s' * (len(p.variants) != 1)} x "
        f"{len(p.seeds)} seed{'s' * (len(p.seeds) != 1)} x {len(p.targets)} target{'s' * (len(p.targets) != 1)}); "
        f"{skipped} finished before; {len(todo)} to run on {engine}"
        + (f" ({min(workers, len(tasks))} worker{'s' * (min(workers, len(tasks)) != 1)})"
           if engine == "local" and tasks else ""))
    errors: dict[str, str] = {}
    ran = 0
    bar = tqdm(total=len(p.runs), initial=skipped, desc="sweep", unit="run", disable=not progress,
               file=sys.stderr, dynamic_ncols=True)
    running = _dispatch(tasks, engine, workers, address, gpus_per_task)
    try:
        for res in running:
            for r in res:
                if r["ok"]:
                    ran += 1
                else:
                    errors[r["name"]] = r["error"]
            bar.update(len(res))
    except KeyboardInterrupt:
        running.close()  # stops the pool / cancels the cluster's tasks (their finally blocks)
        bar.close()
        say(f"interrupted: {skipped + ran} of {len(p.runs)} runs finished; the same command finishes the rest")
        _collect(p, out, validate, errors, plot=False, partial=True)
        raise
    bar.close()
    result = _collect(p, out, validate, errors, plot=plot)
    result.ran, result.skipped, result.failed = ran, skipped, len(errors)
    result.notes = notes + result.notes
    result.wall_s = time.perf_counter() - t0
    return result


def _check_previous(out: Path, digests: dict, config: dict) -> None:
    """Refuse to resume into a directory of a sweep of another spec or other options."""
    path = out / "sweep.json"
    if not path.exists():
        return
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        raise UsageError(f"{path}: unreadable; it is not a sweep's directory (use another -o DIR)") from None
    for key in ("validate", "reference", "duration", "options"):
        if old.get(key) != config[key]:
            raise UsageError(f"{out} holds a sweep with {key} = {old.get(key)!r}, not {config[key]!r}: its finished "
                             "runs would not match this one; use another -o DIR (or delete it)")
    before = {_variant_key(x.get("values", {})): x.get("ir_sha256") for x in old.get("variants", [])}
    for v, d in digests.items():
        if v in before and before[v] != d:
            raise UsageError(f"{out}: the spec changed since its runs of {v} were written (another IR); use "
                             "another -o DIR, or delete the old runs")


def _variant_key(values: dict) -> str:
    return json.dumps({k: _text(v) for k, v in values.items()}, sort_keys=True)


def _tasks(p: Plan, todo, runs_dir: Path, opts, validate, reference, tolerances, options, engine, batch,
           notes: list[str]) -> list[dict]:
    tasks = []
    by_group: dict[tuple[str, int], list[RunPlan]] = {}
    for r in todo:
        by_group.setdefault((r.target, r.variant), []).append(r)
    cuda = None
    serial_noted = set()
    for (t, vi), group in by_group.items():
        net = p.nets[vi]
        backend = get_backend(api._as_target(t).backend)
        if backend.name in SERIAL_BACKENDS and t not in serial_noted:
            serial_noted.add(t)
            notes.append(f"{t}: runs in this process, one after the other (Lava's runtime needs the 'fork' start "
                         "method, which the pool's worker processes do not have)")
        batched = False
        if batch and not validate and backend.name == "torch" and len(group) > 1 and engine == "local":
            if batch == "auto":
                cuda = _cuda() if cuda is None else cuda
                device = getattr(opts[t], "device", "auto")
                batched = device == "cuda" or (device == "auto" and cuda)
            else:
                batched = True
            if batched and structure_depends_on_seed(net, group[0].seed, group[1].seed):
                batched = False
                if batch is True:
                    notes.append(f"{t}: trials not batched: the connectivity or weights of '{net.name}' depend on "
                                 "the seed, and a batch's trials share the first seed's (separate runs instead)")
        if batched:
            size = _batch_size(net)
            for k in range(0, len(group), size):
                chunk = group[k:k + size]
                tasks.append({"kind": "batch", "net": net, "target": t, "options": opts[t], "serial": False,
                              "runs": [(r.name, r.seed, runs_dir / r.name) for r in chunk]})
            notes.append(f"{t}: {len(group)} seeds run as batched trials ({size} per batch)")
            continue
        for r in group:
            tasks.append({"kind": "validate" if validate else "run", "net": net, "target": t, "options": opts[t],
                          "reference": reference, "tolerances": tolerances, "codegen": options.get("codegen"),
                          "device": options.get("torch_device"), "serial": backend.name in SERIAL_BACKENDS,
                          "runs": [(r.name, r.seed, runs_dir / r.name)]})
    return tasks


def _dispatch(tasks: list[dict], engine: str, workers: int, address, gpus_per_task):
    """Yield each task's result as it finishes."""
    if not tasks:
        return
    serial = [t for t in tasks if t["serial"]]
    pooled = [t for t in tasks if not t["serial"]]
    if not pooled:
        pass
    elif engine == "local":
        if workers == 1 or len(pooled) == 1:
            serial, pooled = serial + pooled, []
        else:
            from joblib import Parallel, delayed

            yield from Parallel(n_jobs=min(workers, len(pooled)), backend="loky",
                                return_as="generator_unordered")(delayed(_execute)(t) for t in pooled)
    elif engine == "dask":
        yield from _dask(pooled, workers, address, gpus_per_task)
    else:
        yield from _ray(pooled, address, gpus_per_task)
    for t in serial:
        yield _execute(t)


def _dask(tasks, workers, address, gpus_per_task):
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise UsageError("--engine dask needs dask distributed: pip install 'neurodeploy[dask]'") from None
    cluster = None
    if address:
        client = Client(address)
    else:
        cluster = LocalCluster(n_workers=min(workers, len(tasks)), threads_per_worker=1, processes=True)
        client = Client(cluster)
    futures = []
    try:
        for t in tasks:
            res = {"GPU": gpus_per_task} if gpus_per_task and get_backend(
                api._as_target(t["target"]).backend).name == "torch" else None
            futures.append(client.submit(_execute, t, pure=False, resources=res))
        for f in as_completed(futures):
            yield f.result()
    finally:
        client.cancel(futures)
        client.close()
        if cluster is not None:
            cluster.close()


def _ray(tasks, address, gpus_per_task):
    try:
        import ray
    except ImportError:
        raise UsageError("--engine ray needs Ray: pip install 'neurodeploy[ray]'") from None
    started = not ray.is_initialized()
    refs = []
    if started:
        ray.init(address=address or None, include_dashboard=False, log_to_driver=False)
    try:
        gpus = ray.cluster_resources().get("GPU", 0) > 0
        remote = ray.remote(_execute)
        for t in tasks:
            torch_run = get_backend(api._as_target(t["target"]).backend).name == "torch"
            n_gpus = (gpus_per_task if gpus_per_task is not None else 1) if (torch_run and gpus) else 0
            refs.append(remote.options(num_cpus=1, num_gpus=n_gpus).remote(t))
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            yield ray.get(done[0])
    finally:
        for ref in refs:
            try:
                ray.cancel(ref)
            except Exception:  # noqa: BLE001, S110  (it had finished)
                pass
        if started:
            ray.shutdown()


# --- the table, the aggregate and the plot -------------------------------------------------------

def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _row(p: Plan, r: RunPlan, run_dir: Path, validate: bool, errors: dict) -> dict:
    row = {"run": r.name, "target": r.target, **{k: _text(v) for k, v in p.variants[r.variant].items()},
           "seed": r.seed}
    summary = None
    if finished(run_dir, validate):
        if validate:
            report = _read_json(run_dir / "report.json") or {}
            verdict = report.get("verdict", {})
            row.update(status="ok", error=None, **{"pass": bool(verdict.get("pass")),
                                                   "failures": len(verdict.get("failures", []))})
            summary = _read_json(run_dir / "target" / "summary.json")
        else:
            summary = _read_json(run_dir / "summary.json")
            row.update(status="ok" if summary else "error", error=None if summary else "unreadable summary.json")
    elif r.name in errors:
        row.update(status="error", error=errors[r.name])
    else:
        row.update(status="not run", error=None)
    if summary:
        row["wall_time_s"] = summary.get("wall_time_s")
        for pop, s in summary.get("populations", {}).items():
            row[f"{pop}.rate_hz"] = s.get("mean_rate_hz")
            row[f"{pop}.spikes"] = s.get("spikes")
            row[f"{pop}.silent_fraction"] = s.get("silent_fraction")
    row["dir"] = str(Path("runs") / r.name)
    return row


def aggregate(rows: list[dict], keys: list[str]) -> list[dict]:
    """Per target and variant (in the rows' order): ``runs`` (finished ones), and per population
    ``<pop>.mean_rate_hz`` and its standard error over the seeds ``<pop>.se_rate_hz`` (None with
    one run); validations add ``passed``."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["target"],) + tuple(r[k] for k in keys), []).append(r)
    out = []
    for gkey, rs in groups.items():
        done = [r for r in rs if r["status"] == "ok"]
        a = {"target": gkey[0], **dict(zip(keys, gkey[1:])), "runs": len(done)}
        pops = [k[:-len(".rate_hz")] for k in (done[0] if done else {}) if k.endswith(".rate_hz")]
        for pop in pops:
            x = np.array([r[f"{pop}.rate_hz"] for r in done if r.get(f"{pop}.rate_hz") is not None], dtype=float)
            a[f"{pop}.mean_rate_hz"] = float(x.mean()) if x.size else None
            a[f"{pop}.se_rate_hz"] = float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else None
        if any("pass" in r for r in done):
            a["passed"] = sum(1 for r in done if r.get("pass"))
        out.append(a)
    return out


def _collect(p: Plan, out: Path, validate: bool, errors: dict, plot: bool = True,
             partial: bool = False) -> SweepResult:
    rows = [_row(p, r, out / "runs" / r.name, validate, errors) for r in p.runs]
    agg = aggregate(rows, p.keys)
    res = SweepResult(out, rows, agg, keys=p.keys)
    res.files.update(_write_table(rows, out / "runs", partial))
    res.files.update(_write_table(agg, out / "aggregate", partial))
    if plot and any(a["runs"] for a in agg):
        try:
            res.files["plot"] = plot_aggregate(agg, p.keys, out / "sweep.png", title=p.nets[0].name)
        except ImportError:
            res.notes.append("no sweep.png: matplotlib is not installed (pip install 'neurodeploy[plot]')")
    return res


def _write_table(rows: list[dict], stem: Path, partial: bool) -> dict[str, Path]:
    import pandas as pd

    df = pd.DataFrame(rows)
    files = {stem.name + "_csv": atomic_write_text(stem.with_suffix(".csv"), df.to_csv(index=False))}
    clean = [{k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in r.items()} for r in rows]
    files[stem.name + "_json"] = atomic_write_json(stem.with_suffix(".json"), {"partial": partial, "rows": clean})
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return files
    buf = io.BytesIO()
    df.to_parquet(buf, index=False)
    files[stem.name + "_parquet"] = atomic_write_bytes(stem.with_suffix(".parquet"), buf.getvalue())
    return files


def plot_aggregate(agg: list[dict], keys: list[str], path: Path, title: str = "") -> Path:
    """Mean rate +/- SE per population (one panel each) against the first swept key's values (in
    the order given; one line per target and value of the other keys); without swept keys,
    against the targets."""
    plt = pyplot()
    pops = [k[:-len(".mean_rate_hz")] for k in agg[0] if k.endswith(".mean_rate_hz")] if agg else []
    pops = list(dict.fromkeys(pops + [k[:-len(".mean_rate_hz")] for a in agg for k in a
                                      if k.endswith(".mean_rate_hz")]))
    fig, axes = plt.subplots(1, max(len(pops), 1), figsize=(4.2 * max(len(pops), 1), 3.4), squeeze=False)
    xkey = keys[0] if keys else "target"
    xs = list(dict.fromkeys(_text(a[xkey]) for a in agg))
    lines: dict[tuple, list[dict]] = {}
    for a in agg:
        lines.setdefault(((a["target"],) if keys else ()) + tuple((k, _text(a[k])) for k in keys[1:]), []).append(a)
    for ax, pop in zip(axes[0], pops):
        for n, (label, items) in enumerate(lines.items()):
            pts = [(xs.index(_text(a[xkey])), a.get(f"{pop}.mean_rate_hz"), a.get(f"{pop}.se_rate_hz"))
                   for a in items if a.get(f"{pop}.mean_rate_hz") is not None]
            if not pts:
                continue
            x, y, e = zip(*pts)
            name = ", ".join(str(v) if not isinstance(v, tuple) else f"{v[0]}={v[1]}" for v in label) or None
            ax.errorbar(x, y, yerr=[0.0 if s is None else s for s in e], marker="o", capsize=3, lw=1.2,
                        color=f"C{n}", label=name)
        ax.set_xticks(range(len(xs)), xs, fontsize=8)
        ax.set_xlabel(xkey)
        ax.set_ylabel(f"{pop} rate (Hz), mean ± SE")
        ax.set_title(pop, fontsize=10)
        if len(lines) > 1:
            ax.legend(fontsize=7)
    fig.suptitle(f"{title}: sweep" if title else "sweep", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


__all__ = ["SweepResult", "aggregate", "parse_grid", "parse_seeds", "plan", "plot_aggregate", "split_values",
           "structure_depends_on_seed", "sweep"]
