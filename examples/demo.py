"""The demo behind `make demo`: everything neurodeploy can do on this machine today.

1. `neurodeploy info`: versions and which backends work here.
2. `neurodeploy check` on every shipped model, writing each verified IR to OUT/<model>.ir.json.
3. The single-LIF model stepped with its numpy reference (the oracle every backend is tested
   against), compared with the analytic first spike time.

It grows as backends land (Brian2 reference, Lava CPU simulation, GPU fallback).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from neurodeploy import cli, load  # noqa: E402
from neurodeploy.neurons import get_neuron  # noqa: E402


def reference_single_lif(spec: Path) -> None:
    net = load(spec)
    pop = net.populations[0]
    model = get_neuron(pop.model)
    p = model.make_params(pop.params)
    drive = net.stimuli[0].amplitude
    dt = net.simulation.dt
    state = model.initial_state(p, pop.size, {k: v.a for k, v in pop.init.items()})
    first = None
    for step in range(net.simulation.steps):
        state, spikes = model.reference_step(p, state, {"I_ext": np.array([drive])}, dt)
        if spikes.any() and first is None:
            first = (step + 1) * dt  # the step ending at (step+1)*dt
    t_star = model.first_spike_time(p, drive)
    print(f"\nsingle_lif, numpy reference step: first spike at {first * 1e3:.1f} ms; "
          f"analytic {t_star * 1e3:.2f} ms; difference {abs(first - t_star) * 1e3:.2f} ms (dt = {dt * 1e3:g} ms)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="out/demo", help="where to write the IR files")
    args = ap.parse_args()
    out = Path(args.out)
    print("== neurodeploy info")
    rc = cli.main(["info"])
    models = sorted((ROOT / "models").glob("*.yaml"))
    print(f"\n== neurodeploy check ({len(models)} shipped models)")
    for m in models:
        rc |= cli.main(["check", str(m.relative_to(ROOT) if m.is_relative_to(Path.cwd()) else m),
                        "--ir", str(out / f"{m.stem}.ir.json")])
    reference_single_lif(ROOT / "models" / "single_lif.yaml")
    print(f"\nIR files in {out}/. Simulation backends are not implemented yet: see README.md (Status).")
    return rc


if __name__ == "__main__":
    sys.exit(main())
