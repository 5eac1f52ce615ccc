"""Benchmark: the issue-7 local-learning experiments on the torch fallback, measured against targets.

Runs (all seeded, torch.set_num_threads(1) unless --threads):
* BP / FA / SS / KP / WM on a 64-64-64-64-10 MLP, digits, 200 epochs, 5 seeds;
* EqProp 64-100-10, 25 epochs, 5 seeds, beta 1 (and 0.5 for comparison), plus its update vs finite differences;
* early inference and feedforward initialisation on the energy model;
* the STDP window of Bengio's rule on reference / Brian2 / Lava / torch.

Prints a table (measured vs target, run time) and writes benchmarks/results/learning_rules.json
(summary) and learning_rules_history.json (per-epoch and per-iteration data), and the plots to
--plots if given.

    .venv/bin/python benchmarks/learning_rules.py                       # everything, ~10 min on one core
    .venv/bin/python benchmarks/learning_rules.py --only eqprop inference --plots out/learning
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from neurodeploy.core.io import atomic_write_json  # noqa: E402
from neurodeploy.learn import experiments as ex  # noqa: E402

PARTS = ("feedback", "eqprop", "inference", "stdp")


def compact(res: dict) -> dict:
    """The summary file: everything except per-epoch histories and per-iteration residual traces."""
    out = {k: res[k] for k in ("machine", "seconds", "checks", "table") if k in res}
    if "feedback" in res:
        out["feedback"] = {k: v for k, v in res["feedback"].items() if k != "runs"}
    for k in ("eqprop", "eqprop_beta_0.5"):
        if k in res:
            out[k] = {kk: v for kk, v in res[k].items() if kk != "runs"}
    if "inference" in res:
        inf = dict(res["inference"])
        inf["nets"] = {n: {kk: v for kk, v in r.items() if not kk.startswith("residual_")}
                       for n, r in inf["nets"].items()}
        out["inference"] = inf
    if "stdp" in res:
        out["stdp"] = res["stdp"]
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    ap.add_argument("--seeds", type=int, default=5, help="seeds for the FA family and EqProp")
    ap.add_argument("--epochs", type=int, default=200, help="epochs for the FA family")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default=None)
    ap.add_argument("--plots", default=None, help="directory for PNG plots")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "learning_rules.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    res = {"machine": {"python": platform.python_version(), "torch": torch.__version__,
                       "cpu": platform.processor() or platform.machine(), "threads": args.threads,
                       "cuda": torch.cuda.is_available()}, "seconds": {}}
    rows = []
    plots = Path(args.plots) if args.plots else None
    if plots is not None:
        plots.mkdir(parents=True, exist_ok=True)
    if "feedback" in args.only:
        t0 = time.perf_counter()
        out = ex.run_feedback(seeds=tuple(range(args.seeds)), epochs=args.epochs, device=args.device)
        res["seconds"]["feedback"] = time.perf_counter() - t0
        res["feedback"] = out
        s = out["summary"]
        for r in ("bp", "fa", "ss", "kp", "wm"):
            tgt = {"bp": ">= 95.5%", "kp": ">= 95.5%", "wm": ">= 95.5%", "ss": ">= 95.5%", "fa": ">= 94%"}[r]
            rows.append((f"{r.upper()} test accuracy ({args.seeds} seeds)",
                         f"{100 * s[r]['test_acc_mean']:.2f} ± {100 * s[r]['test_acc_std']:.2f}% (min {100 * s[r]['test_acc_min']:.2f})",
                         tgt, f"{s[r]['seconds_mean']:.1f} s/run"))
        for r, tgt in (("kp", "< 5°"), ("wm", "< 10°"), ("ss", "15–40°"), ("fa", "> 25° (top)")):
            rows.append((f"{r.upper()} weight angle, bottom→top (mean; max over seeds)",
                         " ".join(f"{a:.1f}" for a in s[r]["weight_angle_mean"]) + "  (max "
                         + " ".join(f"{a:.1f}" for a in s[r]["weight_angle_max"]) + ")", tgt, ""))
        for r in ("fa", "ss", "kp", "wm"):
            rows.append((f"{r.upper()} delta angle, bottom→top (mean)", " ".join(f"{a:.1f}" for a in s[r]["delta_angle_mean"]), "same order", ""))
        if plots:
            ex.plot_feedback(out, plots / "feedback.png")
    if "eqprop" in args.only:
        t0 = time.perf_counter()
        out = ex.run_eqprop(seeds=tuple(range(args.seeds)), device=args.device, beta=1.0)
        res["seconds"]["eqprop"] = time.perf_counter() - t0
        res["eqprop"] = out
        s = out["summary"]
        rows.append((f"EqProp 64-100-10 test error, 25 epochs, beta 1 ({args.seeds} seeds)",
                     f"{100 * s['test_err_mean']:.2f} ± {100 * s['test_err_std']:.2f}% (max {100 * max(s['test_err']):.2f})",
                     "< 7%", f"{s['seconds_mean']:.1f} s/run"))
        alt = ex.run_eqprop(seeds=tuple(range(args.seeds)), device=args.device, beta=0.5, fd_check=False)
        res["eqprop_beta_0.5"] = alt
        rows.append(("EqProp test error, beta 0.5 (reference code's value)",
                     f"{100 * alt['summary']['test_err_mean']:.2f} ± {100 * alt['summary']['test_err_std']:.2f}% (max {100 * max(alt['summary']['test_err']):.2f})",
                     "(info)", f"{alt['summary']['seconds_mean']:.1f} s/run"))
        for k, v in out["fd_cosine"].items():
            rows.append((f"EqProp cos vs finite differences, {k}", " ".join(f"{c:.4f}" for c in v),
                         ">= 0.99" if k == "beta=0.01" else "(info)", f"{out['fd_seconds']:.1f} s" if k == "beta=0.01" else ""))
        if plots:
            ex.plot_eqprop(out, plots / "eqprop.png")
    if "inference" in args.only:
        t0 = time.perf_counter()
        out = ex.run_inference(device=args.device)
        res["seconds"]["inference"] = time.perf_counter() - t0
        res["inference"] = out
        for name, r in out["nets"].items():
            rows.append((f"early inference cos, {name} 64-100-10", " ".join(f"{c:.4f}" for c in r["early_inference_cos_first_arrival"]), ">= 0.9", ""))
        rows.append(("early inference cos, random 10-12-12-4 (bottom→top)",
                     " ".join(f"{c:.4f}" for c in out["deep_random_10_12_12_4"]["cos_first_arrival"]), ">= 0.9", ""))
        for name, r in out["nets"].items():
            rows.append((f"iterations to residual < {out['tol']:g}: {name}",
                         f"zero {r['iterations_zero_init']['mean']:.1f} / FF {r['iterations_ff_doubled']['mean']:.1f}"
                         f" (x{r['speedup_ff_doubled']:.2f}; learned FF x{r['speedup_ff_learned']:.2f})",
                         ">= 3x (consistent)" if "consistency" in name else "(control)", ""))
        rows.append(("", "", "", f"{res['seconds']['inference']:.0f} s total"))
        if plots:
            ex.plot_inference(out, plots / "inference.png")
    if "stdp" in args.only:
        t0 = time.perf_counter()
        out = ex.run_stdp_window()
        res["seconds"]["stdp"] = time.perf_counter() - t0
        res["stdp"] = out
        for k, e in out["max_rel_error"].items():
            rows.append((f"STDP window max rel. error, {k}", f"{e:.1e} (signs {'ok' if out['sign_ok'][k] else 'WRONG'})",
                         "matches analytic", f"{out['seconds'][k]:.1f} s"))
        for k, e in out["errors"].items():
            rows.append((f"STDP window, {k}", "could not run", e[:60], ""))
        if plots:
            ex.plot_stdp_window(out, plots / "stdp_window.png")
    w = max(len(r[0]) for r in rows)
    print(f"{'measurement':{w}s} | {'measured':40s} | {'target':22s} | time")
    for r in rows:
        print(f"{r[0]:{w}s} | {r[1]:40s} | {r[2]:22s} | {r[3]}")
    checks = {}
    for part in ("feedback", "eqprop", "inference"):
        if part in res:
            checks.update(res[part]["summary"]["checks"] if part != "inference" else res[part]["checks"])
    for k, v in checks.items():
        print(f"[{'ok' if v else 'MISSED'}] {k}")
    res["checks"] = checks
    res["table"] = rows
    full = Path(args.out).with_name(Path(args.out).stem + "_history.json")
    atomic_write_json(args.out, ex.jsonable(compact(res)))
    atomic_write_json(full, ex.jsonable(res))
    print(f"wrote {args.out} (summary) and {full} (per-epoch / per-iteration histories)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
