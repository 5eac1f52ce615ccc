"""Lava runs with a progress bar: the run is split into chunks of steps (several RunSteps calls),
which must give bit-identical results to one run (spikes, traces, learned weights)."""

from __future__ import annotations

import numpy as np
import pytest

import neurodeploy as nd
from neurodeploy.backends.lava import simulator
from neurodeploy.core.targets import load_target

from .helpers import shorten, with_all_spike_probes


def test_chunks_add_up_and_respect_the_minimum():
    assert simulator.chunks(1000, progress=False) == [1000]
    assert simulator.chunks(simulator.MIN_CHUNK, progress=True) == [simulator.MIN_CHUNK]
    for steps in (21, 101, 1000, 5001, 123_457):
        parts = simulator.chunks(steps, progress=True)
        assert sum(parts) == steps
        assert parts[0] == 1  # the bar appears once Lava's processes have started
        assert all(p >= 1 for p in parts) and all(p >= simulator.MIN_CHUNK for p in parts[1:-1])
        assert len(parts) <= simulator.PROGRESS_CHUNKS + 2


def _assert_identical(a, b):
    assert a.counts.keys() == b.counts.keys() and a.spikes.keys() == b.spikes.keys()
    for k in a.counts:
        np.testing.assert_array_equal(a.counts[k], b.counts[k], err_msg=k)
    for k in a.spikes:
        np.testing.assert_array_equal(a.spikes[k].i, b.spikes[k].i, err_msg=k)
        np.testing.assert_array_equal(a.spikes[k].t, b.spikes[k].t, err_msg=k)
    assert a.traces.keys() == b.traces.keys()
    for k in a.traces:
        np.testing.assert_array_equal(a.traces[k].values, b.traces[k].values, err_msg=k)


@pytest.mark.lava
@pytest.mark.parametrize("model,target,steps", [
    ("cuba_chain", "lava", 60), ("local_rules", "lava", 60),
    pytest.param("ei_network", "loihi2-sim", 40, marks=pytest.mark.slow)])  # ~15 s
def test_chunked_run_equals_one_run(monkeypatch, model, target, steps):
    net = with_all_spike_probes(shorten(nd.load(model), steps))
    t = load_target(target)
    one = simulator.run(net, t, simulator.LavaOptions(progress=False))
    monkeypatch.setattr(simulator, "MIN_CHUNK", 7)  # 60 (+1) steps in chunks of 7 and a remainder
    monkeypatch.setattr(simulator, "PROGRESS_CHUNKS", 1000)
    calls = []
    real = simulator._run_steps

    def spy(anchor, n, cfg, progress, label):
        calls.append(simulator.chunks(n, progress))
        return real(anchor, n, cfg, progress, label)

    monkeypatch.setattr(simulator, "_run_steps", spy)
    chunked = simulator.run(net, t, simulator.LavaOptions(progress=True))
    assert len(calls) == 1 and len(calls[0]) > 3 and calls[0][-1] != 7  # really chunked, with a remainder
    assert sum(int(c.sum()) for c in one.counts.values()) > 0, "the test run should spike"
    _assert_identical(one, chunked)
