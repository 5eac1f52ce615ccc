"""snnTorch -> NIR -> neurodeploy, against snnTorch's own simulation (issue 18).

A Linear -> Leaky -> Linear -> Leaky network with fixed weights is exported by snnTorch's own
``export_to_nir``; the importer recognises snnTorch's export (every LIF with r = tau / 0.1 ms)
and picks ``schedule: discrete`` (Euler-beta, reset before delivery, a spike crossing the
zero-delay Linear within its step). Driven with the same input spikes, every backend must agree
with snnTorch on >= 0.999 of the (neuron, step) cells of both layers.

The Leaky layers use ``reset_mechanism="zero"``: NIR's LIF resets to ``v_reset`` and snnTorch's
exporter writes ``v_reset = 0`` whatever the mechanism, so snnTorch's default reset by
subtraction is not in the file (docs/interop.md).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
import snntorch as snn  # requirements-dev.txt
import torch
from snntorch import utils as snn_utils
from snntorch.export_nir import export_to_nir

import neurodeploy as nd
from neurodeploy.backends.reference import simulator as reference
from neurodeploy.interop.nir import import_nir
from neurodeploy.validation.run import backend_options

T, N_IN, N_HID, N_OUT = 300, 16, 24, 6


@pytest.fixture(scope="module")
def roundtrip(tmp_path_factory):
    out = tmp_path_factory.mktemp("snntorch")
    g = torch.Generator().manual_seed(1)
    fc1, fc2 = torch.nn.Linear(N_IN, N_HID), torch.nn.Linear(N_HID, N_OUT)
    with torch.no_grad():
        fc1.weight.copy_(torch.rand((N_HID, N_IN), generator=g) * 0.6 - 0.1)
        fc1.bias.copy_(torch.rand(N_HID, generator=g) * 0.05)
        fc2.weight.copy_(torch.rand((N_OUT, N_HID), generator=g) * 0.8 - 0.2)
        fc2.bias.zero_()
    lif1 = snn.Leaky(beta=torch.full((N_HID,), 0.9), threshold=torch.ones(N_HID), init_hidden=True,
                     reset_mechanism="zero")
    lif2 = snn.Leaky(beta=torch.full((N_OUT,), 0.8), threshold=torch.ones(N_OUT), init_hidden=True, output=True,
                     reset_mechanism="zero")
    model = torch.nn.Sequential(fc1, lif1, fc2, lif2)
    x = (torch.rand((T, N_IN), generator=g) < 0.2).float()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = export_to_nir(model, torch.zeros(1, N_IN), ignore_dims=[0])
    nir.write(out / "snntorch.nir", graph)
    snn_utils.reset(model)
    s1, s2 = [], []
    with torch.no_grad():
        for t in range(T):
            a = lif1(fc1(x[t:t + 1]))
            b, _ = lif2(fc2(a))
            s1.append(a.numpy()[0] > 0)
            s2.append(b.numpy()[0] > 0)
    net, report = import_nir(out / "snntorch.nir", out / "snntorch.yaml", inputs=x.numpy(), steps=T)
    return net, report, [np.array(s1), np.array(s2)]


def _agreement(net, res, theirs) -> list[float]:
    out = []
    for pop, ref in zip([p.name for p in net.populations], theirs):  # populations in the graph's order
        ours = np.zeros_like(ref)
        ours[res.spikes[pop].steps(res.dt), res.spikes[pop].i] = True
        out.append(float((ours == ref).mean()))
    return out


def test_the_importer_recognises_snntorch_and_picks_discrete(roundtrip):
    net, report, theirs = roundtrip
    assert net.simulation.schedule == "discrete"
    assert "snnTorch" in report["schedule"]["reason"]
    assert any(n["kind"] == "schedule" for n in report["notes"])
    assert [p.size for p in net.populations] == [N_HID, N_OUT]
    assert theirs[0].sum() > 300 and theirs[1].sum() > 100  # both layers are active


@pytest.mark.parametrize("target", ["reference", "torch", "brian2"])
def test_snntorch_round_trip_agrees_cell_for_cell(roundtrip, target):
    net, _, theirs = roundtrip
    if target == "reference":
        res = reference.simulate(net)
    else:
        res = nd.simulate(net, target, options=backend_options(nd.targets()[target], codegen="numpy",
                                                               torch_device="cpu"))
    agree = _agreement(net, res, theirs)
    assert min(agree) >= 0.999, agree


def test_exact_schedule_is_what_loses_the_agreement(roundtrip, tmp_path):
    """The same file imported under ``exact`` (the importer's choice before issue 18)."""
    net, _, theirs = roundtrip
    import dataclasses

    exact = dataclasses.replace(net, simulation=dataclasses.replace(net.simulation, schedule="exact"))
    agree = _agreement(exact, reference.simulate(exact), theirs)
    assert min(agree) < 0.99, agree


def test_a_graph_without_a_known_producer_stays_exact_and_says_why(tmp_path):
    net, report = import_nir("tests/fixtures/nir-paper-lif/lif_norse.nir", tmp_path / "lif.yaml")
    assert net.simulation.schedule == "exact"
    assert "no producer" in report["schedule"]["reason"]


def test_cli_import_takes_a_schedule(tmp_path, capsys):
    """`neurodeploy import --schedule` overrides the producer's schedule; the report says so."""
    import json

    from neurodeploy.app import cli

    src = Path(__file__).resolve().parents[1] / "fixtures" / "nir-graphs" / "braille_noDelay_noBias_subtract.nir"
    for sched in ("exact", "discrete"):
        rc = cli.main(["import", str(src), "-o", str(tmp_path / f"{sched}.yaml"), "--schedule", sched, "--json"])
        out = json.loads(capsys.readouterr().out)
        assert rc == 0 and out["report"]["schedule"]["schedule"] == sched
    with pytest.raises(SystemExit) as e:  # argparse: a usage error
        cli.main(["import", str(src), "-o", str(tmp_path / "bad.yaml"), "--schedule", "euler"])
    assert e.value.code == 2 and not (tmp_path / "bad.yaml").exists()
