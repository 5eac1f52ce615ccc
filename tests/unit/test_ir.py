"""IR: lossless JSON round trip, golden files for every shipped model, verify() on code-built IR."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest

import neurodeploy as nd
from neurodeploy.core.errors import IRError
from neurodeploy.ir import (
    Connectivity,
    CurrentStimulus,
    Network,
    Population,
    Probe,
    Projection,
    Simulation,
    Weights,
    from_json,
    to_json,
)
from neurodeploy.spec import problems
from neurodeploy.spec import verify

from ..conftest import MODELS, ROOT, rel

GOLDEN = ROOT / "tests" / "golden"


def test_every_shipped_model_has_a_golden_file():
    assert MODELS, "no shipped models found"
    missing = [m.stem for m in MODELS if not (GOLDEN / f"{m.stem}.ir.json").exists()]
    assert not missing, f"no golden IR for {missing}; run UPDATE_GOLDEN=1 pytest tests/unit/test_ir.py"


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_round_trip_is_lossless(model):
    net = nd.load(rel(model))
    text = to_json(net)
    back = from_json(text)
    assert back == net
    assert to_json(back) == text
    # every float survives exactly (repr precision), including awkward ones like 0.1 ms
    assert back.simulation.dt == net.simulation.dt


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_golden_ir(model):
    net = nd.load(rel(model))
    path = GOLDEN / f"{model.stem}.ir.json"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(to_json(net))
    assert path.exists()
    assert to_json(net) == path.read_text(), (
        f"IR of {model.name} changed; if intended, run UPDATE_GOLDEN=1 pytest tests/unit/test_ir.py")
    assert from_json(path.read_text()) == net


def test_ir_is_frozen_and_si():
    net = nd.load("models/single_lif.yaml")
    with pytest.raises(dataclasses.FrozenInstanceError):
        net.simulation.dt = 1.0  # type: ignore[misc]
    pop = net.populations[0]
    assert pop.params["tau_m"] == pytest.approx(0.020)  # 20 ms in seconds
    assert pop.params["R_m"] == pytest.approx(10e6)  # 10 Mohm in ohm
    assert net.stimuli[0].amplitude == pytest.approx(2e-9)  # 2 nA in amp
    assert net.simulation.steps == 1000


def test_json_is_versioned():
    payload = json.loads(to_json(nd.load("models/cuba_chain.yaml")))
    assert payload["neurodeploy_ir"] == 1
    payload["neurodeploy_ir"] = 99
    with pytest.raises(ValueError, match="version 99"):
        from_json(json.dumps(payload))


def _net(**kw) -> Network:
    base = dict(
        name="t",
        simulation=Simulation(dt=1e-4, steps=100),
        populations=(Population("a", 10, "lif"), Population("b", 5, "lif")),
    )
    base.update(kw)
    return Network(**base)


def test_verify_accepts_a_good_network():
    net = _net(projections=(Projection("ab", "a", "b", Weights("constant", {"value": 1e-3}, unit="volt")),))
    assert verify(net) is net


@pytest.mark.parametrize(
    "kw, code, path",
    [
        ({"projections": (Projection("ab", "a", "zz", Weights("constant", {"value": 1e-3})),)},
         "ND501", ("projections", 0, "target")),
        ({"projections": (Projection("ab", "a", "b", Weights("constant", {"value": 1e-3}),
                                     Connectivity("one_to_one")),)}, "ND503", ("projections", 0, "connectivity")),
        ({"projections": (Projection("ab", "a", "b", Weights("constant", {"value": -1e-3}),
                                     sign="excitatory"),)}, "ND205", ("projections", 0, "weights")),
        ({"populations": (Population("a", 10, "lif"), Population("a", 5, "lif"))}, "ND500", ("populations", 1, "name")),
        ({"populations": (Population("a", 0, "lif"),)}, "ND205", ("populations", 0, "size")),
        ({"populations": (Population("a", 10, "lief"),)}, "ND400", ("populations", 0, "model")),
        ({"probes": (Probe("p", "a", "w"),)}, "ND402", ("probes", 0, "record")),
        ({"probes": (Probe("p", "a", "v", indices=(10,)),)}, "ND504", ("probes", 0, "indices", 0)),
        ({"stimuli": (CurrentStimulus("c", "a", 1e-9, indices=(3, 99)),)}, "ND504", ("stimuli", 0, "indices", 1)),
    ],
)
def test_verify_reports_located_problems(kw, code, path):
    net = _net(**kw)
    found = problems(net)
    assert any(p.code == code and p.path == path for p in found), found
    with pytest.raises(IRError):
        verify(net)


def test_unknown_model_hint_suggests_the_right_name():
    found = problems(_net(populations=(Population("a", 10, "lief"),)))
    assert "lif" in (found[0].hint or "")
