"""`neurodeploy validate`: verdicts, a deliberately broken target, exit codes, tolerance files,
stored-run reuse, and every shipped model on every target that runs it.

Tolerances are the defaults in neurodeploy/validation/tolerances.py (docs/validate.md says how
they were measured); these tests check that the shipped models pass them and that a wrong decay
does not.
"""

from __future__ import annotations

import dataclasses
import json

import pytest

import neurodeploy as nd
from neurodeploy.app import cli
from neurodeploy.core.targets import load_target
from neurodeploy.validation.run import validate

from ..conftest import MODELS, ROOT, rel

#: short runs keep Lava's CPU simulator fast (ms per step for the E/I network's 13 processes)
STEPS = {"ei_network": 150, "single_lif": 600, "cuba_chain": 200}
#: models whose validation takes more than a few seconds even on torch
HEAVY = {"ei_network", "hybrid_ramp_stdp"}
MODEL_PARAMS = [pytest.param(m, id=m.stem, marks=[pytest.mark.slow] if m.stem in HEAVY else []) for m in MODELS]


def short(model, steps=None):
    net = nd.load(rel(model)) if not isinstance(model, str) else nd.load(model)
    n = steps or STEPS.get(net.name, 600)
    return dataclasses.replace(net, simulation=dataclasses.replace(net.simulation, steps=min(n, net.simulation.steps)))


def _validate(net, target, tmp_path, **kw):
    from neurodeploy.core.errors import NotImplementedYet

    try:
        return _run(net, target, tmp_path, **kw)
    except NotImplementedYet as e:  # "every backend that supports it": the CLI exits 3 here
        pytest.skip(f"{net.name} does not run on {target}: {e}")


def _run(net, target, tmp_path, **kw):
    return validate(net, load_target(target), load_target("brian2"), tmp_path / f"{net.name}-{target}",
                    codegen="numpy", torch_device="cpu", **kw)


@pytest.mark.parametrize("target", ["torch", "loihi2-torch"])
@pytest.mark.parametrize("model", MODEL_PARAMS)
def test_every_shipped_model_validates_on_torch_targets(model, target, tmp_path):
    rep = _validate(short(model), target, tmp_path, compile=False, plots=False)
    v = rep["verdict"]
    assert v["pass"], v["failures"]
    assert sum(p["spikes_ref"] for p in v["populations"].values()) > 0, "the run should spike"
    checked = [c for p in v["populations"].values() for c in p["metrics"].values() if c["pass"] is not None]
    assert len(checked) >= 3 * len(v["populations"])


@pytest.mark.lava
@pytest.mark.slow
@pytest.mark.parametrize("target", ["lava", "loihi2-sim"])
@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_every_shipped_model_validates_on_lava_targets(model, target, tmp_path):
    net = short(model)
    tol_file = ROOT / "models" / "tolerances" / f"{model.stem}.fixed.yaml"  # a model's stated tolerances
    tol = None
    if target == "loihi2-sim" and tol_file.exists():
        from neurodeploy.validation.tolerances import load_file

        tol = load_file(tol_file, "fixed", [p.name for p in net.populations], [p.name for p in net.probes])
    rep = _validate(net, target, tmp_path, tolerances=tol)
    assert rep["verdict"]["pass"], rep["verdict"]["failures"]
    assert (tmp_path / f"{rep['network']}-{target}" / "compile" / "manifest.json").exists()


def test_a_wrong_decay_fails_with_the_metric_named(monkeypatch, tmp_path):
    import neurodeploy.backends.torch.simulator as tb

    real = tb.lower

    def broken(net, target, **kw):
        low, q, *rest = real(net, target, **kw)
        for name, p in low.populations.items():
            low.populations[name] = dataclasses.replace(p, dv=p.dv * 1.5)  # a 50 % too fast leak
        return (low, q, *rest)

    monkeypatch.setattr(tb, "lower", broken)
    rep = _validate(short("models/single_lif.yaml"), "torch", tmp_path, compile=False)
    v = rep["verdict"]
    assert not v["pass"]
    text = "\n".join(v["failures"])
    assert "population neuron: coincidence_factor" in text
    assert "probe neuron.v: trace_nrmse" in text
    assert v["probes"]["neuron.v"]["metrics"]["trace_nrmse"]["pass"] is False


def test_cli_pass_writes_json_and_html_and_reuses_stored_runs(tmp_path, capsys):
    out = tmp_path / "val"
    args = ["validate", "models/cuba_chain.yaml", "--target", "loihi2-torch", "--codegen", "numpy",
            "--torch-device", "cpu", "-o", str(out), "--json", "--steps", "120"]
    assert cli.main(args) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["ok"] is True and info["report"]["runs"] == {"reference": "ran", "target": "ran"}
    rep = json.loads((out / "report.json").read_text())
    assert rep["verdict"]["pass"] and rep["tolerances"]["kind"] == "fixed"
    c = rep["verdict"]["populations"]["stage4"]["metrics"]["coincidence_factor"]
    assert c["source"] == "default (fixed)" and c["why"]
    html = (out / "report.html").read_text()
    assert "data:image/png;base64," in html and "PASS" in html and "Compile reports" in html
    assert (out / "compile" / "quantization.json").exists() and (out / "reference" / "result.npz").exists()
    assert cli.main(args + ["--reuse"]) == 0
    assert json.loads(capsys.readouterr().out)["report"]["runs"] == {"reference": "reused", "target": "reused"}
    # a different IR (fewer steps) is not reused
    assert cli.main(args + ["--reuse", "--steps", "100"]) == 0
    assert json.loads(capsys.readouterr().out)["report"]["runs"]["target"] == "ran"


def test_cli_compare_stored_results_and_fail_exit_code(tmp_path, capsys):
    out = tmp_path / "val"
    assert cli.main(["validate", "models/single_lif.yaml", "--target", "loihi2-torch", "--codegen", "numpy",
                     "--torch-device", "cpu", "-o", str(out), "--steps", "600"]) == 0
    capsys.readouterr()
    tol = tmp_path / "strict.yaml"
    tol.write_text("validation: 1\nkind: float64\n")  # integers judged as float64: must fail
    rc = cli.main(["validate", "--compare", str(out / "reference" / "result.npz"), str(out / "target" / "result.npz"),
                   "--tolerance-file", str(tol), "-o", str(tmp_path / "cmp"), "--json"])
    info = json.loads(capsys.readouterr().out)
    assert rc == 1 and info["ok"] is False
    assert any("first_spike_max_abs_steps" in f or "trace_nrmse" in f for f in info["report"]["verdict"]["failures"])
    assert (tmp_path / "cmp" / "report.html").exists()


def test_tolerance_file_overrides_and_says_where_from(tmp_path):
    tol = tmp_path / "t.yaml"
    tol.write_text("tolerances:\n  rate_rel_error: 0.5\npopulations:\n  neuron: {coincidence_factor: null}\n"
                   "probes:\n  neuron.v: {trace_nrmse: 1.0e-9}\ncoincidence_window: 1 ms\n")
    from neurodeploy.validation.tolerances import load_file

    t = load_file(tol, "fixed", ["neuron"], ["neuron.v"])
    assert t.coincidence_window_s == pytest.approx(1e-3)
    assert t.for_population("neuron", "rate_rel_error").threshold == 0.5
    assert t.for_population("neuron", "rate_rel_error").source == "file t.yaml: tolerances.rate_rel_error"
    assert t.for_population("neuron", "coincidence_factor").threshold is None
    assert t.for_population("neuron", "cell_agreement").source == "default (fixed)"
    rep = _validate(short("models/single_lif.yaml"), "loihi2-torch", tmp_path, tolerances=t, compile=False)
    assert "probe neuron.v: trace_nrmse" in "\n".join(rep["verdict"]["failures"])


def test_bad_tolerance_file_is_a_located_error(tmp_path, capsys):
    tol = tmp_path / "bad.yaml"
    tol.write_text("tolerances:\n  rate_rel_eror: 0.1\npopulations:\n  nueron: {coincidence_factor: 0.5}\n"
                   "coincidence_window: 3 mV\n")
    rc = cli.main(["validate", "models/single_lif.yaml", "--target", "torch", "--tolerance-file", str(tol),
                   "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 1
    assert "bad.yaml:2:" in err and "rate_rel_eror" in err and "rate_rel_error" in err  # hint
    assert "nueron" in err and "neuron" in err
    assert "coincidence_window" in err
    assert "Traceback" not in err


def test_exit_codes_for_usage_and_missing_hardware(tmp_path, capsys):
    assert cli.main(["validate", "models/single_lif.yaml", "-o", str(tmp_path)]) == 2  # no --target
    assert cli.main(["validate", "models/single_lif.yaml", "--target", "loihi2", "-o", str(tmp_path)]) == 3
    assert "Loihi 2 hardware is not available" in capsys.readouterr().err
    assert not (tmp_path / "reference").exists()  # refused before running the reference
    assert cli.main(["validate", "--compare", str(tmp_path / "a.npz"), str(tmp_path / "b.npz"), "-o",
                     str(tmp_path)]) == 2


@pytest.mark.slow
def test_plastic_projection_weight_trajectory_is_compared(tmp_path):
    rep = _validate(short("models/hybrid_ramp_stdp.yaml"), "torch", tmp_path, compile=False)
    probe = rep["verdict"]["probes"]["driven_learner.weights"]
    c = probe["metrics"]["weight_nrmse"]
    assert c["pass"] is True and c["threshold"] == 0.01 and c["value"] < 1e-5
    assert probe["reference_range"] > 0  # the weights do move


def test_oversized_comparisons_are_refused_before_running(monkeypatch, tmp_path, capsys):
    import neurodeploy.validation.compare as C

    monkeypatch.setattr(C, "MAX_CELLS", 100)  # single_lif: 1000 steps x 1 neuron
    rc = cli.main(["validate", "models/single_lif.yaml", "--target", "torch", "-o", str(tmp_path / "o")])
    assert rc == 2 and "--steps" in capsys.readouterr().err
    assert not (tmp_path / "o" / "reference").exists()
