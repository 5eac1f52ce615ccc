"""Brian2 backend: analytic checks, agreement with the numpy reference (the neuron models'
``reference_step``), the STDP window, reproducibility, and the `run` command's files.

Tolerances: membrane traces within 1e-9 of the reference (1 nV; seen: ~1e-15) and identical
spike steps; STDP weight changes within 1e-6 relative of the analytic window.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import neurodeploy as nd
from neurodeploy.backends.reference import simulator as reference
from neurodeploy.backends.brian2.simulator import Brian2Options, run
from neurodeploy.ir import (
    CurrentStimulus,
    Network,
    PlasticityRule,
    PoissonStimulus,
    Population,
    Probe,
    Projection,
    Simulation,
    SpikeTimesStimulus,
    Weights,
)
from neurodeploy.spec import verify
from neurodeploy.library.neurons import NEURONS, get_neuron
from neurodeploy.library.plasticity.stdp import PairSTDP, stdp_window_net
from neurodeploy.core.result import Result

from ..conftest import MODELS, rel

FAST = Brian2Options(codegen="numpy", progress=False)
V_TOL = 1e-9


def b2(net, **kw):
    return run(net, options=dataclasses.replace(FAST, **kw))


def shorten(net: Network, steps: int) -> Network:
    return dataclasses.replace(net, simulation=dataclasses.replace(net.simulation, steps=steps))


def assert_same(ref: Result, got: Result):
    assert set(ref.counts) == set(got.counts)
    for k in ref.counts:
        np.testing.assert_array_equal(ref.counts[k], got.counts[k], err_msg=f"spike counts of {k}")
    for k in ref.spikes:
        np.testing.assert_array_equal(ref.spikes[k].steps(ref.dt), got.spikes[k].steps(got.dt), err_msg=k)
        np.testing.assert_array_equal(ref.spikes[k].i, got.spikes[k].i, err_msg=k)
    for k in ref.traces:
        a, b = ref.traces[k], got.traces[k]
        np.testing.assert_allclose(a.t, b.t, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(a.index, b.index)
        np.testing.assert_allclose(b.values, a.values, rtol=0, atol=V_TOL, err_msg=k)


def test_single_lif_first_spike_matches_analytic_within_one_dt():
    net = nd.load("models/single_lif.yaml")
    res = b2(net)
    pop = net.populations[0]
    lif = get_neuron("lif")
    t_star = lif.first_spike_time(lif.make_params(pop.params), net.stimuli[0].amplitude)
    first = res.spikes["neuron"].t[0]
    assert abs(first - t_star) < net.simulation.dt, (first, t_star)
    # and the inter-spike interval is t_ref + the time from reset to threshold
    p = lif.make_params(pop.params)
    isi = np.diff(res.spikes["neuron"].t)
    expected = p.t_ref + lif.first_spike_time(p, net.stimuli[0].amplitude, v0=p.v_reset)
    np.testing.assert_allclose(isi, expected, atol=net.simulation.dt)


def _driven_network(model: str, **params) -> Network:
    """One population of ``model`` driven by a current, a spike source and Poisson input,
    with every state variable probed."""
    m = NEURONS[model]
    unit = 1e-3 if m.weight_unit == "volt" else 1e-9
    pop = Population("p", 5, model, params)
    probes = tuple(Probe(f"p.{v}", "p", v) for v in m.state) + (Probe("p.spikes", "p", "spikes"),)
    return verify(Network(
        name=f"driven_{model}",
        simulation=Simulation(dt=1e-4, steps=1500, seed=11),
        populations=(pop,),
        stimuli=(
            CurrentStimulus("drive", "p", times=(0.0, 0.05, 0.1), values=(0.8e-9, 2.5e-9, 1.2e-9), indices=(0, 1, 2, 3)),
            SpikeTimesStimulus("kick", 5, indices=(0, 1, 2, 4, 4), times=(0.01, 0.0123, 0.03, 0.02, 0.07)),
            PoissonStimulus("noise", 20, rate=40.0),
        ),
        projections=(
            Projection("kick_p", "kick", "p", Weights("constant", {"value": 4 * unit}, unit=m.weight_unit),
                       connectivity=dataclasses.replace(Projection("x", "a", "b", Weights("constant")).connectivity, kind="one_to_one"),
                       delay=1e-3),
            Projection("noise_p", "noise", "p", Weights("uniform", {"low": 0.5 * unit, "high": 1.5 * unit}, unit=m.weight_unit),
                       delay=0.0),
        ),
        probes=probes,
    ))


@pytest.mark.parametrize("model, params", [
    ("lif", {}),
    ("lif", {"t_ref": 0.0}),
    ("cuba_lif", {"v_th": 10e-3, "R_m": 10e6}),
    ("cuba_lif", {"v_th": 10e-3, "R_m": 10e6, "reset_mode": "subtract", "t_ref": 1e-3}),
    ("if", {}),
    ("if", {"reset_mode": "subtract", "I_bias": 0.2e-9}),
])
def test_trajectories_match_the_numpy_reference_step(model, params):
    net = _driven_network(model, **params)
    ref = reference.simulate(net)
    got = b2(net)
    assert ref.counts["p"].sum() > 5, "the test network should spike"
    assert_same(ref, got)


def test_every_neuron_model_is_covered():
    covered = {"lif", "cuba_lif", "if", "spike_source", "poisson_source",
               "li", "cuba_li"}  # non-spiking: compared in tests/interop/test_nir_li_neurons.py
    # graded coder models: Brian2's iP-VAE networks are compared with their reference steps in
    # tests/backends/test_ipvae_spiking.py and test_ipvae_brian2_pc.py (lca: not on Brian2, exit 3)
    graded = {n for n, m in NEURONS.items() if m.graded}
    assert graded == {"ipvae", "lca", "linear"}
    assert covered | graded == set(NEURONS), "add the new model to the Brian2 agreement tests"


def test_spike_source_emits_in_the_step_that_contains_each_time():
    net = _driven_network("lif")
    net = dataclasses.replace(net, probes=(Probe("k", "kick", "spikes"),))
    res = b2(net)
    got = sorted(zip(res.spikes["kick"].steps(net.simulation.dt), res.spikes["kick"].i))
    # 0.0123 s is in step 123; 0.01 s exactly in step 100 (no float drift)
    assert got == [(100, 0), (123, 1), (200, 4), (300, 2), (700, 4)]


def test_native_poisson_rates_match_the_requested_rate():
    net = verify(Network("poisson", Simulation(1e-4, 10000, seed=5),
                         stimuli=(PoissonStimulus("src", 200, rate=25.0),),
                         populations=(Population("sink", 1, "lif"),),
                         probes=(Probe("s", "src", "spikes"),)))
    res = b2(net, poisson="native")
    counts = np.bincount(res.spikes["src"].i, minlength=200)
    expected = 25.0 * 1.0
    assert abs(counts.mean() - expected) < 5 * np.sqrt(expected / 200)


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_shipped_models_agree_with_the_reference_spike_for_spike(model):
    net = nd.load(rel(model))
    net = shorten(net, min(net.simulation.steps, 2000))
    assert_same(reference.simulate(net), b2(net))


def _stdp_pair(delta_t: float) -> tuple[Network, dict]:
    """One pre and one post neuron; the post neuron is made to fire by a separate strong input,
    and the plastic synapse is too weak to matter. delta_t = t_post - t_pre (s)."""
    params = {"tau_pre": 20e-3, "tau_post": 20e-3, "a_plus": 0.01e-3, "a_minus": 0.0105e-3,
              "w_min": 0.0, "w_max": 1e-3}
    return stdp_window_net(params, delta_t, dt=1e-4, steps=3000), params


@pytest.mark.parametrize("delta_ms", [-20, -5, 5, 20])
def test_stdp_pair_weight_change_matches_the_analytic_window(delta_ms):
    net, params = _stdp_pair(delta_ms * 1e-3)
    for res in (b2(net), reference.simulate(net)):
        t_post = res.spikes["post"].t
        t_pre = res.spikes["pre"].t
        assert len(t_post) == 1 and len(t_pre) == 1
        dt_actual = t_post[0] - t_pre[0]
        assert dt_actual == pytest.approx(delta_ms * 1e-3, abs=1e-9)
        w = res.traces["w"].values[:, 0]
        dw = w[-1] - w[0]
        expected = float(PairSTDP.window(PairSTDP.Params(**params), dt_actual))
        assert np.sign(dw) == np.sign(delta_ms)
        assert dw == pytest.approx(expected, rel=1e-6), (res.backend, dw, expected)


def test_stdp_weights_stay_within_bounds_and_match_reference():
    net, params = _stdp_pair(5e-3)
    params = dict(params, a_plus=2e-3, w_max=0.5e-3)  # one pairing would overshoot w_max
    pr = dataclasses.replace(net.projections[0], plasticity=PlasticityRule("stdp", params))
    net = dataclasses.replace(net, projections=(pr, net.projections[1]))
    got, ref = b2(net), reference.simulate(net)
    assert got.traces["w"].values.max() == pytest.approx(0.5e-3)
    np.testing.assert_allclose(got.traces["w"].values, ref.traces["w"].values, atol=1e-15)


def test_seeded_runs_are_reproducible():
    net = shorten(nd.load("models/ei_network.yaml"), 1000)
    for mode in ("shared", "native"):
        a, b = b2(net, poisson=mode), b2(net, poisson=mode)
        for k in a.counts:
            np.testing.assert_array_equal(a.counts[k], b.counts[k])
        np.testing.assert_array_equal(a.spikes["exc"].t, b.spikes["exc"].t)
        other = b2(dataclasses.replace(net, simulation=dataclasses.replace(net.simulation, seed=43)), poisson=mode)
        assert not np.array_equal(a.counts["exc"], other.counts["exc"]), f"seed has no effect ({mode})"


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_cli_run_writes_result_summary_and_plot(model, tmp_path, capsys):
    from neurodeploy.app import cli

    out = tmp_path / model.stem
    rc = cli.main(["run", rel(model), "--target", "brian2", "-o", str(out), "--codegen", "numpy", "--plot", "--json"])
    stdout = capsys.readouterr().out
    assert rc == 0
    info = json.loads(stdout)
    assert info["ok"] and info["summary"]["backend"] == "brian2"
    summary = json.loads((out / "summary.json").read_text())
    net = nd.load(rel(model))
    assert summary["steps"] == net.simulation.steps
    assert set(summary["populations"]) == {p.name for p in net.populations}
    assert summary["versions"]["brian2"].startswith("2.9")
    res = Result.load(out / "result.npz")
    for pb in net.probes:
        if pb.variable == "spikes":
            assert pb.target in res.spikes
        else:
            assert res.traces[pb.name].values.shape[0] > 0
    assert (out / "raster.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert sorted(p.name for p in out.iterdir()) == ["raster.png", "result.npz", "summary.json"]


def test_result_file_round_trip(tmp_path):
    net = shorten(nd.load("models/ei_network.yaml"), 300)
    res = b2(net)
    path = res.save(tmp_path / "r.npz")
    back = Result.load(path)
    assert back.summary() == res.summary()
    for k in res.traces:
        np.testing.assert_array_equal(back.traces[k].values, res.traces[k].values)
    with np.load(path, allow_pickle=False) as z:  # plain arrays only
        assert all(z[k].dtype != object for k in z.files)


def test_blocks_run_on_brian2_and_unsupported_targets_fail_clearly(capsys, tmp_path):
    from neurodeploy.app import cli

    spec = tmp_path / "block.yaml"
    spec.write_text(
        "neurodeploy: 1\nname: b\nsimulation: {dt: 1 ms, steps: 10}\n"
        "stimuli:\n  - {name: x, kind: array, encoding: value, data: {inline: [[1, 0]]}}\n"
        "blocks:\n  - {name: c, kind: ipvae, input: x, latent: 1, decoder: {inline: [[1], [0]]}}\n")
    assert cli.main(["run", str(spec), "-t", "brian2", "-o", str(tmp_path / "o")]) == 0  # the block runner
    assert (tmp_path / "o" / "metrics.json").exists()
    capsys.readouterr()
    assert cli.main(["run", str(spec), "-t", "loihi2-torch", "-o", str(tmp_path / "o1")]) == 0  # integer model
    assert (tmp_path / "o1" / "metrics.json").exists()
    capsys.readouterr()
    rc = cli.main(["run", str(spec), "-t", "loihi2", "-o", str(tmp_path / "o2")])
    err = capsys.readouterr().err
    assert rc == 3 and "hardware" in err and "Traceback" not in err
    assert not (tmp_path / "o2").exists()


@pytest.mark.slow
def test_cython_codegen_matches_numpy():
    net = shorten(nd.load("models/cuba_chain.yaml"), 200)
    assert_same(b2(net), b2(net, codegen="cython"))


@pytest.mark.slow
def test_cpp_standalone_matches_runtime():
    net = shorten(nd.load("models/ei_network.yaml"), 500)
    assert_same(b2(net), b2(net, device="cpp_standalone"))
