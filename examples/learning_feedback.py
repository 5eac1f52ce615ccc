"""BP vs feedback alignment vs sign symmetry vs Kolen-Pollack vs weight mirror on digits.

A 64-64-64-64-10 tanh MLP (softmax cross-entropy, SGD lr 0.05, batch 32, weight decay 5e-4 per
step, 200 epochs) on scikit-learn's digits (70/30 stratified split, inputs mean-centred), trained
with each rule for each seed on the torch fallback. Logs per epoch: test accuracy, the angle
between each layer's feedback path and W^T (weight angle) and between the rule's hidden deltas
and the true backprop deltas (delta angle). Writes OUT/feedback.json and OUT/feedback.png.

    .venv/bin/python examples/learning_feedback.py                 # 5 seeds (~3-4 min on one core)
    .venv/bin/python examples/learning_feedback.py --seeds 0 --epochs 50 --rules bp fa
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from neurodeploy.core.io import atomic_write_json  # noqa: E402
from neurodeploy.learn.experiments import jsonable, plot_feedback, run_feedback  # noqa: E402
from neurodeploy.learn.feedback import RULES  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/learning", help="output directory")
    ap.add_argument("--rules", nargs="+", default=list(RULES), choices=RULES)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--epochs", type=int, default=200)
    ap.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: shared machine)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = run_feedback(args.rules, args.seeds, epochs=args.epochs, device=args.device)
    d = Path(args.out)
    atomic_write_json(d / "feedback.json", jsonable(out))
    plot_feedback(out, d / "feedback.png")
    for rule, s in out["summary"].items():
        if rule != "checks":
            print(f"{rule.upper():3s} acc {100 * s['test_acc_mean']:.2f}±{100 * s['test_acc_std']:.2f}%  "
                  f"weight angles {[round(a, 1) for a in s['weight_angle_mean']]}  "
                  f"delta angles {[round(a, 1) for a in s['delta_angle_mean']]}  {s['seconds_mean']:.1f} s/run")
    for k, v in out["summary"]["checks"].items():
        print(f"[{'ok' if v else 'MISSED'}] {k}")
    print(f"wrote {d / 'feedback.json'} and {d / 'feedback.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
