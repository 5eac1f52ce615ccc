"""Torch backend (GPU fallback; CPU here): float64 against the numpy reference, float32 within a
stated tolerance, the Loihi 2 integer emulation bit for bit against Lava's fixed_pt, batching.

Tolerances: float64 - identical spike steps, traces within 1e-9 (seen ~1e-16); float32 - at least
98 % of (neuron, step) cells agree (float32 rounding can flip a threshold crossing, after which a
recurrent network diverges); loihi2-torch vs loihi2-sim - identical integers (traces and counts
exactly equal).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import neurodeploy as nd
from neurodeploy.backends.reference import simulator as reference
from neurodeploy.backends.torch.simulator import TorchOptions, run
from neurodeploy.core.errors import BackendError
from neurodeploy.core.targets import load_target

from ..conftest import MODELS, rel
from .helpers import shorten, with_all_spike_probes


def torch_run(net, target="torch", **kw):
    return run(net, load_target(target), TorchOptions(device="cpu", **kw))


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_float64_matches_the_reference_spike_for_spike(model):
    net = with_all_spike_probes(shorten(nd.load(rel(model)), 1000))
    ref = reference.simulate(net)
    got = torch_run(net, dtype="float64")[0]
    for k in ref.counts:
        np.testing.assert_array_equal(got.counts[k], ref.counts[k], err_msg=k)
        np.testing.assert_array_equal(got.spikes[k].steps(got.dt), ref.spikes[k].steps(ref.dt), err_msg=k)
        np.testing.assert_array_equal(got.spikes[k].i, ref.spikes[k].i, err_msg=k)
    assert sum(int(c.sum()) for c in ref.counts.values()) > 0
    for k, tr in ref.traces.items():
        np.testing.assert_allclose(got.traces[k].values, tr.values, rtol=0, atol=1e-9, err_msg=k)


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_float32_agrees_with_the_reference(model):
    net = with_all_spike_probes(shorten(nd.load(rel(model)), 1000))
    ref = reference.simulate(net)
    got = torch_run(net, dtype="float32")[0]
    cells = []
    for k in ref.counts:
        a = np.zeros((ref.steps, len(ref.counts[k])), bool)
        b = a.copy()
        a[ref.spikes[k].steps(ref.dt), ref.spikes[k].i] = True
        b[got.spikes[k].steps(got.dt), got.spikes[k].i] = True
        cells.append((a == b).mean())
    assert np.mean(cells) >= 0.98, cells


@pytest.mark.lava
@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_loihi2_torch_is_bit_exact_with_lava_fixed_pt(model):
    from neurodeploy.backends.lava.simulator import run as lava_run

    if model.stem.startswith("hybrid_") or any(p.plasticity for p in nd.load(rel(model)).projections):
        pytest.skip("static models here; plastic ones: test_torch_fixed_stdp.py (pair STDP on Lava's "
                    "learning engine), test_hybrid.py, test_local_rules.py")

    net = with_all_spike_probes(shorten(nd.load(rel(model))))
    x = torch_run(net, "loihi2-torch")[0]
    lv = lava_run(net, load_target("loihi2-sim"))
    for k in lv.counts:
        np.testing.assert_array_equal(x.counts[k], lv.counts[k], err_msg=k)
        np.testing.assert_array_equal(x.spikes[k].t, lv.spikes[k].t, err_msg=k)
    for k, tr in lv.traces.items():
        np.testing.assert_array_equal(x.traces[k].values, tr.values, err_msg=k)


def test_batch_of_identical_seeds_equals_separate_runs():
    net = shorten(nd.load("models/ei_network.yaml"), 300)
    single = torch_run(net, dtype="float64")[0]
    batch = torch_run(net, dtype="float64", trial_seeds=(net.simulation.seed,) * 3, cpu_threads=1)
    assert len(batch) == 3
    for r in batch:
        for k in single.counts:
            np.testing.assert_array_equal(r.counts[k], single.counts[k])
        np.testing.assert_array_equal(r.traces["exc.v"].values, single.traces["exc.v"].values)


def test_batch_trials_differ_by_their_seed_and_match_their_own_runs():
    net = shorten(nd.load("models/ei_network.yaml"), 300)
    seeds = (42, 7)
    batch = torch_run(net, dtype="float64", trial_seeds=seeds, cpu_threads=1)  # 1: a loaded CI machine
    assert not np.array_equal(batch[0].counts["exc"], batch[1].counts["exc"])
    alone = torch_run(net, dtype="float64", trial_seeds=(7,))[0]
    np.testing.assert_array_equal(batch[1].counts["exc"], alone.counts["exc"])
    assert batch[1].options["trial_seed"] == 7


def test_cuda_requested_without_a_gpu_fails_clearly():
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible")
    with pytest.raises(BackendError, match="CUDA"):
        run(nd.load("models/cuba_chain.yaml"), load_target("torch"), TorchOptions(device="cuda"))


def test_cli_run_on_torch(tmp_path, capsys):
    from neurodeploy.app import cli

    rc = cli.main(["run", "models/cuba_chain.yaml", "--target", "loihi2-torch", "-o", str(tmp_path), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert rc == 0 and info["summary"]["backend"] == "torch"
    assert info["summary"]["populations"]["stage4"]["spikes"] == 7
    assert (tmp_path / "result.npz").exists()


def test_event_driven_delivery_equals_the_reference_and_the_matmul_path(monkeypatch):
    import neurodeploy.backends.torch.simulator as tb

    net = with_all_spike_probes(shorten(nd.load("models/ei_network.yaml"), 400))
    ref = reference.simulate(net)
    monkeypatch.setattr(tb, "EVENT_DRIVEN_ABOVE_CPU", 10**12)  # every connection by matmul
    monkeypatch.setattr(tb, "EVENT_DRIVEN_ABOVE", 10**12)
    dense = torch_run(net, dtype="float64")[0]
    for k in ref.counts:
        np.testing.assert_array_equal(dense.counts[k], ref.counts[k], err_msg=k)
    dense_fixed = torch_run(net, "loihi2-torch")[0]
    monkeypatch.setattr(tb, "EVENT_DRIVEN_ABOVE", 0)  # every connection event by event
    monkeypatch.setattr(tb, "EVENT_DRIVEN_ABOVE_CPU", 0)
    got = torch_run(net, dtype="float64")[0]
    for k in ref.counts:
        np.testing.assert_array_equal(got.counts[k], ref.counts[k], err_msg=k)
    np.testing.assert_allclose(got.traces["exc.v"].values, ref.traces["exc.v"].values, rtol=0, atol=1e-9)
    event_fixed = torch_run(net, "loihi2-torch")[0]
    for k in dense_fixed.counts:
        np.testing.assert_array_equal(event_fixed.counts[k], dense_fixed.counts[k])
    np.testing.assert_array_equal(event_fixed.traces["exc.v"].values, dense_fixed.traces["exc.v"].values)


def test_oversized_runs_are_refused_before_allocating(monkeypatch):
    import neurodeploy.backends.torch.simulator as tb
    from neurodeploy.core.errors import CompileError

    monkeypatch.setattr(tb, "MAX_RECORD_BYTES", 1000)
    with pytest.raises(CompileError, match="fewer steps or trials"):
        torch_run(nd.load("models/ei_network.yaml"))


def test_cpu_threads_option_gives_the_same_run_and_restores_torch():
    import torch

    net = shorten(nd.load("models/cuba_chain.yaml"), 120)
    before = torch.get_num_threads()
    a = torch_run(net, dtype="float64")[0]
    b = torch_run(net, dtype="float64", cpu_threads=1)[0]
    assert torch.get_num_threads() == before
    for k in a.counts:
        np.testing.assert_array_equal(a.counts[k], b.counts[k])
    np.testing.assert_array_equal(a.traces["stage0.v"].values, b.traces["stage0.v"].values)
