"""Benchmark: shipped iP-VAE coders vs LCA on held-out data (issue 6, part 6).

For every shipped model (models/weights/ipvae_<data>/decoder.npz, written by
``neurodeploy train models/train/ipvae_<data>.yaml -o models/weights/ipvae_<data> --threads 1``)
and its held-out split:

* iP-VAE on torch (exact Poisson counts, float32), T_test = 1 ... 1000 (log-spaced): mean
  per-image R^2, pooled R^2, R^2 decoding from the rates, fraction of zero counts, mean |du|,
  max u, and d = sqrt((1 - R^2)^2 + (1 - zeros)^2);
* the numpy reference (``ipvae_step``, float64, its own random stream) on the same inputs:
  statistics must agree with torch within Monte-Carlo noise;
* LCA with the LCA dictionary learnt by the same command (lca_dictionary.npz), swept over lambda;
* the targets of the issue, checked and printed as PASS / MISS.

    .venv/bin/python benchmarks/ipvae.py                  # both data sets, ~1-2 min on 1 core
    .venv/bin/python benchmarks/ipvae.py --data digits --samples 200

Prints a table and writes benchmarks/results/ipvae.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neurodeploy.core.data import train_test  # noqa: E402
from neurodeploy.library.blocks.coder import distance, r2_per_image, r2_pooled
from neurodeploy.library.blocks.ipvae.reference import ipvae_step  # noqa: E402
from neurodeploy.learn.train import evaluate_ipvae  # noqa: E402

TS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000)
LAMBDAS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.7, 1.0, 1.5)
WEIGHTS = ROOT / "models" / "weights"


def load_npz(path):
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def numpy_sweep(arrays, X, Ts, seed=0):
    rng = np.random.default_rng(seed)
    u = np.repeat(arrays["u0"][None, :], len(X), 0)
    z = rng.poisson(np.exp(u)).astype(float)
    rows, want = [], set(Ts)
    for t in range(1, max(Ts) + 1):
        u, z, du = ipvae_step(u, z, X, arrays["Phi"], arrays["b"], float(arrays["eta"]), arrays["sigma"],
                              u_min=float(arrays["u_min"]), u_max=float(arrays["u_max"]),
                              du_max=float(arrays["du_max"]), soft=bool(arrays["soft_clamp"]), rng=rng)
        if t in want:
            xh = z @ arrays["Phi"].T
            r2 = float(np.mean(r2_per_image(X, xh)))
            zeros = float(np.mean(z == 0))
            rows.append({"T": t, "r2": r2, "r2_pooled": r2_pooled(X, xh), "zeros": zeros,
                         "du_norm": float(np.linalg.norm(du, axis=1).mean()), "u_max": float(u.max()),
                         "d": distance(r2, zeros)})
    return rows


def lca_sweep(Phi, X, lambdas, n_iter=200, dt_tau=0.1):
    import torch

    from neurodeploy.backends.torch.blocks.lca import lca_infer

    P = torch.as_tensor(Phi, dtype=torch.float32)
    x = torch.as_tensor(X, dtype=torch.float32)
    rows = []
    for lam in lambdas:
        a = lca_infer(x, P, lam, n_iter, dt_tau)
        xh = (a @ P.T).double().numpy()
        r2 = float(np.mean(r2_per_image(X, xh)))
        zeros = float((a == 0).double().mean())
        rows.append({"lambda": lam, "r2": r2, "r2_pooled": r2_pooled(X, xh), "zeros": zeros, "d": distance(r2, zeros)})
    return rows


def bench(data, samples, numpy_samples, T_train):
    import torch

    arrays = load_npz(WEIGHTS / f"ipvae_{data}" / "decoder.npz")
    _, X = train_test(data)
    X = X[:samples] if samples else X
    t0 = time.time()
    rows = evaluate_ipvae(arrays, X, TS, seed=0, device=torch.device("cpu"))
    t_torch = time.time() - t0
    t0 = time.time()
    np_rows = numpy_sweep(arrays, X[:numpy_samples], TS, seed=1)
    t_np = time.time() - t0
    lca_path = WEIGHTS / f"ipvae_{data}" / "lca_dictionary.npz"
    lca_rows = lca_sweep(load_npz(lca_path)["Phi"], X, LAMBDAS) if lca_path.exists() else []
    for r in rows:  # the paper's d_MAP: decoding the rates exp(u) instead of the sampled counts
        r["d_rate"] = distance(r["r2_rate"], r["zeros"])
    by_T = {r["T"]: r for r in rows}
    best = min(rows, key=lambda r: r["d"])
    out = {"data": data, "samples": len(X), "T_train": T_train, "torch_seconds": round(t_torch, 1),
           "numpy_seconds": round(t_np, 1), "numpy_samples": numpy_samples,
           "eta": float(arrays["eta"]), "ipvae_torch": rows, "ipvae_numpy": np_rows, "lca": lca_rows,
           "best_ipvae": best, "best_lca": min(lca_rows, key=lambda r: r["d"]) if lca_rows else None}
    targets = {
        "stable_to_1000": bool(by_T[1000]["r2"] >= by_T[T_train]["r2"] and np.isfinite(by_T[1000]["u_max"])
                               and by_T[1000]["u_max"] <= float(arrays["u_max"]) + 1e-6),
        "improves_beyond_T_train": bool(max(r["r2"] for r in rows if r["T"] > T_train) > by_T[T_train]["r2"]),
    }
    if data == "digits":
        ok = [r for r in rows if r["r2"] >= 0.85 and r["zeros"] >= 0.70]
        targets["digits_r2_0.85_zeros_0.70"] = bool(ok)
    elif lca_rows:
        targets["d_within_15pct_of_lca"] = bool(best["d"] <= 1.15 * out["best_lca"]["d"])
        targets["d_ratio"] = best["d"] / out["best_lca"]["d"]
        # not the target (which decodes the counts), reported as the paper does (d_MAP)
        targets["d_rate_ratio (rate decoding, informational)"] = (
            min(r["d_rate"] for r in rows) / out["best_lca"]["d"])
    out["targets"] = targets
    return out


def show(res):
    print(f"\n== {res['data']}: {res['samples']} held-out samples, T_train {res['T_train']}, eta {res['eta']:.3f}; "
          f"torch {res['torch_seconds']} s, numpy {res['numpy_seconds']} s ({res['numpy_samples']} samples)")
    print(f"{'T':>5} | {'R2':>6} {'R2pool':>6} {'R2rate':>6} {'R2avg':>6} {'zeros':>6} {'|du|':>6} {'max u':>6} {'d':>6} | numpy: "
          f"{'R2':>6} {'zeros':>6} {'max u':>6}")
    for r, q in zip(res["ipvae_torch"], res["ipvae_numpy"]):
        print(f"{r['T']:>5} | {r['r2']:>6.3f} {r['r2_pooled']:>6.3f} {r['r2_rate']:>6.3f} {r['r2_avg']:>6.3f} {r['zeros']:>6.3f} "
              f"{r['du_norm']:>6.3f} {r['u_max']:>6.2f} {r['d']:>6.3f} |        {q['r2']:>6.3f} {q['zeros']:>6.3f} {q['u_max']:>6.2f}")
    if res["lca"]:
        print("LCA:  " + "  ".join(f"λ={r['lambda']:g}: R2 {r['r2']:.3f} zeros {r['zeros']:.3f} d {r['d']:.3f}"
                                   for r in res["lca"]))
    b, bl = res["best_ipvae"], res["best_lca"]
    br = min(res["ipvae_torch"], key=lambda r: r["d_rate"])
    print(f"best iP-VAE d = {b['d']:.3f} (T={b['T']}: R2 {b['r2']:.3f}, zeros {b['zeros']:.3f}); "
          f"decoding the rates: d = {br['d_rate']:.3f} (T={br['T']})"
          + (f"; best LCA d = {bl['d']:.3f} (λ={bl['lambda']:g}: R2 {bl['r2']:.3f}, zeros {bl['zeros']:.3f})" if bl else ""))
    for k, v in res["targets"].items():
        print(f"  target {k}: {v if not isinstance(v, bool) else ('PASS' if v else 'MISS')}")


def main(argv=None):
    import torch

    from neurodeploy.core.io import atomic_write_json

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", nargs="+", default=["digits", "patches8"])
    ap.add_argument("--samples", type=int, default=0, help="held-out samples (0 = all)")
    ap.add_argument("--numpy-samples", type=int, default=200)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    results = []
    for data in a.data:
        import yaml

        t = yaml.safe_load((ROOT / "models" / "train" / f"ipvae_{data}.yaml").read_text())
        results.append(bench(data, a.samples, a.numpy_samples, int(t["train"]["T_train"])))
        show(results[-1])
    out = ROOT / "benchmarks" / "results" / "ipvae.json"
    atomic_write_json(out, json.loads(json.dumps({"machine": platform.platform(), "torch": torch.__version__,
                                                  "results": results}, default=float)))
    print(f"\nwrote {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
