"""Lava backend: `lava` (float) against the numpy reference / Brian2, `loihi2-sim` (fixed point)
against `lava` float, the quantize pass against hand-computed integers, and the compile /
deploy commands.

Stated tolerances:
* lava float vs reference: identical spike steps; membrane traces within 1e-9 V (the mapping is
  exact; what remains is float rounding, seen ~1e-18).
* loihi2-sim vs lava float: >= 98 % of (neuron, step) cells agree on spiking (the 12-bit decay
  constants change tau_m by up to ~2 % at dt = 0.1 ms, see the quantization report).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import neurodeploy as nd
from neurodeploy.backends.reference import simulator as reference
from neurodeploy import simulate as run
from neurodeploy.lowering.loihi import LoweredPopulation, LoweredProjection, LoweredNetwork
from neurodeploy.passes.quantize import quantize
from neurodeploy.core.targets import load_target

from ..conftest import MODELS, rel
from .helpers import shorten, with_all_spike_probes

pytestmark = pytest.mark.lava


def raster(res, net):
    return {k: _cells(res, k, net) for k in res.counts}


def _cells(res, name, net):
    s = res.spikes.get(name)
    size = len(res.counts[name])
    m = np.zeros((res.steps, size), dtype=bool)
    if s is not None:
        m[s.steps(res.dt), s.i] = True
    return m


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_lava_float_matches_the_reference_exactly(model):
    net = with_all_spike_probes(shorten(nd.load(rel(model))))
    ref = reference.simulate(net)
    got = run(net, load_target("lava"))
    assert ref.counts.keys() == got.counts.keys()
    for k in ref.counts:
        np.testing.assert_array_equal(got.counts[k], ref.counts[k], err_msg=k)
        np.testing.assert_array_equal(got.spikes[k].steps(got.dt), ref.spikes[k].steps(ref.dt), err_msg=k)
        np.testing.assert_array_equal(got.spikes[k].i, ref.spikes[k].i, err_msg=k)
    assert sum(int(c.sum()) for c in ref.counts.values()) > 0, "the test run should spike"
    for k, tr in ref.traces.items():
        np.testing.assert_allclose(got.traces[k].values, tr.values, rtol=0, atol=1e-9, err_msg=k)


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_loihi2_sim_agrees_with_lava_float(model):
    net = with_all_spike_probes(shorten(nd.load(rel(model))))
    f = run(net, load_target("lava"))
    x = run(net, load_target("loihi2-sim"))
    cells = [(raster(f, net)[k] == raster(x, net)[k]).mean() for k in f.counts]
    agreement = float(np.mean(cells))
    assert agreement >= 0.98, agreement
    total_f = sum(int(c.sum()) for c in f.counts.values())
    total_x = sum(int(c.sum()) for c in x.counts.values())
    assert abs(total_x - total_f) <= max(2, 0.05 * total_f), (total_f, total_x)


def _pop(vth=1.0, v0=0.0, bias=0.0, du=0.2, dv=0.1, process="LIF"):
    return LoweredPopulation(
        name="p", size=1, model="cuba_lif", process=process, du=du, dv=dv, vth=vth, bias=np.array([bias]),
        v_reset=0.0, reset_mode=0, refractory_steps=0, input_drop=0, v_offset=0.0, u_scale=1.0, weight_factor=1.0,
        v0=np.array([v0]), u0=np.array([0.0]), tau_m=0.02, tau_syn=0.005, dt=1e-3)


def test_quantize_against_hand_computed_integers():
    low = LoweredNetwork("hand", 1e-3, 10)
    low.populations["p"] = _pop(vth=1.0, du=0.2, dv=0.1)
    low.projections["w"] = LoweredProjection("w", "s", "p", np.array([0]), np.array([0]), np.array([0.5]), 0,
                                             "mixed", 1, 1, np.array([0.5]))
    q = quantize(low)
    p = q.populations["p"]
    # K is set by the potential headroom: (2**23 - 1) / (4 * 1.0 V)
    assert p.K == pytest.approx((2**23 - 1) / 4.0)
    assert p.du == 818  # round(0.2 * 4096) - 1 = 819 - 1 (the chip adds 1)
    assert p.dv == 410  # round(0.1 * 4096) = round(409.6)
    assert p.vth == 32768  # round(1.0 * K / 64) = round(32767.996)
    w = q.projections["w"]
    # 0.5 V * K / 64 = 16383.998; smallest e with that / 2**e <= 254 is 7; 127.99998 -> even 128
    assert w.weight_exp == 7
    assert int(w.weights.toarray()[0, 0]) == 128
    report = q.report["populations"][0]
    assert report["scale"]["set_by"] == "potential (24 bits)"
    entry = {e["parameter"]: e for e in report["parameters"]}
    assert entry["dv"]["effective"] == pytest.approx(410 / 4096)
    assert entry["du"]["effective"] == pytest.approx(819 / 4096)


def test_quantize_bias_uses_the_smallest_exponent_that_fits():
    low = LoweredNetwork("hand", 1e-3, 10)
    low.populations["p"] = _pop(vth=1.0, bias=0.01)
    q = quantize(low)
    p = q.populations["p"]
    # dv = 0.1 -> 410/4096; the bias is scaled by dv_eff/dv = 1.0009765625 to keep bias/dv
    scaled = 0.01 * (410 / 4096 / 0.1) * p.K  # 20991.98: exp 3 (/8 = 2624.0 <= 4095; /4 = 5248 > 4095)
    assert int(p.bias_exp[0]) == 3
    assert int(p.bias_mant[0]) == round(scaled / 8) == 2624


def test_quantize_flags_weights_that_vanish():
    low = LoweredNetwork("hand", 1e-3, 10)
    low.populations["p"] = _pop(vth=1.0)
    w = np.array([1.0, 1e-4])  # the second is 1e-4 of the largest: below one LSB
    low.projections["w"] = LoweredProjection("w", "s", "p", np.array([0, 1]), np.array([0, 0]), w, 0,
                                             "excitatory", 2, 1, w)
    q = quantize(low)
    r = q.report["projections"][0]
    assert r["zeroed"] == 1 and q.report["warnings"]


def test_cli_compile_writes_reports(tmp_path, capsys):
    from neurodeploy.app import cli

    rc = cli.main(["compile", "models/ei_network.yaml", "--target", "loihi2-sim", "-o", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "quantization" in out and "K =" in out
    names = {p.name for p in tmp_path.iterdir()}
    assert {"ir.json", "lava_params.npz", "quantization.json", "coremap.json", "manifest.json"} <= names
    rep = json.loads((tmp_path / "quantization.json").read_text())
    assert {p["population"] for p in rep["populations"]} == {"exc", "inh"}
    with np.load(tmp_path / "lava_params.npz", allow_pickle=False) as z:
        assert z["projection/exc_exc/weights"].dtype.kind == "i"


def test_cli_deploy_to_hardware_writes_artifact_then_exits_3(tmp_path, capsys):
    from neurodeploy.app import cli

    rc = cli.main(["deploy", "models/cuba_chain.yaml", "--target", "loihi2", "-o", str(tmp_path)])
    err = capsys.readouterr().err
    assert rc == 3
    assert "lava-loihi" in err and "loihi2-sim" in err
    assert (tmp_path / "manifest.json").exists() and (tmp_path / "lava_params.npz").exists()


def test_cli_run_on_loihi2_sim(tmp_path, capsys):
    from neurodeploy.app import cli

    rc = cli.main(["run", "models/cuba_chain.yaml", "--target", "loihi2-sim", "-o", str(tmp_path), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert rc == 0 and info["summary"]["backend"] == "lava"
    assert info["summary"]["options"]["select_tag"] == "fixed_pt"
    assert info["summary"]["populations"]["stage4"]["spikes"] == 7


def test_unsupported_nodes_are_named(tmp_path, capsys):
    from neurodeploy.app import cli

    spec = tmp_path / "ramp.yaml"
    spec.write_text(
        "neurodeploy: 1\nname: r\nsimulation: {dt: 1 ms, steps: 20}\n"
        "populations: [{name: p, size: 2, model: lif}]\n"
        "stimuli: [{name: ramp, kind: current, target: p, times: [0 ms, 5 ms], values: [0 nA, 1 nA]}]\n")
    rc = cli.main(["run", str(spec), "--target", "lava", "-o", str(tmp_path / "o"), "--no-fallback"])
    err = capsys.readouterr().err
    assert rc == 1 and "'ramp'" in err and "constant" in err


def _stdp_pair(delta_ms: float):
    """An isolated pre/post pair on a plastic projection (the post neuron is made to fire by a
    separate strong input); delta = t_post - t_pre."""
    from neurodeploy.ir import (
        Network,
        PlasticityRule,
        Population,
        Probe,
        Projection,
        Simulation,
        SpikeTimesStimulus,
        Weights,
    )
    from neurodeploy.spec import verify

    params = {"tau_pre": 20e-3, "tau_post": 20e-3, "a_plus": 0.01e-3, "a_minus": 0.0105e-3,
              "w_min": 0.0, "w_max": 1e-3}
    dt, t_drive = 1e-3, 0.04
    t_pre = t_drive + dt - delta_ms * 1e-3  # the post neuron fires one step after its drive
    net = verify(Network(
        name="stdp_pair", simulation=Simulation(dt, 100, 0),
        populations=(Population("post", 1, "lif", {"t_ref": 2e-3}),),
        stimuli=(SpikeTimesStimulus("pre", 1, (0,), (t_pre,)), SpikeTimesStimulus("driver", 1, (0,), (t_drive,))),
        projections=(Projection("plastic", "pre", "post", Weights("constant", {"value": 0.1e-3}, unit="volt"),
                                sign="excitatory", plasticity=PlasticityRule("stdp", params)),
                     Projection("drive", "driver", "post", Weights("constant", {"value": 30e-3}, unit="volt"))),
        probes=(Probe("w", "plastic", "weights"), Probe("post", "post", "spikes"), Probe("pre", "pre", "spikes"))))
    return net, params


@pytest.mark.parametrize("delta_ms", [-20, -5, 5, 20])
def test_stdp_on_lava_moves_weights_as_the_reference_does(delta_ms):
    from neurodeploy.passes.pipeline import compile_network
    from neurodeploy.library.plasticity.stdp import PairSTDP

    net, params = _stdp_pair(delta_ms)
    ref = reference.simulate(net)
    assert ref.spikes["post"].t[0] - ref.spikes["pre"].t[0] == pytest.approx(delta_ms * 1e-3)
    exact = float(PairSTDP.window(PairSTDP.Params(**params), delta_ms * 1e-3))
    dw = {}
    for t in ("lava", "loihi2-sim"):
        r = run(net, load_target(t))
        np.testing.assert_array_equal(r.spikes["post"].t, ref.spikes["post"].t)
        w = r.traces["w"].values[:, 0]
        dw[t] = w[-1] - w[0]
    ref_w = ref.traces["w"].values[:, 0]
    assert ref_w[-1] - ref_w[0] == pytest.approx(exact, rel=1e-9)
    # float: exact (same trace form, no timing offset)
    assert dw["lava"] == pytest.approx(exact, rel=1e-9)
    # fixed point: the weight is an 8-bit mantissa, stochastically rounded after each update
    proj = compile_network(net, load_target("loihi2-sim")).quantized.report["projections"]
    lsb = next(p for p in proj if p["projection"] == "plastic")["effective_lsb_V"]
    lsb /= float(np.exp(-1e-3 / 20e-3))  # Lava-float units -> neurodeploy weight units (lif factor)
    assert abs(dw["loihi2-sim"] - exact) <= 1.01 * lsb, (dw["loihi2-sim"], exact, lsb)


def test_plastic_projection_limits_are_named(tmp_path, capsys):
    from neurodeploy.app import cli

    spec = tmp_path / "delayed.yaml"
    spec.write_text(
        "neurodeploy: 1\nname: d\nsimulation: {dt: 1 ms, steps: 20}\n"
        "populations: [{name: p, size: 2, model: lif}]\n"
        "stimuli: [{name: s, kind: poisson, size: 2, rate: 50 Hz}]\n"
        "projections:\n  - {source: s, target: p, weights: 1 mV, delay: 2 ms, sign: excitatory,\n"
        "     plasticity: {rule: stdp, params: {a_plus: 0.1 mV, a_minus: 0.1 mV, w_max: 2 mV}}}\n")
    rc = cli.main(["run", str(spec), "--target", "lava", "-o", str(tmp_path / "o"), "--no-fallback"])
    err = capsys.readouterr().err
    assert rc == 1 and "delay" in err and "LearningDense" in err
