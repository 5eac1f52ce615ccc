"""Hybrid runs: the Lava part in Lava, the fallback part in torch (inside a Lava process),
exchanging spikes every step. In float the result equals the numpy reference spike for spike."""

from __future__ import annotations

import json

import pytest

import neurodeploy as nd
from neurodeploy.backends.reference import simulator as reference
from neurodeploy import simulate
from neurodeploy.core.targets import load_target

from .test_torch_fallback import HYBRID, assert_same_as_reference

pytestmark = pytest.mark.lava


def test_hybrid_float_run_equals_the_reference_spike_for_spike():
    net = nd.load(HYBRID)
    ref = reference.simulate(net)
    got = simulate(net, load_target("lava"), progress=False)
    assert got.backend == "lava+torch" and got.options["placement"]["exchange_points"] == ["driven_out", "out_learner"]
    assert_same_as_reference(got, ref)
    assert ref.counts["out"].sum() > 50  # the Lava population does fire, partly from torch's spikes


def test_hybrid_run_with_a_progress_bar_is_chunked_and_equals_one_run():
    """progress=True runs the Lava part in chunks (a bar between them); the torch part in its
    bridge process keeps its state across them, so the spikes equal the reference's."""
    net = nd.load(HYBRID)
    ref = reference.simulate(net)
    got = simulate(net, load_target("lava"), progress=True)
    assert_same_as_reference(got, ref)


def test_cli_hybrid_run_on_loihi2_sim(tmp_path, capsys):
    from neurodeploy.app import cli

    rc = cli.main(["run", HYBRID, "--target", "loihi2-sim", "-o", str(tmp_path), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert rc == 0 and info["summary"]["backend"] == "lava+torch"
    ref = reference.simulate(nd.load(HYBRID))
    pops = info["summary"]["populations"]
    assert pops["driven"]["spikes"] == int(ref.counts["driven"].sum())  # torch part, float64: exact
    # the Lava part is in Loihi integers: close to, not equal to, the float reference
    assert abs(pops["out"]["spikes"] - int(ref.counts["out"].sum())) <= 0.1 * ref.counts["out"].sum()
    assert (tmp_path / "result.npz").exists()
