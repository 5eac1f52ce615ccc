"""`--codegen auto`: numpy where Cython's first compilation cannot pay off, Cython where its
compiled code is cached or the run is long (neurodeploy.backends.brian2.codegen). No Cython
compilation happens here: the record of compiled structures is written by hand."""

from __future__ import annotations

import dataclasses
import logging

import pytest

import neurodeploy as nd
from neurodeploy.backends.brian2 import BACKEND, codegen as cg, simulator
from neurodeploy.spec.overrides import with_duration

load_model = nd.load

SMALL = cg.Size(steps=1000, dt=1e-4, neurons=1000, synapses=100_000, code_objects=20)


def test_short_run_uncached_picks_numpy_and_says_why():
    d = cg.decide("auto", SMALL, cached=False)
    t_np, t_cy = cg.estimate(SMALL)
    assert t_np < cg.COMPILE_S  # the premise: this run is much shorter than a compilation
    assert d.codegen == "numpy" and not d.compiles
    assert "numpy" in d.reason and "compile" in d.reason and f"{cg.COMPILE_S:.0f} s" in d.reason
    assert d.numpy_s == pytest.approx(t_np) and d.cython_s == pytest.approx(cg.COMPILE_S + t_cy)


def test_long_run_uncached_compiles_cython():
    long = dataclasses.replace(SMALL, steps=10_000_000)  # 1000 s simulated
    d = cg.decide("auto", long, cached=False)
    assert d.codegen == "cython" and d.compiles
    assert d.numpy_s > d.cython_s


def test_break_even_is_where_the_estimates_cross():
    t_np, t_cy = cg.estimate(dataclasses.replace(SMALL, steps=1))
    n_even = cg.COMPILE_S / (t_np - t_cy)  # steps at which numpy == compile + Cython
    below = cg.decide("auto", dataclasses.replace(SMALL, steps=int(n_even * 0.9)), cached=False)
    above = cg.decide("auto", dataclasses.replace(SMALL, steps=int(n_even * 1.1)), cached=False)
    assert (below.codegen, above.codegen) == ("numpy", "cython")


def test_cached_structure_uses_cython_even_for_a_short_run():
    d = cg.decide("auto", dataclasses.replace(SMALL, steps=10), cached=True)
    assert d.codegen == "cython" and not d.compiles and "cached" in d.reason


def test_explicit_requests_are_kept():
    assert cg.decide("numpy", SMALL, cached=True).codegen == "numpy"
    d = cg.decide("cython", SMALL, cached=False)
    assert d.codegen == "cython" and d.compiles
    assert not cg.decide("cython", SMALL, cached=True).compiles
    with pytest.raises(ValueError):
        cg.decide("c++", SMALL, cached=False)


def test_no_cython_means_numpy_with_the_reason():
    d = cg.decide("auto", dataclasses.replace(SMALL, steps=10_000_000), cached=False, cython_ok=False,
                  missing="no C compiler")
    assert d.codegen == "numpy" and "no C compiler" in d.reason


def test_size_of_counts_neurons_synapses_and_objects():
    net = load_model("ei_network")
    s = cg.size_of(net)
    assert s.neurons == sum(p.size for p in net.populations) == 1000
    assert s.steps == net.simulation.steps and s.dt == net.simulation.dt
    # ei_network: every projection is random with probability p
    expected = sum(int(pr.connectivity.p * _size(net, pr.source) * _size(net, pr.target)) for pr in net.projections)
    assert s.synapses == expected
    assert s.code_objects > len(net.populations) * 3


def _size(net, name):
    return next(n.size for n in (*net.populations, *net.stimuli) if n.name == name)


def test_structure_key_ignores_values_but_not_structure():
    net = load_model("ei_network")
    longer = with_duration(net, "2 s")
    assert cg.structure_key(net) == cg.structure_key(longer)  # steps: a value, not code
    assert cg.structure_key(net) != cg.structure_key(net, poisson="native")
    other = load_model("cuba_chain")
    assert cg.structure_key(net) != cg.structure_key(other)


def test_cache_record_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURODEPLOY_CACHE", str(tmp_path))
    module = tmp_path / "_cython_magic_x.so"
    module.write_bytes(b"")
    assert not cg.is_cached("k1")
    cg.record("k1", [str(module)])
    assert cg.is_cached("k1")
    module.unlink()  # brian2.clear_cache('cython') removes the modules: no longer cached
    assert not cg.is_cached("k1")
    (tmp_path / "brian2_cython" / "k2.json").write_text("{not json")
    assert not cg.is_cached("k2")  # a broken record is a miss, not an error


def test_run_line_states_choice_and_cache_hit(tmp_path, monkeypatch):
    monkeypatch.setenv("NEURODEPLOY_CACHE", str(tmp_path))
    monkeypatch.setattr(cg, "cython_available", lambda: (True, ""))
    net = load_model("single_lif")
    line = BACKEND.describe(None, {"codegen": "auto"}, net)
    assert line.startswith("Brian2 code generation: numpy (auto:")
    module = tmp_path / "m.so"
    module.write_bytes(b"")
    cg.record(cg.structure_key(net), [str(module)])
    line = BACKEND.describe(None, {"codegen": "auto"}, net)
    assert line == "Brian2 code generation: cython (auto: compiled code for this structure is cached)"
    assert BACKEND.describe(None, {"device": "cpp_standalone"}, net).startswith("Brian2 cpp_standalone")


@pytest.mark.parametrize("compiles,progress,logged", [(True, True, True), (False, True, False),
                                                        (True, False, False)])
def test_compiling_line_before_brians_run(monkeypatch, compiles, progress, logged):
    """The progress line is logged right before Brian2's run when Cython compiles (and progress
    is on); Brian2's network is replaced by a stub, so nothing is compiled."""
    net = load_model("single_lif")
    messages = []

    class Collect(logging.Handler):  # on the logger itself: the CLI's set-up stops propagation
        def emit(self, record):
            messages.append(record.getMessage())

    logger = logging.getLogger("neurodeploy.brian2")
    handler = Collect(logging.INFO)
    logger.addHandler(handler)
    monkeypatch.setattr(logger, "level", logging.INFO)
    monkeypatch.setattr(simulator, "decide_codegen",
                        lambda *a, **k: cg.Decision("cython", "test", compiles=compiles))
    seen = []

    class Stop(Exception):
        pass

    class StubNetwork:
        objects = []

        def run(self, *a, **k):  # what was logged when Brian2's run (and its compilation) starts
            seen.append(cg.COMPILING_MESSAGE in messages)
            raise Stop

    monkeypatch.setattr(simulator, "build", lambda *a, **k: simulator.Built(StubNetwork(), {}, {}, {}, {}))
    try:
        with pytest.raises(Exception, match="Stop"):
            simulator.run(net, options=simulator.Brian2Options(codegen="cython", progress=progress))
    finally:
        logger.removeHandler(handler)
    assert seen == [logged]
    assert messages.count(cg.COMPILING_MESSAGE) == int(logged)
