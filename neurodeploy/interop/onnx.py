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

from pathlib import Path

import numpy as np

from ..core.errors import Diagnostic, Span, SpecError, UsageError
from ..ir.nodes import MAX_ARRAY_ELEMENTS

SUPPORTED = ("Gemm", "MatMul", "Add", "Relu", "Sigmoid", "Tanh", "Identity", "Constant")
ACTIVATIONS = {"Relu": lambda v: np.maximum(v, 0.0), "Sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
               "Tanh": np.tanh, "Identity": lambda v: v}
MAX_FILE_BYTES = 256 * 1024 * 1024
OPSET = 17


class OnnxImportError(ValueError):
    """A problem with a user's ONNX file (code, message, hint), like ``data.DataError``."""

    def __init__(self, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


# --- reading ------------------------------------------------------------------------------

def _fail(code, msg, hint=None):
    raise OnnxImportError(code, msg, hint)


def load_model(path: str | Path):
    """Load and check an ONNX file; refuses external data and oversized tensors."""
    import onnx

    path = Path(path)
    if not path.is_file():
        _fail("ND600", f"ONNX file '{path}' not found", "paths are relative to the spec file's directory")
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        _fail("ND102", f"'{path.name}' is {size} bytes; the limit is {MAX_FILE_BYTES}")
    try:
        model = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(model)
    except Exception as e:  # onnx raises DecodeError, ValidationError, ...
        _fail("ND601", f"'{path.name}' is not a valid ONNX model: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
              "export it with torch.onnx.export or onnx.helper and check it with onnx.checker")
    for t in model.graph.initializer:
        if t.data_location == 1:  # EXTERNAL
            _fail("ND601", f"'{path.name}': initializer '{t.name}' keeps its data in an external file",
                  "save the model with all tensors inside the .onnx file")
        n = int(np.prod(list(t.dims), dtype=np.int64)) if len(t.dims) else 1
        if n > MAX_ARRAY_ELEMENTS:
            _fail("ND206", f"'{path.name}': initializer '{t.name}' has {n} elements; the limit is {MAX_ARRAY_ELEMENTS}")
    for node in model.graph.node:
        if node.op_type not in SUPPORTED or node.domain not in ("", "ai.onnx"):
            _fail("ND601", f"'{path.name}': unsupported ONNX operator '{node.op_type}' in node "
                  f"'{node.name or '(unnamed)'}'", "supported operators: " + ", ".join(SUPPORTED))
    return model


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class Graph:
    """A numpy evaluator for the supported subset (float64)."""

    def __init__(self, model, name: str = "model.onnx"):
        from onnx import numpy_helper

        self.model, self.name = model, name
        g = model.graph
        self.consts = {t.name: numpy_helper.to_array(t).astype(np.float64) for t in g.initializer}
        self.inputs = [i for i in g.input if i.name not in self.consts]
        self.outputs = [o.name for o in g.output]
        for node in g.node:
            if node.op_type == "Constant":
                a = _attrs(node)
                if "value" not in a:
                    _fail("ND601", f"'{name}': Constant node '{node.name}' has no tensor 'value'")
                t = a["value"]
                n = int(np.prod(list(t.dims), dtype=np.int64)) if len(t.dims) else 1
                if n > MAX_ARRAY_ELEMENTS:
                    _fail("ND206", f"'{name}': constant '{node.name}' has {n} elements; the limit is {MAX_ARRAY_ELEMENTS}")
                self.consts[node.output[0]] = numpy_helper.to_array(t).astype(np.float64)

    def run(self, feeds: dict) -> dict:
        env = dict(self.consts)
        env.update({k: np.asarray(v, np.float64) for k, v in feeds.items()})
        for node in self.model.graph.node:
            op, a = node.op_type, _attrs(node)
            if op == "Constant":
                continue
            try:
                ins = [env[n] for n in node.input if n]
            except KeyError as e:
                _fail("ND601", f"'{self.name}': node '{node.name}' reads undefined tensor {e}")
            try:
                if op == "Gemm":
                    A, B = ins[0], ins[1]
                    A = A.T if a.get("transA", 0) else A
                    B = B.T if a.get("transB", 0) else B
                    y = a.get("alpha", 1.0) * (A @ B)
                    if len(ins) > 2:
                        y = y + a.get("beta", 1.0) * ins[2]
                elif op == "MatMul":
                    y = ins[0] @ ins[1]
                elif op == "Add":
                    y = ins[0] + ins[1]
                else:
                    y = ACTIVATIONS[op](ins[0])
            except ValueError as e:
                _fail("ND503", f"'{self.name}': node '{node.name}' ({op}): {e}")
            env[node.output[0]] = y
        return {o: env[o] for o in self.outputs}

    def single_io(self) -> tuple[str, int, str]:
        if len(self.inputs) != 1 or len(self.outputs) != 1:
            _fail("ND503", f"'{self.name}' has {len(self.inputs)} inputs and {len(self.outputs)} outputs; expected one each")
        shape = [d.dim_value if d.HasField("dim_value") else None
                 for d in self.inputs[0].type.tensor_type.shape.dim]
        if not shape or shape[-1] is None:
            _fail("ND503", f"'{self.name}': the input's last dimension (features) must be fixed")
        if shape[-1] > MAX_ARRAY_ELEMENTS:
            _fail("ND206", f"'{self.name}': input size {shape[-1]} is too large")
        return self.inputs[0].name, int(shape[-1]), self.outputs[0]


def read_linear_decoder(path: str | Path) -> np.ndarray:
    """Phi (M, K) of a linear, bias-free ONNX graph z (K) -> x (M)."""
    path = Path(path)
    g = Graph(load_model(path), path.name)
    for node in g.model.graph.node:
        if node.op_type in ("Relu", "Sigmoid", "Tanh"):
            _fail("ND601", f"'{path.name}': the ipvae decoder must be linear, but node '{node.name}' is {node.op_type}",
                  "use a graph of Gemm / MatMul / Add / Identity only")
    inp, K, out = g.single_io()
    zero = g.run({inp: np.zeros((1, K))})[out]
    if zero.ndim != 2 or zero.shape[0] != 1:
        _fail("ND503", f"'{path.name}': output has shape {zero.shape}; expected (batch, pixels)")
    if np.max(np.abs(zero)) > 1e-9:
        _fail("ND601", f"'{path.name}': the decoder has a bias (output {np.max(np.abs(zero)):.3g} for z = 0)",
              "the ipvae decoder is x = Phi z; drop the bias (Gemm without C)")
    if zero.shape[1] * K > MAX_ARRAY_ELEMENTS:
        _fail("ND206", f"'{path.name}': decoder has {zero.shape[1] * K} elements; the limit is {MAX_ARRAY_ELEMENTS}")
    # evaluate on the unit vectors a block at a time (never a K x K identity in memory at once)
    Phi = np.empty((zero.shape[1], K))
    step = max(1, 1_000_000 // max(K, 1))
    for i in range(0, K, step):
        n = min(step, K - i)
        basis = np.zeros((n, K))
        basis[np.arange(n), i + np.arange(n)] = 1.0
        Phi[:, i:i + n] = g.run({inp: basis})[out].T
    return Phi


def read_dense_layers(path: str | Path) -> list[dict]:
    """A chain of dense layers: [{'W': (out, in), 'b': (out,), 'activation': name}, ...]."""
    path = Path(path)
    g = Graph(load_model(path), path.name)
    inp, K, out = g.single_io()
    layers, cur = [], inp
    cur_layer = None
    for node in g.model.graph.node:
        op, a = node.op_type, _attrs(node)
        if op == "Constant":
            continue
        if node.input[0] != cur:
            _fail("ND601", f"'{path.name}': node '{node.name}' ({op}) does not continue a single chain of layers",
                  "only sequential dense networks can be imported as projections")
        if op in ("Gemm", "MatMul"):
            if a.get("transA", 0):
                _fail("ND601", f"'{path.name}': Gemm node '{node.name}' with transA=1 cannot be a dense layer")
            W = g.consts.get(node.input[1])
            if W is None:
                _fail("ND601", f"'{path.name}': node '{node.name}': the weight must be an initializer")
            W = W.T if a.get("transB", 0) else W  # now (in, out)
            W = a.get("alpha", 1.0) * W
            b = np.zeros(W.shape[1])
            if op == "Gemm" and len(node.input) > 2 and node.input[2]:
                b = b + a.get("beta", 1.0) * np.broadcast_to(g.consts[node.input[2]], (W.shape[1],))
            cur_layer = {"W": W.T.copy(), "b": b, "activation": "Identity"}
            layers.append(cur_layer)
        elif op == "Add":
            c = g.consts.get(node.input[1])
            if cur_layer is None or c is None:
                _fail("ND601", f"'{path.name}': Add node '{node.name}' must add a constant bias after a layer")
            cur_layer["b"] = cur_layer["b"] + np.broadcast_to(c, cur_layer["b"].shape)
        elif op == "Identity":
            pass  # a renaming: nothing to add
        else:
            if cur_layer is None or cur_layer["activation"] != "Identity":
                cur_layer = {"W": np.eye(layers[-1]["W"].shape[0] if layers else K), "b": None, "activation": op}
                cur_layer["b"] = np.zeros(cur_layer["W"].shape[0])
                layers.append(cur_layer)
            else:
                cur_layer["activation"] = op
        cur = node.output[0]
    if cur != out:
        _fail("ND601", f"'{path.name}': the chain of layers does not end at the graph output '{out}'")
    return layers


def run_dense_layers(layers, x):
    for L in layers:
        x = ACTIVATIONS[L["activation"]](x @ L["W"].T + L["b"])
    return x


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
    from ..core.io import atomic_write_bytes

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

def add_import_arguments(sp) -> None:
    sp.add_argument("--onnx-as", choices=("auto", "decoder", "dense"), default="auto",
                    help="ONNX: read the graph as a linear ipvae decoder or as dense layers (default: auto)")


def add_export_arguments(sp) -> None:
    sp.add_argument("--onnx-iterations", type=int, metavar="T", default=None,
                    help="ONNX: iterations to unroll (default: the ipvae block's 'iterations')")


def _spec_error(e: OnnxImportError, file: str) -> SpecError:
    return SpecError([Diagnostic(e.code, e.message, Span(str(file)), hint=e.hint)])


def run_import(args) -> int:
    """``neurodeploy import net.onnx -o out.yaml``: a linear graph becomes ``out.npz`` (key Phi)
    plus a spec snippet with an ipvae block using it; a dense chain becomes ``out.npz`` with
    W0, b0, W1, ... and the layer list printed (rate networks have no spec form yet)."""
    import yaml

    from ..core.io import atomic_write_bytes, atomic_write_text

    src, out = Path(args.file), Path(args.out)
    try:
        as_ = getattr(args, "onnx_as", "auto")
        layers = read_dense_layers(src) if as_ != "decoder" else None
        linear = layers is not None and all(L["activation"] == "Identity" and not np.any(L["b"]) for L in layers)
        if as_ == "decoder" or (as_ == "auto" and linear):
            Phi = read_linear_decoder(src)
            import io

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
            print(f"wrote {out} and {npz} (linear decoder, {M} x {K})")
            return 0
    except OnnxImportError as e:
        raise _spec_error(e, src) from None
    import io

    buf = io.BytesIO()
    np.savez(buf, **{f"{k}{i}": L[k] for i, L in enumerate(layers) for k in ("W", "b")})
    npz = out.with_suffix(".npz")
    atomic_write_bytes(npz, buf.getvalue())
    desc = [{"layer": i, "in": int(L["W"].shape[1]), "out": int(L["W"].shape[0]), "activation": L["activation"],
             "weights": f"{npz.name}:W{i}", "bias": f"{npz.name}:b{i}"} for i, L in enumerate(layers)]
    atomic_write_text(out, "# dense rate network imported from " + src.name
                      + "\n# (rate networks have no population form in the spec yet; weights in the .npz)\n"
                      + yaml.safe_dump({"dense_layers": desc}, sort_keys=False))
    print(f"wrote {out} and {npz} ({len(layers)} dense layers)")
    return 0


def run_export(args) -> int:
    """``neurodeploy export SPEC -o model.onnx``: SPEC's ipvae block (rate form, unrolled)."""
    from ..app.commands.train import block_arrays
    from ..spec import load

    net = load(args.spec)
    blocks = [b for b in net.blocks if b.kind == "ipvae"]
    if not blocks:
        raise UsageError(f"{args.spec}: ONNX export needs an 'ipvae' block (dense rate networks are exported "
                         "from Python with rate_network_model)")
    arrays, T = block_arrays(blocks[0], Path(args.spec).parent)
    T = args.onnx_iterations or T
    if T < 1 or T > 10_000:
        raise UsageError(f"--onnx-iterations {T}: expected 1..10000")
    save_model(ipvae_rate_model(arrays, T), args.out)
    print(f"wrote {args.out} (iP-VAE rate form, {T} iterations, block '{blocks[0].name}')")
    return 0
