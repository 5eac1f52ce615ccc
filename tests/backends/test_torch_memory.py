"""Torch backend memory and threads: recordings sized by what the probes ask (their neurons, their
period), spikes recorded as indices (spike for spike what the dense recording and the numpy
reference give), the recording bound in bytes naming the probe, and ``--threads``.

Sizes are checked on the buffers themselves (shapes, bytes), never by timing."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import neurodeploy as nd
from neurodeploy.backends.reference import simulator as reference
from neurodeploy.backends.torch import simulator as tb
from neurodeploy.backends.torch.simulator import TorchOptions, TorchSim, run
from neurodeploy.core.errors import CompileError, UsageError
from neurodeploy.core.targets import load_target
from neurodeploy.ir import Probe

from .helpers import shorten, with_all_spike_probes


def _with_probes(net, *probes):
    return dataclasses.replace(net, probes=tuple(probes))


def _sim(net, target="torch", seeds=None, dtype="float64"):
    return TorchSim(net, load_target(target), tb.pick_device("cpu"), dtype, seeds or (net.simulation.seed,))


def _ei(steps=200):
    return shorten(nd.load("models/ei_network.yaml"), steps)


def test_a_probe_of_k_neurons_allocates_k_sized_buffers_at_its_period():
    import torch

    net = _with_probes(_ei(100), Probe("exc.v", "exc", "v", indices=(0, 1, 2, 3, 4), period=1e-3),
                       Probe("inh.spikes", "inh", "spikes", indices=(7, 3)))
    sim = _sim(net)
    (rec,) = sim.traces
    period = round(1e-3 / net.simulation.dt)
    samples = len(range(0, net.simulation.steps, period))
    assert rec.v.shape == (samples, 1, 5) and rec.u.shape == (samples, 1, 5) and rec.used.shape == (samples, 1, 5)
    assert rec.used.dtype == torch.bool
    spk = sim.spike_recs["inh"]
    assert spk.n == 2 and spk.chunk.shape[1:] == (1, 2)
    assert "exc" not in sim.spike_recs  # nothing records exc's spikes (its counts are kept apart)
    # nothing the size of (steps x population) is held for recordings or inputs
    big = net.simulation.steps * 800
    held = [t for r in sim.traces for t in (r.v, r.u, r.used)] + [spk.chunk]
    assert all(t.numel() < big // 50 for t in held)
    assert all(flat.numel() < big for flat, _ in sim.src.values())  # input spikes as indices


def test_probed_subsets_and_periods_equal_the_reference_spike_for_spike(monkeypatch):
    # small chunks: the spikes reach the host in many pieces and must come back in order
    monkeypatch.setattr(tb, "SPIKE_CHUNK_CELLS", 800 * 7)
    base = _ei(300)
    net = _with_probes(base, Probe("exc.v", "exc", "v", indices=(4, 0, 2), period=3e-4),
                       Probe("inh.v", "inh", "v"),
                       Probe("exc.spikes", "exc", "spikes", indices=tuple(range(0, 800, 3))),
                       Probe("inh.spikes", "inh", "spikes"), Probe("background.spikes", "background", "spikes"))
    ref = reference.simulate(net)
    got = run(net, load_target("torch"), TorchOptions(device="cpu", dtype="float64", progress=False))[0]
    assert set(got.spikes) == set(ref.spikes) and set(got.traces) == set(ref.traces)
    for k, s in ref.spikes.items():
        np.testing.assert_array_equal(got.spikes[k].i, s.i, err_msg=k)
        np.testing.assert_array_equal(got.spikes[k].t, s.t, err_msg=k)
    assert len(ref.spikes["exc"].i) > 0 and np.all(ref.spikes["exc"].i % 3 == 0)
    for k, tr in ref.traces.items():
        np.testing.assert_array_equal(got.traces[k].index, tr.index, err_msg=k)
        np.testing.assert_allclose(got.traces[k].t, tr.t, rtol=0, atol=1e-15, err_msg=k)
        np.testing.assert_allclose(got.traces[k].values, tr.values, rtol=0, atol=1e-9, err_msg=k)
    for k in ref.counts:
        np.testing.assert_array_equal(got.counts[k], ref.counts[k], err_msg=k)


def test_current_probe_subset_equals_the_reference():
    net = shorten(nd.load("models/cuba_chain.yaml"), 300)
    net = _with_probes(net, Probe("stage0.I", "stage0", "I", indices=(9, 1), period=5e-4),
                       Probe("stage1.v", "stage1", "v", indices=(3,)), Probe("stage4.spikes", "stage4", "spikes"))
    ref = reference.simulate(net)
    got = run(net, load_target("torch"), TorchOptions(device="cpu", dtype="float64", progress=False))[0]
    for k, tr in ref.traces.items():
        assert got.traces[k].values.shape == tr.values.shape
        np.testing.assert_allclose(got.traces[k].values, tr.values, rtol=0, atol=1e-9, err_msg=k)
    np.testing.assert_array_equal(got.spikes["stage4"].i, ref.spikes["stage4"].i)
    assert len(ref.spikes["stage4"].i) > 0


def test_batched_spike_indices_split_back_into_their_trials(monkeypatch):
    monkeypatch.setattr(tb, "SPIKE_CHUNK_CELLS", 1000 * 2 * 5)
    net = with_all_spike_probes(_ei(120))
    seeds = (42, 7)
    batch = run(net, load_target("torch"), TorchOptions(device="cpu", dtype="float64", trial_seeds=seeds,
                                                         progress=False, cpu_threads=1))
    for b, s in enumerate(seeds):
        alone = run(net, load_target("torch"), TorchOptions(device="cpu", dtype="float64", trial_seeds=(s,),
                                                             progress=False))[0]
        for k in alone.counts:
            np.testing.assert_array_equal(batch[b].spikes[k].i, alone.spikes[k].i, err_msg=k)
            np.testing.assert_array_equal(batch[b].spikes[k].t, alone.spikes[k].t, err_msg=k)
            assert len(batch[b].spikes[k].i) == int(batch[b].counts[k].sum()) > 0


def test_export_and_load_round_trip_the_recordings():
    # the hybrid run moves a torch part's recordings out of Lava's child process this way
    net = _with_probes(_ei(80), Probe("exc.v", "exc", "v", indices=(1, 2)), Probe("inh.spikes", "inh", "spikes"))
    a = _sim(net)
    for m in range(1, a.steps + 1):
        a.step(m)
    flat = a.export()
    assert len(flat) == a.record_size()
    b = _sim(net)
    b.load(flat)
    ra, rb = a.results(0.0, "float64")[0], b.results(0.0, "float64")[0]
    np.testing.assert_array_equal(ra.spikes["inh"].i, rb.spikes["inh"].i)
    np.testing.assert_array_equal(ra.spikes["inh"].t, rb.spikes["inh"].t)
    np.testing.assert_array_equal(ra.traces["exc.v"].values, rb.traces["exc.v"].values)
    assert len(ra.spikes["inh"].i) > 0


def test_the_byte_cap_names_the_probe_that_exceeds_it(monkeypatch):
    net = _with_probes(_ei(200), Probe("exc.v", "exc", "v"), Probe("inh.spikes", "inh", "spikes"))
    # the full exc.v probe: 200 samples x 800 neurons x (8 + 8 + 1) bytes = 2.7 MB
    monkeypatch.setattr(tb, "MAX_RECORD_BYTES", 1_000_000)
    with pytest.raises(CompileError, match=r"probe 'exc\.v' \(v of 800 neuron\(s\) x 200 sample\(s\)") as e:
        _sim(net)
    assert "record fewer neurons" in str(e.value)
    # a 5-neuron probe of the same population fits
    small = _with_probes(net, Probe("exc.v", "exc", "v", indices=(0, 1, 2, 3, 4)))
    assert _sim(small).planned_bytes < 1_000_000


def test_recorded_spikes_beyond_the_cap_stop_the_run_naming_the_probe(monkeypatch):
    net = _with_probes(_ei(300), Probe("exc.spikes", "exc", "spikes"))
    sim = _sim(net)
    monkeypatch.setattr(tb, "MAX_RECORD_BYTES", sim.planned_bytes + 12)  # room for one spike's indices
    with pytest.raises(CompileError, match="spike probe 'exc.spikes' recorded"):
        for m in range(1, sim.steps + 1):
            sim.step(m)


def _threads_seen(monkeypatch):
    import torch

    seen = []
    loop = tb._loop

    def spy(sim, device, opts, t0):
        seen.append(torch.get_num_threads())
        return loop(sim, device, opts, t0)

    monkeypatch.setattr(tb, "_loop", spy)
    # the spy sees the eager loop; a single trial would otherwise run the fused kernel (fused.py)
    monkeypatch.setenv("NEURODEPLOY_TORCH_KERNEL", "eager")
    return seen


def test_single_trials_default_to_one_thread_and_threads_sets_them(monkeypatch):
    import torch

    before = torch.get_num_threads()
    seen = _threads_seen(monkeypatch)
    net = shorten(nd.load("models/cuba_chain.yaml"), 50)
    one = run(net, load_target("torch"), TorchOptions(device="cpu", progress=False))[0]
    two = run(net, load_target("torch"), TorchOptions(device="cpu", progress=False, cpu_threads=2))[0]
    batch = run(net, load_target("torch"), TorchOptions(device="cpu", progress=False, trial_seeds=(1, 2)))
    assert seen == [1, 2, before]
    assert one.options["threads"] == 1 and two.options["threads"] == 2 and batch[0].options["threads"] == before
    assert torch.get_num_threads() == before
    with pytest.raises(UsageError, match="--threads 0"):
        run(net, load_target("torch"), TorchOptions(device="cpu", cpu_threads=0))


def test_cli_threads_reaches_the_torch_run(tmp_path, capsys, monkeypatch):
    from neurodeploy.app import cli

    seen = _threads_seen(monkeypatch)
    rc = cli.main(["run", "models/cuba_chain.yaml", "--target", "torch", "-o", str(tmp_path), "--json",
                   "--threads", "2", "--torch-device", "cpu"])
    info = json.loads(capsys.readouterr().out)
    assert rc == 0 and seen == [2] and info["summary"]["options"]["threads"] == 2


def test_validate_and_eval_take_threads():
    from neurodeploy.app import cli
    from neurodeploy.validation.run import backend_options

    assert backend_options(load_target("torch"), threads=3).cpu_threads == 3
    assert backend_options(load_target("torch")).cpu_threads is None  # the run's default: 1 per single trial
    backend_options(load_target("brian2"), threads=3)  # other backends ignore it
    parser = cli.build_parser()
    assert parser.parse_args(["validate", "m.yaml", "-t", "torch", "-o", "x", "--threads", "2"]).threads == 2
    assert parser.parse_args(["eval", "m.yaml", "-t", "torch", "-o", "x", "--threads", "2"]).threads == 2
    with pytest.raises(UsageError, match="--threads 0"):
        nd.evaluate("models/ipvae/ipvae_digits.yaml", "torch", "unused", threads=0)


def test_compact_sparse_paths_equal_the_reference(monkeypatch):
    # every connection through the CSR paths: rows of spiking neurons (one trial), sparse product (batch)
    monkeypatch.setattr(tb, "DENSE_MAX_ELEMENTS", 1000)
    net = with_all_spike_probes(_ei(150))
    ref = reference.simulate(net)
    sim = _sim(net)
    assert all(isinstance(W, tb._Rows) for *_, W, _ in sim.conns)
    W = sim.conns[0][3]
    assert W.indices.dtype.itemsize == 4 and W.data.dtype == sim.fdtype  # int32 columns, the run's floats
    assert all(len(pr.i) == 0 for pr in sim.low.projections.values())  # the lowered copies are released
    seeds = (net.simulation.seed,) * 2
    for opts in (TorchOptions(device="cpu", dtype="float64", progress=False),
                 TorchOptions(device="cpu", dtype="float64", progress=False, trial_seeds=seeds, cpu_threads=1)):
        for got in run(net, load_target("torch"), opts):
            for k in ref.counts:
                np.testing.assert_array_equal(got.counts[k], ref.counts[k], err_msg=k)
                np.testing.assert_array_equal(got.spikes[k].i, ref.spikes[k].i, err_msg=k)
            np.testing.assert_allclose(got.traces["exc.v"].values, ref.traces["exc.v"].values, rtol=0, atol=1e-9)


def test_the_fused_plan_holds_the_synapses_once(monkeypatch):
    # the fused kernel's concatenated CSR arrays become the storage of the big connections: the
    # eager loop's own copies are rebound to views of them (one copy in memory, not two)
    from neurodeploy.backends.torch import fused

    monkeypatch.setattr(tb, "DENSE_MAX_ELEMENTS", 1000)
    sim = _sim(_ei(20), dtype="float32")
    before = [(W.indices.numpy().copy(), W.data.numpy().copy()) for *_, W, _ in sim.conns]
    plan = fused._Plan(sim)
    assert len(sim.conns) >= 4
    for (idx, w), (*_, W, _) in zip(before, sim.conns):
        assert np.shares_memory(W.indices.numpy(), plan.cols) and np.shares_memory(W.data.numpy(), plan.vals)
        np.testing.assert_array_equal(W.indices.numpy(), idx)  # the same values, now views
        np.testing.assert_array_equal(W.data.numpy(), w)
    assert plan.cols.nbytes + plan.vals.nbytes == sum(i.nbytes + w.nbytes for i, w in before)
