"""The placement pass: per node, the target or its fallback, with the reason; exchange points;
--no-fallback and fallback-less targets turn fallback placements into named errors."""

from __future__ import annotations

import json

import pytest

import neurodeploy as nd
from neurodeploy.core.errors import CompileError
from neurodeploy.backends.dispatch import plan as place
from neurodeploy.passes.place import FALLBACK, TARGET, split
from neurodeploy.core.targets import load_target

from ..conftest import MODELS, rel

HYBRID = "models/hybrid_ramp_stdp.yaml"


def test_hybrid_model_placement_and_reasons():
    plan = place(nd.load(HYBRID), load_target("loihi2-sim"))
    where = {n.node: n.where for n in plan.nodes}
    assert {k for k, v in where.items() if v == FALLBACK} == {
        "driven", "learner", "ramp", "out_learner", "driven_learner", "driven_learner.stdp"}
    assert where["out"] == where["noise"] == where["noise_out"] == where["driven_out"] == TARGET
    why = {n.node: n.reason for n in plan.nodes}
    assert "constant" in why["ramp"] and "ramp" in why["driven"]
    assert "multiplicative" in why["driven_learner"] and "driven_learner" in why["learner"]
    assert {n.node: n.exchange for n in plan.exchanges} == {"driven_out": "fallback -> target",
                                                           "out_learner": "target -> fallback"}
    table = plan.table()
    assert "driven_out" in table and "[exchange fallback -> target]" in table and "torch" in table
    json.dumps(plan.to_json())


def test_split_keeps_names_and_adds_placeholders():
    net = nd.load(HYBRID)
    lava_part, torch_part = split(net, place(net, load_target("lava")))
    assert [p.name for p in lava_part.populations] == ["out"]
    assert {s.name: s.kind for s in lava_part.stimuli} == {"noise": "poisson", "driven": "spike_times"}
    assert {p.name for p in torch_part.populations} == {"driven", "learner"}
    assert {s.name: s.kind for s in torch_part.stimuli} == {"ramp": "current", "out": "spike_times"}
    assert {pb.target for pb in lava_part.probes} == {"out"}


#: shipped models that are hybrid on Lava targets by design (tests/backends/test_local_rules.py)
HYBRID_ON_LAVA = {"local_rules", "third_factor"}


@pytest.mark.parametrize("model", MODELS, ids=lambda p: p.stem)
def test_every_other_shipped_model_runs_on_the_target_alone(model):
    if model.stem.startswith("hybrid_") or model.stem in HYBRID_ON_LAVA:
        pytest.skip("a hybrid example")
    plan = place(nd.load(rel(model)), load_target("loihi2-sim"))
    assert not plan.on_fallback and not plan.exchanges


def test_no_fallback_and_fallbackless_targets_name_the_nodes(tmp_path):
    net = nd.load(HYBRID)
    with pytest.raises(CompileError, match="'ramp'.*constant.*--no-fallback"):
        place(net, load_target("loihi2-sim"), allow_fallback=False)
    strict = tmp_path / "strict.yaml"
    strict.write_text("target: 1\nname: strict\nbackend: lava\nnumber_format: float64\nfallback: null\n")
    with pytest.raises(CompileError, match="'driven_learner': multiplicative.*allows no fallback"):
        place(net, load_target(str(strict)))


def test_population_too_big_for_the_chip_goes_to_the_fallback(tmp_path):
    tiny = tmp_path / "tiny.yaml"
    tiny.write_text("target: 1\nname: tiny\nbackend: lava\nnumber_format: fixed\nfallback: torch\n"
                    "limits: {neurons_per_core: 4, cores_per_chip: 2, chips: 1}\n")
    plan = place(nd.load("models/cuba_chain.yaml"), load_target(str(tiny)))
    stage = next(n for n in plan.nodes if n.node == "stage0")
    assert stage.where == FALLBACK and "10 neurons exceed the chip" in stage.reason
    # a chain: every population is too big, so the whole model is on the fallback
    assert all(n.where == FALLBACK for n in plan.nodes)


@pytest.mark.lava
def test_cli_compile_prints_the_table_and_writes_placement_json(tmp_path, capsys):
    from neurodeploy.app import cli

    rc = cli.main(["compile", HYBRID, "--target", "loihi2-sim", "-o", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0 and "placement for target loihi2-sim (fallback: torch)" in out
    assert "driven_learner.stdp" in out
    placed = json.loads((tmp_path / "placement.json").read_text())
    assert placed["exchange_points"] == ["driven_out", "out_learner"]
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["files"]["placement"] == "placement.json"
    rc = cli.main(["compile", HYBRID, "--target", "loihi2-sim", "-o", str(tmp_path / "x"), "--no-fallback"])
    assert rc == 1 and "'driven'" in capsys.readouterr().err
