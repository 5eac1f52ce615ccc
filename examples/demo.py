"""The demo behind `make demo`: what neurodeploy does on this machine today.

1. `neurodeploy info`: versions and which backends work here.
2. `neurodeploy check` on every shipped model, writing each verified IR to OUT/<model>.ir.json.
3. `neurodeploy run --target brian2 --plot` on every shipped model (Brian2 reference simulation;
   the numpy code generation target, so that nothing has to be compiled first), writing
   OUT/<model>/result.npz, summary.json and raster.png.
4. The single-LIF model's first spike against its analytic time.

It grows as backends land (Lava CPU simulation, GPU fallback).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neurodeploy import cli, load  # noqa: E402
from neurodeploy.neurons import get_neuron  # noqa: E402
from neurodeploy.result import Result  # noqa: E402


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
