"""The STDP window of Bengio et al.'s rule dw = eta x_pre ds_post/dt, on every backend.

The rule's spiking trace form is bilinear in the spike trains, so it is a pair window with
A+ = eta tau_s/(tau_pre+tau_s), A- = eta tau_pre/(tau_pre+tau_s) (integral zero). It is lowered to
the spec rule `stdp` and driven by one pre spike and one forced post spike at each
Delta t = t_post - t_pre in [-50, 50] ms (dt 0.1 ms) on the numpy reference, Brian2 (numpy
codegen), Lava (float, CPU) and the torch fallback; plus the canonical-form numpy simulation of
the trace rule itself. Writes OUT/stdp_window.json and OUT/stdp_window.png.

    .venv/bin/python examples/learning_stdp_window.py                 # ~4 min (Lava is ~10 s/pair)
    .venv/bin/python examples/learning_stdp_window.py --backends reference brian2
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from neurodeploy.core.io import atomic_write_json  # noqa: E402
from neurodeploy.learn.experiments import jsonable, plot_stdp_window, run_stdp_window  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/learning", help="output directory")
    ap.add_argument("--backends", nargs="+", default=["reference", "brian2", "lava", "torch"],
                    choices=["reference", "brian2", "lava", "loihi2-sim", "torch"])
    ap.add_argument("--tau-pre", type=float, default=20e-3)
    ap.add_argument("--tau-s", type=float, default=20e-3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    out = run_stdp_window(tau_pre=args.tau_pre, tau_s=args.tau_s, backends=tuple(args.backends))
    d = Path(args.out)
    atomic_write_json(d / "stdp_window.json", jsonable(out))
    plot_stdp_window(out, d / "stdp_window.png")
    for k, e in out["max_rel_error"].items():
        print(f"{k:40s} max rel. error vs analytic {e:.2e}  signs {'ok' if out['sign_ok'][k] else 'WRONG'}  "
              f"{out['seconds'][k]:.1f} s")
    for k, e in out["errors"].items():
        print(f"{k:40s} could not run: {e}")
    print(f"analytic window integral / integral of |window|: {out['analytic_integral_rel']:.1e}")
    print(f"wrote {d / 'stdp_window.json'} and {d / 'stdp_window.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
