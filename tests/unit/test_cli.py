"""The CLI contract: commands, exit codes, JSON output, no tracebacks, atomic outputs."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from neurodeploy.app import cli
from neurodeploy.core.errors import CODES


def run(argv, capsys):
    rc = cli.main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, out, err


def test_help_lists_every_command_with_examples(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("check", "info", "compile", "run", "validate", "deploy", "import", "export", "train"):
        assert cmd in out
    assert "examples:" in out and "exit codes" in out


@pytest.mark.parametrize("cmd", ["check", "compile", "run", "validate", "deploy", "import", "export", "train"])
def test_each_command_help_has_an_example(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([cmd, "--help"])
    assert e.value.code == 0
    assert "example:" in capsys.readouterr().out


def test_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["run", "models/single_lif.yaml"])  # --target missing
    assert e.value.code == 2
    assert cli.main([]) == 2


def test_info_json(capsys):
    rc, out, _ = run(["info", "--json"], capsys)
    assert rc == 0
    info = json.loads(out)
    names = {b["name"]: b for b in info["backends"]}
    assert set(names) == {"brian2", "lava", "loihi2", "torch"}
    assert names["lava"]["available"] is True  # the project venv installs lava-nc
    assert names["loihi2"]["available"] is False and "lava-loihi" in names["loihi2"]["detail"]
    assert set(info["targets"]) >= {"brian2", "lava", "loihi2-sim", "loihi2", "torch"}
    assert {"lif", "cuba_lif", "poisson_source", "spike_source"} <= set(info["neuron_models"])


def test_check_all_models_json(capsys):
    rc, out, _ = run(["check", "models", "--json"], capsys)
    assert rc == 0
    records = json.loads(out)
    assert len(records) >= 3 and all(r["ok"] for r in records)


def test_check_writes_ir_atomically(tmp_path, capsys):
    dest = tmp_path / "sub" / "lif.ir.json"
    rc, out, _ = run(["check", "models/single_lif.yaml", "--ir", str(dest)], capsys)
    assert rc == 0
    assert json.loads(dest.read_text())["network"]["name"] == "single_lif"
    assert [p.name for p in dest.parent.iterdir()] == ["lif.ir.json"]  # no temp files left


def test_check_invalid_writes_no_ir(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("neurodeploy: 1\nname: x\nsimulation: {dt: 1 ms, steps: 5}\npopulations:\n  - {name: a, size: 0, model: lif}\n")
    dest = tmp_path / "out.json"
    rc, _, err = run(["check", str(bad), "--ir", str(dest)], capsys)
    assert rc == 1 and not dest.exists()
    assert f"{bad}:5:" in err and "ND205" in err


@pytest.mark.parametrize("cmd, target", [("compile", "brian2"), ("compile", "torch"), ("deploy", "brian2"),
                                         ("deploy", "torch")])
def test_unlanded_commands_say_so_with_exit_3(cmd, target, tmp_path, capsys):
    rc, _, err = run([cmd, "models/single_lif.yaml", "--target", target, "-o", str(tmp_path / "o")], capsys)
    assert rc == 3
    assert "not implemented yet" in err
    assert not (tmp_path / "o").exists()


def test_unlanded_commands_still_validate_input_first(tmp_path, capsys):
    rc, _, err = run(["run", "models/single_lif.yaml", "--target", "loihi3", "-o", str(tmp_path)], capsys)
    assert rc == 1 and "ND405" in err and "loihi2" in err
    rc, _, err = run(["run", str(tmp_path / "missing.yaml"), "--target", "brian2", "-o", str(tmp_path)], capsys)
    assert rc == 1 and "ND100" in err


def test_json_error_output_for_commands(tmp_path, capsys):
    rc, out, _ = run(["run", str(tmp_path / "missing.yaml"), "-t", "brian2", "-o", str(tmp_path), "--json"], capsys)
    assert rc == 1
    assert json.loads(out)["diagnostics"][0]["code"] == "ND100"


def test_console_script_runs_without_traceback():
    p = subprocess.run([sys.executable, "-m", "neurodeploy.app.cli", "check", "models/single_lif.yaml"],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "ok" in p.stdout and "Traceback" not in p.stderr


def test_error_codes_are_documented():
    from pathlib import Path

    doc = Path("docs/spec.md").read_text()
    missing = [c for c in CODES if c not in doc]
    assert not missing, f"codes missing from docs/spec.md: {missing}"
