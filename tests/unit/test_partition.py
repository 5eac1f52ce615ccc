"""The partition pass: synapse-memory cost model (hand-computed), splitting, limits, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

import neurodeploy as nd
from neurodeploy.library import materialize
from neurodeploy.core.errors import CompileError
from neurodeploy.ir import Connectivity, Network, Population, Projection, Simulation, Weights
from neurodeploy.ir.nodes import PoissonStimulus
from neurodeploy.library.materialize import SynapseData
from neurodeploy.passes.partition import CoreMap, group_bits, index_bits, partition, synapse_memory_bits
from neurodeploy.core.targets import Target, load_target

LOIHI2 = dict(neurons_per_core=8192, synapse_memory_bits_per_core=1_048_576,
              fan_in_axons_per_core=4096, fan_out_axons_per_core=4096, cores_per_chip=120, chips=1)


def target(**limits) -> Target:
    """A Loihi 2-like target; keyword arguments override limits (None removes one)."""
    lim = {**LOIHI2, **limits}
    return Target("test", "lava", "fixed", precision={"weight_bits": 8, "delay_bits": 6},
                  limits={k: v for k, v in lim.items() if v is not None})


def proj(name, src, tgt, conn="dense", delay=0.0, sign="excitatory", **kw) -> Projection:
    return Projection(name, src, tgt, Weights("constant", {"value": 1e-3}),
                      Connectivity(conn, **kw), delay=delay, sign=sign)


def net(pops: dict[str, int], projs=(), stimuli=()) -> Network:
    populations = tuple(Population(n, s, "lif", {}) for n, s in pops.items())
    return Network("t", Simulation(1e-4, 10), populations, tuple(stimuli), tuple(projs))


def coverage(cm: CoreMap, name: str) -> list[tuple[int, int]]:
    return [(c.start, c.stop) for c in cm.population_cores(name)]


# ---- the cost model, by hand ---------------------------------------------------------------


def test_index_bits():
    assert [index_bits(n) for n in (2, 64, 65, 128, 200, 1024, 4096)] == [6, 6, 7, 7, 8, 10, 12]
    # beyond Loihi 1's 12-bit map: extrapolated for Loihi 2's 8,192-neuron cores
    assert index_bits(4097) == 13 and index_bits(8192) == 13


def test_group_bits_rounds_groups_of_64_to_words():
    # 1 synapse x 8 bits + 10 header = 18 -> one 64-bit word
    assert group_bits(1, 8) == 64
    # 64 x 8 + 10 = 522 bits -> 9 words; 65 synapses: a second group of 1 (18 bits -> 1 word)
    assert group_bits(64, 8) == 576 and group_bits(65, 8) == 640
    # 6 x 9 + 10 = 64 exactly one word; 7 x 9 + 10 = 73 -> 2 words; 5 x 11 + 10 = 65 -> 2 words
    assert group_bits(6, 9) == 64 and group_bits(7, 9) == 128 and group_bits(5, 11) == 128
    assert list(group_bits(np.array([0, 128]), 8)) == [0, 1152]


def test_dense_axon_stores_no_index():
    # one axon onto all 4 neurons: 4 x 8 + 10 = 42 -> 64 bits;
    # sparse it would be 4 x (8 + 6) + 10 = 66 -> 128 bits
    assert synapse_memory_bits([0, 0, 0, 0], [0, 1, 2, 3], 4, 8, 0) == 64
    assert synapse_memory_bits([0, 0, 0, 0], [3, 2, 1, 0], 4, 8, 0) == 64  # order does not matter
    # a repeated target cannot use the dense format even though it has 4 synapses
    assert synapse_memory_bits([0, 0, 0, 0], [0, 1, 2, 2], 4, 8, 0) == 128
    # reaching 3 of 4 neurons: sparse, 6 index bits
    assert synapse_memory_bits([5, 5, 5], [0, 1, 3], 4, 8, 0) == 64  # 3 x 14 + 10 = 52


def test_sparse_index_bits_and_groups_of_64():
    # axon -> 100 of 200 neurons, 8 weight + 6 delay + 8 index (200 neurons) = 22 bits:
    # group of 64: 64*22 + 10 = 1418 -> 23 words = 1472; group of 36: 802 -> 13 words = 832
    post = np.arange(0, 200, 2)
    assert synapse_memory_bits(np.zeros(100, int), post, 200, 8, 6) == 1472 + 832
    # the same axon reaching all 100 neurons of a 100-neuron core: dense, 8 bits each:
    # 64*8 + 10 = 522 -> 9 words = 576; 36*8 + 10 = 298 -> 5 words = 320
    assert synapse_memory_bits(np.zeros(100, int), np.arange(100), 100, 8, 0) == 576 + 320
    # two axons on a 10-neuron core (6 index bits): 3 syn: 3*14 + 10 = 52 -> 64; 5 syn: 80 -> 128
    pre = [0, 0, 0, 1, 1, 1, 1, 1]
    post = [0, 4, 9, 1, 2, 3, 5, 7]
    assert synapse_memory_bits(pre, post, 10, 8, 0) == 64 + 128
    assert synapse_memory_bits([], [], 10, 8, 0) == 0
    with pytest.raises(ValueError):
        synapse_memory_bits([0, 1], [0], 10, 8, 0)
    with pytest.raises(ValueError):
        synapse_memory_bits([0], [10], 10, 8, 0)


# ---- splitting ------------------------------------------------------------------------------


def test_ei_network_fits_loihi2_sim_with_hand_computed_cores():
    model = nd.load("models/ei_network.yaml")
    tgt = load_target("loihi2-sim")
    cm = partition(model, tgt)
    # By hand: every projection is random p=0.1 with a delay (10 or 15 steps), so a synapse costs
    # 8 weight + 6 delay + index bits. exc (800) receives ~0.1 x 800 x 2000 = 160,000 synapses
    # from 2000 presynaptic neurons (1000 background + 800 exc + 200 inh). On 3 cores (267
    # neurons, 9 index bits) that is >= 53,000 synapses x 23 bits > 1,048,576 bits per core even
    # without headers, so exc needs at least 4 cores. 4 cores of 200 neurons: each of the 2000
    # axons brings ~20 synapses, 20 x 22 + 10 bits -> 7 or 8 words, ~2000 x 7.5 x 64 = 0.96 Mbit,
    # which fits. inh (200) gets ~40,000 synapses from the same 2000 axons: the same, 1 core.
    syn = {p.name: materialize.synapses(model, p) for p in model.projections}
    into_exc = sum(syn[p.name].i.size for p in model.projections if p.target == "exc")
    assert into_exc / 3 * (8 + 6 + index_bits(267)) > tgt.limits["synapse_memory_bits_per_core"]
    assert cm.n_cores == 5 and cm.chips_used == 1
    assert coverage(cm, "exc") == [(0, 200), (200, 400), (400, 600), (600, 800)]
    assert coverage(cm, "inh") == [(0, 200)]
    # every core's memory equals the direct cost model, summed over the projections onto it
    for c in cm.cores:
        bits = 0
        for p in model.projections:
            if p.target != c.population:
                continue
            s = syn[p.name]
            keep = (s.j >= c.start) & (s.j < c.stop)
            bits += synapse_memory_bits(s.i[keep], s.j[keep] - c.start, c.neurons, 8, 6)
        assert c.synapse_memory_bits == bits
        assert c.input_axons == 2000  # ~20 synapses per axon per core: all 2000 reach every core
        assert c.synapse_memory_bits <= tgt.limits["synapse_memory_bits_per_core"]
        assert c.utilisation["synapse_memory"] == pytest.approx(bits / 1_048_576)
    assert sum(c.synapses for c in cm.cores) == sum(s.i.size for s in syn.values())
    # given synapses are used as they are (same result, no materialisation)
    assert partition(model, tgt, synapses=syn).to_json() == cm.to_json()


def test_population_bigger_than_a_core_is_split_contiguously():
    cm = partition(net({"big": 20_000, "small": 10}), target())
    assert len(cm.populations["big"]) == 3  # ceil(20000 / 8192)
    assert coverage(cm, "big") == [(0, 6667), (6667, 13334), (13334, 20000)]
    assert cm.populations["small"] == (3,)
    cm = partition(net({"p": 1050}), target(neurons_per_core=100))
    slices = coverage(cm, "p")
    assert len(slices) == 11
    assert slices[0][0] == 0 and slices[-1][1] == 1050
    assert all(a[1] == b[0] for a, b in zip(slices, slices[1:]))  # contiguous, no gaps
    assert max(b - a for a, b in slices) <= 100
    assert [c.core for c in cm.cores] == list(range(11))


def test_synapse_memory_splits_a_population():
    # 2000 source neurons densely onto 100 neurons, 8-bit weights, no delay: on one core each axon
    # is dense 100 x 8 bits = 576 + 320 = 896 bits, x 2000 = 1,792,000 > 1,048,576. On 2 cores of
    # 50: 50 x 8 + 10 = 410 -> 7 words = 448 bits per axon, x 2000 = 896,000: fits.
    n = net({"p": 100}, [proj("in", "src", "p")], [PoissonStimulus("src", 2000, rate=5.0)])
    cm = partition(n, target())
    assert coverage(cm, "p") == [(0, 50), (50, 100)]
    assert [c.synapse_memory_bits for c in cm.cores] == [896_000, 896_000]
    assert [c.input_axons for c in cm.cores] == [2000, 2000]
    assert [c.output_axons for c in cm.cores] == [0, 0]
    assert any("src" in note for note in cm.notes)  # the source is off-core
    # 4-bit weights: 64*4+10 -> 5 words, 36*4+10 -> 3 words: 512 bits x 2000 = 1,024,000: 1 core
    cm4 = partition(n, target(), weight_bits={"in": 4})
    assert coverage(cm4, "p") == [(0, 100)] and cm4.cores[0].synapse_memory_bits == 1_024_000
    assert cm4.projection_bits["in"] == {"weight_bits": 4, "delay_bits": 0, "synapses": 200_000}
    with pytest.raises(ValueError, match="weight_bits names no projection of 't': typo"):
        partition(n, target(), weight_bits={"typo": 4})
    # 3000 sources: 3000 x 896 bits is 2.56 times the core, so 3 slices (not 2, not 4): on
    # 34 neurons 34 x 8 + 10 = 282 -> 5 words = 320 bits per axon, x 3000 = 960,000: fits
    n3 = net({"p": 100}, [proj("in", "src", "p")], [PoissonStimulus("src", 3000, rate=5.0)])
    cm3 = partition(n3, target())
    assert coverage(cm3, "p") == [(0, 34), (34, 67), (67, 100)]
    assert cm3.cores[0].synapse_memory_bits == 960_000


def test_fan_out_and_fan_in_split_one_to_one():
    # a -> b one to one, 5000 each. One core of b would have 5000 input axons (> 4096), one core
    # of a 5000 output axons: both split in two. Each b core: 2500 axons x 1 synapse, sparse with
    # 12 index bits: 8 + 12 + 10 = 30 bits -> 64 each = 160,000 bits.
    n = net({"a": 5000, "b": 5000}, [proj("ab", "a", "b", "one_to_one")])
    cm = partition(n, target())
    assert coverage(cm, "a") == coverage(cm, "b") == [(0, 2500), (2500, 5000)]
    assert [c.output_axons for c in cm.population_cores("a")] == [2500, 2500]
    assert [c.input_axons for c in cm.population_cores("b")] == [2500, 2500]
    assert [c.synapse_memory_bits for c in cm.population_cores("b")] == [160_000, 160_000]
    # without fan limits a single core each suffices
    cm = partition(n, target(fan_in_axons_per_core=None, fan_out_axons_per_core=None))
    assert cm.n_cores == 2 and cm.cores[0].utilisation["fan_out"] is None


def test_fan_out_split_balances_output_axons():
    # a (3000) -> b (12000 = 3 cores of 4000). Neurons 0..999 of a reach all 3 cores of b, the
    # other 2000 only core 0: 1000 x 3 + 2000 = 5000 output axons > 4096, so a is cut in two at
    # the balanced point of its cumulative output axons: 833 x 3 = 2499 | 167 x 3 + 2000 = 2501.
    i = [k for k in range(1000) for _ in range(3)] + list(range(1000, 3000))
    j = [k + 4000 * c for k in range(1000) for c in range(3)] + list(range(1000, 3000))
    n = net({"a": 3000, "b": 12_000}, [proj("ab", "a", "b", "sparse", i=tuple(i), j=tuple(j))])
    cm = partition(n, target(neurons_per_core=4000))
    assert coverage(cm, "b") == [(0, 4000), (4000, 8000), (8000, 12_000)]
    assert coverage(cm, "a") == [(0, 833), (833, 3000)]
    assert [c.output_axons for c in cm.population_cores("a")] == [2499, 2501]
    assert [c.input_axons for c in cm.population_cores("b")] == [3000, 1000, 1000]


def test_fan_out_counts_one_axon_per_destination_core():
    # 4 source neurons densely onto 6 target neurons on 3 cores (2 neurons per core): each source
    # neuron reaches 3 destination cores -> 12 output axons on the source core.
    n = net({"a": 4, "b": 6}, [proj("ab", "a", "b"), proj("ab2", "a", "b", delay=1e-3)])
    cm = partition(n, target(neurons_per_core=2, fan_out_axons_per_core=None))
    assert [c.output_axons for c in cm.population_cores("a")] == [6, 6]  # 2 neurons x 3 cores
    # two projections from the same source share the input axon, but each keeps its own lists
    assert [c.input_axons for c in cm.population_cores("b")] == [4, 4, 4]
    # per b core: 4 axons x 2 projections, each list dense over the core's 2 neurons:
    # 2 x 8 + 10 = 26 bits (ab) and 2 x (8 + 6) + 10 = 38 bits (ab2, delayed): one word each
    assert [c.synapse_memory_bits for c in cm.population_cores("b")] == [4 * 2 * 64] * 3


def test_vectorised_cost_matches_direct_cost_on_unsorted_duplicated_synapses():
    rng = np.random.default_rng(3)
    n = net({"a": 300, "b": 700}, [proj("ab", "a", "b", "sparse", i=(0,), j=(0,)),
                                   proj("bb", "b", "b", "sparse", i=(0,), j=(0,), delay=2e-3,
                                        sign="mixed")])
    syn = {}
    for name, n_src in (("ab", 300), ("bb", 700)):
        m = 40_000
        i, j = rng.integers(0, n_src - 2, m), rng.integers(0, 700, m)
        i[:50], j[:50] = 7, 11  # repeated pairs
        # axon n-1 reaches every neuron of b once (dense on every core); axon n-2 every neuron
        # but 5, and 6 twice: as many synapses as the first core has neurons, but not dense
        i[50:750], j[50:750] = n_src - 1, np.arange(700)
        i[750:1450], j[750:1450] = n_src - 2, np.where(np.arange(700) == 5, 6, np.arange(700))
        order = rng.permutation(m)  # unsorted, as a user's sparse list may be
        syn[name] = SynapseData(i[order], j[order], np.ones(m), 20 if name == "bb" else 0, 1.0)
    cm = partition(n, target(neurons_per_core=256), synapses=syn, weight_bits={"ab": 5})
    assert cm.projection_bits["bb"]["weight_bits"] == 8  # mixed sign: sign is one of the 8 bits
    assert len(cm.populations["b"]) >= 3
    for c in cm.population_cores("b"):
        bits, pres = 0, set()
        for name, wb, db in (("ab", 5, 0), ("bb", 8, 6)):
            s = syn[name]
            keep = (s.j >= c.start) & (s.j < c.stop)
            bits += synapse_memory_bits(s.i[keep], s.j[keep] - c.start, c.neurons, wb, db)
            pres |= {(name == "bb", int(k)) for k in np.unique(s.i[keep])}
        assert c.synapse_memory_bits == bits
        assert c.input_axons == len(pres)
        assert c.synapses == sum(int(((s.j >= c.start) & (s.j < c.stop)).sum())
                                 for s in syn.values())


# ---- errors ---------------------------------------------------------------------------------


def test_too_many_neurons_names_limit_and_population():
    n = net({"huge": 2_000_000, "other": 10})
    with pytest.raises(CompileError) as e:
        partition(n, load_target("loihi2-sim"))
    msg = str(e.value)
    assert "cores_per_chip x chips = 120 x 1 = 120" in msg
    assert "'huge' 245" in msg and "neurons_per_core" in msg and "hint:" in msg
    assert e.value.exit_code == 1


def test_tiny_target_file_raises_naming_cores(tmp_path):
    path = tmp_path / "tiny.yaml"
    path.write_text(
        "target: 1\nname: tiny\nbackend: lava\nnumber_format: fixed\n"
        "precision: {weight_bits: 8, delay_bits: 6}\n"
        "limits:\n  neurons_per_core: 8192   # test [made-up]\n"
        "  synapse_memory_bits_per_core: 1048576\n  fan_in_axons_per_core: 4096\n"
        "  fan_out_axons_per_core: 4096\n  cores_per_chip: 2\n  chips: 1\n")
    tiny = load_target(str(path))
    model = nd.load("models/ei_network.yaml")
    with pytest.raises(CompileError) as e:
        partition(model, tiny)
    msg = str(e.value)
    assert "needs 5 neurocores" in msg and "cores_per_chip x chips = 2 x 1 = 2" in msg
    assert "'exc' 4 (bound by synapse_memory_bits_per_core)" in msg
    assert "chips: 3" in msg  # the hint says what would fit
    # with 3 chips it fits, and the limit sources come from the file's comments
    path.write_text(path.read_text().replace("chips: 1", "chips: 3"))
    cm = partition(model, load_target(str(path)))
    assert cm.n_cores == 5 and cm.chips_used == 3
    assert [c.chip for c in cm.cores] == [0, 0, 1, 1, 2]
    assert cm.limit_sources["neurons_per_core"] == "test [made-up]"


def test_neuron_with_too_large_fan_in():
    hub = proj("hub", "src", "p", "sparse", i=tuple(range(5000)), j=(3,) * 5000)
    n = net({"p": 10}, [proj("in", "src", "p", "random", p=0.2), hub],
            [PoissonStimulus("src", 5000, rate=1.0)])
    with pytest.raises(CompileError) as e:
        partition(n, target())
    msg = str(e.value)
    assert "population 'p': neuron 3 has fan-in 5000" in msg
    assert "fan_in_axons_per_core = 4096" in msg and "'hub' from 'src' 5000" in msg
    assert "connection probability" in msg
    # a larger fan-in limit: it fits (1 core; the hub neuron's 5000 axons are all input axons)
    cm = partition(n, target(fan_in_axons_per_core=8000))
    assert cm.n_cores == 1 and cm.cores[0].input_axons == 5000


def test_neuron_with_too_much_synapse_memory():
    n = net({"p": 4}, [proj("in", "src", "p")], [PoissonStimulus("src", 20, rate=1.0)])
    # alone on a core each neuron needs 20 one-synapse lists x 64 bits = 1280 bits
    with pytest.raises(CompileError) as e:
        partition(n, target(synapse_memory_bits_per_core=1000))
    msg = str(e.value)
    assert "neuron 0 alone needs 1280 bits of synapse memory (20 synapses)" in msg
    assert "synapse_memory_bits_per_core = 1000" in msg and "weight precision" in msg
    assert "4 neuron(s) of 'p' exceed it" in msg
    # at 1280 bits all 4 fit on one core: each axon is then dense, 4 x 8 + 10 -> 64 bits
    assert partition(n, target(synapse_memory_bits_per_core=1280)).n_cores == 1


def test_neuron_with_too_large_fan_out():
    n = net({"a": 1, "b": 2}, [proj("ab", "a", "b")])
    with pytest.raises(CompileError, match=r"population 'a': neuron 0 sends spikes to 2 neurocores"
                                           r".*fan_out_axons_per_core = 1"):
        partition(n, target(neurons_per_core=1, fan_out_axons_per_core=1))


# ---- the result -----------------------------------------------------------------------------


def test_to_json_and_table():
    model = nd.load("models/ei_network.yaml")
    cm = partition(model, load_target("loihi2-sim"))
    data = json.loads(json.dumps(cm.to_json(), allow_nan=False))
    assert data["totals"]["cores"] == 5 and data["totals"]["chips_used"] == 1
    assert data["populations"]["exc"]["cores"] == [0, 1, 2, 3]
    assert data["limits"]["cores_per_chip"] == 120
    assert "[code]" in data["limit_sources"]["cores_per_chip"]
    assert "[loihi1-floor" in data["limit_sources"]["fan_in_axons_per_core"]
    assert data["projections"]["bg_exc"]["weight_bits"] == 8
    assert data["projections"]["bg_exc"]["delay_bits"] == 6  # 1 ms = 10 steps > 0
    assert len(data["cores"]) == 5 and data["cores"][4]["population"] == "inh"
    mx = data["totals"]["max_utilisation"]["synapse_memory"]
    assert mx == max(c["utilisation"]["synapse_memory"] for c in data["cores"])
    text = cm.table()
    lines = text.splitlines()
    assert "5 neurocore(s) on 1 chip(s)" in lines[0]
    assert lines[2].split()[:3] == ["exc", "800", "4"]
    assert lines[3].split()[:3] == ["inh", "200", "1"]
    assert any(line.startswith("total") for line in lines)


def test_large_map_table_is_one_line_per_population():
    cm = partition(net({"a": 100_000, "b": 50_000}), target(chips=None))
    assert cm.n_cores == 13 + 7 and cm.chips_used == 1  # ceil(100000/8192), ceil(50000/8192)
    # title, header, a, b, rule, total, mean: no line per core
    assert len(cm.table().splitlines()) == 7
    assert cm.core_capacity is None


def test_save_writes_json(tmp_path):
    cm = partition(net({"a": 3}), target())
    out = cm.save(tmp_path / "map.json")
    assert json.loads(out.read_text())["totals"]["cores"] == 1
