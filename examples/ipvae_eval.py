"""Evaluate a trained iP-VAE coder on held-out data and plot it (reconstructions, dictionary,
T_test curves, the sparsity-reconstruction plane with LCA).

    .venv/bin/python examples/ipvae_eval.py                       # shipped digits coder
    .venv/bin/python examples/ipvae_eval.py --data patches8 -o out/ipvae_eval/patches8
    .venv/bin/python examples/ipvae_eval.py --weights out/train/ipvae_digits/decoder.npz

Writes metrics.json and reconstructions.png, dictionary.png, curves.png, plane.png (plus
lca_dictionary.png when an LCA dictionary is given or shipped) into the output directory.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


def main(argv=None) -> int:
    import torch

    from ipvae import LAMBDAS, TS, lca_sweep, load_npz  # benchmarks/ipvae.py
    from neurodeploy.core.data import train_test
    from neurodeploy.core.io import atomic_write_json
    from neurodeploy.learn import plots
    from neurodeploy.backends.torch.blocks.ipvae import ipvae_from_arrays
    from neurodeploy.learn.train import evaluate_ipvae

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="digits", choices=("digits", "patches8", "patches16"))
    ap.add_argument("--weights", help="decoder.npz written by `neurodeploy train` (default: the shipped one)")
    ap.add_argument("--lca", help="LCA dictionary .npz with key Phi (default: the shipped one, if any)")
    ap.add_argument("--samples", type=int, default=0, help="held-out samples (0 = all)")
    ap.add_argument("-o", "--out", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(1)
    shipped = ROOT / "models" / "weights" / f"ipvae_{a.data}"
    weights = Path(a.weights or shipped / "decoder.npz")
    lca = Path(a.lca) if a.lca else shipped / "lca_dictionary.npz"
    out = Path(a.out or Path("out") / "ipvae_eval" / a.data)
    arrays = load_npz(weights)
    _, X = train_test(a.data)
    X = X[:a.samples] if a.samples else X
    rows = evaluate_ipvae(arrays, X, TS, seed=0, device=torch.device("cpu"))
    lca_rows, lca_Phi = None, None
    if lca.exists():
        lca_Phi = load_npz(lca)["Phi"]
        lca_rows = lca_sweep(lca_Phi, X, LAMBDAS)
    model = ipvae_from_arrays(arrays)
    plots.plot_dictionary(arrays["Phi"], out / "dictionary.png", f"iP-VAE Φ ({a.data})")
    plots.plot_reconstructions(model, X, out / "reconstructions.png", Ts=(1, 16, 64, 1000))
    plots.plot_curves(rows, out / "curves.png")
    plots.plot_plane(rows, lca_rows, out / "plane.png")
    if lca_Phi is not None:
        plots.plot_dictionary(lca_Phi, out / "lca_dictionary.png", f"LCA Φ ({a.data})")
    atomic_write_json(out / "metrics.json", json.loads(json.dumps({"ipvae": rows, "lca": lca_rows}, default=float)))
    for r in rows:
        print(f"T={r['T']:>4}: R2 {r['r2']:.3f} (rates {r['r2_rate']:.3f}), zeros {r['zeros']:.3f}, "
              f"|du| {r['du_norm']:.3f}, max u {r['u_max']:.2f}, d {r['d']:.3f}")
    if lca_rows:
        b = min(lca_rows, key=lambda r: r["d"])
        print(f"LCA best: λ={b['lambda']:g} R2 {b['r2']:.3f} zeros {b['zeros']:.3f} d {b['d']:.3f}")
    print(f"wrote {out}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
