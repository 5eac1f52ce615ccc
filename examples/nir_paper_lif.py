"""The NIR paper's single-LIF benchmark, validated: neurodeploy's backends against the exact
solution and against the traces that ten other platforms recorded (one of them a Loihi chip).

    .venv/bin/python examples/nir_paper_lif.py [-o out/nir_paper_lif] [--hand-built]

The neuron (``tests/fixtures/nir-paper-lif/``, from neuromorphs/NIR ``paper/01_lif``): Input ->
Affine(weight 1) -> LIF(tau = 2.5 ms, r = 1, v_leak = 0, v_th = 0.1, v_reset = 0), dt = 0.1 ms,
1000 steps, driven by the recorded input (column 0 of every CSV).

Two specs of that neuron are run (``build_network``):

* ``nir``: ``lif_norse.nir`` through neurodeploy's NIR importer (``import_nir``, the interop
  issue), or with ``--hand-built`` the equivalent hand-written ``examples/nir_paper_lif/lif.yaml``.
  neurodeploy integrates the membrane exactly: decay ``exp(-dt/tau)`` per step, and an input spike
  raises ``v`` by ``r dt / tau = 0.04`` (NIR's spike-as-one-step-pulse convention, as Norse).
* ``euler``: ``examples/nir_paper_lif/lif_euler.yaml``, the same neuron as Norse and Lava
  *discretise* it (forward Euler: decay ``1 - dt/tau = 0.96`` per step), written as an exactly
  integrated LIF with ``tau_m = -dt / ln(1 - dt/tau) = 2.4495 ms``. This is the spec whose Loihi
  2 decay constant equals the one Lava used on the chip (dv = 164/4096).

Common units: NIR's (dimensionless; read as volt, v_th = 0.1). Platform traces are rescaled by a
fixed factor each, stated in ``SCALES`` with its reason and checked against a least-squares fit
printed in the output. Spike steps are the steps whose output column is 1. Voltage RMSE is over
the sub-threshold samples (no spike in either trace in that step or the one before) after
aligning by the integer lag in -2..2 that minimises it (the lag is reported; Lava delivers input
one step late).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "nir-paper-lif"
SPEC_DIR = ROOT / "examples" / "nir_paper_lif"
DT, TAU, STEPS = 1e-4, 2.5e-3, 1000
#: platform -> (factor to multiply its trace by to get NIR units, why)
SCALES = {
    "exact": (1.0, "NIR units"),
    "norse": (1.0, "NIR units"),
    "lava_cpu_float": (1.0, "NIR units"),
    "lava_cpu_fixed": (1 / 16000, "Lava fixed point: v_th 0.1 -> vth_mant 25 << 6 = 1600, an input spike's "
                                  "0.04 -> weight 10 << 6 = 640, i.e. 16000 integer units per NIR unit"),
    "lava_loihi_fixed": (1 / 16000, "as lava_cpu_fixed (same integers, measured on a Loihi chip)"),
    "nengo": (1 / 10, "nengo-loihi normalises v_th to 1: 10 units per NIR unit"),
    "snntorch": (1 / 25, "snnTorch's import folds tau/dt = 25 into the state: v_th 0.1 -> 2.5"),
    "spinnaker2": (1 / 25, "as snnTorch (v_th 2.5)"),
    "rockpool": (1.0, "NIR units"),
    "sinabs": (1.0, "NIR units"),
    "spyx": (1.0, "NIR units"),
}
PLATFORMS = [k for k in SCALES if k != "exact"]
OUR_TARGETS = ["brian2", "lava", "loihi2-sim", "torch", "loihi2-torch"]


def read_csv(name: str) -> np.ndarray:
    a = np.loadtxt(FIXTURES / f"lif_{name}.csv", delimiter=",", ndmin=2)
    if a.shape != (STEPS, 3):
        raise ValueError(f"lif_{name}.csv: expected {STEPS} x 3, got {a.shape}")
    return a


def write_hand_built_specs() -> None:
    """(Re)write examples/nir_paper_lif/lif.yaml and lif_euler.yaml from the CSV's input column."""
    from neurodeploy.core.io import atomic_write_text

    steps = np.flatnonzero(read_csv("exact")[:, 0])
    times = ", ".join(f"{k * DT * 1e3:.1f} ms" for k in steps)
    tau_euler = -DT / np.log(1 - DT / TAU)
    for fname, tau, note in (
            ("lif.yaml", TAU, "exact integration of NIR's LIF (decay exp(-dt/tau) per step)"),
            ("lif_euler.yaml", tau_euler, "Norse's / Lava's forward-Euler discretisation (decay 1 - dt/tau = 0.96 "
                                          "per step), written as tau_m = -dt/ln(1 - dt/tau)")):
        text = f"""# The NIR paper's single LIF neuron (neuromorphs/NIR paper/01_lif, lif_norse.nir), built by hand
# from its documented parameters: {note}.
# Written by examples/nir_paper_lif.py from column 0 of tests/fixtures/nir-paper-lif/lif_exact.csv.
# An input spike raises v by r*dt/tau = 0.04 (NIR's spike as a one-step pulse of height 1).
neurodeploy: 1
name: nir_paper_lif{'_euler' if 'euler' in fname else ''}
simulation: {{dt: 0.1 ms, steps: {STEPS}, seed: 0}}
populations:
  - name: lif
    size: 1
    model: lif
    params: {{tau_m: {tau * 1e3:.10g} ms, v_rest: 0 mV, v_reset: 0 mV, v_th: 100 mV, R_m: 1 ohm, t_ref: 0 ms}}
stimuli:
  - name: input
    kind: spike_times
    size: 1
    spikes:
      - {{neuron: 0, times: [{times}]}}
projections:
  - {{name: input_to_lif, source: input, target: lif, connectivity: dense, weights: {DT / TAU * 1e3:g} mV}}
probes:
  - {{target: lif, record: spikes}}
  - {{target: lif, record: v}}
"""
        atomic_write_text(SPEC_DIR / fname, text)


def build_network(variant: str, out: Path, hand_built: bool = False):
    """The spec to run. ``nir``: the importer (one line to switch to the hand-built YAML)."""
    import neurodeploy as nd

    if variant == "euler":
        return nd.load(SPEC_DIR / "lif_euler.yaml")
    if hand_built:
        return nd.load(SPEC_DIR / "lif.yaml")
    from neurodeploy.interop.nir import import_nir, read_inputs

    net, _ = import_nir(FIXTURES / "lif_norse.nir", out / "imported" / "lif_norse.yaml",
                        inputs=read_inputs(FIXTURES / "lif_norse.csv", size_hint=1))
    return net


def run_ours(net, out: Path) -> dict[str, dict]:
    """Run ``net`` on each of OUR_TARGETS (the options `validate` uses); their (v, spike steps) in
    NIR units, and each run's result.npz under ``out/<target>/``."""
    import neurodeploy as nd
    from neurodeploy.validation.run import backend_options

    got = {}
    for t in OUR_TARGETS:
        r = nd.simulate(net, t, options=backend_options(nd.targets()[t], codegen="numpy", torch_device="cpu"))
        r.save(out / t / "result.npz")
        pop = net.populations[0].name
        tr = next(x for x in r.traces.values() if x.variable == "v")
        got[t] = {"v": tr.values[:, 0].copy(), "spikes": r.spikes[pop].steps(r.dt).tolist() if pop in r.spikes
                  else next(iter(r.spikes.values())).steps(r.dt).tolist()}
    return got


def _spk_vec(steps) -> np.ndarray:
    s = np.zeros(STEPS, dtype=bool)
    s[np.asarray(steps, dtype=int)] = True
    return s


def aligned_rmse(v_a, s_a, v_b, s_b, lags=range(-2, 3)) -> tuple[float, int]:
    """Sub-threshold RMSE of b against a after shifting b by the best lag in ``lags`` (b[k + lag]
    compared with a[k]); returns (rmse, lag)."""
    from neurodeploy.validation.metrics import subthreshold_mask, subthreshold_rmse

    best = (float("inf"), 0)
    for lag in lags:
        lo, hi = max(0, -lag), STEPS - max(0, lag)
        a, b = v_a[lo:hi], v_b[lo + lag:hi + lag]
        sa, sb = s_a[lo:hi], s_b[lo + lag:hi + lag]
        m = subthreshold_mask(sa[:, None], sb[:, None])
        e = subthreshold_rmse(a[:, None], b[:, None], m)["rmse"]
        if e < best[0]:
            best = (e, lag)
    return best


def pre_spike_rmse(v_a, s_a, v_b, s_b, lag: int) -> float:
    """RMSE of b (shifted by ``lag``) against a over the steps before either trace's first spike:
    the integration error alone, before spike-time differences take over."""
    first = min([k for k in (np.flatnonzero(s_a)[:1].tolist() + (np.flatnonzero(s_b)[:1] - lag).tolist())] + [STEPS])
    lo = max(0, -lag)
    hi = min(first, STEPS - max(0, lag))
    if hi <= lo:
        return float("nan")
    return float(np.sqrt(np.mean((v_a[lo:hi] - v_b[lo + lag:hi + lag]) ** 2)))


def evaluate(ours: dict[str, dict]) -> dict:
    ref = {}
    for p in ["exact"] + PLATFORMS:
        a = read_csv(p)
        scale = SCALES[p][0]
        ex_v = read_csv("exact")[:, 1]
        fit = float(np.dot(a[:, 1], ex_v) / np.dot(a[:, 1], a[:, 1])) if a[:, 1].any() else float("nan")
        ref[p] = {"v": a[:, 1] * scale, "spikes": np.flatnonzero(a[:, 2]).tolist(), "scale": scale,
                  "scale_why": SCALES[p][1], "fitted_scale": fit}
    exact = ref["exact"]
    sx = _spk_vec(exact["spikes"])
    rows = []
    for name, src, who in [(p, ref[p], "platform") for p in PLATFORMS] + [(t, ours[t], "neurodeploy") for t in ours]:
        s = _spk_vec(src["spikes"])
        e, lag = aligned_rmse(exact["v"], sx, src["v"], s)
        e0, _ = aligned_rmse(exact["v"], sx, src["v"], s, lags=[0])
        row = {"source": name, "who": who, "spike_steps": src["spikes"],
               "first_spike_diff_steps": (src["spikes"][0] - exact["spikes"][0]) if src["spikes"] else None,
               "rmse_vs_exact": e, "lag_vs_exact": lag, "rmse_vs_exact_lag0": e0,
               "rmse_vs_exact_before_first_spike": pre_spike_rmse(exact["v"], sx, src["v"], s, lag)}
        if who == "platform":
            row.update(scale=src["scale"], fitted_scale=1 / src["fitted_scale"], scale_why=src["scale_why"])
        rows.append(row)
    matrix = {}
    for t, o in ours.items():
        so = _spk_vec(o["spikes"])
        matrix[t] = {}
        for p in PLATFORMS:
            e, lag = aligned_rmse(ref[p]["v"], _spk_vec(ref[p]["spikes"]), o["v"], so)
            matrix[t][p] = {"rmse": e, "lag": lag, "same_spike_steps_after_lag":
                            [k - lag for k in o["spikes"]] == ref[p]["spikes"]}
    # Loihi hardware: in Lava integer units, Lava CPU fixed vs ours (loihi2-sim)
    hw = ref["lava_loihi_fixed"]
    shw = _spk_vec(hw["spikes"])
    loihi = {"units": "Lava integer units (16000 per NIR unit)"}
    for name, src in (("lava_cpu_fixed", ref["lava_cpu_fixed"]),) + tuple((t, ours[t]) for t in ("loihi2-sim",) if t in ours):
        e, lag = aligned_rmse(hw["v"] * 16000, shw, src["v"] * 16000, _spk_vec(src["spikes"]))
        e_all = float(np.sqrt(np.mean((hw["v"][max(0, -lag):STEPS - max(0, lag)] * 16000
                                       - src["v"][max(0, lag):STEPS - max(0, -lag)] * 16000) ** 2))) if lag <= 0 else \
            float(np.sqrt(np.mean((hw["v"][:STEPS - lag] * 16000 - src["v"][lag:] * 16000) ** 2)))
        loihi[name] = {"rmse_subthreshold": e, "lag": lag, "rmse_all_samples": e_all,
                       "rmse_before_first_spike": pre_spike_rmse(hw["v"] * 16000, shw, src["v"] * 16000,
                                                                 _spk_vec(src["spikes"]), lag),
                       "spike_steps": src["spikes"], "loihi_spike_steps": hw["spikes"]}
    return {"exact_spikes": exact["spikes"], "rows": rows, "matrix": matrix, "loihi": loihi}


def markdown(results: dict) -> str:
    out = []
    for variant, res in results.items():
        out.append(f"### Spec `{variant}`\n")
        out.append("| source | spike steps | first spike - exact (steps) | RMSE vs exact (sub-threshold, best lag) | lag | "
                   "RMSE vs exact, lag 0 | RMSE before the first spike |")
        out.append("|---|---|---:|---:|---:|---:|---:|")
        out.append(f"| exact (lif_exact.csv) | {', '.join(map(str, res['exact_spikes']))} | 0 | 0 | 0 | 0 | 0 |")
        for r in res["rows"]:
            name = f"**neurodeploy {r['source']}**" if r["who"] == "neurodeploy" else r["source"]
            fs = "-" if r["first_spike_diff_steps"] is None else f"{r['first_spike_diff_steps']:+d}"
            out.append(f"| {name} | {', '.join(map(str, r['spike_steps']))} | {fs} | {r['rmse_vs_exact']:.5f} | "
                       f"{r['lag_vs_exact']:+d} | {r['rmse_vs_exact_lag0']:.5f} | {r['rmse_vs_exact_before_first_spike']:.2e} |")
        out.append("")
        out.append("Voltage RMSE (NIR units, sub-threshold, best lag in -2..2) of each neurodeploy backend against each platform:\n")
        out.append("| neurodeploy \\ platform | " + " | ".join(PLATFORMS) + " |")
        out.append("|---|" + "---:|" * len(PLATFORMS))
        for t, row in res["matrix"].items():
            out.append(f"| {t} | " + " | ".join(f"{row[p]['rmse']:.4f} ({row[p]['lag']:+d}{'' if row[p]['same_spike_steps_after_lag'] else '*'})"
                                                 for p in PLATFORMS) + " |")
        out.append("\n(lag in brackets; * = spike steps differ from the platform's after the lag)\n")
        lo = res["loihi"]
        out.append(f"Against the Loihi 2 hardware trace ({lo['units']}):\n")
        out.append("| trace | RMSE sub-threshold | lag | RMSE all samples | RMSE before the first spike | spike steps (Loihi: "
                   f"{', '.join(map(str, lo['lava_cpu_fixed']['loihi_spike_steps']))}) |")
        out.append("|---|---:|---:|---:|---:|---|")
        for k in ("lava_cpu_fixed", "loihi2-sim"):
            if k in lo:
                x = lo[k]
                out.append(f"| {'Lava CPU fixed point (lif_lava_cpu_fixed.csv)' if k == 'lava_cpu_fixed' else 'neurodeploy loihi2-sim'} | "
                           f"{x['rmse_subthreshold']:.2f} | {x['lag']:+d} | {x['rmse_all_samples']:.2f} | "
                           f"{x['rmse_before_first_spike']:.2f} | {', '.join(map(str, x['spike_steps']))} |")
        out.append("")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("-o", "--out", default="out/nir_paper_lif")
    ap.add_argument("--hand-built", action="store_true", help="use examples/nir_paper_lif/lif.yaml, not the importer")
    ap.add_argument("--write-specs", action="store_true", help="rewrite the hand-built specs from the CSV and exit")
    args = ap.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    if args.write_specs:
        write_hand_built_specs()
        return 0
    from neurodeploy.core.io import atomic_write_json, atomic_write_text

    out = Path(args.out)
    results = {}
    for variant in ("nir", "euler"):
        net = build_network(variant, out / variant, args.hand_built)
        print(f"running {net.name} ({variant}) on {', '.join(OUR_TARGETS)}...", file=sys.stderr)
        ours = run_ours(net, out / variant)
        results[variant] = evaluate(ours)
    md = markdown(results)
    print(md)
    atomic_write_text(out / "table.md", md + "\n")
    atomic_write_json(out / "table.json", results)
    print(f"wrote {out / 'table.md'}, {out / 'table.json'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
