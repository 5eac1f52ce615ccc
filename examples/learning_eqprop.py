"""Equilibrium propagation on digits (64-100-10, hard-sigmoid leaky integrators).

The net1 recipe of the reference code scaled to digits: eps 0.5, 20 free / 4 nudged iterations,
beta 1.0 (the paper's value; 0.5, the reference code's, left one seed in three stuck at ~14 %)
with a random sign per mini-batch, per-layer rates (0.1, 0.05), batch 20, persistent
particles, 25 epochs; test error from a 100-iteration free phase from zero. Also checks the
EqProp update against finite-difference gradients of the free fixed point's cost on a tiny
float64 net (beta 0.01 / 0.1 / 0.5, one-sided and symmetric). Writes OUT/eqprop.json, .png.

    .venv/bin/python examples/learning_eqprop.py           # 5 seeds (~40 s on one core)
    .venv/bin/python examples/learning_eqprop.py --seeds 0 --epochs 5 --symmetric
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from neurodeploy.core.io import atomic_write_json  # noqa: E402
from neurodeploy.learn.experiments import jsonable, plot_eqprop, run_eqprop  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/learning", help="output directory")
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--beta", type=float, default=1.0, help="nudging strength (sign drawn per batch)")
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--symmetric", action="store_true", help="symmetric (+beta/-beta) nudging")
    ap.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = run_eqprop(args.seeds, args.epochs, args.device, symmetric=args.symmetric, beta=args.beta)
    d = Path(args.out)
    atomic_write_json(d / "eqprop.json", jsonable(out))
    plot_eqprop(out, d / "eqprop.png")
    s = out["summary"]
    print(f"EqProp test error {100 * s['test_err_mean']:.2f}±{100 * s['test_err_std']:.2f}% "
          f"(train {100 * s['train_err_mean']:.2f}%), {s['seconds_mean']:.1f} s/run")
    for k, v in out["fd_cosine"].items():
        print(f"  cos(EqProp, finite differences) {k:18s} {[round(c, 4) for c in v]}")
    for k, v in s["checks"].items():
        print(f"[{'ok' if v else 'MISSED'}] {k}")
    print(f"wrote {d / 'eqprop.json'} and {d / 'eqprop.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
