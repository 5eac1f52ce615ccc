"""The public API (docs/api.md): what the CLI calls, used from Python."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import neurodeploy as nd
from neurodeploy.app import cli

from ..conftest import ROOT


def test_simulate_a_spec_with_a_duration_and_read_it_with_pandas():
    r = nd.simulate("models/single_lif.yaml", "torch", duration="50 ms", dtype="float64", progress=False)
    assert r.steps == 500 and r.target == "torch"
    f = r.to_pandas()
    assert list(f.spikes.columns) == ["population", "neuron", "step", "t_s"]
    assert len(f.spikes) == 1 and f.spikes["t_s"].iloc[0] == pytest.approx(0.0277, abs=1e-4)  # the analytic 27.73 ms
    assert f.rates.loc[0, "rate_hz"] == pytest.approx(20.0)  # one spike in 50 ms
    assert set(f.traces["variable"]) == {"v"} and len(f.traces) == 500
    assert "rates per population" in repr(f)


def test_the_issue_snippet_runs_from_another_directory(tmp_path):
    """A shipped model named by its repository path resolves to the package's copy anywhere."""
    code = ("import neurodeploy as nd; r = nd.simulate('models/single_lif.yaml', 'torch', duration='50 ms'); "
            "print(r.to_pandas())")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert "spikes (1 rows)" in out.stdout and "neuron" in out.stdout


def test_check_returns_no_network_for_an_invalid_spec_and_load_raises(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "models" / "single_lif.yaml").read_text().replace("tau_m: 20 ms", "tau_m: 20 mV"))
    net, diags = nd.check(bad)
    assert net is None and [d.code for d in diags] == ["ND302"]
    with pytest.raises(nd.SpecError) as e:
        nd.load(bad)
    assert e.value.exit_code == 1 and "tau_m" in str(e.value)
    net, diags = nd.check("models/single_lif.yaml")
    assert net is not None and not diags


def test_overrides_change_the_spec_before_it_is_read():
    base = nd.load("models/single_lif.yaml")
    net = nd.load("models/single_lif.yaml", overrides={"neuron.tau_m": "10 ms", "simulation.seed": 7},
                  duration="30 ms")
    assert net.populations[0].params["tau_m"] == pytest.approx(0.010)
    assert net.simulation.seed == 7 and net.simulation.steps == 300
    assert base.populations[0].params["tau_m"] == pytest.approx(0.020)
    # a bare parameter applies to every population that has it; a list value
    assert nd.load("models/cuba_chain.yaml", overrides={"tau_m": "5 ms"}).populations[3].params["tau_m"] == \
        pytest.approx(0.005)
    # steps replaces duration (the spec may say either)
    assert nd.load("models/single_lif.yaml", overrides={"simulation.steps": 12}).simulation.steps == 12


@pytest.mark.parametrize("key,value,code,needle", [
    ("neuron.tau_m", "10 mV", "ND302", "is a voltage"),
    ("neuronn.tau_m", "10 ms", "ND501", "did you mean 'neuron'"),
    ("neuron.tau_mm", "10 ms", "ND401", "did you mean 'tau_m'"),
    ("tau_x", "1", "ND201", "no population or block"),
    ("simulation", "1", "ND203", "is a section"),
])
def test_bad_overrides_are_located_at_the_option(key, value, code, needle):
    with pytest.raises(nd.SpecError) as e:
        nd.load("models/single_lif.yaml", overrides={key: value})
    d = e.value.diagnostics[0]
    assert d.code == code and needle in (d.message + " " + (d.hint or ""))
    assert d.span.file == f"--set {key}"


def test_trials_run_in_one_batch():
    """One structure (synapses from the spec's seed), each trial its own inputs and initial state:
    the first trial is the plain run of that seed, the others differ."""
    rs = nd.simulate("models/ei_network.yaml", "torch", duration="40 ms", trials=3, seed=5, dtype="float64",
                     device="cpu", progress=False)
    assert [r.seed for r in rs] == [5, 6, 7] and [r.options["batch"] for r in rs] == [3, 3, 3]
    alone = nd.simulate("models/ei_network.yaml", "torch", duration="40 ms", seed=5, dtype="float64",
                        device="cpu", progress=False)
    for k in alone.counts:
        np.testing.assert_array_equal(rs[0].counts[k], alone.counts[k])
    assert any((rs[1].counts[k] != alone.counts[k]).any() for k in alone.counts)


def test_unknown_backend_options_are_named():
    with pytest.raises(nd.UsageError, match="not an option of backend 'torch'.*dtype"):
        nd.simulate("models/single_lif.yaml", "torch", codegen="numpy")


def test_build_hands_out_the_torch_simulator_and_the_brian2_network():
    net = nd.load("models/cuba_chain.yaml", duration="20 ms")
    sim = nd.build(net, "torch", device="cpu", dtype="float64")
    for m in range(1, sim.steps + 1):
        sim.step(m)
    stepped = sim.results(0.0, "float64")[0]
    ran = nd.simulate(net, "torch", device="cpu", dtype="float64", progress=False)
    for k in ran.counts:
        np.testing.assert_array_equal(stepped.counts[k], ran.counts[k])
    import brian2

    built = nd.build(net, "brian2", codegen="numpy")
    assert isinstance(built.network, brian2.Network) and set(built.groups) >= {"stage0", "stage3"}
    with pytest.raises(nd.NotImplementedYet):
        nd.build(net, "lava")


def test_compile_runs_the_passes_and_reports_each(tmp_path):
    c = nd.compile("models/cuba_chain.yaml", "loihi2-sim", out=tmp_path / "c")
    assert list(c.compilation.reports) == ["expand", "place", "lower", "quantize", "partition"]
    assert c.compilation.coremap.n_cores >= 1 and "quantization" in c.summary
    assert {p.name for p in (tmp_path / "c").iterdir()} >= {"manifest.json", "lava_params.npz", "coremap.json"}
    with pytest.raises(nd.NotImplementedYet, match="not implemented yet"):
        nd.compile("models/cuba_chain.yaml", "brian2")


def test_targets_and_placement():
    ts = nd.targets()
    assert {"brian2", "lava", "loihi2-sim", "loihi2", "torch", "loihi2-torch"} <= set(ts)
    assert ts["loihi2-sim"].number_format == "fixed"
    plan = nd.placement("models/hybrid_ramp_stdp.yaml", "loihi2-sim")
    assert plan.on_fallback and all(n.reason for n in plan.nodes if n.where == "fallback")


def test_cli_run_takes_duration_seed_and_set(tmp_path, capsys):
    out = tmp_path / "o"
    rc = cli.main(["run", "single_lif", "-t", "torch", "-o", str(out), "--duration", "30 ms", "--seed", "4",
                   "--set", "neuron.tau_m=10 ms", "--json"])
    assert rc == 0, capsys.readouterr().err
    s = __import__("json").loads((out / "summary.json").read_text())
    assert s["steps"] == 300 and s["seed"] == 4
    rc = cli.main(["run", "single_lif", "-t", "torch", "-o", str(tmp_path / "bad"), "--set", "neuron.tau_m=10 mV"])
    err = capsys.readouterr().err
    assert rc == 1 and "--set neuron.tau_m:1:1: error ND302" in err and "Traceback" not in err
    assert not (tmp_path / "bad").exists()
    rc = cli.main(["run", "single_lif", "-t", "torch", "-o", str(tmp_path / "b2"), "--set", "nonsense"])
    assert rc == 2 and "KEY=VALUE" in capsys.readouterr().err


def test_cli_has_no_block_or_backend_branches():
    """The CLI is a shell over the API: no test of a block kind or a backend name in its code."""
    src = (ROOT / "neurodeploy" / "app" / "cli.py").read_text()
    code = "\n".join(line.split("#")[0] for line in src.splitlines()
                     if not line.strip().startswith(("help=", '"', "'")))
    assert not re.search(r"""(==|!=|\bin)\s*\(?\s*["'](ipvae|lca|brian2|lava|torch|loihi2[-\w]*)["']""", code)
    assert not re.search(r"""\.(kind|backend|number_format|device)\s*(==|!=|in\b)""", code)


@pytest.mark.slow
def test_the_examples_in_docs_api_run(tmp_path, monkeypatch):
    """Every ```python block of docs/api.md, executed in order (outputs under a temporary folder)."""
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "api.md").read_text(), re.S)
    assert len(blocks) >= 4
    monkeypatch.chdir(ROOT)
    ns: dict = {}
    for code in blocks:
        exec(compile(code.replace('"out/', f'"{tmp_path}/'), "docs/api.md", "exec"), ns)
    assert ns["report"]["verdict"]["pass"] and ns["e"].metrics["results"][0]["r2"] > 0.65


def test_importing_neurodeploy_loads_no_simulator():
    """The API is importable without Brian2, Lava or torch being loaded (they load on first use)."""
    code = ("import sys, neurodeploy; print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'brian2', 'lava', 'torch', 'pandas', 'matplotlib', 'onnx', 'nir'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_cli_validate_takes_the_overrides_and_a_coder_refuses_a_duration(tmp_path, capsys):
    import json

    rc = cli.main(["validate", "single_lif", "-t", "torch", "-o", str(tmp_path / "v"), "--duration", "20 ms",
                   "--set", "neuron.tau_m=15 ms", "--json"])
    assert rc == 0, capsys.readouterr().err
    capsys.readouterr()
    ref = json.loads((tmp_path / "v" / "reference" / "summary.json").read_text())
    assert ref["steps"] == 200 and ref["populations"]["neuron"]["spikes"] == 0  # tau_m 15 ms: no spike by 20 ms
    rc = cli.main(["run", "models/ipvae/ipvae_digits.yaml", "-t", "torch", "-o", str(tmp_path / "c"),
                   "--duration", "10 ms"])
    assert rc == 2 and "--iterations" in capsys.readouterr().err and not (tmp_path / "c").exists()
