"""Spike data out (Result.to_neo, Result.save_nwb) and the project's spike-train metrics against
Elephant's.

Stated tolerances and mappings:
* van Rossum: Elephant's ``van_rossum_distance`` uses the same normalisation as
  ``neurodeploy.validation.metrics.van_rossum_distance`` (one unmatched spike -> 1; the paper's
  value is both divided by sqrt(2)), and both are exact for the continuous kernel: they agree
  within 1e-9 (relative), on times in seconds (Elephant) and in steps (ours, tau in steps).
* coincidence factor: Elephant has no Kistler Gamma. Its cross-correlation histogram at bin
  size dt counts the pairs within +-window steps, which equals our one-to-one coincidence count
  ``N_c`` whenever no two spikes of a train lie within 2 window + 1 steps of each other (a
  refractory period longer than the window); Gamma from that count equals ours exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from neurodeploy.core.result import Result, SpikeTrains, Trace
from neurodeploy.validation import metrics

neo = pytest.importorskip("neo")
pq = pytest.importorskip("quantities")

DT = 1e-4
STEPS = 4000


def _refractory_train(rng, n_spikes, min_isi):
    """Sorted distinct spike steps in [0, STEPS) at least ``min_isi`` apart."""
    gaps = rng.integers(min_isi, 3 * STEPS // max(n_spikes, 1) + min_isi, size=n_spikes)
    steps = np.cumsum(gaps)
    return steps[steps < STEPS]


def _result(trains: dict[str, list[np.ndarray]]) -> Result:
    r = Result("synthetic", "numpy-reference", "reference", DT, STEPS, 7)
    for name, per_neuron in trains.items():
        i = np.concatenate([np.full(len(s), n) for n, s in enumerate(per_neuron)]).astype(np.int64)
        k = np.concatenate(per_neuron).astype(np.int64)
        r.spikes[name] = SpikeTrains(len(per_neuron), i, k * DT)
        r.counts[name] = np.array([len(s) for s in per_neuron], dtype=np.int64)
    t = np.arange(STEPS) * DT
    r.traces["pop.v"] = Trace("pop", "v", "volt", t, np.array([0, 3]), np.stack([np.sin(t), np.cos(t)], axis=1) * 1e-3)
    return r


@pytest.fixture(scope="module")
def pair():
    rng = np.random.default_rng(3)
    ref = [_refractory_train(rng, 30, 25) for _ in range(6)] + [np.zeros(0, np.int64)]
    # the target: the reference jittered by up to 3 steps, a few spikes dropped, a few added
    tgt = []
    for a in ref:
        b = np.clip(a + rng.integers(-3, 4, size=len(a)), 0, STEPS - 1)
        b = b[rng.random(len(b)) > 0.1]
        b = np.unique(np.concatenate([b, rng.integers(0, STEPS, size=2)]))
        keep = np.concatenate([[True], np.diff(b) >= 25])  # keep it refractory (see the module doc)
        tgt.append(b[keep])
    return _result({"pop": ref}), _result({"pop": tgt})


def test_to_neo_structure_and_units(pair):
    r, _ = pair
    block = r.to_neo()
    seg = block.segments[0]
    assert len(seg.spiketrains) == r.spikes["pop"].size == 7
    for n, st in enumerate(seg.spiketrains):
        assert st.annotations["population"] == "pop" and st.annotations["neuron"] == n
        want = np.sort(r.spikes["pop"].t[r.spikes["pop"].i == n])
        np.testing.assert_array_equal(st.rescale(pq.s).magnitude, want)
        assert float(st.t_stop.rescale(pq.s)) == pytest.approx(STEPS * DT)
    assert len(seg.spiketrains[-1]) == 0  # a silent neuron is an empty train, not missing
    assert [g.name for g in block.groups] == ["pop"] and len(block.groups[0].spiketrains) == 7
    (sig,) = seg.analogsignals
    assert sig.name == "pop.v" and sig.units == pq.V and sig.shape == (STEPS, 2)
    assert float(sig.sampling_period.rescale(pq.s)) == pytest.approx(DT)
    np.testing.assert_array_equal(sig.array_annotations["index"], [0, 3])
    np.testing.assert_array_equal(sig.magnitude, r.traces["pop.v"].values)
    assert block.annotations["population_sizes"] == {"pop": 7}
    assert block.annotations["spike_counts"] == {"pop": int(r.counts["pop"].sum())}


def test_to_neo_irregular_trace_and_dimensionless():
    r = Result("n", "b", "t", DT, 10, 0)
    r.traces["w"] = Trace("proj", "weights", "1", np.array([0.0, 1e-4, 5e-4]), np.array([0]), np.ones((3, 1)))
    seg = r.to_neo().segments[0]
    assert not seg.analogsignals
    (sig,) = seg.irregularlysampledsignals
    assert sig.units == pq.dimensionless and sig.shape == (3, 1)


def test_van_rossum_matches_elephant(pair):
    dissim = pytest.importorskip("elephant.spike_train_dissimilarity")
    r_ref, r_tgt = pair
    a_trains, b_trains = r_ref.to_neo().segments[0].spiketrains, r_tgt.to_neo().segments[0].spiketrains
    for tau_steps in (1.0, 20.0, 200.0):
        for n, (sa, sb) in enumerate(zip(a_trains, b_trains)):
            ours = metrics.van_rossum_distance(np.rint(sa.magnitude / DT), np.rint(sb.magnitude / DT), tau_steps)
            theirs = dissim.van_rossum_distance([sa, sb], time_constant=tau_steps * DT * pq.s)[0, 1]
            assert ours == pytest.approx(theirs, rel=1e-9, abs=1e-12), (n, tau_steps)
    # the mapping for single spikes: one unmatched spike -> 1 in both (the paper: 1/sqrt(2))
    one = neo.SpikeTrain([0.1] * pq.s, t_stop=1 * pq.s)
    empty = neo.SpikeTrain([] * pq.s, t_stop=1 * pq.s)
    assert dissim.van_rossum_distance([one, empty], 0.01 * pq.s)[0, 1] == pytest.approx(1.0)
    assert metrics.van_rossum_distance(np.array([1000.0]), np.zeros(0), 100.0) == pytest.approx(1.0)


def test_coincidence_count_and_gamma_match_elephant(pair):
    pytest.importorskip("elephant")
    from elephant.conversion import BinnedSpikeTrain
    from elephant.spike_train_correlation import cross_correlation_histogram

    r_ref, r_tgt = pair
    a_trains, b_trains = r_ref.to_neo().segments[0].spiketrains, r_tgt.to_neo().segments[0].spiketrains
    window = 4
    checked = 0
    for sa, sb in zip(a_trains, b_trains):
        a, b = np.rint(sa.magnitude / DT).astype(np.int64), np.rint(sb.magnitude / DT).astype(np.int64)
        ours = metrics.coincidence_factor(a, b, window, STEPS)
        if len(a) == 0 or len(b) == 0:
            assert ours == (1.0 if len(a) == len(b) else 0.0)
            continue
        kw = dict(bin_size=DT * pq.s, t_start=0 * pq.s, t_stop=STEPS * DT * pq.s)
        cch, _ = cross_correlation_histogram(BinnedSpikeTrain(sb, **kw), BinnedSpikeTrain(sa, **kw),
                                                window=[-window, window])
        n_c = int(np.asarray(cch).sum())
        assert n_c == metrics._coincidences(np.sort(a), np.sort(b), window)
        m, p = 2 * window + 1, len(b) / STEPS
        gamma = (n_c - m * p * len(a)) / (0.5 * (len(a) + len(b)) * (1 - m * p))
        assert ours == pytest.approx(gamma, rel=1e-12)
        assert 0.3 < ours < 1.0  # jittered copies: high but not perfect agreement
        checked += 1
    assert checked >= 5


def test_save_nwb_round_trip(pair, tmp_path):
    pynwb = pytest.importorskip("pynwb")
    r, _ = pair
    path = r.save_nwb(tmp_path / "run.nwb", identifier="test")
    assert [p.name for p in tmp_path.iterdir()] == ["run.nwb"]  # no temporary file left
    with pynwb.NWBHDF5IO(str(path), "r") as io:
        f = io.read()
        units = f.units.to_dataframe()
        assert len(units) == 7 and list(units["population"]) == ["pop"] * 7
        for n in range(7):
            want = np.sort(r.spikes["pop"].t[r.spikes["pop"].i == n])
            np.testing.assert_array_equal(np.asarray(units["spike_times"].iloc[n]), want)
        ts = f.acquisition["pop.v"]
        assert ts.unit == "volt" and ts.rate == pytest.approx(1 / DT) and ts.starting_time == 0.0
        np.testing.assert_array_equal(ts.data[:], r.traces["pop.v"].values)


def test_convert_command_writes_nwb_and_rejects_bad_input(pair, tmp_path, capsys):
    pynwb = pytest.importorskip("pynwb")
    from neurodeploy.app import cli

    r, _ = pair
    r.save(tmp_path / "result.npz")
    assert cli.main(["convert", str(tmp_path), "--to", "nwb", "-o", str(tmp_path / "r.nwb")]) == 0
    with pynwb.NWBHDF5IO(str(tmp_path / "r.nwb"), "r") as io:
        assert len(io.read().units) == 7
    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    assert cli.main(["convert", str(tmp_path / "bad.npz"), "--to", "nwb", "-o", str(tmp_path / "b.nwb")]) == 1
    assert "not a readable neurodeploy result.npz" in capsys.readouterr().err
    assert cli.main(["convert", str(tmp_path), "--to", "nwb", "-o", str(tmp_path / "r.h5")]) == 2
    assert not (tmp_path / "b.nwb").exists() and not (tmp_path / "r.h5").exists()
