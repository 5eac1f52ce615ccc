"""ONNX import and export.

Import (untrusted files): ``onnx.load`` without external data, ``onnx.checker``, every tensor
size bounded before it is materialised. Supported operators: Gemm (alpha, beta, transA, transB),
MatMul, Add, Relu, Sigmoid, Tanh, Identity and Constant, plus initializers. Anything else is an
error naming the operator, the node and the file. A graph is used as

* a **decoder** for the ``ipvae`` block (``decoder: {file: dec.onnx}``): it must be linear and
  bias-free, z (K) -> x (M); the dictionary Phi (M, K) is read off by evaluating it on the unit
  vectors;
* a chain of **dense layers** (``read_dense_layers``): W, b, activation per layer.

Export (``onnx.helper``, opset 17): a dense rate network, and the rate (expectation) form of a
trained iP-VAE or of LCA inference unrolled over T iterations. Checked against torch with
onnxruntime in ``tests/interop/test_onnx.py``.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import yaml

from ..core.data.onnx import OnnxImportError, read_dense_layers, read_linear_decoder
from ..core.errors import Diagnostic, Span, SpecError, UsageError
from ..core.io import atomic_write_bytes, atomic_write_text
from ..ir.nodes import Network
from ..library.blocks.coder import find_coder, has_coder
from ..spec import load

OPSET = 17


# --- writing --------------------------------------------------------------------------------

class _Builder:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, name, arr):
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name))
        return name

    def op(self, op_type, inputs, **attrs):
        import onnx

        self.n += 1
        out = f"{op_type.lower()}_{self.n}"
        self.nodes.append(onnx.helper.make_node(op_type, list(inputs), [out], name=f"n{self.n}_{op_type}", **attrs))
        return out

    def finish(self, name, inputs, outputs, renames):
        import onnx
        from onnx import TensorProto, helper

        for src, dst in renames.items():
            self.nodes.append(helper.make_node("Identity", [src], [dst], name=f"out_{dst}"))
        vi = lambda n, d: helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", d])
        graph = helper.make_graph(self.nodes, name, [vi(n, d) for n, d in inputs],
                                  [vi(n, d) for n, d in outputs], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                                  producer_name="neurodeploy")
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def rate_network_model(layers) -> "onnx.ModelProto":
    """Dense rate network x -> act(W x + b) -> ... as Gemm (+ activation) nodes."""
    b = _Builder()
    cur = "x"
    for i, L in enumerate(layers):
        W = b.const(f"W{i}", L["W"])
        bias = b.const(f"b{i}", L["b"])
        cur = b.op("Gemm", [cur, W, bias], transB=1)
        if L["activation"] != "Identity":
            cur = b.op(L["activation"], [cur])
    n_in, n_out = layers[0]["W"].shape[1], layers[-1]["W"].shape[0]
    return b.finish("dense_rate_network", [("x", n_in)], [("y", n_out)], {cur: "y"})


def ipvae_rate_model(arrays: dict, T: int) -> "onnx.ModelProto":
    """The expectation form of iP-VAE inference (z = exp(u)) unrolled over T iterations.

    Inputs: x (batch, M). Outputs: xhat = Phi exp(u_T) (batch, M), rates exp(u_T) (batch, K),
    u (batch, K)."""
    Phi = np.asarray(arrays["Phi"], np.float64)
    M, K = Phi.shape
    sigma = np.broadcast_to(np.asarray(arrays["sigma"], np.float64), (M,))
    eta = float(arrays["eta"])
    u_min, u_max, du_max = float(arrays["u_min"]), float(arrays["u_max"]), float(arrays["du_max"])
    soft = bool(arrays["soft_clamp"])
    b = _Builder()
    PhiT = b.const("PhiT", Phi.T)
    Phi_c = b.const("Phi", Phi)
    inv_s2 = b.const("inv_sigma2", 1.0 / sigma ** 2)
    eta_c = b.const("eta", np.array(eta))
    expb = b.const("exp_b", np.exp(np.asarray(arrays["b"], np.float64)))
    umin = b.const("u_min", np.array(u_min))
    cu, cdu = b.const("u_max", np.array(u_max)), b.const("du_max", np.array(du_max))

    def cap(y, c):
        if soft:
            return b.op("Sub", [c, b.op("Softplus", [b.op("Sub", [c, y])])])
        return b.op("Min", [y, c])

    # u0 broadcast over the batch: x @ 0 + u0
    u = b.op("Add", [b.op("MatMul", ["x", b.const("zero_MK", np.zeros((M, K)))]),
                     b.const("u0", np.asarray(arrays["u0"], np.float64)[None, :])])
    z = b.op("Exp", [u])
    for _ in range(T):
        err = b.op("Mul", [b.op("Sub", ["x", b.op("MatMul", [z, PhiT])]), inv_s2])
        du = b.op("Mul", [eta_c, b.op("Sub", [b.op("MatMul", [err, Phi_c]), expb])])
        du = cap(b.op("Max", [du, umin]), cdu)
        u = cap(b.op("Max", [b.op("Add", [u, du]), umin]), cu)
        z = b.op("Exp", [u])
    xhat = b.op("MatMul", [z, PhiT])
    return b.finish(f"ipvae_rate_T{T}", [("x", M)], [("xhat", M), ("rates", K), ("u", K)],
                    {xhat: "xhat", z: "rates", u: "u"})


def lca_model(Phi, lam: float, T: int, dt_tau: float) -> "onnx.ModelProto":
    """LCA inference (non-negative soft threshold) unrolled over T Euler steps; v starts at 0.
    Outputs the codes a (batch, K) and xhat = Phi a."""
    Phi = np.asarray(Phi, np.float64)
    M, K = Phi.shape
    b = _Builder()
    G = b.const("G", Phi.T @ Phi - np.eye(K))
    drive = b.op("MatMul", ["x", b.const("Phi", Phi)])
    k = b.const("dt_tau", np.array(dt_tau))
    lam_c = b.const("lambda", np.array(lam))
    v = b.op("Mul", [drive, b.const("zero", np.array(0.0))])
    a = v
    for _ in range(T):
        v = b.op("Add", [v, b.op("Mul", [k, b.op("Sub", [b.op("Sub", [drive, v]), b.op("MatMul", [a, G])])])])
        a = b.op("Relu", [b.op("Sub", [v, lam_c])])
    xhat = b.op("MatMul", [a, b.const("PhiT", Phi.T)])
    return b.finish(f"lca_T{T}", [("x", M)], [("codes", K), ("xhat", M)], {a: "codes", xhat: "xhat"})


def save_model(model, path: str | Path) -> Path:
    return atomic_write_bytes(path, model.SerializeToString())


def run_onnxruntime(model_or_path, feeds: dict) -> dict:
    import onnxruntime as ort

    src = model_or_path.SerializeToString() if hasattr(model_or_path, "SerializeToString") else str(model_or_path)
    sess = ort.InferenceSession(src, providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    res = sess.run(names, {k: np.asarray(v, np.float32) for k, v in feeds.items()})
    return dict(zip(names, res))


def linear_decoder_model(Phi) -> "onnx.ModelProto":
    """x = Phi z as one MatMul (what ``neurodeploy train`` writes as decoder.onnx)."""
    Phi = np.asarray(Phi, np.float64)
    b = _Builder()
    out = b.op("MatMul", ["z", b.const("PhiT", Phi.T)])
    return b.finish("ipvae_decoder", [("z", Phi.shape[1])], [("x", Phi.shape[0])], {out: "x"})


# --- CLI ------------------------------------------------------------------------------------


def _spec_error(e: OnnxImportError, file: str) -> SpecError:
    return SpecError([Diagnostic(e.code, e.message, Span(str(file)), hint=e.hint)])


def import_onnx(path, out, as_: str = "auto") -> dict:
    """Convert ONNX file ``path`` for neurodeploy, written next to ``out`` (a spec path): a linear
    graph (``as_="decoder"``, or ``auto`` when linear and bias-free) becomes ``out.npz`` (key Phi)
    and a spec snippet with an ipvae block using it; a dense chain (``as_="dense"``) becomes
    ``out.npz`` with W0, b0, W1, ... and the layer list (rate networks have no spec form yet).
    Returns what was written: ``{"kind", "spec", "weights", ...}``."""
    src, out = Path(path), Path(out)
    if as_ not in ("auto", "decoder", "dense"):
        raise UsageError(f"ONNX import as {as_!r}: expected auto, decoder or dense")
    try:
        layers = read_dense_layers(src) if as_ != "decoder" else None
        linear = layers is not None and all(L["activation"] == "Identity" and not np.any(L["b"]) for L in layers)
        if as_ == "decoder" or (as_ == "auto" and linear):
            Phi = read_linear_decoder(src)
            buf = io.BytesIO()
            np.savez(buf, Phi=Phi)
            npz = out.with_suffix(".npz")
            atomic_write_bytes(npz, buf.getvalue())
            M, K = Phi.shape
            block = {"name": "coder", "kind": "ipvae", "input": "image", "latent": int(K),
                     "decoder": {"file": npz.name, "key": "Phi"}}
            text = ("# generated by neurodeploy import from " + src.name + "\n"
                    f"# decoder Phi: {M} pixels x {K} latents; add a stimulus named 'image' of size {M}\n"
                    + yaml.safe_dump({"blocks": [block]}, sort_keys=False))
            atomic_write_text(out, text)
            return {"kind": "decoder", "spec": str(out), "weights": str(npz), "shape": [int(M), int(K)]}
    except OnnxImportError as e:
        raise _spec_error(e, src) from None
    buf = io.BytesIO()
    np.savez(buf, **{f"{k}{i}": L[k] for i, L in enumerate(layers) for k in ("W", "b")})
    npz = out.with_suffix(".npz")
    atomic_write_bytes(npz, buf.getvalue())
    desc = [{"layer": i, "in": int(L["W"].shape[1]), "out": int(L["W"].shape[0]), "activation": L["activation"],
             "weights": f"{npz.name}:W{i}", "bias": f"{npz.name}:b{i}"} for i, L in enumerate(layers)]
    atomic_write_text(out, "# dense rate network imported from " + src.name
                      + "\n# (rate networks have no population form in the spec yet; weights in the .npz)\n"
                      + yaml.safe_dump({"dense_layers": desc}, sort_keys=False))
    return {"kind": "dense", "spec": str(out), "weights": str(npz), "layers": desc}


def export_onnx(spec, out, iterations: int | None = None) -> dict:
    """Write the spec's ipvae block (rate form, unrolled over ``iterations``, default the block's)
    as ONNX at ``out``; returns ``{"file", "block", "iterations"}``."""
    net = spec if isinstance(spec, Network) else load(spec)
    if not has_coder(net, "ipvae"):
        raise UsageError(f"{spec}: ONNX export needs an 'ipvae' block (dense rate networks are exported "
                         "from Python with rate_network_model)")
    coder = find_coder(net, "ipvae")
    T = int(iterations or coder.params["iterations"])
    if T < 1 or T > 10_000:
        raise UsageError(f"--onnx-iterations {T}: expected 1..10000")
    save_model(ipvae_rate_model(coder.arrays, T), out)
    return {"file": str(out), "block": coder.name, "iterations": T}
