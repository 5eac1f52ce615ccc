"""The NIR paper's single-LIF benchmark (tests/fixtures/nir-paper-lif/, written by other projects)
through examples/nir_paper_lif.py. Stated tolerances (NIR units, v_th = 0.1):

* spike steps: 461, 511, 711, 761 = lif_exact.csv's + 1 step (neurodeploy's LIF checks the
  threshold before the step's synaptic input, Brian2's schedule; Lava and spyx show the same);
* voltage before the first spike: RMSE vs lif_exact.csv <= 1e-3 (measured 6.6e-4: NIR's input
  jump r dt/tau = 0.04 against the exact solution's 1 - exp(-dt/tau) = 0.0392); the Euler spec
  reproduces Norse's trace to <= 1e-6 before the first spike;
* sub-threshold RMSE vs lif_exact.csv <= 1.5e-3 over the whole run (measured 9.1e-4);
* loihi2-torch (bit-exact with loihi2-sim) against the Loihi 2 chip's trace, Lava integer units,
  before the first spike: <= 20 LSB (measured 12.9 LSB; Lava's own CPU model: 0, see docs/validate.md).
"""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from ..conftest import ROOT


@pytest.fixture(scope="module")
def ex():
    spec = importlib.util.spec_from_file_location("nir_paper_lif", ROOT / "examples" / "nir_paper_lif.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["nir_paper_lif"] = mod
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def runs(ex, tmp_path_factory):
    ex.OUR_TARGETS = ["brian2", "torch", "loihi2-torch"]  # Lava's are in the slow test below
    out = tmp_path_factory.mktemp("nir")
    return {v: ex.run_ours(ex.build_network(v, out / v), out / v) for v in ("nir", "euler")}


def test_hand_built_spec_matches_the_importer(ex, tmp_path):
    a = ex.build_network("nir", tmp_path)
    b = ex.build_network("nir", tmp_path, hand_built=True)
    assert a.simulation.steps == b.simulation.steps == 1000
    pa, pb = a.populations[0].params, b.populations[0].params
    for k in ("tau_m", "v_th", "v_rest", "v_reset", "t_ref", "R_m"):
        assert pa[k] == pytest.approx(pb[k], rel=1e-6, abs=1e-12), k
    np.testing.assert_array_equal(np.round(np.asarray(a.stimuli[0].times) / 1e-4),
                                  np.round(np.asarray(b.stimuli[0].times) / 1e-4))
    assert len(a.stimuli[0].times) == 34


def test_nir_paper_lif_against_the_exact_solution(ex, runs):
    res = ex.evaluate(runs["nir"])
    ours = {r["source"]: r for r in res["rows"] if r["who"] == "neurodeploy"}
    assert set(ours) == {"brian2", "torch", "loihi2-torch"}
    for name, r in ours.items():
        assert r["spike_steps"] == [461, 511, 711, 761], name
        assert r["rmse_vs_exact_before_first_spike"] <= 1e-3, name
        assert r["rmse_vs_exact"] <= 1.5e-3, name
    # the platforms' own numbers, as the fixtures record them
    plat = {r["source"]: r for r in res["rows"] if r["who"] == "platform"}
    assert plat["norse"]["spike_steps"] == [460, 510, 710, 760]
    assert plat["sinabs"]["spike_steps"] == [450, 500, 710, 760]
    for p in ("lava_cpu_fixed", "nengo", "snntorch"):  # the stated unit scales fit the data within 3 %
        assert plat[p]["fitted_scale"] == pytest.approx(1 / plat[p]["scale"], rel=0.03), p


def test_euler_spec_reproduces_norse_and_the_chip_before_the_first_spike(ex, runs):
    v = runs["euler"]["brian2"]["v"]
    norse = ex.read_csv("norse")[:, 1]
    assert np.sqrt(np.mean((v[:460] - norse[:460]) ** 2)) <= 1e-6
    res = ex.evaluate(runs["nir"])
    assert res["loihi"]["lava_cpu_fixed"]["rmse_subthreshold"] == 0.0  # Lava's CPU model vs the chip
    hw = ex.read_csv("lava_loihi_fixed")
    q = runs["nir"]["loihi2-torch"]["v"] * 16000
    lag = 1  # Lava delivers input one step later than neurodeploy
    pre = np.sqrt(np.mean((q[:459] - hw[lag:460, 1]) ** 2))
    assert pre <= 20, pre


@pytest.mark.slow
@pytest.mark.lava
def test_nir_paper_lif_on_lava_targets(ex, tmp_path):
    ex.OUR_TARGETS = ["lava", "loihi2-sim"]
    ours = ex.run_ours(ex.build_network("nir", tmp_path), tmp_path)
    res = ex.evaluate(ours)
    for r in res["rows"]:
        if r["who"] == "neurodeploy":
            assert r["spike_steps"] == [461, 511, 711, 761] and r["rmse_vs_exact"] <= 1.5e-3, r
    assert res["loihi"]["loihi2-sim"]["rmse_before_first_spike"] <= 20
