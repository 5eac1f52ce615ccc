"""ONNX import (decoders, dense layers, bad files) and export (rate networks, unrolled iP-VAE and
LCA inference) checked against torch with onnxruntime."""

from __future__ import annotations

import math

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from neurodeploy.core.data.onnx import (
    Graph,
    OnnxImportError,
    load_model,
    read_dense_layers,
    read_linear_decoder,
    run_dense_layers,
)
from neurodeploy.interop.onnx import (
    ipvae_rate_model,
    lca_model,
    linear_decoder_model,
    rate_network_model,
    run_onnxruntime,
    save_model,
)
from neurodeploy.backends.torch.blocks.ipvae import IPVAE, IPVAEConfig
from neurodeploy.backends.torch.blocks.lca import lca_infer  # noqa: E402


def _model(nodes, inits, n_in, n_out, name="g"):
    vi = lambda n, d: helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", d])
    g = helper.make_graph(nodes, name, [vi("x", n_in)], [vi("y", n_out)],
                          [numpy_helper.from_array(np.asarray(v, np.float32), k) for k, v in inits.items()])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def _trained_like(M=16, K=10, seed=0, soft=True):
    m = IPVAE(IPVAEConfig(inputs=M, latents=K, u_max=2.5, du_max=1.0, soft_clamp=soft, learn_sigma="pixel"), seed=seed)
    with torch.no_grad():
        m.Phi.mul_(4.0)
        m.s.copy_(torch.linspace(-0.3, 0.3, M))
        m.log_eta.fill_(math.log(0.6))
        m.b.copy_(torch.linspace(-4, -2, K))
    return m


@pytest.mark.parametrize("soft", [True, False])
def test_ipvae_rate_export_matches_torch(soft):
    m = _trained_like(soft=soft)
    x = np.random.default_rng(0).normal(size=(9, 16)).astype(np.float32)
    T = 25
    got = run_onnxruntime(ipvae_rate_model(m.export_arrays(), T), {"x": x})
    with torch.no_grad():
        u, z, _ = m.infer(torch.tensor(x), T, mode="rate")
        xhat = z @ m.Phi.T
    np.testing.assert_allclose(got["u"], u.numpy(), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(got["rates"], z.numpy(), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(got["xhat"], xhat.numpy(), atol=1e-5, rtol=1e-5)
    assert np.abs(got["u"] - m.export_arrays()["u0"]).max() > 0.1  # the iterations did something


def test_lca_export_matches_torch():
    rng = np.random.default_rng(1)
    Phi = rng.normal(size=(16, 24))
    Phi /= np.linalg.norm(Phi, axis=0)
    x = rng.normal(size=(7, 16)).astype(np.float32)
    got = run_onnxruntime(lca_model(Phi, 0.3, 40, 0.1), {"x": x})
    a = lca_infer(torch.tensor(x), torch.tensor(Phi, dtype=torch.float32), 0.3, 40, 0.1)
    np.testing.assert_allclose(got["codes"], a.numpy(), atol=1e-5)
    np.testing.assert_allclose(got["xhat"], (a @ torch.tensor(Phi, dtype=torch.float32).T).numpy(), atol=1e-5)
    assert (got["codes"] == 0).mean() > 0.2 and (got["codes"] > 0).any()


def test_dense_rate_network_round_trip(tmp_path):
    net = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 4), torch.nn.ReLU(),
                              torch.nn.Linear(4, 3), torch.nn.Sigmoid())
    torch.manual_seed(0)
    layers = [{"W": net[i].weight.detach().double().numpy(), "b": net[i].bias.detach().double().numpy(),
               "activation": a} for i, a in ((0, "Tanh"), (2, "Relu"), (4, "Sigmoid"))]
    path = save_model(rate_network_model(layers), tmp_path / "net.onnx")
    x = np.random.default_rng(2).normal(size=(6, 5)).astype(np.float32)
    want = net(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(run_onnxruntime(path, {"x": x})["y"], want, atol=1e-5)
    back = read_dense_layers(path)
    assert [L["activation"] for L in back] == ["Tanh", "Relu", "Sigmoid"]
    np.testing.assert_allclose(run_dense_layers(back, x.astype(float)), want, atol=1e-5)


def test_gemm_attributes_match_onnxruntime(tmp_path):
    rng = np.random.default_rng(3)
    W, c = rng.normal(size=(6, 4)), rng.normal(size=(6,))
    nodes = [helper.make_node("Gemm", ["x", "W", "c"], ["h"], name="g1", alpha=0.5, beta=2.0, transB=1),
             helper.make_node("Constant", [], ["k"], name="k", value=numpy_helper.from_array(np.full((6,), 0.1, np.float32))),
             helper.make_node("Add", ["h", "k"], ["h2"], name="add"),
             helper.make_node("Identity", ["h2"], ["y"], name="id")]
    m = _model(nodes, {"W": W, "c": c}, 4, 6)
    x = rng.normal(size=(3, 4)).astype(np.float32)
    ref = run_onnxruntime(m, {"x": x})["y"]
    np.testing.assert_allclose(Graph(m).run({"x": x})["y"], ref, atol=1e-5)
    path = save_model(m, tmp_path / "g.onnx")
    layers = read_dense_layers(path)
    np.testing.assert_allclose(run_dense_layers(layers, x.astype(float)), ref, atol=1e-5)


def test_linear_decoder_import(tmp_path):
    Phi = np.random.default_rng(4).normal(size=(9, 5))
    path = save_model(linear_decoder_model(Phi), tmp_path / "dec.onnx")
    np.testing.assert_allclose(read_linear_decoder(path), Phi, atol=1e-6)
    # the same matrix written as Gemm(transB) on a (K, M) weight
    m = _model([helper.make_node("Gemm", ["x", "W"], ["y"], name="dec", transB=1)], {"W": Phi}, 5, 9)
    np.testing.assert_allclose(read_linear_decoder(save_model(m, tmp_path / "gemm.onnx")), Phi, atol=1e-6)


def _write_spec(tmp_path, decoder_file, M=9, K=5):
    spec = tmp_path / "coder.yaml"
    spec.write_text(
        "neurodeploy: 1\nname: c\nsimulation: {dt: 1 ms, steps: 10}\n"
        f"stimuli:\n  - {{name: x, kind: array, encoding: value, data: {{inline: [{[0.0] * M}]}}}}\n"
        f"blocks:\n  - {{name: c, kind: ipvae, input: x, latent: {K}, decoder: {{file: {decoder_file}}}, iterations: 7}}\n")
    return spec


def test_onnx_decoder_feeds_ipvae_block(tmp_path, capsys):
    from neurodeploy.app import cli
    from neurodeploy.core.data import load_array
    from neurodeploy.ir.nodes import ArrayRef
    from neurodeploy.ir.serialize import _build
    from neurodeploy.spec import load

    Phi = np.random.default_rng(5).normal(size=(9, 5))
    save_model(linear_decoder_model(Phi), tmp_path / "dec.onnx")
    net = load(_write_spec(tmp_path, "dec.onnx"))
    ref = _build(ArrayRef, net.blocks[0].params["decoder"])
    assert ref.shape == (9, 5)
    np.testing.assert_allclose(load_array(ref, tmp_path), Phi, atol=1e-6)
    # and the block exports to ONNX (rate form) with the block's iteration count
    rc = cli.main(["export", str(tmp_path / "coder.yaml"), "-o", str(tmp_path / "rate.onnx")])
    assert rc == 0 and "7 iterations" in capsys.readouterr().out
    assert onnx.load(str(tmp_path / "rate.onnx")).graph.name == "ipvae_rate_T7"


def test_nonlinear_decoder_is_a_located_error(tmp_path, capsys):
    from neurodeploy.app import cli

    W = np.ones((9, 5))
    m = _model([helper.make_node("MatMul", ["x", "W"], ["h"], name="mm"),
                helper.make_node("Relu", ["h"], ["y"], name="act")], {"W": W.T}, 5, 9)
    save_model(m, tmp_path / "dec.onnx")
    rc = cli.main(["check", str(_write_spec(tmp_path, "dec.onnx"))])
    err = capsys.readouterr().err
    assert rc == 1 and "must be linear" in err and "'act'" in err and "coder.yaml:" in err and "decoder" in err


def test_unsupported_operator_names_op_node_and_file(tmp_path, capsys):
    from neurodeploy.app import cli

    vi = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
    g = helper.make_graph([helper.make_node("Softmax", ["x"], ["y"], name="probabilities")], "g",
                          [vi("x", ["batch", 4])], [vi("y", ["batch", 4])])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    save_model(m, tmp_path / "soft.onnx")
    rc = cli.main(["import", str(tmp_path / "soft.onnx"), "-o", str(tmp_path / "out.yaml")])
    err = capsys.readouterr().err
    assert rc == 1 and "Softmax" in err and "probabilities" in err and "soft.onnx" in err and "Traceback" not in err
    assert not (tmp_path / "out.yaml").exists()


def test_garbage_and_oversized_files_are_refused(tmp_path, capsys, monkeypatch):
    from neurodeploy.app import cli
    from neurodeploy.core.data import onnx as ndonnx_readers

    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x01garbage" * 10)
    rc = cli.main(["import", str(bad), "-o", str(tmp_path / "o.yaml")])
    err = capsys.readouterr().err
    assert rc == 1 and "bad.onnx" in err and "not a valid ONNX model" in err and "Traceback" not in err
    path = save_model(linear_decoder_model(np.ones((30, 30))), tmp_path / "big.onnx")
    monkeypatch.setattr(ndonnx_readers, "MAX_ARRAY_ELEMENTS", 100)
    with pytest.raises(OnnxImportError, match="900 elements"):
        load_model(path)


def test_cli_import_linear_graph_writes_spec_and_weights(tmp_path, capsys):
    from neurodeploy.app import cli

    Phi = np.random.default_rng(6).normal(size=(9, 5))
    save_model(linear_decoder_model(Phi), tmp_path / "dec.onnx")
    rc = cli.main(["import", str(tmp_path / "dec.onnx"), "-o", str(tmp_path / "dec.yaml")])
    assert rc == 0
    with np.load(tmp_path / "dec.npz", allow_pickle=False) as z:
        np.testing.assert_allclose(z["Phi"], Phi, atol=1e-6)
    assert "kind: ipvae" in (tmp_path / "dec.yaml").read_text()
