"""Reading users' ONNX files (untrusted): ``onnx.load`` without external data, ``onnx.checker``,
every tensor size bounded before it is materialised.

Supported operators: Gemm (alpha, beta, transA, transB), MatMul, Add, Relu, Sigmoid, Tanh,
Identity and Constant, plus initializers; anything else is an error naming the operator, the
node and the file. A graph is read as a linear **decoder** (:func:`read_linear_decoder`, for an
``ipvae`` block's ``decoder: {file: dec.onnx}``) or a chain of **dense layers**
(:func:`read_dense_layers`). Writing ONNX is :mod:`neurodeploy.interop.onnx`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..limits import MAX_ARRAY_ELEMENTS

SUPPORTED = ("Gemm", "MatMul", "Add", "Relu", "Sigmoid", "Tanh", "Identity", "Constant")
ACTIVATIONS = {"Relu": lambda v: np.maximum(v, 0.0), "Sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
               "Tanh": np.tanh, "Identity": lambda v: v}
MAX_FILE_BYTES = 256 * 1024 * 1024


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
