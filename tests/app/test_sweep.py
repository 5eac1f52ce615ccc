"""Sweeps (``neurodeploy sweep``, ``nd.sweep``): the product of variants x seeds x targets, one
row per run, resuming, Ctrl-C, batched torch trials, and the Dask / Ray engines."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

import neurodeploy as nd
from neurodeploy.app import cli
from neurodeploy.app import sweep as sweep_mod
from neurodeploy.core.result import Result

#: a tiny E/I network with Poisson drive and random (seed-dependent) connectivity
TINY = """\
neurodeploy: 1
name: tiny_ei
simulation: {dt: 0.1 ms, duration: 30 ms, seed: 3}
populations:
  - {name: exc, size: 16, model: lif, params: {tau_m: 20 ms, v_rest: -65 mV, v_reset: -65 mV, v_th: -50 mV, t_ref: 2 ms},
     init: {v: {uniform: [-65 mV, -50 mV]}}}
  - {name: inh, size: 4, model: lif, params: {tau_m: 20 ms, v_rest: -65 mV, v_reset: -65 mV, v_th: -50 mV, t_ref: 2 ms},
     init: {v: {uniform: [-65 mV, -50 mV]}}}
stimuli:
  - {name: bg, kind: poisson, size: 20, rate: 400 Hz}
projections:
  - {name: bg_exc, source: bg, target: exc, connectivity: {kind: CONN}, weights: 2 mV, delay: 1 ms, sign: excitatory}
  - {name: bg_inh, source: bg, target: inh, connectivity: {kind: CONN}, weights: 2 mV, delay: 1 ms, sign: excitatory}
  - {name: exc_inh, source: exc, target: inh, connectivity: {kind: CONN}, weights: 1 mV, delay: 1 ms, sign: excitatory}
  - {name: inh_exc, source: inh, target: exc, connectivity: {kind: CONN}, weights: 2 mV, delay: 1 ms, sign: inhibitory}
probes:
  - {target: exc, record: spikes}
  - {target: inh, record: spikes}
"""


def tiny(tmp_path, connectivity: str = "random, p: 0.5") -> str:
    path = tmp_path / ("tiny.yaml" if connectivity.startswith("random") else f"tiny_{connectivity}.yaml")
    path.write_text(TINY.replace("CONN", connectivity))
    return str(path)


def _rates(r: Result) -> dict:
    return {k: round(v, 6) for k, v in r.rates().items()}


def test_grid_and_seed_syntax():
    assert sweep_mod.split_values("10ms, 20 ms,'a,b',[1, 2]") == ["10ms", "20 ms", "'a,b'", "[1, 2]"]
    assert sweep_mod.parse_grid(["tau_m=10ms,20ms", "exc.v_th=-50mV"]) == [("tau_m", ["10ms", "20ms"]),
                                                                           ("exc.v_th", ["-50mV"])]
    assert sweep_mod.parse_grid({"tau_m": ["10 ms", "20 ms"], "simulation.seed": 4}) == [
        ("tau_m", ["10 ms", "20 ms"]), ("simulation.seed", [4])]
    assert sweep_mod.parse_seeds("0..3,7") == [0, 1, 2, 3, 7]
    assert sweep_mod.parse_seeds(5) == [5] and sweep_mod.parse_seeds(range(2)) == [0, 1]
    for bad, needle in (("3..1", "counts down"), ("0..2,2", "given twice"), ("a", "not a seed"),
                        ("0..1000000", "more than")):
        with pytest.raises(nd.UsageError, match=needle):
            sweep_mod.parse_seeds(bad)
    for bad, needle in ((["tau_m"], "KEY=VALUE"), (["tau_m=1,,2"], "empty value"), (["a=1", "a=2"], "twice")):
        with pytest.raises(nd.UsageError, match=needle):
            sweep_mod.parse_grid(bad)


def test_plan_is_the_product_and_names_each_run(tmp_path):
    p = sweep_mod.plan(tiny(tmp_path), ["tau_m=10ms,20ms"], "0..2", ["torch", "loihi2-torch"])
    assert len(p.runs) == 2 * 3 * 2 and len({r.name for r in p.runs}) == 12
    assert p.runs[0].name == "torch__tau_m=10ms__seed=0"
    assert [n.populations[0].params["tau_m"] for n in p.nets] == pytest.approx([0.010, 0.020])
    with pytest.raises(nd.SpecError) as e:  # a bad value: located at the option, before anything runs
        sweep_mod.plan(tiny(tmp_path), ["tau_m=10ms,20mV"], None, ["torch"])
    assert e.value.diagnostics[0].span.file == "--set tau_m"
    with pytest.raises(nd.SpecError, match="unknown target"):
        sweep_mod.plan(tiny(tmp_path), None, None, ["torch", "nope"])


def test_rows_aggregate_and_resume(tmp_path):
    """One row per run; the aggregate is that of separate runs; a deleted run (and only it) runs
    again."""
    spec, out = tiny(tmp_path), tmp_path / "sw"
    res = nd.sweep(spec, out, grid={"tau_m": ["10 ms", "20 ms"]}, seeds="0..1", targets="torch", jobs=1,
                   options={"dtype": "float64"}, progress=False)
    assert (res.ran, res.skipped, res.failed) == (4, 0, 0) and len(res.rows) == 4
    df = res.to_pandas()
    assert list(df["seed"]) == [0, 1, 0, 1] and set(df["status"]) == {"ok"}
    for name in ("runs.csv", "runs.json", "aggregate.csv", "aggregate.json", "sweep.json", "sweep.png"):
        assert (out / name).exists(), name
    separate = {}
    for tau in ("10 ms", "20 ms"):
        for seed in (0, 1):
            r = nd.simulate(spec, "torch", overrides={"tau_m": tau}, seed=seed, dtype="float64", progress=False)
            separate[tau, seed] = _rates(r)
            row = df[(df["tau_m"] == tau) & (df["seed"] == seed)].iloc[0]
            assert row["exc.rate_hz"] == pytest.approx(separate[tau, seed]["exc"], abs=1e-6)
            assert row["exc.spikes"] == round(separate[tau, seed]["exc"] * 16 * 0.03)
    assert separate["10 ms", 0] != separate["10 ms", 1]  # the seeds differ (else this test shows little)
    for a in res.aggregate:
        x = np.array([separate[a["tau_m"], s]["exc"] for s in (0, 1)])
        assert a["runs"] == 2
        assert a["exc.mean_rate_hz"] == pytest.approx(x.mean(), abs=1e-6)
        assert a["exc.se_rate_hz"] == pytest.approx(x.std(ddof=1) / np.sqrt(2), abs=1e-6)
    written = {r["run"]: (out / r["dir"] / "summary.json").stat().st_mtime_ns for r in res.rows}
    gone = res.rows[1]["run"]
    shutil.rmtree(out / "runs" / gone)
    again = nd.sweep(spec, out, grid={"tau_m": ["10 ms", "20 ms"]}, seeds="0..1", targets="torch", jobs=1,
                     options={"dtype": "float64"}, progress=False, plot=False)
    assert (again.ran, again.skipped) == (1, 3)
    for r in again.rows:
        if r["run"] != gone:
            assert (out / r["dir"] / "summary.json").stat().st_mtime_ns == written[r["run"]]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows]
    assert strip(again.rows) == strip(res.rows)  # the same table, rebuilt from the run directories
    assert json.loads((out / "runs.json").read_text())["rows"][1]["exc.rate_hz"] == res.rows[1]["exc.rate_hz"]


@pytest.mark.slow
def test_local_engine_with_two_worker_processes(tmp_path):
    """The loky pool (2 workers) gives the rows of the in-process run."""
    spec = tiny(tmp_path)
    kw = {"grid": ["tau_m=10ms,20ms"], "seeds": "0..1", "duration": "10 ms", "progress": False, "plot": False}
    pooled = nd.sweep(spec, tmp_path / "pool", jobs=2, **kw)
    inline = nd.sweep(spec, tmp_path / "inline", jobs=1, **kw)
    assert pooled.ran == 4 and pooled.failed == 0
    assert pooled.aggregate == inline.aggregate
    assert [r["exc.spikes"] for r in pooled.rows] == [r["exc.spikes"] for r in inline.rows]


def test_a_changed_spec_or_options_is_not_mixed_into_old_runs(tmp_path):
    spec, out = tiny(tmp_path), tmp_path / "sw"
    nd.sweep(spec, out, seeds=[0], jobs=1, progress=False, plot=False, duration="5 ms")
    with pytest.raises(nd.UsageError, match="duration"):
        nd.sweep(spec, out, seeds=[0], jobs=1, progress=False, plot=False, duration="6 ms")
    (tmp_path / "tiny.yaml").write_text((tmp_path / "tiny.yaml").read_text().replace("400 Hz", "300 Hz"))
    with pytest.raises(nd.UsageError, match="the spec changed"):
        nd.sweep(spec, out, seeds=[0], jobs=1, progress=False, plot=False, duration="5 ms")


def test_ctrl_c_stops_cleanly_and_a_rerun_finishes_the_rest(tmp_path, monkeypatch, capsys):
    spec, out = tiny(tmp_path), tmp_path / "sw"
    real, calls = sweep_mod._execute, []

    def interrupted_on_the_third(task):
        calls.append(task)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(sweep_mod, "_execute", interrupted_on_the_third)
    argv = ["sweep", spec, "--seeds", "0..3", "-o", str(out), "-j", "1", "--duration", "5 ms", "--quiet"]
    assert cli.main(argv) == 130
    rows = json.loads((out / "runs.json").read_text())
    assert rows["partial"] and [r["status"] for r in rows["rows"]] == ["ok", "ok", "not run", "not run"]
    assert not list((out / "runs").glob("*seed=2/summary.json"))
    monkeypatch.setattr(sweep_mod, "_execute", real)
    assert cli.main(argv[:-1] + ["--json"]) == 0
    out_json = json.loads(capsys.readouterr().out)
    assert (out_json["ran"], out_json["skipped"], out_json["failed"]) == (2, 2, 0)
    assert not json.loads((out / "runs.json").read_text())["partial"]


def test_a_failed_run_is_a_row_and_exit_3_and_is_retried(tmp_path, monkeypatch, capsys):
    spec, out = tiny(tmp_path), tmp_path / "sw"
    real = sweep_mod._execute

    def fail_seed_1(task):
        if task["runs"][0][1] == 1:
            return [{"name": task["runs"][0][0], "ok": False, "error": "BackendError: boom"}]
        return real(task)

    monkeypatch.setattr(sweep_mod, "_execute", fail_seed_1)
    argv = ["sweep", spec, "--seeds", "0,1", "-o", str(out), "-j", "1", "--duration", "5 ms", "--no-plot"]
    assert cli.main(argv) == 3
    text = capsys.readouterr().out
    assert "1 failed" in text and "boom" in text
    monkeypatch.setattr(sweep_mod, "_execute", real)
    assert cli.main(argv + ["--quiet"]) == 0


def test_validate_sweep_has_a_verdict_per_run_and_resumes(tmp_path):
    kw = {"grid": ["neuron.tau_m=10ms,20ms"], "targets": "loihi2-torch", "validate": True, "reference": "torch",
          "jobs": 1, "duration": "40 ms", "progress": False, "plot": False}
    res = nd.sweep("models/single_lif.yaml", tmp_path / "v", **kw)
    assert res.ok and [(r["pass"], r["failures"], r["neuron.spikes"]) for r in res.rows] == [(True, 0, 2), (True, 0, 1)]
    assert all((tmp_path / "v" / r["dir"] / "report.json").exists() for r in res.rows)
    assert [a["passed"] for a in res.aggregate] == [1, 1]
    again = nd.sweep("models/single_lif.yaml", tmp_path / "v", **kw)
    assert (again.ran, again.skipped) == (0, 2)


def test_cli_usage_errors(tmp_path, capsys):
    spec = tiny(tmp_path)
    assert cli.main(["sweep", spec, "--seeds", "9..1", "-o", str(tmp_path / "a")]) == 2
    assert "counts down" in capsys.readouterr().err
    assert cli.main(["sweep", spec, "--set", "tau_m=1 mV", "-o", str(tmp_path / "b")]) == 1
    assert "--set tau_m" in capsys.readouterr().err
    assert cli.main(["sweep", spec, "--address", "x:1", "-o", str(tmp_path / "c")]) == 2
    with pytest.raises(SystemExit):
        cli.main(["sweep", "--help"])
    assert "--seeds 0..99" in capsys.readouterr().out


def test_batched_torch_trials_equal_separate_runs(tmp_path):
    """Where the structure does not depend on the seed, seeds run as trials of one batched torch run
    and give the same spikes as separate runs (float64: spike for spike)."""
    spec = tiny(tmp_path, "dense")
    kw = {"seeds": "0..3", "targets": "torch", "jobs": 1, "options": {"dtype": "float64"}, "progress": False,
          "plot": False}
    batched = nd.sweep(spec, tmp_path / "b", batch=True, **kw)
    assert any("batched trials" in n for n in batched.notes)
    separate = nd.sweep(spec, tmp_path / "s", batch=False, **kw)
    assert not any("batched" in n for n in separate.notes)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "wall_time_s"} for r in rows]
    assert strip(batched.rows) == strip(separate.rows)
    assert len({r["exc.spikes"] for r in batched.rows}) > 1  # the trials differ
    for r in batched.rows:
        a, b = (Result.load(tmp_path / d / r["dir"] / "result.npz") for d in ("b", "s"))
        assert a.options["batch"] == 4 and b.options["batch"] == 1 and a.seed == b.seed == r["seed"]
        for pop in ("exc", "inh"):
            np.testing.assert_array_equal(a.spikes[pop].i, b.spikes[pop].i)
            np.testing.assert_array_equal(a.spikes[pop].t, b.spikes[pop].t)


def test_random_structure_is_not_batched(tmp_path):
    spec = tiny(tmp_path)
    net = nd.load(spec)
    assert sweep_mod.structure_depends_on_seed(net, 0, 1)
    assert not sweep_mod.structure_depends_on_seed(nd.load(tiny(tmp_path, "dense")), 0, 1)
    res = nd.sweep(spec, tmp_path / "sw", seeds="0..1", batch=True, jobs=1, duration="5 ms", progress=False,
                   plot=False)
    assert any("not batched" in n for n in res.notes) and res.ran == 2


@pytest.mark.slow
def test_dask_engine_on_a_local_two_worker_cluster(tmp_path):
    distributed = pytest.importorskip("distributed")
    spec = tiny(tmp_path)
    with distributed.LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                                  dashboard_address=None) as cluster:
        res = nd.sweep(spec, tmp_path / "dask", grid=["tau_m=10ms,20ms"], seeds="0..1", engine="dask",
                       address=cluster.scheduler_address, duration="10 ms", progress=False, plot=False)
    local = nd.sweep(spec, tmp_path / "local", grid=["tau_m=10ms,20ms"], seeds="0..1", jobs=1,
                     duration="10 ms", progress=False, plot=False)
    assert res.ran == 4 and res.failed == 0
    assert res.aggregate == local.aggregate


@pytest.mark.slow
def test_ray_engine_on_a_local_cluster(tmp_path):
    ray = pytest.importorskip("ray")
    spec = tiny(tmp_path)
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        res = nd.sweep(spec, tmp_path / "ray", seeds="0..1", engine="ray", duration="10 ms", progress=False,
                       plot=False)
    finally:
        ray.shutdown()
    local = nd.sweep(spec, tmp_path / "local", seeds="0..1", jobs=1, duration="10 ms", progress=False, plot=False)
    assert res.ran == 2 and res.aggregate == local.aggregate
