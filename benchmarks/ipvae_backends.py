"""Benchmark: spiking iP-VAE inference on every backend vs the training-time evaluation (issue 6).

The shipped digits coder (models/weights/ipvae_digits/decoder.npz) on its held-out split
(``neurodeploy.core.data.arrays.train_test('digits')``: 297 images; the other 1500 trained it), repeated
``--reps`` times with independent random streams so that >= 500 image runs enter every
statistic; or (``--data patches8``) the shipped patch coder on up to 2000 distinct held-out
patches. Per T (default 32 and 128) and backend:

* torch exact: ``ipvae_from_arrays(arrays).infer(x, T, mode='exact')`` (float32, the training-time
  evaluation of ``neurodeploy.learn.train.evaluate_ipvae``);
* brian2: :func:`neurodeploy.backends.brian2.blocks.ipvae.run_ipvae_brian2` (numpy codegen, Synapses);
* lava float / lava fixed: :func:`neurodeploy.backends.lava.blocks.ipvae.run_ipvae_lava`
  (``Loihi2SimCfg`` floating_pt / fixed_pt; block-diagonal ``Sparse`` lateral connection, 50
  images per Lava run, unless ``--connection dense``);

mean per-image R^2 of ``xhat = Phi z_T``, pooled R^2, R^2 of the averaged counts (``r2_avg``) and
of the rates (``r2_rate``), fraction of zero counts, max u and wall time. The agreement checks:
brian2 and lava float against torch, per image (mean over reps) paired difference of R^2 and of
the zero fraction, |mean| <= 4 standard errors; lava fixed against lava float, |difference of
means| <= 0.02 in R^2 and zeros (the issue's targets).

    .venv/bin/python benchmarks/ipvae_backends.py                 # ~2-4 min on 1-2 cores
    .venv/bin/python benchmarks/ipvae_backends.py --T 32 --reps 2
    .venv/bin/python benchmarks/ipvae_backends.py --data patches8 --samples 600 --reps 1   # 600 patches

Prints a table and writes benchmarks/results/ipvae_backends.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ipvae import load_npz  # noqa: E402
from results_io import write_results  # noqa: E402

from neurodeploy.backends.brian2.blocks.ipvae import run_ipvae_brian2  # noqa: E402
from neurodeploy.backends.lava.blocks.ipvae import run_ipvae_lava  # noqa: E402
from neurodeploy.core.data import train_test  # noqa: E402
from neurodeploy.backends.torch.blocks.ipvae import ipvae_from_arrays  # noqa: E402

BACKENDS = ("torch", "brian2", "lava_float", "lava_fixed")
MC_K = 4.0
FIXED_TOL = 0.02


def run_torch(arrays, X, T, seed):
    import torch

    model = ipvae_from_arrays(arrays)
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    u, z, rec = model.infer(torch.as_tensor(X, dtype=torch.float32), T, mode="exact", record=[T], generator=g)
    sec = time.perf_counter() - t0
    m = rec[T]
    z = z.double().numpy()
    return {"r2_images": m["r2_images"], "r2_pooled": m["r2_pooled"], "r2_avg": m["r2_avg"],
            "r2_rate": m["r2_rate"], "zeros_images": np.mean(z == 0, axis=1), "u_max": m["u_max"],
            "seconds": sec}


def run_backend(name, arrays, X, T, seed, connection, lava_batch):
    if name == "torch":
        return run_torch(arrays, X, T, seed)
    if name == "brian2":
        return run_ipvae_brian2(arrays, X, T, seed=seed, batch=50)
    return run_ipvae_lava(arrays, X, T, fixed=name == "lava_fixed", seed=seed, connection=connection,
                          batch=lava_batch)


def summarize(runs):
    r2 = np.stack([r["r2_images"] for r in runs])  # (reps, images)
    zeros = np.stack([r["zeros_images"] for r in runs])
    return {"r2": float(r2.mean()), "r2_pooled": float(np.mean([r["r2_pooled"] for r in runs])),
            "r2_avg": float(np.mean([r["r2_avg"] for r in runs])),
            "r2_rate": float(np.mean([r["r2_rate"] for r in runs])), "zeros": float(zeros.mean()),
            "u_max": float(max(r["u_max"] for r in runs)), "seconds": float(sum(r["seconds"] for r in runs)),
            "image_runs": int(r2.size)}, r2.mean(0), zeros.mean(0)


def paired(a, b):
    d = np.asarray(a) - np.asarray(b)
    se = float(d.std(ddof=1) / np.sqrt(len(d)))
    return {"mean_diff": float(d.mean()), "se": se, "bound": MC_K * se, "ok": bool(abs(d.mean()) <= MC_K * se)}


def bench(arrays, X, T, reps, connection, lava_batch):
    rows, per_image = {}, {}
    for bi, name in enumerate(BACKENDS):
        runs = [run_backend(name, arrays, X, T, 1000 * bi + rep, connection, lava_batch) for rep in range(reps)]
        rows[name], r2_img, z_img = summarize(runs)
        per_image[name] = (r2_img, z_img)
        print(f"  T={T} {name}: done in {rows[name]['seconds']:.1f} s", flush=True)
    checks = {}
    for name in ("brian2", "lava_float", "lava_fixed"):
        checks[f"{name}_vs_torch"] = {"r2": paired(per_image[name][0], per_image["torch"][0]),
                                      "zeros": paired(per_image[name][1], per_image["torch"][1])}
    dr2 = rows["lava_fixed"]["r2"] - rows["lava_float"]["r2"]
    dz = rows["lava_fixed"]["zeros"] - rows["lava_float"]["zeros"]
    checks["fixed_vs_float"] = {"r2_diff": dr2, "zeros_diff": dz, "paired_r2": paired(per_image["lava_fixed"][0],
                                                                                   per_image["lava_float"][0]),
                                "ok": bool(abs(dr2) <= FIXED_TOL and abs(dz) <= FIXED_TOL)}
    return {"T": T, "rows": rows, "checks": checks}


def show(res):
    print(f"\n== T = {res['T']}")
    print(f"{'backend':>11} | {'R2':>6} {'R2pool':>6} {'R2avg':>6} {'R2rate':>6} {'zeros':>6} {'max u':>6} "
          f"{'runs':>5} {'wall s':>7}")
    for name, r in res["rows"].items():
        print(f"{name:>11} | {r['r2']:>6.4f} {r['r2_pooled']:>6.4f} {r['r2_avg']:>6.4f} {r['r2_rate']:>6.4f} "
              f"{r['zeros']:>6.4f} {r['u_max']:>6.2f} {r['image_runs']:>5} {r['seconds']:>7.1f}")
    for name, c in res["checks"].items():
        if name == "fixed_vs_float":
            print(f"  fixed - float: R2 {c['r2_diff']:+.4f}, zeros {c['zeros_diff']:+.4f} "
                  f"(target |.| <= {FIXED_TOL}): {'PASS' if c['ok'] else 'MISS'}")
        else:
            s = "; ".join(f"{k} {v['mean_diff']:+.4f} (4 SE {v['bound']:.4f}) {'PASS' if v['ok'] else 'MISS'}"
                          for k, v in c.items())
            print(f"  {name}: {s}")


def main(argv=None):
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--T", type=int, nargs="+", default=[32, 128])
    ap.add_argument("--reps", type=int, default=2, help="independent repetitions of the held-out set")
    ap.add_argument("--data", choices=("digits", "patches8"), default="digits",
                    help="the shipped coder and its held-out split (digits: 297 images; patches8: 2000 patches)")
    ap.add_argument("--samples", type=int, default=0, help="held-out images (0 = the whole held-out split)")
    ap.add_argument("--connection", choices=("sparse", "dense"), default="sparse")
    ap.add_argument("--lava-batch", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None,
                    help="default: benchmarks/results/ipvae_backends.json (digits), ipvae_backends_patches8.json")
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    arrays = load_npz(ROOT / "models" / "weights" / f"ipvae_{a.data}" / "decoder.npz")
    _, X = train_test(a.data)
    X = X[:a.samples] if a.samples else X
    if a.out is None:
        suffix = "" if a.data == "digits" else f"_{a.data}"
        a.out = str(ROOT / "benchmarks" / "results" / f"ipvae_backends{suffix}.json")
    print(f"{len(X)} held-out {a.data} images x {a.reps} reps = {len(X) * a.reps} image runs per backend and T")
    results = []
    for T in a.T:
        results.append(bench(arrays, X, T, a.reps, a.connection, a.lava_batch))
        show(results[-1])
    write_results(a.out, "ipvae_backends", data=a.data, images=len(X), reps=a.reps, connection=a.connection,
                  lava_batch=a.lava_batch, mc_k=MC_K, fixed_tol=FIXED_TOL, results=results)


if __name__ == "__main__":
    main()
