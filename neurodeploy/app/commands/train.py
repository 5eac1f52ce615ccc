"""``neurodeploy train SPEC``: train an iP-VAE on the GPU fallback (:func:`neurodeploy.train`; the
training file's format and what is written: :mod:`neurodeploy.learn.run`)."""

from __future__ import annotations

from .. import api


def add_arguments(sp) -> None:
    sp.add_argument("spec", metavar="SPEC", help="a training file (see models/train/*.yaml)")
    sp.add_argument("-o", "--out", metavar="DIR", help="output directory (default: out/train/<name>)")
    sp.add_argument("--epochs", type=int, metavar="N", help="override train.epochs (e.g. 1 for a smoke test)")
    sp.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="torch device (default: auto)")
    sp.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads (default: torch's choice)")
    sp.add_argument("--no-progress", action="store_true", help="no progress bar")
    sp.add_argument("--no-plots", action="store_true", help="skip the PNG plots")


def run(args) -> int:
    m = api.train(args.spec, args.out, epochs=args.epochs, device=args.device, threads=args.threads,
                  progress=not args.no_progress, plots=not args.no_plots)
    _print_table(m["ipvae"], m.get("lca"))
    print(f"trained {m['name']} in {m['train_seconds']:.0f} s on {m['device']}; wrote {m['out']}/ (checkpoint.pt, "
          f"decoder.npz, decoder.onnx, ipvae_rate.onnx, {m['name']}.yaml, metrics.json)")
    return 0


def _print_table(rows, lca_rows=None) -> None:
    print(f"{'T':>6} {'R2':>7} {'R2pool':>7} {'R2rate':>7} {'R2avg':>7} {'zeros':>6} {'|du|':>7} {'max u':>6} {'d':>6}")
    for r in rows:
        print(f"{r['T']:>6} {r['r2']:>7.3f} {r['r2_pooled']:>7.3f} {r['r2_rate']:>7.3f} {r['r2_avg']:>7.3f} {r['zeros']:>6.3f} "
              f"{r['du_norm']:>7.3f} {r['u_max']:>6.2f} {r['d']:>6.3f}")
    if lca_rows:
        print(f"{'LCA λ':>8} {'R2':>7} {'zeros':>6} {'d':>6}")
        for r in lca_rows:
            print(f"{r['lambda']:>8.3g} {r['r2']:>7.3f} {r['zeros']:>6.3f} {r['d']:>6.3f}")
