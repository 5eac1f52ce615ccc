"""Early inference approximates backprop, and feedforward initialisation, on the energy model.

Four 64-100-10 hard-sigmoid nets on digits: untrained (Glorot), EqProp-trained (25 epochs),
EqProp-trained with the local drive-consistency rule (the top-down and bottom-up inputs of the
hidden layer learn to agree, i.e. the layer pair auto-encodes; 25 epochs), and EqProp-trained with
the dendritic-branch rule (each branch learns to predict the settled activity of its unit, Bengio
et al. 2016; --consistency-epochs). For each, on the 540 test digits:

* early inference: from the free fixed point, clamp the output to y* + 1e-3 (d - y*) and measure
  the cosine between the hidden layer's first-arrival change and the backprop delta; also on a
  random 10-12-12-4 net (two hidden layers);
* feedforward init: iterations until max|clip(drive) - s| < tol (1e-3) from zero, from the
  doubled-drive bottom-up sweep, from the single-drive sweep and from a sweep through separate
  feedforward weights fitted to the settled training states; residual per iteration plotted.

Writes OUT/inference.json and OUT/inference.png.

    .venv/bin/python examples/learning_inference.py        # ~1-2 min on one core
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from neurodeploy.core.io import atomic_write_json  # noqa: E402
from neurodeploy.learn.experiments import jsonable, plot_inference, run_inference  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/learning", help="output directory")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=25)
    ap.add_argument("--consistency", type=float, default=0.05, help="rate of the consistency rule")
    ap.add_argument("--activity-consistency", type=float, default=0.05,
                    help="rate of the dendritic-branch (activity) consistency rule; 0 skips that net")
    ap.add_argument("--consistency-epochs", type=int, default=100, help="epochs of the activity-consistency net")
    ap.add_argument("--tol", type=float, default=1e-3)
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    out = run_inference(args.seed, args.epochs, args.consistency, args.tol, device=args.device,
                        activity_consistency=args.activity_consistency, consistency_epochs=args.consistency_epochs)
    d = Path(args.out)
    atomic_write_json(d / "inference.json", jsonable(out))
    plot_inference(out, d / "inference.png")
    for name, r in out["nets"].items():
        print(f"{name:20s} iterations to {args.tol:g}: zero {r['iterations_zero_init']['mean']:.1f}, "
              f"FF doubled {r['iterations_ff_doubled']['mean']:.1f} ({r['speedup_ff_doubled']:.2f}x), "
              f"FF single {r['iterations_ff_single']['mean']:.1f}, "
              f"FF learned {r['iterations_ff_learned']['mean']:.1f} ({r['speedup_ff_learned']:.2f}x); "
              f"corr(bottom-up, top-down) {r['bottom_up_top_down_corr']:.2f}; "
              f"early-inference cos {[round(c, 4) for c in r['early_inference_cos_first_arrival']]}"
              + (f"; test error {100 * r['test_err']:.2f}%" if "test_err" in r else ""))
    print(f"random 10-12-12-4: early-inference cos {[round(c, 4) for c in out['deep_random_10_12_12_4']['cos_first_arrival']]}")
    for k, v in out["checks"].items():
        print(f"[{'ok' if v else 'MISSED'}] {k}")
    print(f"wrote {d / 'inference.json'} and {d / 'inference.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
