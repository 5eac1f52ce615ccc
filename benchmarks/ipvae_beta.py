"""Benchmark: the iP-VAE's KL weight beta on 8x8 natural-image patches, seed-averaged (issue 18).

Trains one iP-VAE per beta (default 4, 8, 16, 24: the paper's best is 24) with the recipe of
``models/train/ipvae_patches8.yaml`` (``--epochs`` overrides its 12), then evaluates each with
``--seeds`` Poisson streams at one fixed T (``--T-fixed``, default 1000) and at T_train, and
compares d = sqrt((1 - R^2)^2 + (1 - zeros)^2) with LCA's, LCA's lambda chosen on a validation
split (the last 500 training patches) with the shipped LCA dictionary. The same code runs on
CUDA unchanged (``--device cuda``: default when a GPU is present).

    .venv/bin/python benchmarks/ipvae_beta.py --epochs 2 --betas 4 24 --seeds 2 --samples 200   # CPU smoke run
    python benchmarks/ipvae_beta.py --epochs 40                                              # a GPU run

Prints a table and writes benchmarks/results/ipvae_beta.json (``--out``).
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ipvae import LAMBDAS, ipvae_over_seeds, lca_validated, load_npz, mean_se  # noqa: E402

from neurodeploy.core.data import train_test  # noqa: E402
from neurodeploy.core.io import atomic_write_json  # noqa: E402
from neurodeploy.learn.run import read_train_spec  # noqa: E402
from neurodeploy.learn.train import train  # noqa: E402


def main(argv=None):
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--betas", type=float, nargs="+", default=[4.0, 8.0, 16.0, 24.0])
    ap.add_argument("--epochs", type=int, default=None, help="training epochs (default: the spec's)")
    ap.add_argument("--clamp", type=float, default=None, help="u_max = du_max (default: the spec's, 4)")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--T-fixed", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=0, help="held-out patches (0 = all 2000)")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ipvae_beta.json"))
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    device = torch.device(a.device)

    cfg0, _ = read_train_spec(ROOT / "models" / "train" / "ipvae_patches8.yaml")
    X_train, X_test = train_test(cfg0.dataset)
    X_test = X_test[:a.samples] if a.samples else X_test
    n_val = 500
    lca = lca_validated(load_npz(ROOT / "models" / "weights" / "ipvae_patches8" / "lca_dictionary.npz")["Phi"],
                        X_train[-n_val:], X_test, LAMBDAS)
    Ts = sorted({1, 4, 16, cfg0.T_train, 64, 256, a.T_fixed})
    rows = []
    print(f"LCA: lambda {lca['lambda']:g} (validation), test d {lca['chosen']['d']:.4f}")
    print(f"{'beta':>5} {'epochs':>6} {'train s':>8} | {'R2(T)':>15} {'zeros(T)':>15} {'d(T)':>15} {'d/LCA':>6} | "
          f"{'R2(T)-R2(Ttr)':>16}")
    for beta in a.betas:
        over = {"beta": beta, "name": f"ipvae_patches8_beta{beta:g}"}
        if a.epochs is not None:
            over["epochs"] = a.epochs
        if a.clamp is not None:
            over.update(u_max=a.clamp, du_max=a.clamp)
        cfg = dataclasses.replace(cfg0, **over)
        t0 = time.time()
        with tempfile.TemporaryDirectory() as tmp:
            model, history = train(cfg, tmp, progress=False, device=device, X_train=X_train)
        t_train = time.time() - t0
        model.eval()
        agg, per_seed = ipvae_over_seeds(model, X_test, Ts, a.seeds, device)
        by_T = {r["T"]: r for r in agg}
        fx = by_T[a.T_fixed]
        i_fix, i_tr = Ts.index(a.T_fixed), Ts.index(cfg.T_train)
        gain = mean_se([p[i_fix]["r2"] - p[i_tr]["r2"] for p in per_seed])
        row = {"beta": beta, "epochs": cfg.epochs, "u_max": cfg.u_max, "train_seconds": round(t_train, 1),
               "final_loss": history[-1]["loss"] if history else None, "at_T_fixed": fx,
               "d_ratio_to_lca": fx["d"] / lca["chosen"]["d"],
               "r2_gain_T_fixed_minus_T_train": {"mean": gain[0], "se": gain[1]}, "by_T": agg,
               "finite": bool(np.isfinite(fx["u_max"]))}
        rows.append(row)
        print(f"{beta:>5g} {cfg.epochs:>6} {t_train:>8.1f} | {fx['r2']:>7.4f} ± {fx['r2_se']:.4f} "
              f"{fx['zeros']:>7.4f} ± {fx['zeros_se']:.4f} {fx['d']:>7.4f} ± {fx['d_se']:.4f} "
              f"{row['d_ratio_to_lca']:>6.3f} | {gain[0]:+.4f} ± {gain[1]:.4f}", flush=True)
        out = {"machine": platform.platform(), "torch": torch.__version__, "device": str(device),
               "T_fixed": a.T_fixed, "seeds": a.seeds, "samples": len(X_test), "lca": lca, "runs": rows}
        atomic_write_json(a.out, _jsonable(out))  # after every beta: a cut-short run keeps what it finished
    print(f"wrote {a.out}")


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return None if not np.isfinite(obj) else float(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    return obj


if __name__ == "__main__":
    main()
