"""Reading users' ONNX files (untrusted): ``onnx.load`` without external data; every tensor's
type, payload and float64 size checked (MAX_INTERCHANGE_BYTES) before ``onnx.checker`` and before
it is materialised; NaN/inf refused; the evaluator bounds each node's output and the layer reader
each identity layer before building it (docs/interop.md, "Untrusted files").

Supported operators: Gemm (alpha, beta, transA, transB), MatMul, Add, Relu, Sigmoid, Tanh,
Identity and Constant, plus initializers; anything else is an error naming the operator, the
node and the file. A graph is read as a linear **decoder** (:func:`read_linear_decoder`, for an
``ipvae`` block's ``decoder: {file: dec.onnx}``) or a chain of **dense layers**
(:func:`read_dense_layers`). Writing ONNX is :mod:`neurodeploy.interop.onnx`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..limits import MAX_ARRAY_ELEMENTS, MAX_INTERCHANGE_BYTES

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

    def invalid(e):
        _fail("ND601", f"'{path.name}' is not a valid ONNX model: {str(e).splitlines()[0] if str(e) else type(e).__name__}",
              "export it with torch.onnx.export or onnx.helper and check it with onnx.checker")

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as e:  # onnx raises DecodeError, ...
        invalid(e)
    total = 0
    for t in model.graph.initializer:
        if t.data_location == 1:  # EXTERNAL
            _fail("ND601", f"'{path.name}': initializer '{t.name}' keeps its data in an external file",
                  "save the model with all tensors inside the .onnx file")
        total += _check_tensor(t, f"initializer '{t.name}'", path.name)
        _check_total(total, path.name, f"initializer '{t.name}'")
    for node in model.graph.node:
        for a in node.attribute:
            if a.type == 4:  # AttributeProto.TENSOR (a Constant's value)
                what = f"constant '{node.name or (node.output[0] if node.output else '(unnamed)')}'"
                total += _check_tensor(a.t, what, path.name)
                _check_total(total, path.name, what)
    try:  # after the sizes: the checker works on what the tensors declare
        onnx.checker.check_model(model)
    except Exception as e:  # ValidationError, ...
        invalid(e)
    for node in model.graph.node:
        if node.op_type not in SUPPORTED or node.domain not in ("", "ai.onnx"):
            _fail("ND601", f"'{path.name}': unsupported ONNX operator '{node.op_type}' in node "
                  f"'{node.name or '(unnamed)'}'", "supported operators: " + ", ".join(SUPPORTED))
    return model


#: ONNX TensorProto data types that may hold weights (real numbers) -> bytes per element
REAL_TYPES = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2}
#: bytes per element once read (the evaluator works in float64)
F64 = 8


def _elements(dims, what: str, file: str) -> int:
    n = 1
    for d in dims:
        if int(d) < 0:
            _fail("ND601", f"'{file}': {what} has a negative dimension {int(d)}")
        n *= int(d)  # Python ints: no wrap-around
    return n


def _check_tensor(t, what: str, file: str) -> int:
    """Check one tensor's declared size, type and stored payload before it is converted; returns
    the bytes it takes as float64."""
    n = _elements(t.dims, what, file)
    if n > MAX_ARRAY_ELEMENTS:
        _fail("ND206", f"'{file}': {what} has {n} elements; the limit is {MAX_ARRAY_ELEMENTS}")
    if n * F64 > MAX_INTERCHANGE_BYTES:
        _fail("ND206", f"'{file}': {what} declares {n} elements ({n * F64:.3g} bytes as float64); the limit is "
              f"{MAX_INTERCHANGE_BYTES} bytes")
    if t.data_type not in REAL_TYPES:
        _fail("ND601", f"'{file}': {what} has ONNX data type {t.data_type} (complex, string or another non-real "
              "type); weights must be real numbers", "store weights as float32 or float64")
    if t.raw_data:
        stored, need = len(t.raw_data), n * REAL_TYPES[t.data_type]
    else:
        stored = len(t.float_data) + len(t.int32_data) + len(t.int64_data) + len(t.double_data) + len(t.uint64_data)
        need = n
    if stored != need:
        _fail("ND601", f"'{file}': {what} declares shape {list(t.dims)} ({n} values) but stores "
              f"{stored} {'bytes' if t.raw_data else 'values'} (expected {need})",
              "the file is truncated or inconsistent; export it again")
    return n * F64


def _check_total(total: int, file: str, where: str) -> None:
    if total > MAX_INTERCHANGE_BYTES:
        _fail("ND206", f"'{file}': the tensors take more than {MAX_INTERCHANGE_BYTES} bytes as float64 (reached at "
              f"{where}); the limit is MAX_INTERCHANGE_BYTES = {MAX_INTERCHANGE_BYTES}")


def _finite(arr: np.ndarray, what: str, file: str) -> np.ndarray:
    if not np.all(np.isfinite(arr)):
        bad = np.flatnonzero(~np.isfinite(arr.reshape(-1)))
        _fail("ND205", f"'{file}': {what} has {bad.size} non-finite value(s) (NaN or inf; first at flat index "
              f"{int(bad[0])}: {arr.reshape(-1)[bad[0]]})", "fix the trained model or the exporter")
    return arr


def _matmul_shape(a: tuple, b: tuple) -> tuple:
    """numpy's matmul result shape (ValueError when the shapes do not fit), without computing it."""
    if not a or not b:
        raise ValueError(f"matmul of a scalar (shapes {a} and {b})")
    a2, b2 = (a if len(a) > 1 else (1,) + a), (b if len(b) > 1 else b + (1,))
    if a2[-1] != b2[-2]:
        raise ValueError(f"shapes {a} and {b} do not fit a matrix product")
    return tuple(np.broadcast_shapes(a2[:-2], b2[:-2])) + (a2[-2], b2[-1])


def _bytes_of(shape) -> int:
    n = F64
    for d in shape:
        n *= int(d)
    return n


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class Graph:
    """A numpy evaluator for the supported subset (float64)."""

    def __init__(self, model, name: str = "model.onnx"):
        from onnx import numpy_helper

        self.model, self.name = model, name
        g = model.graph
        self.consts = {t.name: _finite(numpy_helper.to_array(t).astype(np.float64), f"initializer '{t.name}'", name)
                       for t in g.initializer}
        self.inputs = [i for i in g.input if i.name not in self.consts]
        self.outputs = [o.name for o in g.output]
        for node in g.node:
            if node.op_type == "Constant":
                a = _attrs(node)
                if "value" not in a:
                    _fail("ND601", f"'{name}': Constant node '{node.name}' has no tensor 'value'")
                t = a["value"]
                _check_tensor(t, f"constant '{node.name}'", name)
                self.consts[node.output[0]] = _finite(numpy_helper.to_array(t).astype(np.float64),
                                                      f"constant '{node.name}'", name)

    def run(self, feeds: dict) -> dict:
        """Evaluate the graph on ``feeds``. Each node's output shape is worked out first and the
        bytes of all outputs are bounded (MAX_INTERCHANGE_BYTES) before anything is computed."""
        env = dict(self.consts)
        env.update({k: np.asarray(v, np.float64) for k, v in feeds.items()})
        used = 0
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
                    shape = _matmul_shape(A.shape, B.shape)
                    if len(ins) > 2:
                        shape = np.broadcast_shapes(shape, ins[2].shape)
                elif op == "MatMul":
                    shape = _matmul_shape(ins[0].shape, ins[1].shape)
                elif op == "Add":
                    shape = np.broadcast_shapes(ins[0].shape, ins[1].shape)
                else:
                    shape = ins[0].shape
                used += _bytes_of(shape)
                if used > MAX_INTERCHANGE_BYTES:
                    _fail("ND206", f"'{self.name}': evaluating node '{node.name}' ({op}, output {tuple(shape)}) would "
                          f"take more than {MAX_INTERCHANGE_BYTES} bytes; the limit is MAX_INTERCHANGE_BYTES")
                if op == "Gemm":
                    y = a.get("alpha", 1.0) * (A @ B)
                    if len(ins) > 2:
                        y = y + a.get("beta", 1.0) * ins[2]
                elif op == "MatMul":
                    y = ins[0] @ ins[1]
                elif op == "Add":
                    y = ins[0] + ins[1]
                else:
                    y = ACTIVATIONS[op](ins[0])
            except OnnxImportError:
                raise
            except (ValueError, IndexError) as e:
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
        if shape[-1] > MAX_ARRAY_ELEMENTS or shape[-1] * F64 > MAX_INTERCHANGE_BYTES:
            _fail("ND206", f"'{self.name}': input size {shape[-1]} is too large (at most "
                  f"{min(MAX_ARRAY_ELEMENTS, MAX_INTERCHANGE_BYTES // F64)})")
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
    if zero.shape[1] * K > MAX_ARRAY_ELEMENTS or zero.shape[1] * K * F64 > MAX_INTERCHANGE_BYTES:
        _fail("ND206", f"'{path.name}': decoder has {zero.shape[1] * K} elements; the limit is "
              f"{min(MAX_ARRAY_ELEMENTS, MAX_INTERCHANGE_BYTES // F64)}")
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
    """A chain of dense layers: [{'W': (out, in), 'b': (out,), 'activation': name}, ...].

    An activation that follows no Gemm/MatMul (or follows another activation) becomes a layer
    with an identity W of its input size n: its n x n float64 bytes, with every other layer's,
    are bounded (MAX_INTERCHANGE_BYTES) before the identity is made."""
    path = Path(path)
    g = Graph(load_model(path), path.name)
    inp, K, out = g.single_io()
    layers, cur = [], inp
    cur_layer = None
    built = 0

    def budget(nbytes: int, node, what: str) -> None:
        nonlocal built
        built += nbytes
        if built > MAX_INTERCHANGE_BYTES:
            _fail("ND206", f"'{path.name}': node '{node.name}' ({node.op_type}): {what} takes {nbytes:.3g} bytes; "
                  f"the layers would take more than MAX_INTERCHANGE_BYTES = {MAX_INTERCHANGE_BYTES} bytes",
                  "an activation before any Gemm/MatMul becomes an identity layer of input size x input size")

    def const(name: str, node, what: str) -> np.ndarray:
        c = g.consts.get(name)
        if c is None:
            _fail("ND601", f"'{path.name}': node '{node.name}' ({node.op_type}): the {what} must be an initializer "
                  "or a Constant")
        return c

    for node in g.model.graph.node:
        op, a = node.op_type, _attrs(node)
        if op == "Constant":
            continue
        if not node.input or node.input[0] != cur:
            _fail("ND601", f"'{path.name}': node '{node.name}' ({op}) does not continue a single chain of layers",
                  "only sequential dense networks can be imported as projections")
        try:
            if op in ("Gemm", "MatMul"):
                if a.get("transA", 0):
                    _fail("ND601", f"'{path.name}': Gemm node '{node.name}' with transA=1 cannot be a dense layer")
                if len(node.input) < 2:
                    _fail("ND601", f"'{path.name}': node '{node.name}' ({op}) has no weight input")
                W = const(node.input[1], node, "weight")
                if W.ndim != 2:
                    _fail("ND503", f"'{path.name}': node '{node.name}' ({op}): weight of shape {W.shape} is not a "
                          "matrix")
                budget(2 * W.size * F64 + W.shape[int(not a.get("transB", 0))] * F64, node, "the layer")
                W = W.T if a.get("transB", 0) else W  # now (in, out)
                W = a.get("alpha", 1.0) * W
                b = np.zeros(W.shape[1])
                if op == "Gemm" and len(node.input) > 2 and node.input[2]:
                    b = b + a.get("beta", 1.0) * np.broadcast_to(const(node.input[2], node, "bias"), (W.shape[1],))
                cur_layer = {"W": W.T.copy(), "b": b, "activation": "Identity"}
                layers.append(cur_layer)
            elif op == "Add":
                c = g.consts.get(node.input[1]) if len(node.input) > 1 else None
                if cur_layer is None or c is None:
                    _fail("ND601", f"'{path.name}': Add node '{node.name}' must add a constant bias after a layer")
                cur_layer["b"] = cur_layer["b"] + np.broadcast_to(c, cur_layer["b"].shape)
            elif op == "Identity":
                pass  # a renaming: nothing to add
            else:
                if cur_layer is None or cur_layer["activation"] != "Identity":
                    n = layers[-1]["W"].shape[0] if layers else K
                    budget((n * n + n) * F64, node, f"an identity layer of {n} x {n}")
                    cur_layer = {"W": np.eye(n), "b": np.zeros(n), "activation": op}
                    layers.append(cur_layer)
                else:
                    cur_layer["activation"] = op
        except ValueError as e:  # shapes that do not broadcast
            if isinstance(e, OnnxImportError):
                raise
            _fail("ND503", f"'{path.name}': node '{node.name}' ({op}): {e}")
        cur = node.output[0]
    if cur != out:
        _fail("ND601", f"'{path.name}': the chain of layers does not end at the graph output '{out}'")
    return layers


def run_dense_layers(layers, x):
    for L in layers:
        x = ACTIVATIONS[L["activation"]](x @ L["W"].T + L["b"])
    return x
