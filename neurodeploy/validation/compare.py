"""Compare a target's Result with the reference's: per population, per probe, with verdicts.

Both runs must share ``dt`` and the number of steps. Inputs are identical by construction:
every backend draws Poisson inputs and random weights from neurodeploy's seeded ``materialize``
module (Brian2's ``--poisson shared`` default), so the "same seeds" condition holds across
backends and no statistical matching is needed for the shipped inputs.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from ..core.errors import UsageError
from ..core.result import Result
from ..ir import Probe
from . import metrics as M
from .tolerances import Tolerances

#: bound on the (step, neuron) cells of the spike rasters held in memory (1 byte each, x2 runs)
MAX_CELLS = 500_000_000


def check_size(steps: int, neurons: int) -> None:
    """UsageError when the rasters of a comparison would exceed MAX_CELLS."""
    if steps * neurons > MAX_CELLS:
        raise UsageError(f"{steps} steps x {neurons} neurons is {steps * neurons:.3g} (step, neuron) cells, more "
                         f"than the {MAX_CELLS:.0e} that validation compares at once; validate fewer steps (--steps)")


def with_all_spike_probes(net):
    """``net`` with a spike probe on every population that has none (validation compares every
    population's spike trains, not only the probed ones)."""
    extra = tuple(Probe(f"{p.name}.all_spikes", p.name, "spikes") for p in net.populations
                  if not any(pb.target == p.name and pb.variable == "spikes" and pb.indices is None
                             for pb in net.probes))
    return dataclasses.replace(net, probes=net.probes + extra)


def _raster(res: Result, pop: str) -> np.ndarray:
    size = len(res.counts[pop])
    s = _train(res, pop)
    if s is None:
        return np.zeros((res.steps, size), dtype=bool)
    return M.spike_raster(s.steps(res.dt), s.i, res.steps, size)


def _train(res: Result, pop: str):
    """The spike train recording every neuron of ``pop`` (a probe named after it, or any probe on
    it with the population's full size)."""
    if pop in res.spikes:
        return res.spikes[pop]
    for k, s in res.spikes.items():
        if k.split(".")[0] == pop and s.size == len(res.counts[pop]):
            return s
    return None


def _check(tol, value):
    ok = tol.check(value)
    return {"value": _num(value), "threshold": tol.threshold, "direction": tol.direction,
            "pass": ok, "source": tol.source, "why": tol.why}


def _num(v):
    if isinstance(v, (np.floating, float)):
        v = float(v)
        return v if np.isfinite(v) else None
    if isinstance(v, (np.integer, int)):
        return int(v)
    return v


def compare(ref: Result, tgt: Result, tol: Tolerances) -> dict:
    """Every metric for every population and probe, each with its tolerance and verdict.

    Returns a JSON-ready dict: ``pass`` (all checked metrics pass), ``failures`` (list of
    "scope: metric value vs threshold"), ``populations``, ``probes``, and ``arrays`` (numpy data
    for the plots, removed before writing JSON)."""
    if abs(ref.dt - tgt.dt) > 1e-12 * max(ref.dt, 1e-12) or ref.steps != tgt.steps:
        raise UsageError(f"the runs do not share a time grid: reference dt={ref.dt:g} s x {ref.steps} steps, "
                         f"target dt={tgt.dt:g} s x {tgt.steps} steps; compare runs of the same spec")
    missing = sorted(set(ref.counts) ^ set(tgt.counts))
    if missing:
        raise UsageError(f"the runs do not have the same populations (only in one: {', '.join(missing)}); "
                         "compare runs of the same spec")
    dt, T = ref.dt, ref.steps
    check_size(T, sum(len(c) for c in ref.counts.values()))
    window = int(round(tol.coincidence_window_s / dt))
    tau_steps = max(tol.van_rossum_tau_s / dt, 1.0)
    out = {"pass": True, "failures": [], "populations": {}, "probes": {},
           "grid": {"dt_s": dt, "steps": T, "coincidence_window_steps": window, "van_rossum_tau_steps": tau_steps},
           "arrays": {"populations": {}, "probes": {}}}
    spk_ref, spk_tgt = {}, {}
    for pop in ref.counts:
        a, b = _raster(ref, pop), _raster(tgt, pop)
        spk_ref[pop], spk_tgt[pop] = a, b
        size = a.shape[1]
        ta = M.trains_by_neuron(*np.nonzero(a), size)
        tb = M.trains_by_neuron(*np.nonzero(b), size)
        active = [k for k in range(size) if len(ta[k]) or len(tb[k])]
        gamma = [M.coincidence_factor(ta[k], tb[k], window, T) for k in active]
        vr = [M.van_rossum_distance(ta[k], tb[k], tau_steps) for k in active]
        rates = M.rate_metrics(ref.counts[pop], tgt.counts[pop], ref.duration)
        fs = M.first_spike_latency(ta, tb)
        values = {
            "coincidence_factor": float(np.mean(gamma)) if gamma else 1.0,
            "rate_correlation": rates["rate_correlation"],
            "cell_agreement": M.cell_agreement(a, b),
            "rate_rel_error": rates["rate_rel_error"],
            "van_rossum": float(np.mean(vr)) if vr else 0.0,
            "first_spike_max_abs_steps": fs["first_spike_max_abs_steps"],
        }
        info = {"size": size, "spikes_ref": int(ref.counts[pop].sum()), "spikes_target": int(tgt.counts[pop].sum()),
                "rate_ref_hz": rates["rate_ref_hz"], "rate_target_hz": rates["rate_target_hz"],
                "active_neurons": len(active), "spike_trains_recorded": _train(ref, pop) is not None,
                "first_spike_mean_steps": fs["first_spike_mean_steps"],
                "fired_in_reference_only": fs["fired_in_reference_only"],
                "fired_in_target_only": fs["fired_in_target_only"], "metrics": {}}
        if _train(ref, pop) is None or _train(tgt, pop) is None:
            # counts only: spike-time metrics cannot be computed
            for k in ("coincidence_factor", "cell_agreement", "van_rossum", "first_spike_max_abs_steps"):
                values.pop(k)
        for k, v in values.items():
            info["metrics"][k] = _check(tol.for_population(pop, k), v)
        out["populations"][pop] = info
        out["arrays"]["populations"][pop] = {"ref": a, "tgt": b, "ref_counts": ref.counts[pop],
                                             "tgt_counts": tgt.counts[pop]}
    for name, tr in ref.traces.items():
        if name not in tgt.traces:
            raise UsageError(f"probe '{name}' is in the reference run but not in the target run")
        tt = tgt.traces[name]
        if tr.values.shape != tt.values.shape or not np.array_equal(tr.index, tt.index):
            raise UsageError(f"probe '{name}' recorded different neurons/samples in the two runs "
                             f"({tr.values.shape} vs {tt.values.shape})")
        is_weight = tr.variable in ("w", "weights")
        mask = None
        if not is_weight and tr.target in spk_ref and len(tr.t) == T:
            cols = np.asarray(tr.index, dtype=np.int64)
            ra, rb = spk_ref[tr.target][:, cols], spk_tgt[tr.target][:, cols]
            mask = M.subthreshold_mask(ra, rb) & M.synchronous_mask(ra, rb)
        e = M.subthreshold_rmse(tr.values, tt.values, mask)
        metric = "weight_nrmse" if is_weight else "trace_nrmse"
        info = {"target": tr.target, "variable": tr.variable, "unit": tr.unit, "recorded": int(len(tr.index)),
                "rmse": e["rmse"], "rmse_all_samples": e["rmse_all_samples"], "samples_compared": e["samples"],
                "reference_range": e["range"],
                "samples": "all" if mask is None else ("sub-threshold (no spike in this or the previous step), before "
                                                       "the neuron's first spike mismatch"),
                "metrics": {metric: _check(tol.for_probe(name, metric), e["nrmse"])}}
        out["probes"][name] = info
        out["arrays"]["probes"][name] = {"t": tr.t, "ref": tr.values, "tgt": tt.values, "errors": e["errors"],
                                         "unit": tr.unit, "index": tr.index}
    for scope, group in (("population", out["populations"]), ("probe", out["probes"])):
        for name, info in group.items():
            for k, c in info["metrics"].items():
                if c["pass"] is False:
                    out["pass"] = False
                    op = ">=" if c["direction"] == "min" else "<="
                    out["failures"].append(f"{scope} {name}: {k} = {c['value']:.6g}, needs {op} {c['threshold']:g} "
                                           f"({c['source']})" if c["value"] is not None else
                                           f"{scope} {name}: {k} is not finite")
    return out
