"""Targets are data: every shipped target loads, and bad target files get located errors."""

from __future__ import annotations

import pytest

from neurodeploy.core.errors import SpecError
from neurodeploy.core.targets import available_targets, load_target


def test_shipped_targets():
    names = set(available_targets())
    assert {"brian2", "lava", "loihi2-sim", "loihi2", "torch"} <= names
    for n in names:
        t = load_target(n)
        assert t.name == n
    sim = load_target("loihi2-sim")
    assert sim.backend == "lava" and sim.number_format == "fixed"
    assert sim.precision["weight_bits"] == 8 and sim.precision["decay_bits"] == 12
    assert sim.limits["neurons_per_core"] > 0 and sim.limits["max_delay_steps"] == 63
    assert load_target("torch").device == "auto"
    assert "lava-loihi" in load_target("loihi2").requires


def test_unknown_target_suggests():
    with pytest.raises(SpecError) as e:
        load_target("loihi2sim")
    d = e.value.diagnostics[0]
    assert d.code == "ND405" and "loihi2-sim" in d.hint


def test_bad_target_file(tmp_path):
    f = tmp_path / "chip.yaml"
    f.write_text("target: 1\nname: chip\nbackend: lavva\nnumber_format: fixed\nlimits:\n  neurons_per_core: lots\n")
    with pytest.raises(SpecError) as e:
        load_target(str(f))
    got = {(d.code, d.span.line) for d in e.value.diagnostics}
    assert ("ND204", 3) in got and ("ND203", 6) in got
    assert any("lava" in (d.hint or "") for d in e.value.diagnostics)


def test_target_from_env_dir(tmp_path, monkeypatch):
    (tmp_path / "mychip.yaml").write_text("target: 1\nname: mychip\nbackend: torch\nnumber_format: float32\n")
    monkeypatch.setenv("NEURODEPLOY_TARGETS", str(tmp_path))
    assert load_target("mychip").backend == "torch"
