"""Block expansion (issue 6): the ``ipvae`` and ``lca`` blocks become graded populations and
projections; the numpy graded simulator runs the expanded network exactly as the algorithms'
own steps (``ipvae_step``, ``lca_step``); the target lowerings recover the block's arrays from
the expanded structure, so a hand-written expanded spec evaluates like the block.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

import neurodeploy as nd
from neurodeploy.library.materialize import dense_weights
from neurodeploy.backends.reference.graded import simulate_graded
from neurodeploy.library.blocks.coder import STRUCTURE_RTOL, block_images, find_coder
from neurodeploy.app.cli import main
from neurodeploy.core.errors import NotImplementedYet
from neurodeploy.ir import from_json, to_json
from neurodeploy.spec.checks import problems
from neurodeploy.library.blocks.ipvae.reference import ipvae_step
from neurodeploy.library.blocks.lca.reference import lca_step
from neurodeploy.passes.expand import expand

ROOT = Path(__file__).resolve().parents[2]
DIGITS = "models/ipvae/ipvae_digits.yaml"
EXPANDED = "models/ipvae/ipvae_digits_expanded.yaml"
LCA = "models/ipvae/lca_digits.yaml"


@pytest.fixture(scope="module")
def digits():
    net = nd.load(DIGITS)
    coder = find_coder(net, "ipvae")
    X, _ = block_images(net, coder, 6)
    return net, coder, X


def _local_copy(tmp_path: Path, spec: str) -> str:
    """The text of a shipped spec with its weights copied beside it (tmp_path/weights), so that
    a variant written to tmp_path names its files inside its own folder (files outside a spec's
    folder are refused unless allowed: spec/loader.py)."""
    shutil.copytree(ROOT / "models/weights/ipvae_digits", tmp_path / "weights/ipvae_digits",
                    dirs_exist_ok=True)
    return (ROOT / spec).read_text().replace("../weights/", "weights/")


def _with_form(net, form):
    b = net.blocks[0]
    return dataclasses.replace(net, blocks=(dataclasses.replace(b, params={**b.params, "form": form}),))


def _weights(net):
    return {pr.name: dense_weights(net, pr) for pr in net.projections}


def test_lateral_expansion_structure_and_weights(digits):
    net, coder, _ = digits
    x = expand(net)
    assert not x.blocks and not problems(x)
    assert {p.name: (p.model, p.size) for p in x.populations} == {
        "coder.latents": ("ipvae", 256), "coder.readout": ("linear", 64)}
    assert {(p.name, p.source, p.target) for p in x.projections} == {
        ("coder.drive", "image", "coder.latents"), ("coder.lateral", "coder.latents", "coder.latents"),
        ("coder.decode", "coder.latents", "coder.readout")}
    A = dict(coder.arrays)
    Phi, s2 = A["Phi"], float(net.blocks[0].params["sigma"]) ** 2
    W = _weights(x)
    np.testing.assert_allclose(W["coder.drive"], Phi / s2, rtol=1e-12)
    np.testing.assert_allclose(W["coder.lateral"], -Phi.T @ Phi / s2, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(W["coder.decode"], Phi.T)
    lat = x.node("coder.latents")
    assert lat.params["restart_every"] == 1000 and lat.params["step_size"] == net.blocks[0].params["step_size"]
    # the IR stays small (references, not matrices) and round-trips
    text = to_json(x)
    assert len(text) < 20_000 and from_json(text) == x


def test_predictive_coding_expansion_structure(digits):
    net = _with_form(digits[0], "predictive_coding")
    x = expand(net)
    assert not problems(x)
    assert {p.name: p.model for p in x.populations} == {
        "coder.latents": "ipvae", "coder.errors": "linear", "coder.readout": "linear"}
    W = _weights(x)
    Phi, s2 = dict(find_coder(net, "ipvae").arrays)["Phi"], float(net.blocks[0].params["sigma"]) ** 2
    np.testing.assert_allclose(W["coder.error_in"], np.eye(64) / s2, rtol=1e-12)
    np.testing.assert_allclose(W["coder.feedback"], -Phi.T / s2, rtol=1e-12)
    np.testing.assert_array_equal(W["coder.error_drive"], Phi)
    assert find_coder(net, "ipvae").params["form"] == "predictive_coding"


@pytest.mark.parametrize("form", ["lateral", "predictive_coding"])
def test_graded_simulation_equals_ipvae_step(digits, form):
    """The expanded network, run by the generic graded simulator, draws the same counts as
    ``ipvae_step`` with the same random stream; u agrees to rounding."""
    net, coder, X = digits
    x = expand(_with_form(net, form))
    T, seed = 25, 7
    r = simulate_graded(x, {"image": X}, T, seed=seed)
    A = dict(coder.arrays)
    rng = np.random.default_rng(seed)
    u = np.tile(A["u0"], (len(X), 1))
    z = rng.poisson(np.exp(u)).astype(float)
    for _ in range(T):
        u, z, _du = ipvae_step(u, z, X, A["Phi"], A["b"], float(A["eta"]), A["sigma"], u_min=float(A["u_min"]),
                               u_max=float(A["u_max"]), du_max=float(A["du_max"]), soft=bool(A["soft_clamp"]),
                               rng=rng)
    np.testing.assert_array_equal(r["outputs"]["coder.latents"], z)
    np.testing.assert_allclose(r["states"]["coder.latents"]["u"], u, rtol=0, atol=1e-10)
    np.testing.assert_allclose(r["outputs"]["coder.readout"], z @ A["Phi"].T, rtol=1e-12, atol=1e-12)
    assert z.sum() > 0 and (z == 0).mean() > 0.5  # a real sparse code, not all zeros


def test_graded_simulation_equals_lca_step_and_restarts():
    net = nd.load(LCA)
    x = expand(net)
    coder = find_coder(net, "lca")
    X, _ = block_images(net, coder, 5)
    Phi, lam, dt_tau = coder.arrays["Phi"], coder.arrays["lam"], coder.arrays["dt_tau"]
    T = 30
    r = simulate_graded(x, {"image": X}, T)
    v = np.zeros((len(X), Phi.shape[1]))
    for _ in range(T):
        v, a = lca_step(v, X, Phi, lam, dt_tau)
    np.testing.assert_allclose(r["outputs"]["coder.latents"], a, rtol=0, atol=1e-12)
    assert (a > 0).any() and (a == 0).mean() > 0.5
    # restart_every: a run of 2 T steps restarting every T ends where a run of T steps ends
    lat = x.node("coder.latents")
    xr = dataclasses.replace(x, populations=tuple(
        dataclasses.replace(p, params={**p.params, "restart_every": T}) if p is lat else p for p in x.populations))
    r2 = simulate_graded(xr, {"image": X}, 2 * T)
    np.testing.assert_allclose(r2["outputs"]["coder.latents"], r["outputs"]["coder.latents"], rtol=0, atol=1e-12)
    r3 = simulate_graded(x, {"image": X}, 2 * T)  # without the restart it keeps converging
    assert np.abs(r3["outputs"]["coder.latents"] - a).max() > 1e-6


def test_coder_recovers_the_block_arrays_from_the_expansion(digits):
    net, _, _ = digits
    block = net.blocks[0]
    A = find_coder(net, "ipvae").arrays
    s = float(block.params["sigma"])
    np.testing.assert_allclose(A["sigma"], s, rtol=1e-13)
    assert float(A["eta"]) == block.params["step_size"] and bool(A["soft_clamp"])
    z = np.load(ROOT / "models/weights/ipvae_digits/decoder.npz", allow_pickle=False)
    np.testing.assert_array_equal(A["Phi"], z["Phi"])
    np.testing.assert_array_equal(A["u0"], z["u0"].reshape(-1))
    np.testing.assert_array_equal(A["b"], z["b"].reshape(-1))


def test_hand_written_expanded_spec_evaluates_like_the_block(tmp_path, capsys):
    out = {}
    for spec in (DIGITS, EXPANDED):
        rc = main(["eval", spec, "-t", "torch", "-o", str(tmp_path / Path(spec).stem), "--images", "12",
                   "--iterations", "8", "--json"])
        assert rc == 0
        out[spec] = json.loads(capsys.readouterr().out)
    a, b = out[DIGITS]["results"][0], out[EXPANDED]["results"][0]
    assert b["r2"] == pytest.approx(a["r2"], abs=1e-6) and b["zeros"] == pytest.approx(a["zeros"], abs=1e-6)
    assert a["r2"] > 0.5


def test_a_structure_that_is_not_the_block_is_refused(tmp_path, capsys):
    """Lateral weights that are not -Phi^T Phi / sigma^2 cannot run through the iP-VAE lowering:
    exit 3 naming the projection (the graded simulator still runs it)."""
    spec = tmp_path / "bad.yaml"
    text = _local_copy(tmp_path, EXPANDED)
    spec.write_text(text.replace("transform: gram, scale: -3.2544564519869263", "transform: gram, scale: -6.5"))
    net = nd.load(spec)
    with pytest.raises(NotImplementedYet, match="projection 'lateral'.*relative error"):
        find_coder(net, "ipvae")
    rc = main(["eval", str(spec), "-t", "torch", "-o", str(tmp_path / "o"), "--images", "4", "--iterations", "2"])
    assert rc == 3 and not (tmp_path / "o" / "metrics.json").exists()
    assert "lateral" in capsys.readouterr().err
    X = np.random.default_rng(0).random((2, 64))
    assert np.isfinite(simulate_graded(net, {"image": X}, 3)["states"]["latents"]["u"]).all()
    assert STRUCTURE_RTOL < 1e-6


def _spec(tmp_path, body: str) -> Path:
    head = ("neurodeploy: 1\nname: g\nsimulation: {dt: 1 ms, steps: 10}\n"
            "stimuli:\n- {name: img, kind: array, encoding: value, frame_duration: 10 ms, data: {inline: [[0.5, 1.0]]}}\n"
            "- {name: poi, kind: poisson, size: 2, rate: 10 Hz}\n")
    p = tmp_path / "g.yaml"
    p.write_text(head + body)
    return p


@pytest.mark.parametrize("body, code, words", [
    ("populations:\n- {name: lat, size: 2, model: ipvae}\nprojections:\n"
     "- {name: p, source: poi, target: lat, weights: 1.0}\n", "ND505", "takes graded input"),
    ("populations:\n- {name: lat, size: 2, model: lca}\n- {name: l, size: 2, model: lif}\nprojections:\n"
     "- {name: p, source: lat, target: l, weights: 1 mV}\n", "ND505", "takes spikes"),
    ("populations:\n- {name: a, size: 2, model: linear}\n- {name: b, size: 2, model: linear}\nprojections:\n"
     "- {name: p, source: a, target: b, weights: 1.0}\n- {name: q, source: b, target: a, weights: 1.0}\n",
     "ND502", "form a loop"),
    ("populations:\n- {name: lat, size: 2, model: ipvae, params: {prior: {inline: [1.0, 2.0, 3.0]}}}\n",
     "ND503", "one value per neuron"),
    ("populations:\n- {name: lat, size: 2, model: ipvae}\nprojections:\n"
     "- {name: p, source: img, target: lat, weights: {inline: [1.0, 2.0], transform: gram}}\n",
     "ND503", "needs 2-D data"),
    ("populations:\n- {name: lat, size: 2, model: ipvae}\nprojections:\n"
     "- {name: p, source: img, target: lat, weights: {inline: [[1.0, 2.0]], transform: invert}}\n",
     "ND", "transform"),
    ("populations:\n- {name: src, size: 2, model: lif}\nblocks:\n"
     "- {name: c, kind: ipvae, input: src, latent: 1, decoder: {inline: [[1.0], [0.5]]}}\n",
     "ND505", "sends spikes"),
])
def test_graded_wiring_errors_name_the_line_and_key(tmp_path, body, code, words):
    from neurodeploy.spec import check

    net, diags = check(_spec(tmp_path, body))
    errors = [d for d in diags if d.severity == "error"]
    assert errors, "expected an error"
    text = " | ".join(d.render(False) for d in errors)
    assert code in text and words in text and "g.yaml:" in text


def test_transform_gram_reads_and_materialises(tmp_path):
    from neurodeploy.spec import check

    net, diags = check(_spec(tmp_path, "populations:\n- {name: lat, size: 2, model: ipvae}\nprojections:\n"
                                       "- {name: p, source: lat, target: lat, weights: "
                                       "{inline: [[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]], transform: gram, scale: -0.5}}\n"))
    assert net is not None and not diags
    w = net.node("p").weights.data
    assert w.shape == (2, 2) and w.transform == "gram"
    A = np.array([[1.0, 2.0], [3.0, 4.0], [0.0, 1.0]])
    np.testing.assert_allclose(dense_weights(net, net.node("p")), -0.5 * A.T @ A)


def test_check_expand_lists_the_expansion(tmp_path, capsys):
    rc = main(["check", DIGITS, "--expand", "--ir", str(tmp_path / "ir.json")])
    assert rc == 0
    out = capsys.readouterr().out
    assert "+ population coder.latents: 256 x ipvae" in out and "[gram]" in out
    x = from_json((tmp_path / "ir.json").read_text())
    assert not x.blocks and {p.model for p in x.populations} == {"ipvae", "linear"}


def test_spiking_paths_refuse_graded_networks_with_a_pointer_to_eval(tmp_path, capsys):
    from neurodeploy.backends.brian2.simulator import supports as brian2_supports
    from neurodeploy.lowering.loihi import unsupported_nodes

    net = nd.load(EXPANDED)
    reasons = {u.node: u.reason for u in unsupported_nodes(net)}
    assert "neurodeploy eval" in reasons["latents"] and "graded model 'ipvae'" in reasons["latents"]
    ok, why = brian2_supports(net, net.node("latents"))
    assert not ok and "neurodeploy eval" in why
    assert main(["validate", EXPANDED, "-t", "lava", "-o", str(tmp_path / "v")]) == 3
    assert "compare coders" in capsys.readouterr().err
    assert main(["export", DIGITS, "-o", str(tmp_path / "x.nir")]) == 3
    assert "no Poisson-count" in capsys.readouterr().err and not (tmp_path / "x.nir").exists()


def test_compile_writes_the_expanded_ir_and_takes_a_hand_written_spec(tmp_path, capsys):
    """compile -t loihi2-sim on the hand-written expanded spec (16 iterations): the report is
    the block's, and ir.json holds the expanded network (graded populations, no blocks)."""
    text = _local_copy(tmp_path, EXPANDED)
    spec = tmp_path / "x.yaml"
    spec.write_text(text.replace("restart_every: 1000", "restart_every: 16"))
    out = tmp_path / "c"
    assert main(["compile", str(spec), "-t", "loihi2-sim", "-o", str(out), "--json"]) == 0
    capsys.readouterr()
    r = json.loads((out / "compile_report.json").read_text())
    assert r["block"] == "latents" and r["synaptic_operations"]["T"] == 16
    assert r["formats"]["rate_table"]["levels"] == 18 * 2 ** 5 + 1
    x = from_json((out / "ir.json").read_text())
    assert not x.blocks and x.node("latents").model == "ipvae"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["latents"] == "latents"


def test_a_coder_next_to_a_spiking_network_is_refused_not_half_run(tmp_path, capsys):
    text = _local_copy(tmp_path, DIGITS)
    spec = tmp_path / "mixed.yaml"
    spec.write_text(text + "populations:\n- {name: extra, size: 3, model: lif}\n")
    assert main(["eval", str(spec), "-t", "torch", "-o", str(tmp_path / "o"), "--images", "2"]) == 3
    err = capsys.readouterr().err
    assert "spiking populations (extra)" in err and not (tmp_path / "o").exists()
