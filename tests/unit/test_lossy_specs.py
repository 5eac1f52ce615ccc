"""Specs that run, but not exactly as written, are accepted with a located warning (issue 16.4):
a delay or a probe period that is not a whole number of steps of dt is rounded, and ``check``
says to what."""

from __future__ import annotations

import json

from neurodeploy.app.cli import main

SPEC = """\
neurodeploy: 1
name: lossy
simulation: {{dt: 0.1 ms, duration: 10 ms}}
populations:
  - {{name: a, size: 2, model: lif}}
stimuli:
  - {{name: src, kind: spike_times, size: 1, spikes: [{{neuron: 0, times: [1 ms]}}]}}
projections:
  - {{name: p, source: src, target: a, weights: 1 mV, delay: {delay}}}
probes:
  - {{target: a, record: v, period: {period}}}
"""


def _check(tmp_path, capsys, delay, period, json_out=True):
    spec = tmp_path / "lossy.yaml"
    spec.write_text(SPEC.format(delay=delay, period=period))
    rc = main(["check", str(spec)] + (["--json"] if json_out else []))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return rc, spec, out, err


def test_off_grid_delay_and_period_warn_with_the_rounded_value(tmp_path, capsys):
    rc, spec, out, _ = _check(tmp_path, capsys, "0.15 ms", "0.25 ms")
    assert rc == 0  # warnings do not fail
    diags = json.loads(out)[0]["diagnostics"]
    by_path = {d["path"]: d for d in diags}
    assert set(by_path) == {"projections[0].delay", "probes[0].period"}
    delay, period = by_path["projections[0].delay"], by_path["probes[0].period"]
    assert delay["severity"] == period["severity"] == "warning"
    assert (delay["file"], delay["line"]) == (str(spec), 9)
    assert (period["file"], period["line"]) == (str(spec), 11)
    assert "0.15 ms" in delay["message"] and "rounded to 1 step = 0.1 ms" in delay["message"]
    assert "0.25 ms" in period["message"] and "rounded to 2 steps = 0.2 ms" in period["message"]


def test_warnings_are_printed_by_check(tmp_path, capsys):
    rc, spec, out, err = _check(tmp_path, capsys, "0.26 ms", "0.3 ms", json_out=False)
    text = out + err
    assert rc == 0
    assert f"{spec}:9:" in text and "warning" in text and "rounded to 3 steps = 0.3 ms" in text
    assert "period" not in text.replace("(2 warnings)", "")  # 0.3 ms is 3 steps: no warning


def test_multiples_of_dt_do_not_warn(tmp_path, capsys):
    # 1.5 ms / 0.1 ms and 0.3 ms / 0.1 ms are not exact in binary floating point: no warning
    rc, _, out, _ = _check(tmp_path, capsys, "1.5 ms", "0.3 ms")
    assert rc == 0
    assert json.loads(out)[0]["diagnostics"] == []
