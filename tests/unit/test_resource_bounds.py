"""Memory bounded before work (issue 16, item 2): limits estimated from the IR's counts before any
synapse is drawn, a model over a target's limits or over the memory budget refused with the limit
named, and the vectorised connectivity draw identical to numpy's per-row ``choice``.

Each test writes its own spec. "Fast" is measured as memory, not time: the refused commands must
peak at a few MB of Python allocations (tracemalloc) where drawing the synapses would take GBs."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import neurodeploy as nd
from neurodeploy.core.errors import CompileError, UsageError
from neurodeploy.core.limits import MEMORY_BUDGET_ENV, parse_bytes
from neurodeploy.core.targets import load_target
from neurodeploy.library import materialize
from neurodeploy.passes.estimate import estimate

LIF = "{tau_m: 20 ms, v_rest: -65 mV, v_reset: -65 mV, v_th: -50 mV}"
#: what a refused command may allocate (Python heap, tracemalloc): the IR and the estimate only
SMALL = 20 * 2**20


def spec(tmp_path, name: str, pops: dict[str, int], projs=(), probes=()) -> str:
    lines = ["neurodeploy: 1", f"name: {name}", "simulation: {dt: 0.1 ms, duration: 10 ms, seed: 3}",
             "populations:"]
    lines += [f"  - {{name: {n}, size: {s}, model: lif, params: {LIF}}}" for n, s in pops.items()]
    if projs:
        lines.append("projections:")
        lines += [f"  - {{name: {n}, source: {a}, target: {b}, connectivity: {c}, weights: 0.1 mV, "
                  "sign: excitatory}" for n, a, b, c in projs]
    if probes:
        lines.append("probes:")
        lines += [f"  - {p}" for p in probes]
    path = tmp_path / f"{name}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


def big(tmp_path, p=0.25) -> str:
    """Two 20k populations, random p: 1e8 synapses at p = 0.25 (`check` says ok)."""
    return spec(tmp_path, "big", {"a": 20_000, "b": 20_000}, [("ab", "a", "b", f"{{kind: random, p: {p}}}")])


def peak_of(fn):
    """(exception raised by fn, peak bytes traced while it ran)."""
    tracemalloc.start()
    try:
        with pytest.raises(CompileError) as e:
            fn()
        return e.value, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("allow_fallback", [True, False])
def test_over_fan_in_fails_before_drawing_with_the_limit_named(tmp_path, allow_fallback):
    path = big(tmp_path)
    err, peak = peak_of(lambda: nd.compile(path, "loihi2-sim", allow_fallback=allow_fallback))
    msg = str(err)
    assert "fan_in_axons_per_core = 4096" in msg and "'b'" in msg and "hint:" in msg
    assert err.exit_code == 1
    assert peak < SMALL  # 1e8 synapses would be 2.4 GB as int32 + float64 arrays alone


def test_over_cores_by_synapse_memory_fails_before_drawing(tmp_path):
    path = big(tmp_path, p=0.1)  # 4e7 synapses: today 70 s and 4.5 GB before the named error
    err, peak = peak_of(lambda: nd.compile(path, "loihi2-sim"))
    msg = str(err)
    assert "neurocores" in msg and "cores_per_chip x chips = 120 x 1 = 120" in msg
    assert "before drawing any synapse" in msg
    assert peak < SMALL


@pytest.mark.parametrize("allow_fallback", [True, False])
def test_million_neurons_on_loihi2_sim_names_the_chip_limit(tmp_path, allow_fallback):
    path = spec(tmp_path, "huge", {"a": 1_000_000})
    with pytest.raises(CompileError) as e:
        nd.compile(path, "loihi2-sim", allow_fallback=allow_fallback)
    msg = str(e.value)
    assert "1000000" in msg and "983040" in msg and "8192" in msg and "120" in msg
    assert "every node is placed on the fallback" not in msg or "983040" in msg
    assert e.value.exit_code == 1


def test_compile_over_the_memory_budget_names_the_budget(tmp_path, monkeypatch):
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "1GiB")
    path = big(tmp_path)  # lava has no per-core limits: only the memory budget stops it
    err, peak = peak_of(lambda: nd.compile(path, "lava"))
    msg = str(err)
    assert "memory budget" in msg and "1.1 GB" in msg and MEMORY_BUDGET_ENV in msg and "'ab'" in msg
    assert peak < SMALL


@pytest.mark.parametrize("target", ["torch", "brian2", "loihi2-sim"])
def test_runs_are_bounded_before_the_backend_builds(tmp_path, monkeypatch, target):
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "500MB")
    path = big(tmp_path)
    err, peak = peak_of(lambda: nd.simulate(path, target))
    assert "memory budget of 500.0 MB" in str(err) and f"running on {load_target(target).backend}" in str(err)
    assert peak < SMALL


def test_recordings_count_against_the_budget(tmp_path, monkeypatch):
    # 50k neurons' v for 100 steps: 40 MB of recordings, over a 30 MB budget; no synapse at all
    path = spec(tmp_path, "rec", {"a": 50_000}, probes=["{target: a, record: v}"])
    est = estimate(nd.load(path))
    assert est.record_values == 50_000 * 100
    monkeypatch.setenv(MEMORY_BUDGET_ENV, "30MB")
    with pytest.raises(CompileError, match="of recordings"):
        nd.simulate(path, "torch")


def test_a_fitting_model_still_compiles_and_reports_its_estimate(tmp_path):
    c = nd.compile("models/ei_network.yaml", "loihi2-sim")
    est = c.compilation.reports["place"].data["estimate"]  # the place pass ends with the estimate
    assert est["neurons"] == 1000
    syn = est["synapses"]
    drawn = sum(int(p.i.size) for p in c.compilation.lowered.projections.values())
    assert syn["lower"] <= drawn <= syn["upper"]
    assert c.compilation.coremap.n_cores >= 1


def test_budget_parsing():
    assert parse_bytes("8GiB") == 8 * 2**30 and parse_bytes("500MB") == 500 * 10**6
    assert parse_bytes("none") is None and parse_bytes("1e9") == 10**9
    with pytest.raises(UsageError, match=MEMORY_BUDGET_ENV):
        parse_bytes("lots")


def test_counts_bound_what_is_drawn(tmp_path):
    path = spec(tmp_path, "cnt", {"a": 3000, "b": 500},
                [("r1", "a", "b", "{kind: random, p: 0.02}"), ("r2", "b", "b", "{kind: random, p: 0.3, allow_self: false}"),
                 ("d", "b", "a", "{kind: dense}"), ("o", "b", "b", "{kind: one_to_one}")])
    net = nd.load(path)
    est = {p.name: p for p in estimate(net).projections}
    for pr in net.projections:
        syn = materialize.synapses(net, pr)
        c = est[pr.name]
        assert c.lower <= syn.i.size <= c.upper, pr.name
        fan_in = np.bincount(syn.j, minlength=c.n_tgt)
        assert c.fan_in_lower <= fan_in.min() and fan_in.max() <= c.fan_in_upper, pr.name
        assert syn.i.dtype == np.int32 and syn.j.dtype == np.int32  # compact indices


def _per_row(rng, n, k):
    return np.concatenate([np.sort(rng.choice(n, kk, replace=False)) for kk in k])


@pytest.mark.parametrize("n_src,n_tgt,p", [
    (1, 1, 1.0), (7, 5, 1.0), (40, 3, 0.7), (300, 100, 0.1), (500, 2000, 0.05),  # k == n, many repeats
    (2000, 200_000, 0.0005),  # large bounds: Lemire rejections happen
    (300, 20_000, 0.03),  # n > 10000 and k > n // 50: numpy's tail shuffle, kept per row
])
def test_vectorised_choice_draws_the_same_synapses(n_src, n_tgt, p):
    for seed in range(3):
        r1, r2 = np.random.default_rng([seed, n_src]), np.random.default_rng([seed, n_src])
        k1, k2 = r1.binomial(n_tgt, p, size=n_src), r2.binomial(n_tgt, p, size=n_src)
        want = _per_row(r1, n_tgt, k1)
        got = materialize.choose_sorted(r2, n_tgt, k2)
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want)
