"""The demo behind `make demo`: what neurodeploy does on this machine today.

1. `neurodeploy info`: versions and which backends work here.
2. `neurodeploy check` on every shipped model, writing each verified IR to OUT/<model>.ir.json.
3. `neurodeploy run --target brian2 --plot` on every shipped model (Brian2 reference simulation;
   the numpy code generation target, so that nothing has to be compiled first), writing
   OUT/<model>/result.npz, summary.json and raster.png.
4. `neurodeploy validate` of the single-LIF and CUBA-chain models on Lava's CPU simulation in
   floating point (`lava`), in Loihi 2's bit-accurate fixed point (`loihi2-sim`) and on torch,
   against Brian2 (OUT/validate-*/report.html);
5. `neurodeploy validate` of the local plasticity rules (models/local_rules.yaml) on Lava's
   learning engine, float and fixed point (Oja's rule runs on the torch fallback there);
6. NIR interop: the NIR paper's single LIF neuron (a Norse export) imported, run and exported;
7. `compile --target loihi2-sim` of the E/I network (placement, quantization report, core map), and
   of a hybrid model whose unsupported parts run on the torch fallback (then `run` of it);
8. the single-LIF model's first spike against its analytic time.

(The E/I network is not run on Lava here: Lava's CPU simulator needs minutes for its 5,000
steps; `neurodeploy run models/ei_network.yaml --target lava -o out/ei-lava` does it.)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from neurodeploy.app import cli
from neurodeploy import load  # noqa: E402
from neurodeploy.library.neurons import get_neuron  # noqa: E402
from neurodeploy.core.result import Result  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/demo", help="output directory")
    ap.add_argument("--codegen", default="numpy", choices=["numpy", "cython", "auto"],
                    help="Brian2 code generation (cython compiles on first use: ~2 min)")
    args = ap.parse_args()
    out = Path(args.out)
    print("== neurodeploy info")
    rc = cli.main(["info"])
    models = sorted((ROOT / "models").glob("*.yaml"))

    def shown(m: Path) -> str:
        return str(m.relative_to(ROOT)) if m.is_relative_to(Path.cwd()) else str(m)

    print(f"\n== neurodeploy check ({len(models)} shipped models)")
    for m in models:
        rc |= cli.main(["check", shown(m), "--ir", str(out / f"{m.stem}.ir.json")])
    print("\n== neurodeploy run --target brian2 --plot")
    for m in models:
        print(f"\n-- {m.stem}")
        rc |= cli.main(["run", shown(m), "--target", "brian2", "-o", str(out / m.stem), "--plot",
                        "--codegen", args.codegen])

    print("\n== neurodeploy validate: Lava (float and Loihi 2 fixed point) and torch against Brian2")
    for stem in ("single_lif", "cuba_chain"):
        for target in ("lava", "loihi2-sim", "torch"):
            print(f"\n-- {stem} on {target}")
            rc |= cli.main(["validate", shown(ROOT / "models" / f"{stem}.yaml"), "--target", target,
                            "-o", str(out / f"validate-{stem}-{target}"), "--codegen", args.codegen])

    print("\n== local plasticity rules (Bengio STDP, Hebbian, Oja) on Lava's learning engine, against Brian2")
    for target, extra in (("lava", []), ("loihi2-sim", ["--tolerance-file", shown(
            ROOT / "models" / "tolerances" / "local_rules.fixed.yaml")])):
        print(f"\n-- local_rules on {target}" + (" (Oja's rule on the torch fallback)" if extra else ""))
        rc |= cli.main(["validate", shown(ROOT / "models" / "local_rules.yaml"), "--target", target,
                        "-o", str(out / f"validate-local_rules-{target}"), "--codegen", args.codegen] + extra)

    print("\n== NIR: import the NIR paper's LIF neuron (exported by Norse), run it, export it again")
    fix = ROOT / "tests" / "fixtures" / "nir-paper-lif"
    rc |= cli.main(["import", shown(fix / "lif_norse.nir"), "-o", str(out / "nir" / "lif_norse.yaml"),
                    "--input", shown(fix / "lif_norse.csv")])
    rc |= cli.main(["run", str(out / "nir" / "lif_norse.yaml"), "--target", "torch", "-o",
                    str(out / "nir" / "run"), "--plot", "--quiet"])
    spikes = Result.load(out / "nir" / "run" / "result.npz")
    steps = {k: np.round(v.t / 1e-4).astype(int).tolist() for k, v in spikes.spikes.items() if len(v.t)}
    exact = np.flatnonzero(np.loadtxt(fix / "lif_exact.csv", delimiter=",")[:, 2]).tolist()
    print(f"   spike steps on torch: {steps}; the paper's exact solution: {exact} (we fire one step "
          "later: input is added after the threshold test, as in Lava; see docs/validate.md)")
    rc |= cli.main(["export", str(out / "nir" / "lif_norse.yaml"), "-o", str(out / "nir" / "lif_again.nir")])

    print("\n== neurodeploy compile models/ei_network.yaml --target loihi2-sim")
    rc |= cli.main(["compile", shown(ROOT / "models" / "ei_network.yaml"), "--target", "loihi2-sim",
                    "-o", str(out / "ei_network-loihi2-sim")])
    print("\n== a hybrid model: what Loihi 2 cannot host (a time-varying current, soft-bound STDP) is placed on"
          " the torch fallback, and `run` exchanges spikes with the Lava part every step")
    rc |= cli.main(["compile", shown(ROOT / "models" / "hybrid_ramp_stdp.yaml"), "--target", "loihi2-sim",
                    "-o", str(out / "hybrid_ramp_stdp-loihi2-sim")])
    rc |= cli.main(["run", shown(ROOT / "models" / "hybrid_ramp_stdp.yaml"), "--target", "loihi2-sim",
                    "-o", str(out / "hybrid_ramp_stdp-loihi2-sim" / "run"), "--quiet"])

    net = load(shown(ROOT / "models" / "single_lif.yaml"))
    pop = net.populations[0]
    lif = get_neuron(pop.model)
    t_star = lif.first_spike_time(lif.make_params(pop.params), net.stimuli[0].amplitude)
    res = Result.load(out / "single_lif" / "result.npz")
    first = res.spikes["neuron"].t[0]
    print(f"\nsingle_lif: Brian2's first spike in the step starting at {first * 1e3:.1f} ms; analytic "
          f"{t_star * 1e3:.3f} ms (dt = {net.simulation.dt * 1e3:g} ms)")
    summary = json.loads((out / "ei_network" / "summary.json").read_text())
    rates = ", ".join(f"{k} {v['mean_rate_hz']:.1f} Hz" for k, v in summary["populations"].items())
    print(f"ei_network: {rates}; plots in {out}/<model>/raster.png")
    return rc


if __name__ == "__main__":
    sys.exit(main())
