"""NIR import and export (the Neuromorphic Intermediate Representation, ``nir`` package).

Import: the HDF5 file walked and bounded first (:mod:`neurodeploy.core.data.hdf5`: no links, no
external or virtual storage, standard filters, sizes in bytes; docs/interop.md, "Untrusted
files"), then ``nir.read`` (with NIR's own type check) -> every node's numbers checked (real,
finite, time constants > 0) -> a flat graph (nested graphs inlined, names
joined with ``.``) -> every chain of linear nodes (Linear, Affine, Scale, Flatten, Delay,
Conv1d/Conv2d, SumPool2d/AvgPool2d, inner Input/Output) between two spiking nodes multiplied
out into one projection -> a spec (YAML + an ``.npz`` with the arrays beside it) that is then
loaded with :func:`neurodeploy.spec.load`, so our validators run on it.

Units (NIR stores none; docs/interop.md explains the choices):

* NIR voltages, currents and resistances are taken as volt, amp and ohm (1:1);
* times (``tau*``, ``delay``) are in seconds, milliseconds or steps: ``time_unit`` ``s`` | ``ms``
  | ``step`` | ``auto`` (a heuristic: no time constants -> ``step`` (a discrete-time export such
  as sinabs'); every time constant < 1 -> ``s``; else ``ms``). A graph written by neurodeploy
  states its unit in ``metadata["neurodeploy"]``;
* NIR's input to a neuron is a current. Exporters (Norse, snnTorch) discretise it with forward
  Euler and a spike as a pulse of height 1 lasting one step, so a spike of weight ``w`` raises an
  LIF's ``v`` by ``r w dt / tau`` and a CubaLIF's ``I`` by ``w_in w dt / tau_syn`` (the
  Norse trace in the NIR paper shows exactly this). neurodeploy's synapses are jumps, so the
  importer folds ``r dt / tau`` (``lif``, ``li``), ``w_in dt / tau_syn`` (``cuba_lif``, ``cuba_li``)
  or ``r dt / t_unit`` (``if``) into the weights; ``dt`` is therefore part of the import (``dt=``,
  default 0.1 ms).

Neuron nodes: LIF -> ``lif``, CubaLIF -> ``cuba_lif``, IF -> ``if``, LI -> ``li``, CubaLI ->
``cuba_li`` (the last two never spike: read-outs only). I and Threshold are "not supported yet".
Export is the inverse, with a report of what NIR cannot carry (docs/interop.md).
"""

from __future__ import annotations

import io
import json
import math
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..core.data.hdf5 import check_hdf5
from ..core.errors import Diagnostic, NotImplementedYet, Span, SpecError, UsageError
from ..core.io import atomic_write_bytes, atomic_write_text
from ..core.limits import MAX_GRAPH_NESTING, MAX_STEPS
from ..ir import CurrentStimulus, SpikeTimesStimulus
from ..ir.nodes import MAX_POPULATION_SIZE, SCHEDULES
from ..library import materialize as mat
from ..library.neurons import get_neuron
from ..library.neurons.graded import graded_parts
from ..lowering.loihi import constant_currents
from ..spec import load, verify

#: neurodeploy's namespace in NIR metadata
NS = "neurodeploy"
DEFAULT_DT = 1e-4
DEFAULT_STEPS = 1000
#: bound on a projection that import writes as a dense matrix / export writes as a NIR Linear
MAX_DENSE = 50_000_000
#: bound on the total number of synapses the importer materialises
MAX_SYNAPSES = 50_000_000
#: input spikes written inline into a spec (specs are bounded to 8 MiB)
MAX_INPUT_SPIKES = 200_000
NEURON_NODES = ("LIF", "CubaLIF", "IF", "LI", "CubaLI")
GRADED_NODES = ("LI", "CubaLI")  # no threshold: their potential is the output
UNSUPPORTED_NEURONS = ("I", "Threshold")
LINEAR_NODES = ("Linear", "Affine", "Scale", "Flatten", "Delay", "Conv1d", "Conv2d", "SumPool2d", "AvgPool2d")
TIME_UNITS = {"s": 1.0, "ms": 1e-3}


def _nir():
    import nir

    return nir


# --------------------------------------------------------------------------------------------
# errors


def _spec_error(path, message: str, hint: str | None = None, where: str = "") -> SpecError:
    return SpecError([Diagnostic("ND200" if not where else "ND503", message, Span(str(path)), where, hint)])


def _sanitize(name: str, taken: set[str]) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", str(name))
    if not s or not (s[0].isalpha() or s[0] == "_"):
        s = "n_" + s
    base, k = s, 2
    while s in taken:
        s, k = f"{base}_{k}", k + 1
    taken.add(s)
    return s


# --------------------------------------------------------------------------------------------
# reading and flattening


def read_graph(path, repair: bool = False):
    """``nir.read`` with NIR's type check; a failed check is a SpecError (or, with ``repair``,
    a warning: the graph is read unchecked and the importer checks element counts itself)."""
    nir = _nir()
    path = Path(path)
    notes: list[dict] = []
    if not path.is_file():
        raise SpecError([Diagnostic("ND100", "file not found", Span(str(path)))])
    _check_sizes(path)
    try:
        return nir.read(str(path)), notes
    except ValueError as e:
        msg = str(e)
        if "type" not in msg.lower():
            raise _spec_error(path, f"not a readable NIR graph: {msg}") from None
        if not repair:
            raise _spec_error(
                path, f"the graph fails NIR's own type check: {msg}",
                "the file is inconsistent as written; `--repair` reads it without the check and "
                "accepts shapes that differ only by size-1 axes (same number of elements)") from None
        notes.append({"kind": "repaired", "what": "type check", "detail": msg})
    except Exception as e:  # h5py / KeyError on a damaged or foreign file
        raise _spec_error(path, f"not a readable NIR graph: {type(e).__name__}: {e}") from None
    try:
        return nir.read(str(path), type_check=False), notes
    except Exception as e:
        raise _spec_error(path, f"not a readable NIR graph: {type(e).__name__}: {e}") from None


#: bound on the elements of all datasets of a NIR file, checked before ``nir.read`` loads them
MAX_FILE_ELEMENTS = 200_000_000
#: groups nested below the root of a NIR file: /node, then two per nested graph (nodes/<name>), metadata
MAX_GROUP_DEPTH = 2 * MAX_GRAPH_NESTING + 4


def _check_sizes(path) -> None:
    """Walk the file's headers (:func:`neurodeploy.core.data.hdf5.check_hdf5`: no links, no
    external or virtual storage, standard filters only, bytes bounded) and refuse files whose
    datasets hold more than MAX_FILE_ELEMENTS elements, before anything is loaded."""
    summary = check_hdf5(path, max_depth=MAX_GROUP_DEPTH, what="NIR graph", numeric=NUMERIC_FIELDS)
    if summary.elements > MAX_FILE_ELEMENTS:
        raise SpecError([Diagnostic("ND102", f"the file's arrays hold {summary.elements:.3g} elements, more than "
                                    f"{MAX_FILE_ELEMENTS:.0e}", Span(str(path)))])


@dataclass
class _Flat:
    nodes: dict[str, Any] = field(default_factory=dict)  # flat name -> NIR node
    succ: dict[str, list[str]] = field(default_factory=dict)
    boundary_in: list[str] = field(default_factory=list)  # top-level Input names
    boundary_out: list[str] = field(default_factory=list)  # top-level Output names


def _flatten(graph, path) -> _Flat:
    nir = _nir()
    flat = _Flat()

    def ports(prefix: str, name: str, g, into: bool) -> list[str]:
        """Flat names that an edge *into* (``into``) or *out of* node ``name`` of graph ``g``
        reaches: the node itself, or a subgraph's Input (Output) nodes."""
        node = g.nodes[name]
        if isinstance(node, nir.NIRGraph):
            kind = nir.Input if into else nir.Output
            found = [k for k, n in node.nodes.items() if isinstance(n, kind)]
            if not found:
                raise _spec_error(path, f"subgraph '{prefix}{name}' has no {kind.__name__} node")
            return [f"{prefix}{name}.{k}" for k in found]
        return [prefix + name]

    def resolve(prefix: str, name: str, g, into: bool) -> list[str]:
        if name in g.nodes:
            return ports(prefix, name, g, into)
        # NIR allows edges that name a port of a subgraph: "sub.input" / "sub.lif"
        head, _, rest = name.partition(".")
        if rest and head in g.nodes and isinstance(g.nodes[head], nir.NIRGraph):
            return resolve(f"{prefix}{head}.", rest, g.nodes[head], into)
        raise _spec_error(path, f"edge names an unknown node '{prefix}{name}'",
                          f"nodes here: {', '.join(sorted(g.nodes)) or '(none)'}")

    def walk(prefix: str, g, depth: int) -> None:
        if depth > MAX_GRAPH_NESTING:
            raise SpecError([Diagnostic("ND206", f"graphs nested more than {MAX_GRAPH_NESTING} levels deep",
                                        Span(str(path)), prefix.rstrip("."))])
        for name, node in g.nodes.items():
            if isinstance(node, nir.NIRGraph):
                walk(f"{prefix}{name}.", node, depth + 1)
            else:
                flat.nodes[prefix + name] = node
                flat.succ.setdefault(prefix + name, [])
        for src, dst in g.edges:
            for a in resolve(prefix, str(src), g, into=False):
                for b in resolve(prefix, str(dst), g, into=True):
                    flat.succ[a].append(b)

    walk("", graph, 0)
    for name, node in graph.nodes.items():
        if isinstance(node, nir.Input):
            flat.boundary_in.append(name)
        elif isinstance(node, nir.Output):
            flat.boundary_out.append(name)
    return flat


def _shape_in(node) -> tuple[int, ...]:
    t = getattr(node, "input_type", None) or {}
    v = t.get("input", None)
    return tuple(int(x) for x in np.atleast_1d(v)) if v is not None else ()


def _shape_out(node) -> tuple[int, ...]:
    t = getattr(node, "output_type", None) or {}
    v = t.get("output", None)
    return tuple(int(x) for x in np.atleast_1d(v)) if v is not None else ()


def _neuron_size(node) -> int:
    shapes = [np.shape(getattr(node, f)) for f in ("tau", "tau_mem", "r", "v_threshold") if hasattr(node, f)]
    return int(np.prod(shapes[0])) if shapes and shapes[0] else int(np.prod(_shape_in(node) or (1,)))


# --------------------------------------------------------------------------------------------
# linear nodes as sparse matrices


def _conv_matrix(node, in_shape: tuple[int, ...], nd: int, path, name: str):
    """Convolution (cross-correlation, as torch) as a sparse (out, in) matrix; returns (M, out_shape, bias)."""
    W = np.asarray(node.weight, dtype=float)
    c_out, c_in_g = W.shape[0], W.shape[1]
    ksz = W.shape[2:]
    g = np.asarray(getattr(node, "groups", 1) if getattr(node, "groups", None) is not None else 1).reshape(-1)
    if g.size != 1 or not g[0] >= 1:
        raise _spec_error(path, f"node '{name}': groups {g.tolist()} is not one positive integer")
    groups = int(g[0])
    stride = np.broadcast_to(np.asarray(node.stride, dtype=int), (nd,))
    dil = np.broadcast_to(np.asarray(node.dilation, dtype=int), (nd,))
    pad = node.padding
    if isinstance(pad, str):
        if pad == "valid":
            pad = np.zeros(nd, int)
        elif pad == "same":
            pad = np.array([(dil[d] * (ksz[d] - 1)) // 2 for d in range(nd)])
        else:
            raise _spec_error(path, f"node '{name}': padding {pad!r} is not 'same', 'valid' or a number")
    pad = np.broadcast_to(np.asarray(pad, dtype=int), (nd,))
    if len(in_shape) != nd + 1:
        raise _spec_error(path, f"node '{name}' ({type(node).__name__}): input shape {in_shape} is not (channels, {nd} spatial)")
    c_in, spatial = in_shape[0], in_shape[1:]
    if c_in != c_in_g * groups:
        raise _spec_error(path, f"node '{name}': {c_in} input channels do not match weight {W.shape} with groups={groups}")
    out_sp = tuple((spatial[d] + 2 * pad[d] - dil[d] * (ksz[d] - 1) - 1) // stride[d] + 1 for d in range(nd))
    if min(out_sp) <= 0:
        raise _spec_error(path, f"node '{name}': the convolution leaves no output ({out_sp})")
    n_syn = int(np.prod(out_sp)) * c_out * c_in_g * int(np.prod(ksz))
    if n_syn > MAX_SYNAPSES:
        raise _spec_error(path, f"node '{name}': {n_syn:.3g} synapses, more than {MAX_SYNAPSES:.0e}")
    out_grid = np.stack(np.meshgrid(*[np.arange(s) for s in out_sp], indexing="ij"), -1).reshape(-1, nd)
    rows, cols, vals = [], [], []
    per_g = c_out // groups
    for co in range(c_out):
        g = co // per_g
        for ci_local in range(c_in_g):
            ci = g * c_in_g + ci_local
            for kidx in np.ndindex(*ksz):
                w = W[(co, ci_local) + kidx]
                if w == 0:
                    continue
                pos = out_grid * stride - pad + np.asarray(kidx) * dil
                ok = np.all((pos >= 0) & (pos < np.asarray(spatial)), axis=1)
                out_flat = np.ravel_multi_index((np.full(ok.sum(), co),) + tuple(out_grid[ok].T), (c_out,) + out_sp)
                in_flat = np.ravel_multi_index((np.full(ok.sum(), ci),) + tuple(pos[ok].T), in_shape)
                rows.append(out_flat)
                cols.append(in_flat)
                vals.append(np.full(ok.sum(), w))
    n_out, n_in = c_out * int(np.prod(out_sp)), int(np.prod(in_shape))
    import scipy.sparse as sparse  # slow to import: not at `import neurodeploy`

    M = sparse.csr_matrix((np.concatenate(vals) if vals else [], (np.concatenate(rows) if rows else [],
                                                                 np.concatenate(cols) if cols else [])),
                          shape=(n_out, n_in))
    b = getattr(node, "bias", None)
    bias = None
    if b is not None and np.any(np.asarray(b) != 0):
        b = np.asarray(b, dtype=float).reshape(-1)
        if b.size != c_out:
            raise _spec_error(path, f"node '{name}': bias of {b.size} values for {c_out} output channels")
        bias = np.repeat(b, int(np.prod(out_sp)))
    return M, (c_out,) + out_sp, bias


def _pool_matrix(node, in_shape, path, name, avg: bool):
    """Sum/average pooling as a depthwise convolution with a kernel of ones (or 1/k^2)."""
    if len(in_shape) != 3:
        raise _spec_error(path, f"node '{name}' ({type(node).__name__}): input shape {in_shape} is not (channels, h, w)")
    k = np.broadcast_to(np.asarray(node.kernel_size, dtype=int), (2,))
    stride = node.stride if getattr(node, "stride", None) is not None else k
    c = in_shape[0]
    val = 1.0 / float(k[0] * k[1]) if avg else 1.0
    conv = _nir().Conv2d(input_shape=tuple(in_shape[1:]), weight=np.full((c, 1, int(k[0]), int(k[1])), val),
                         stride=np.broadcast_to(np.asarray(stride, dtype=int), (2,)),
                         padding=np.broadcast_to(np.asarray(node.padding, dtype=int), (2,)),
                         dilation=np.ones(2, dtype=int), groups=c, bias=np.zeros(c))
    M, out_shape, _ = _conv_matrix(conv, tuple(in_shape), 2, path, name)
    return M, out_shape


@dataclass
class _Op:
    M: Any  # scipy sparse (n_out, n_in)
    out_shape: tuple[int, ...]
    bias: np.ndarray | None = None
    delay: float = 0.0  # in the file's time unit


def _linear_op(name: str, node, in_shape: tuple[int, ...], path) -> _Op:
    import scipy.sparse as sparse  # slow to import: not at `import neurodeploy`

    kind = type(node).__name__
    n_in = int(np.prod(in_shape)) if in_shape else None
    if kind in ("Linear", "Affine"):
        W = np.asarray(node.weight, dtype=float)
        if W.ndim != 2:
            raise NotImplementedYet(f"node '{name}' ({kind}): weights with shape {W.shape} (not 2-D) are not supported yet")
        if n_in is not None and W.shape[1] != n_in:
            raise _spec_error(path, f"node '{name}' ({kind}): weight {W.shape} does not take an input of {n_in}")
        b = np.asarray(node.bias, dtype=float).reshape(-1) if kind == "Affine" else None
        if b is not None and b.size not in (1, W.shape[0]):
            raise _spec_error(path, f"node '{name}' (Affine): bias of {b.size} values for {W.shape[0]} outputs")
        if b is not None and b.size == 1:
            b = np.repeat(b, W.shape[0])
        return _Op(sparse.csr_matrix(W), (W.shape[0],), b if b is not None and np.any(b != 0) else None)
    if kind == "Scale":
        s = np.asarray(node.scale, dtype=float).reshape(-1)
        shape = in_shape or (s.size,)
        s = np.broadcast_to(s, (int(np.prod(shape)),))
        return _Op(sparse.diags(s).tocsr(), shape)
    if kind == "Flatten":
        n = n_in if n_in is not None else int(np.prod(_shape_in(node)))
        return _Op(sparse.identity(n, format="csr"), (n,))
    if kind == "Delay":
        d = np.asarray(node.delay, dtype=float).reshape(-1)
        if d.size and not np.all(d == d[0]):
            raise NotImplementedYet(
                f"node '{name}' (Delay): per-element delays ({d.min()}..{d.max()}) are not supported yet; "
                "neurodeploy projections have one delay")
        n = n_in if n_in is not None else d.size
        return _Op(sparse.identity(n, format="csr"), in_shape or (n,), delay=float(d[0]) if d.size else 0.0)
    if kind in ("Conv1d", "Conv2d"):
        nd = 1 if kind == "Conv1d" else 2
        shape = in_shape
        if not shape and getattr(node, "input_shape", None) is not None:
            shape = (int(np.asarray(node.weight).shape[1]),) + tuple(int(x) for x in np.atleast_1d(node.input_shape))
        M, out_shape, bias = _conv_matrix(node, shape, nd, path, name)
        return _Op(M, out_shape, bias)
    if kind in ("SumPool2d", "AvgPool2d"):
        M, out_shape = _pool_matrix(node, in_shape, path, name, avg=kind == "AvgPool2d")
        return _Op(M, out_shape)
    if kind in ("Input", "Output"):  # inner boundary of an inlined subgraph
        n = n_in if n_in is not None else int(np.prod(_shape_out(node) or _shape_in(node)))
        return _Op(sparse.identity(n, format="csr"), in_shape or (n,))
    raise NotImplementedYet(f"node '{name}' ({kind}) is not supported yet")


# --------------------------------------------------------------------------------------------
# import


@dataclass
class Imported:
    """The spec (plain YAML data, arrays referenced by key), the arrays, and the report."""

    spec: dict
    arrays: dict[str, np.ndarray]
    report: dict


def _meta_number(meta: dict, key: str, path, what: str, option: str, integer: bool = False):
    """``metadata["neurodeploy"][key]`` of the file as a positive (integer) number, or a SpecError
    naming the file and the key (the value came from the file, not from ``option``)."""
    v = meta[key]
    if isinstance(v, np.ndarray) and v.size == 1:
        v = v.reshape(-1)[0]
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, bytes):
        v = v.decode("utf-8", "replace")
    where = f"metadata.{NS}.{key}"
    hint = f"the file's metadata sets it; give {option} to override it"
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (integer and isinstance(v, float) and not v.is_integer()):
        raise SpecError([Diagnostic("ND203", f"the graph's metadata '{NS}.{key}' is {v!r}: expected {what} "
                                    f"({'an integer' if integer else 'a number'})", Span(str(path)), where, hint)])
    if not (math.isfinite(v) and v > 0) or (integer and v > MAX_STEPS):
        bound = f"1 ... {MAX_STEPS:,}" if integer else "> 0"
        raise SpecError([Diagnostic("ND205", f"the graph's metadata '{NS}.{key}' is {v!r}: {what} must be {bound}",
                                    Span(str(path)), where, hint)])
    return int(v) if integer else float(v)


#: numeric fields of NIR nodes: checked to be real, finite numbers before use; time constants > 0
NUMERIC_FIELDS = ("weight", "bias", "tau", "tau_mem", "tau_syn", "r", "v_leak", "v_threshold", "v_reset", "w_in",
                  "scale", "delay", "stride", "dilation", "groups", "kernel_size")
POSITIVE_FIELDS = ("tau", "tau_mem", "tau_syn")


def _check_values(flat: _Flat, path) -> None:
    """Every numeric field of every node is real and finite (no text, no complex, no NaN/inf);
    time constants are > 0 and delays >= 0. Errors name the file, the node and the field."""
    for name, node in flat.nodes.items():
        kind = type(node).__name__
        fields = [f for f in NUMERIC_FIELDS if getattr(node, f, None) is not None]
        if isinstance(getattr(node, "padding", None), (np.ndarray, list, tuple, int, float)):
            fields.append("padding")
        for fld in fields:
            v = np.asarray(getattr(node, fld))
            where, loc = f"nodes.{name}.{fld}", Span(str(path))
            if v.dtype.kind not in "biuf":
                what = {"c": "complex numbers", "U": "text", "S": "text"}.get(v.dtype.kind, f"{v.dtype} values")
                raise SpecError([Diagnostic("ND203", f"node '{name}' ({kind}): '{fld}' holds {what}; expected real "
                                            "numbers", loc, where, "NIR parameters are real float or integer arrays")])
            if v.dtype.kind == "f" and not np.all(np.isfinite(v)):
                bad = np.flatnonzero(~np.isfinite(v.reshape(-1)))
                raise SpecError([Diagnostic("ND205", f"node '{name}' ({kind}): '{fld}' has {bad.size} non-finite "
                                            f"value(s) (NaN or inf; first at flat index {int(bad[0])}: "
                                            f"{v.reshape(-1)[bad[0]]})", loc, where,
                                            "NaN weights silence neurons; fix the exporter or the trained model")])
            if fld in POSITIVE_FIELDS and v.size and not np.all(v > 0):
                raise SpecError([Diagnostic("ND205", f"node '{name}' ({kind}): time constant '{fld}' must be > 0 "
                                            f"(has {v.min()!r})", loc, where)])
            if fld == "delay" and v.size and not np.all(v >= 0):
                raise SpecError([Diagnostic("ND205", f"node '{name}' ({kind}): 'delay' must be >= 0 (has "
                                            f"{v.min()!r})", loc, where)])


def _uniform(name: str, kind: str, node, fld: str, path="graph.nir") -> float:
    v = np.asarray(getattr(node, fld), dtype=float).reshape(-1)
    if v.size == 0:
        raise SpecError([Diagnostic("ND203", f"node '{name}' ({kind}): '{fld}' is empty", Span(str(path)),
                                    f"nodes.{name}.{fld}")])
    if not np.all(np.isfinite(v)):
        raise SpecError([Diagnostic("ND205", f"node '{name}' ({kind}): '{fld}' has non-finite values", Span(str(path)),
                                    f"nodes.{name}.{fld}")])
    if not np.allclose(v, v[0], rtol=1e-6, atol=0):
        raise NotImplementedYet(
            f"node '{name}' ({kind}): '{fld}' differs between neurons ({v.min():g}..{v.max():g}); neurodeploy "
            "populations share their parameters, per-neuron values are not supported yet")
    return float(v[0])


def _bounded(n: int, name: str, path) -> int:
    if not 1 <= n <= MAX_POPULATION_SIZE:
        raise SpecError([Diagnostic("ND206", f"node '{name}' has {n:.3g} neurons (allowed 1 ... {MAX_POPULATION_SIZE:,})",
                                    Span(str(path)))])
    return int(n)


def _time_unit(flat: _Flat, graph, time_unit: str, dt: float) -> tuple[float, str, str]:
    """(seconds per file time unit, unit name, reason)."""
    meta = (getattr(graph, "metadata", None) or {}).get(NS, {}) if isinstance(getattr(graph, "metadata", None), dict) else {}
    if time_unit != "auto":
        if time_unit == "step":
            return dt, "step", "given (--time-unit step: 1 unit = dt)"
        return TIME_UNITS[time_unit], time_unit, f"given (--time-unit {time_unit})"
    if isinstance(meta, dict) and isinstance(meta.get("time_unit"), str) and meta["time_unit"] in TIME_UNITS:
        u = str(meta["time_unit"])
        return TIME_UNITS[u], u, "stated in the graph's neurodeploy metadata"
    taus = []
    for n in flat.nodes.values():
        for f in ("tau", "tau_mem", "tau_syn"):
            if hasattr(n, f):
                taus.extend(np.asarray(getattr(n, f), dtype=float).reshape(-1).tolist())
    if not taus:
        return dt, "step", "no time constants in the graph: read as a discrete-time export, 1 unit = 1 step (dt)"
    if max(taus) < 1.0:
        return 1.0, "s", f"every time constant is < 1 (largest {max(taus):g}): seconds"
    return 1e-3, "ms", f"a time constant is >= 1 (largest {max(taus):g}): milliseconds"


def _q(value: float, unit: str) -> str:
    return f"{float(value)!r} * {unit}"


#: producers named in a graph's metadata -> the schedule that is their semantics (docs/interop.md)
PRODUCER_SCHEDULES = {"snntorch": "discrete", "norse": "discrete", "spyx": "discrete", "lava": "loihi",
                      "loihi": "loihi", "neurodeploy": None}
#: snnTorch's ``export_to_nir`` writes every Leaky/Synaptic with this dt folded in (tau = dt/(1-beta))
SNNTORCH_DT = 1e-4


def _choose_schedule(graph, flat: _Flat, given: str | None) -> tuple[str, str]:
    """(schedule, why) for an imported graph: given; stated by neurodeploy's metadata; a producer
    named in the graph's metadata; snnTorch's export signature (every LIF/CubaLIF with
    ``r = tau / 1e-4``, ``v_leak = v_reset = 0``, and ``w_in = tau_syn / 1e-4``); else ``exact``."""
    if given is not None:
        if given not in SCHEDULES:
            raise UsageError(f"schedule {given!r}: expected one of {', '.join(SCHEDULES)}")
        return given, "given"
    gmeta = getattr(graph, "metadata", None)
    gmeta = gmeta if isinstance(gmeta, dict) else {}
    ours = gmeta.get(NS)
    if isinstance(ours, dict) and "time_unit" in ours:  # written by neurodeploy's export
        sched = ours.get("schedule", SCHEDULES[0])
        if sched in SCHEDULES:
            return sched, "stated in the graph's neurodeploy metadata"
    for key, value in gmeta.items():
        if key == NS:
            continue
        text = f"{key} {value}".lower() if isinstance(value, (str, int, float)) else str(key).lower()
        for producer, sched in PRODUCER_SCHEDULES.items():
            if sched and re.search(rf"\b{producer}\b", text):
                return sched, f"the graph's metadata names {producer} ('{key}')"
    neurons = [n for n in flat.nodes.values() if type(n).__name__ in ("LIF", "CubaLIF")]

    def close(a, b) -> bool:
        return bool(np.allclose(np.asarray(a, dtype=float), np.asarray(b, dtype=float), rtol=1e-5, atol=0))

    def snntorch_like(n) -> bool:
        if type(n).__name__ == "LIF":
            ok = close(np.asarray(n.r, dtype=float) * SNNTORCH_DT, n.tau)
        else:
            ok = close(np.asarray(n.r, dtype=float) * SNNTORCH_DT, n.tau_mem) and \
                close(np.asarray(n.w_in, dtype=float) * SNNTORCH_DT, n.tau_syn)
        return ok and not np.any(np.asarray(n.v_leak)) and not np.any(np.asarray(n.v_reset))

    if neurons and all(snntorch_like(n) for n in neurons):
        return "discrete", ("every LIF/CubaLIF has snnTorch's export signature (r = tau / 0.1 ms, v_leak = v_reset "
                            "= 0: a Leaky/Synaptic with beta = 1 - dt/tau): snnTorch's Euler-beta semantics")
    return SCHEDULES[0], ("no producer named in the graph and no known export signature: NIR's continuous-time "
                          "reading, integrated exactly (pass schedule='discrete' for a discrete-time producer such "
                          "as snnTorch or Norse, 'loihi' for Lava)")


def convert(graph, *, path="graph.nir", dt: float | None = None, steps: int | None = None,
            time_unit: str = "auto", inputs: dict[str, np.ndarray] | None = None, name: str | None = None,
            notes: list | None = None, arrays_file: str = "arrays.npz", first_columns: bool = False,
            schedule: str | None = None) -> Imported:
    """A NIR graph -> spec data (see the module docstring for the mapping). ``schedule``: the
    spec's ``simulation.schedule`` (None: chosen from the graph, see :func:`_choose_schedule`)."""
    report: dict[str, Any] = {"file": str(path), "nodes": {}, "dropped": [], "approximated": [], "notes": list(notes or [])}
    meta = graph.metadata.get(NS, {}) if isinstance(getattr(graph, "metadata", None), dict) else {}
    if dt is None:
        dt = _meta_number(meta, "dt", path, "a time step in seconds", "--dt") if isinstance(meta, dict) \
            and "dt" in meta else DEFAULT_DT
    elif not (isinstance(dt, (int, float)) and dt > 0 and math.isfinite(dt)):
        raise UsageError(f"--dt must be a positive time, got {dt}")
    if steps is None:
        steps = _meta_number(meta, "steps", path, "a number of steps", "--steps", integer=True) \
            if isinstance(meta, dict) and "steps" in meta else DEFAULT_STEPS
    flat = _flatten(graph, path)
    _check_values(flat, path)
    sched, sched_why = _choose_schedule(graph, flat, schedule)
    report["schedule"] = {"schedule": sched, "reason": sched_why}
    report["notes"].append({"kind": "schedule", "node": "simulation", "detail": f"schedule: {sched} ({sched_why})"})
    unit_s, unit_name, why = _time_unit(flat, graph, time_unit, dt)
    report["time_unit"] = {"unit": unit_name, "seconds": unit_s, "reason": why}
    report["dt"] = dt

    # classify nodes
    taken: set[str] = set()
    pops: dict[str, dict] = {}  # flat name -> info
    sources: dict[str, dict] = {}
    for fname, node in flat.nodes.items():
        kind = type(node).__name__
        if kind in UNSUPPORTED_NEURONS:
            raise NotImplementedYet(f"node '{fname}' ({kind}) is not supported yet: neurodeploy has no "
                                    f"{kind} neuron model (supported: {', '.join(NEURON_NODES)})")
        if kind in NEURON_NODES:
            pops[fname] = {"kind": kind, "node": node, "size": _bounded(_neuron_size(node), fname, path),
                           "name": _sanitize(fname, taken)}
        elif kind == "Input" and fname in flat.boundary_in:
            shape = tuple(int(x) for x in np.atleast_1d(node.input_type["input"]))
            sources[fname] = {"size": _bounded(int(np.prod(shape, dtype=np.float64)), fname, path), "shape": shape,
                              "name": _sanitize(fname, taken)}
        elif kind == "Output" and fname in flat.boundary_out:
            pass
        elif kind not in LINEAR_NODES + ("Input", "Output"):
            raise NotImplementedYet(f"node '{fname}' ({kind}) is not supported yet")
    for fname, info in {**pops, **sources}.items():
        report["nodes"][fname] = {"type": type(flat.nodes[fname]).__name__,
                                  "becomes": ("population " if fname in pops else "stimulus ") + info["name"]}

    # trace every spiking node's output through linear nodes to spiking nodes
    ops: dict[tuple[str, tuple], _Op] = {}

    def op_of(n: str, in_shape):
        key = (n, tuple(in_shape))
        if key not in ops:
            try:
                ops[key] = _linear_op(n, flat.nodes[n], tuple(in_shape), path)
            except (ValueError, TypeError, IndexError) as e:  # parameters that do not fit each other
                raise SpecError([Diagnostic("ND503", f"node '{n}' ({type(flat.nodes[n]).__name__}): invalid "
                                            f"parameters: {e}", Span(str(path)), f"nodes.{n}")]) from None
        return ops[key]

    contributions: dict[tuple[str, str, float], Any] = {}
    outputs: dict[str, set[str]] = {}
    linear_used: set[str] = set()

    def trace(origin: str, node: str, M, shape, delay: float, stack: tuple, ident: bool = True):
        for nxt in flat.succ.get(node, []):
            if nxt in pops:
                if origin in pops and pops[origin]["kind"] in GRADED_NODES:
                    raise NotImplementedYet(
                        f"node '{origin}' ({pops[origin]['kind']}) has a graded output (no spikes); feeding it into "
                        f"'{nxt}' is not supported yet (neurodeploy projections carry spikes)")
                size = pops[nxt]["size"]
                if M.shape[0] != size:
                    raise _spec_error(path, f"edge '{node}' -> '{nxt}': {M.shape[0]} values into a node of {size} neurons",
                                      where=f"edges[{node}->{nxt}]")
                key = (origin, nxt, delay)
                contributions[key] = M if key not in contributions else contributions[key] + M
            elif nxt in flat.boundary_out:
                outputs.setdefault(nxt, set()).add(origin if ident else f"{origin} via {node}")
            elif nxt in sources:
                raise _spec_error(path, f"edge into the graph's Input '{nxt}'")
            else:
                if nxt in stack:
                    raise NotImplementedYet(f"a cycle of linear nodes without a neuron ({' -> '.join(stack + (nxt,))}) "
                                            "is not supported yet")
                op = op_of(nxt, shape)
                if op.M.shape[1] != M.shape[0]:
                    raise _spec_error(path, f"edge '{node}' -> '{nxt}': {M.shape[0]} values into a node that takes "
                                            f"{op.M.shape[1]}", where=f"edges[{node}->{nxt}]")
                linear_used.add(nxt)
                M2 = (op.M @ M).tocsr()
                if M2.nnz > MAX_SYNAPSES:
                    raise _spec_error(path, f"the path to '{nxt}' makes more than {MAX_SYNAPSES:.0e} synapses")
                identity = type(flat.nodes[nxt]).__name__ in ("Input", "Output", "Flatten")
                trace(origin, nxt, M2, op.out_shape, delay + op.delay, stack + (nxt,), ident and identity)

    import scipy.sparse as sparse  # slow to import: not at `import neurodeploy`

    for origin in list(sources) + list(pops):
        n = sources[origin]["size"] if origin in sources else pops[origin]["size"]
        shape = sources[origin]["shape"] if origin in sources else (_shape_out(flat.nodes[origin]) or (n,))
        trace(origin, origin, sparse.identity(n, format="csr"), shape, 0.0, (origin,))

    # biases: each Affine/Conv bias propagated forward through linear nodes to neurons
    biases: dict[str, np.ndarray] = {}

    def push_bias(node: str, b: np.ndarray, shape, stack: tuple):
        for nxt in flat.succ.get(node, []):
            if nxt in pops:
                biases[nxt] = biases.get(nxt, 0.0) + b
            elif nxt in flat.boundary_out or nxt in sources or nxt in stack:
                if nxt in flat.boundary_out:
                    report["dropped"].append({"node": node, "what": "bias into an Output", "why": "only spikes are outputs"})
            else:
                op = op_of(nxt, shape)
                push_bias(nxt, op.M @ b, op.out_shape, stack + (nxt,))

    for (n, shape), op in list(ops.items()):
        if op.bias is not None:
            push_bias(n, op.bias, op.out_shape, (n,))
    for n in flat.nodes:
        if type(flat.nodes[n]).__name__ in LINEAR_NODES and n not in linear_used:
            report["dropped"].append({"node": n, "what": type(flat.nodes[n]).__name__,
                                      "why": "not reached from any Input or neuron"})

    arrays: dict[str, np.ndarray] = {}
    populations, stimuli, projections, probes = [], [], [], []
    factor: dict[str, float] = {}
    # populations and sources in the order of their names (HDF5 stores groups sorted by name, so
    # the order of a file's nodes is not the writer's)
    pops = dict(sorted(pops.items(), key=lambda kv: kv[1]["name"]))
    sources = dict(sorted(sources.items(), key=lambda kv: kv[1]["name"]))
    for fname, info in pops.items():
        node, kind, pname = info["node"], info["kind"], info["name"]
        if kind == "LIF":
            tau = _uniform(fname, kind, node, "tau", path) * unit_s
            r = _uniform(fname, kind, node, "r", path)
            params = {"tau_m": _q(tau, "second"), "v_rest": _q(_uniform(fname, kind, node, "v_leak", path), "volt"),
                      "v_reset": _q(_uniform(fname, kind, node, "v_reset", path), "volt"),
                      "v_th": _q(_uniform(fname, kind, node, "v_threshold", path), "volt"),
                      "R_m": _q(r, "ohm"), "t_ref": _q(0.0, "second")}
            model, factor[fname], wunit = "lif", r * dt / tau, "volt"
        elif kind in ("CubaLIF", "CubaLI"):  # CubaLI: CubaLIF without threshold and reset
            spiking = kind == "CubaLIF"
            tau_syn = _uniform(fname, kind, node, "tau_syn", path) * unit_s
            w_in = _uniform(fname, kind, node, "w_in", path)
            params = {"tau_syn": _q(tau_syn, "second"),
                      "tau_m": _q(_uniform(fname, kind, node, "tau_mem", path) * unit_s, "second"),
                      "v_leak": _q(_uniform(fname, kind, node, "v_leak", path), "volt")}
            if spiking:
                params["v_th"] = _q(_uniform(fname, kind, node, "v_threshold", path), "volt")
                params["v_reset"] = _q(_uniform(fname, kind, node, "v_reset", path), "volt")
            params["R_m"] = _q(_uniform(fname, kind, node, "r", path), "ohm")
            if spiking:
                params["reset_mode"] = "to_value"
            model = "cuba_lif" if spiking else "cuba_li"
            factor[fname], wunit = w_in * dt / tau_syn, "amp"
        elif kind == "LI":
            tau = _uniform(fname, kind, node, "tau", path) * unit_s
            r = _uniform(fname, kind, node, "r", path)
            params = {"tau_m": _q(tau, "second"), "v_leak": _q(_uniform(fname, kind, node, "v_leak", path), "volt"),
                      "R_m": _q(r, "ohm")}
            model, factor[fname], wunit = "li", r * dt / tau, "volt"
        else:  # IF
            r = _uniform(fname, kind, node, "r", path)
            if r <= 0:
                raise SpecError([Diagnostic("ND205", f"node '{fname}' (IF): r = {r} (must be > 0)", Span(str(path)),
                                            f"nodes.{fname}.r")])
            params = {"C_m": _q(unit_s / r, "farad"), "v_th": _q(_uniform(fname, kind, node, "v_threshold", path), "volt"),
                      "v_reset": _q(_uniform(fname, kind, node, "v_reset", path), "volt")}
            model, factor[fname], wunit = "if", r * dt / unit_s, "volt"
        info["model"], info["wunit"] = model, wunit
        entry: dict[str, Any] = {"name": pname, "size": info["size"], "model": model, "params": params}
        b = biases.get(fname)
        if b is not None and np.any(np.asarray(b) != 0):
            b = np.broadcast_to(np.asarray(b, dtype=float), (info["size"],))
            cur = b * (w_in if kind in ("CubaLIF", "CubaLI") else 1.0)
            if np.allclose(cur, cur[0], rtol=1e-12, atol=0):
                params["I_bias"] = _q(cur[0], "amp")
                if kind in ("CubaLIF", "CubaLI"):  # NIR's bias passes the synaptic filter: I(t) = w_in b (1 - e^{-t/tau_syn})
                    entry["init"] = {"I": _q(-cur[0], "amp")}
            else:
                vals, inv = np.unique(cur, return_inverse=True)
                for k, val in enumerate(vals):
                    if val == 0:
                        continue
                    idx = np.flatnonzero(inv == k).tolist()
                    stimuli.append({"name": _sanitize(f"{pname}_bias", taken), "kind": "current", "target": pname,
                                    "amplitude": _q(val, "amp"), "indices": idx})
                if kind in ("CubaLIF", "CubaLI"):
                    report["approximated"].append({
                        "node": fname, "what": "per-neuron bias",
                        "why": "a bias that differs between neurons becomes injected currents, which enter v directly "
                               "instead of through the synaptic filter: equal after a few tau_syn, not in the first steps"})
        for var, val in _init_meta(node).items():  # written by neurodeploy's export
            entry.setdefault("init", {})[var] = _q(val, {"v": "volt", "I": "amp"}[var])
        populations.append(entry)
        if kind not in GRADED_NODES:
            probes.append({"target": pname, "record": "spikes"})
    unknown = set(inputs or {}) - set(sources)
    if unknown:
        raise UsageError(f"inputs for {', '.join(sorted(map(str, unknown)))}: not an Input node of the graph "
                         f"(Inputs: {', '.join(sorted(sources)) or 'none'})")
    for fname, info in sources.items():
        entry = {"name": info["name"], "kind": "spike_times", "size": info["size"]}
        data = (inputs or {}).get(fname)
        spikes = []
        if data is not None:
            data = np.asarray(data)
            if data.ndim == 1 and info["size"] == 1:
                data = data[:, None]
            data = data.reshape(data.shape[0], -1)
            if data.shape[1] > info["size"] and first_columns:
                report["notes"].append({"kind": "input", "node": fname, "detail": f"used the first {info['size']} of "
                                        f"{data.shape[1]} columns of the input file"})
                data = data[:, : info["size"]]
            if data.shape[1] != info["size"]:
                raise UsageError(f"--input: {data.shape[1]} columns for Input '{fname}' of {info['size']} neurons "
                                 "(expected shape (steps, neurons))")
            if not np.all((data == 0) | (data == 1)):
                raise UsageError(f"--input for '{fname}': values must be 0 or 1 (spikes per step); graded "
                                 "inputs are not supported yet")
            n_spikes = int(np.count_nonzero(data[:steps]))
            if n_spikes > MAX_INPUT_SPIKES:
                raise UsageError(f"--input for '{fname}': {n_spikes} spikes are too many to write into a spec "
                                 f"(at most {MAX_INPUT_SPIKES}); import fewer steps (--steps)")
            for i in range(info["size"]):
                ks = np.flatnonzero(data[:steps, i])
                if ks.size:
                    spikes.append({"neuron": i, "times": [_q(k * dt, "second") for k in ks]})
        elif _input_meta(flat.nodes[fname]) is not None:
            idx, times = _input_meta(flat.nodes[fname])
            where = f"nodes.{fname}.metadata.{NS}"
            if idx.size > MAX_INPUT_SPIKES:
                raise SpecError([Diagnostic("ND206", f"Input '{fname}': its metadata holds {idx.size:,} spike times, "
                                            f"more than {MAX_INPUT_SPIKES:,} (they are written into the spec)",
                                            Span(str(path)), where)])
            if idx.size and (idx.min() < 0 or idx.max() >= info["size"] or not np.all(np.isfinite(times))
                             or times.min() < 0):
                raise SpecError([Diagnostic("ND205", f"Input '{fname}': its metadata's spike indices must lie in "
                                            f"0 ... {info['size'] - 1} and its times be finite and >= 0",
                                            Span(str(path)), where)])
            order = np.argsort(idx, kind="stable")
            idx, times = idx[order], times[order]
            starts = np.flatnonzero(np.r_[True, idx[1:] != idx[:-1]]) if idx.size else np.array([], int)
            for a, b in zip(starts, np.r_[starts[1:], idx.size]):
                spikes.append({"neuron": int(idx[a]), "times": [_q(t, "second") for t in times[a:b]]})
            report["notes"].append({"kind": "input", "node": fname,
                                    "detail": f"{len(times)} spike times restored from neurodeploy metadata"})
        else:
            report["notes"].append({"kind": "input", "node": fname,
                                    "detail": "no input data given: a spike source with no spikes (fill it with --input)"})
        entry["spikes"] = spikes
        stimuli.append(entry)
    used_names: dict[tuple[str, str], int] = {}
    def _pname(n):
        return sources[n]["name"] if n in sources else pops[n]["name"]

    for (src, tgt, delay), M in sorted(contributions.items(), key=lambda kv: (_pname(kv[0][0]), _pname(kv[0][1]), kv[0][2])):
        M = M.tocoo()
        M.sum_duplicates()
        if M.nnz == 0 or not np.any(M.data):
            report["notes"].append({"kind": "empty", "node": f"{src} -> {tgt}", "detail": "all weights are 0: no projection"})
            continue
        sname = sources[src]["name"] if src in sources else pops[src]["name"]
        tinfo = pops[tgt]
        base = f"{sname}_to_{tinfo['name']}"
        k = used_names.get((sname, tinfo["name"]), 0)
        used_names[(sname, tinfo["name"])] = k + 1
        pname = _sanitize(base if k == 0 else f"{base}_d{k}", taken)
        w = M.data * factor[tgt]
        proj: dict[str, Any] = {"name": pname, "source": sname, "target": tinfo["name"]}
        n_src, n_tgt = M.shape[1], M.shape[0]
        if M.nnz == n_src * n_tgt and n_src * n_tgt <= MAX_DENSE:
            dense = np.zeros((n_src, n_tgt))
            dense[M.col, M.row] = w
            arrays[pname] = dense
            proj["weights"] = {"file": arrays_file, "key": pname, "unit": tinfo["wunit"]}
        else:
            keep = w != 0
            arrays[pname] = w[keep]
            arrays[pname + "__pairs"] = np.stack([M.col[keep], M.row[keep]]).astype(np.int64)
            proj["weights"] = {"file": arrays_file, "key": pname, "unit": tinfo["wunit"]}
            proj["connectivity"] = {"kind": "sparse", "file": arrays_file, "key": pname + "__pairs"}
        if delay:
            proj["delay"] = _q(delay * unit_s, "second")
        projections.append(proj)
    for out, srcs in outputs.items():
        for s in sorted(srcs):
            if " via " in s:
                report["dropped"].append({"node": out, "what": f"Output of a linear map ({s})",
                                          "why": "graded outputs are not representable; record the source's spikes"})
            elif s in pops:
                probes.append({"target": pops[s]["name"], "record": "v"})
                report["nodes"][out] = {"type": "Output", "becomes": f"probe {pops[s]['name']}.v (and its spikes)"}
    spec = {
        "neurodeploy": 1,
        "name": name or (_sanitize(str(meta["name"]), set()) if isinstance(meta, dict) and isinstance(meta.get("name"), str)
                         else _sanitize(Path(str(path)).stem, set())),
        "description": "Imported from a NIR graph by `neurodeploy import` (mapping: docs/interop.md).",
        "simulation": {"dt": _q(dt, "second"), "steps": int(steps), "seed": 0},
        "populations": populations,
    }
    if sched != SCHEDULES[0]:
        spec["simulation"]["schedule"] = sched
    if stimuli:
        spec["stimuli"] = stimuli
    if projections:
        spec["projections"] = projections
    if probes:
        spec["probes"] = probes
    if not populations:
        raise _spec_error(path, "the graph has no neuron node (LIF, CubaLIF or IF): nothing to simulate")
    return Imported(spec, arrays, report)


def _init_meta(node) -> dict[str, float]:
    """Constant initial values that neurodeploy's export kept in a neuron node's metadata."""
    m = (getattr(node, "metadata", None) or {}).get(NS)
    out = {}
    if isinstance(m, dict):
        for var in ("v", "I"):
            val = m.get(f"init_{var}")
            if isinstance(val, (float, int, np.floating, np.integer)) and math.isfinite(float(val)):
                out[var] = float(val)
    return out


def _input_meta(node):
    m = (getattr(node, "metadata", None) or {}).get(NS)
    if not isinstance(m, dict) or "indices" not in m or "times" not in m:
        return None
    idx = np.asarray(m["indices"]).reshape(-1)
    times = np.asarray(m["times"]).reshape(-1)
    if idx.dtype.kind not in "iu" or times.dtype.kind != "f" or idx.shape != times.shape:
        return None
    return idx.astype(np.int64), times.astype(float)


def read_inputs(path, size_hint: int | None = None) -> np.ndarray:
    """``--input``: a .npy or .csv array (steps x neurons, 0/1). ``size_hint``: keep only that many
    leading columns of a wider array (the NIR paper's CSVs hold input, voltage, output spike)."""
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"--input {path}: file not found")
    if p.suffix == ".npy":
        try:
            a = np.load(p, allow_pickle=False)
        except Exception as e:
            raise UsageError(f"--input {path}: not a readable .npy file ({e})") from None
    elif p.suffix == ".csv":
        if p.stat().st_size > 200_000_000:
            raise UsageError(f"--input {path}: file larger than 200 MB")
        try:
            a = np.loadtxt(p, delimiter=",", ndmin=2)
        except Exception as e:
            raise UsageError(f"--input {path}: not a numeric CSV ({e})") from None
    else:
        raise UsageError(f"--input {path}: expected a .npy or .csv file")
    if a.dtype.kind not in "biuf" or a.ndim > 2 or a.size > 200_000_000:
        raise UsageError(f"--input {path}: expected a numeric array of shape (steps, neurons)")
    if size_hint is not None and a.ndim == 2 and a.shape[1] > size_hint:
        a = a[:, :size_hint]
    return a


def import_nir(path, out=None, *, dt: float | None = None, steps: int | None = None, time_unit: str = "auto",
               inputs=None, repair: bool = False, name: str | None = None, first_columns: bool = False,
               schedule: str | None = None):
    """Import a NIR file. Returns ``(network, report)``.

    With ``out`` (a spec path) the spec YAML and an ``.npz`` of its arrays are written there
    (atomically) and the returned network is loaded from them with :func:`neurodeploy.spec.load`.
    Without ``out`` they go to a fresh temporary directory (kept; its path is ``report["spec"]``).
    ``inputs``: ``{input node name: array (steps, neurons) of 0/1}``, or one array for a graph
    with one Input; ``first_columns``: use the first columns of a wider array (the NIR paper's
    CSVs hold input, voltage and output spike). ``schedule``: the spec's ``simulation.schedule``
    (None: chosen from the graph; ``report["schedule"]`` says which and why).
    """
    if time_unit not in ("auto", "step", *TIME_UNITS):
        raise UsageError(f"time unit {time_unit!r}: expected auto, s, ms or step")
    graph, notes = read_graph(path, repair)
    if inputs is not None and not isinstance(inputs, dict):
        ins = [k for k, n in graph.nodes.items() if type(n).__name__ == "Input"]
        if len(ins) != 1:
            raise UsageError(f"the graph has {len(ins)} Input nodes; give inputs as a dict by node name")
        inputs = {ins[0]: inputs}
    if out is None:
        out = Path(tempfile.mkdtemp(prefix="nd-nir-")) / (Path(path).stem + ".yaml")
    out = Path(out)
    arrays_file = out.with_suffix(".npz").name
    imp = convert(graph, path=path, dt=dt, steps=steps, time_unit=time_unit, inputs=inputs, name=name,
                  notes=notes, arrays_file=arrays_file, first_columns=first_columns, schedule=schedule)
    net = write_spec(imp, out)
    imp.report["spec"] = str(out)
    return net, imp.report


def write_spec(imp: Imported, out) -> Any:
    """Write ``imp``'s YAML and arrays beside it (atomically), then load and check the spec."""
    out = Path(out)
    if imp.arrays:
        buf = io.BytesIO()
        np.savez_compressed(buf, **imp.arrays)
        atomic_write_bytes(out.with_suffix(".npz"), buf.getvalue())
    rep = imp.report
    text = (f"# written by `neurodeploy import` from {Path(str(rep.get('file', ''))).name}; arrays in "
            f"{out.with_suffix('.npz').name}\n# time unit of the file: {rep['time_unit']['unit']} "
            f"({rep['time_unit']['reason']}); dt {rep['dt']!r} s\n")
    text += yaml.safe_dump(imp.spec, sort_keys=False, default_flow_style=None, width=200)
    atomic_write_text(out, text)
    return load(out)


# --------------------------------------------------------------------------------------------
# export


def export_nir(net, path, *, time_unit: str = "s") -> dict:
    """Write ``net`` (a Network, or a spec path) as a NIR graph at ``path``; returns the report of
    what NIR cannot carry (also stored in the graph's ``metadata["neurodeploy"]``)."""
    nir = _nir()
    if isinstance(net, (str, Path)):
        net = load(net)
    verify(net)
    if time_unit not in TIME_UNITS:
        raise UsageError(f"export time unit {time_unit!r}: expected s or ms")
    u = TIME_UNITS[time_unit]
    dt = net.simulation.dt
    report: dict[str, Any] = {"file": str(path), "network": net.name, "time_unit": time_unit, "dt": dt,
                              "nodes": {}, "dropped": [], "approximated": []}

    def drop(node, what, why, value=None):
        d = {"node": node, "what": what, "why": why}
        if value is not None:
            d["value"] = value
        report["dropped"].append(d)

    what = graded_parts(net)
    if what:
        raise NotImplementedYet(
            f"'{net.name}' has {what}: NIR 1.0 has no Poisson-count (iP-VAE) or LCA neuron primitive, so "
            "the coder cannot be written as NIR; its decoder is interchanged as ONNX (`neurodeploy train` "
            "writes decoder.onnx, and a block's decoder may be an .onnx file)")
    drop("simulation", "dt", "NIR graphs have no time step; kept in metadata", dt)
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    factor: dict[str, float] = {}
    sizes = {}
    for s in net.stimuli:
        if isinstance(s, CurrentStimulus):
            continue
        size = s.size
        sizes[s.name] = size
        report["nodes"][s.name] = f"Input ({s.kind})"
        smeta = {}
        if isinstance(s, SpikeTimesStimulus):
            # kept for neurodeploy (restored on import); other readers drive the Input themselves
            smeta = {NS: {"kind": "spike_times", "indices": np.asarray(s.indices, dtype=np.int64),
                          "times": np.asarray(s.times, dtype=float)}}
            report["approximated"].append({"node": s.name, "what": "spike_times stimulus data",
                                           "why": "NIR Inputs carry no data; kept in the Input's neurodeploy metadata"})
        else:
            drop(s.name, f"{s.kind} stimulus data", "NIR Inputs carry no data; drive the Input in the peer framework")
        nodes[s.name] = nir.Input(input_type=np.array([size]), metadata=smeta)
    currents = constant_currents(net)
    for s in net.stimuli:
        if isinstance(s, CurrentStimulus) and not (s.amplitude is not None and s.start <= 0 and
                                                    (s.stop is None or s.stop >= net.simulation.duration)):
            drop(s.name, "time-varying current", "NIR has no time-varying inputs other than Input nodes")
    bias_of: dict[str, np.ndarray] = {}
    for p in net.populations:
        m = get_neuron(p.model)
        prm = m.make_params(p.params)
        n = p.size
        sizes[p.name] = n
        full = lambda x: np.full(n, float(x))  # noqa: E731
        cur = np.full(n, float(getattr(prm, "I_bias", 0.0))) + currents.get(p.name, np.zeros(n))
        init = mat.initial_state(net, p)
        if p.model == "lif":
            nodes[p.name] = nir.LIF(tau=full(prm.tau_m / u), r=full(prm.R_m), v_leak=full(prm.v_rest),
                                    v_threshold=full(prm.v_th), v_reset=full(prm.v_reset))
            factor[p.name] = prm.R_m * dt / prm.tau_m
            if prm.t_ref > 0:
                drop(p.name, "t_ref", "NIR has no refractory period", prm.t_ref)
            bias = cur
        elif p.model == "cuba_lif":
            nodes[p.name] = nir.CubaLIF(tau_syn=full(prm.tau_syn / u), tau_mem=full(prm.tau_m / u), r=full(prm.R_m),
                                        v_leak=full(prm.v_leak), v_threshold=full(prm.v_th),
                                        v_reset=full(prm.v_reset), w_in=full(1.0))
            factor[p.name] = dt / prm.tau_syn
            if prm.t_ref > 0:
                drop(p.name, "t_ref", "NIR has no refractory period", prm.t_ref)
            if prm.reset_mode != "to_value":
                drop(p.name, "reset_mode", "NIR resets to v_reset; reset by subtraction is not representable", prm.reset_mode)
            bias = cur
            if np.any(cur != 0) and not np.allclose(init["I"], -cur):
                report["approximated"].append({"node": p.name, "what": "I_bias / constant current",
                                               "why": "NIR's bias passes the synaptic filter (rises with tau_syn); "
                                                      "exported as an Affine bias"})
        elif p.model == "li":
            nodes[p.name] = nir.LI(tau=full(prm.tau_m / u), r=full(prm.R_m), v_leak=full(prm.v_leak))
            factor[p.name] = prm.R_m * dt / prm.tau_m
            bias = cur
        elif p.model == "cuba_li":
            nodes[p.name] = nir.CubaLI(tau_syn=full(prm.tau_syn / u), tau_mem=full(prm.tau_m / u), r=full(prm.R_m),
                                       v_leak=full(prm.v_leak), w_in=full(1.0))
            factor[p.name] = dt / prm.tau_syn
            bias = cur
            if np.any(cur != 0) and not np.allclose(init["I"], -cur):
                report["approximated"].append({"node": p.name, "what": "I_bias / constant current",
                                               "why": "NIR's bias passes the synaptic filter (rises with tau_syn); "
                                                      "exported as an Affine bias"})
        elif p.model == "if":
            nodes[p.name] = nir.IF(r=full(u / prm.C_m), v_threshold=full(prm.v_th), v_reset=full(prm.v_reset))
            factor[p.name] = dt / prm.C_m
            if prm.reset_mode != "to_value":
                drop(p.name, "reset_mode", "NIR resets to v_reset; reset by subtraction is not representable", prm.reset_mode)
            bias = cur
        else:
            raise NotImplementedYet(f"population '{p.name}': neuron model '{p.model}' has no NIR node "
                                    "(exportable: lif, cuba_lif, if, li, cuba_li)")
        kept = {f"init_{var}": float(ini.a) for var, ini in p.init.items() if ini.kind == "constant" and var in ("v", "I")}
        if kept:
            nodes[p.name].metadata = {NS: kept}
        for var, ini in p.init.items():
            if ini.kind != "constant" or var not in ("v", "I"):
                drop(p.name, f"init.{var}", f"NIR has no initial state; a {ini.kind} draw is not kept")
        report["nodes"][p.name] = type(nodes[p.name]).__name__
        if np.any(bias != 0):
            bias_of[p.name] = bias
    bias_done: set[str] = set()
    for pr in net.projections:
        syn = mat.synapses(net, pr)
        n_src, n_tgt = sizes[pr.source], sizes[pr.target]
        if n_src * n_tgt > MAX_DENSE:
            raise NotImplementedYet(f"projection '{pr.name}': {n_src} x {n_tgt} is too large for NIR's dense Linear "
                                    f"(more than {MAX_DENSE:.0e} entries)")
        W = np.zeros((n_tgt, n_src))
        np.add.at(W, (syn.j, syn.i), syn.w / factor[pr.target])
        if pr.target in bias_of and pr.target not in bias_done:
            nodes[pr.name] = nir.Affine(weight=W, bias=bias_of[pr.target])
            bias_done.add(pr.target)
        else:
            nodes[pr.name] = nir.Linear(weight=W)
        report["nodes"][pr.name] = type(nodes[pr.name]).__name__
        if pr.connectivity.kind == "random" or pr.weights.kind in ("uniform", "normal"):
            report["approximated"].append({"node": pr.name, "what": "random connectivity/weights",
                                           "why": f"materialised with seed {net.simulation.seed}"})
        if pr.plasticity is not None:
            drop(pr.name, "plasticity", "NIR has no learning rules", {"rule": pr.plasticity.rule,
                                                                      "params": pr.plasticity.params})
        edges.append((pr.source, pr.name))
        if syn.delay_steps:
            dname = f"{pr.name}__delay"
            nodes[dname] = nir.Delay(delay=np.full(n_tgt, syn.delay_steps * dt / u))
            edges += [(pr.name, dname), (dname, pr.target)]
            report["nodes"][dname] = "Delay"
        else:
            edges.append((pr.name, pr.target))
    for p, b in bias_of.items():
        if p not in bias_done:
            # NIR has biases only on Affine nodes: an Affine with zero weights from a 1-neuron
            # Input (never driven) carries it
            nodes[f"{p}__bias_in"] = nir.Input(input_type=np.array([1]))
            nodes[f"{p}__bias"] = nir.Affine(weight=np.zeros((sizes[p], 1)), bias=b)
            edges += [(f"{p}__bias_in", f"{p}__bias"), (f"{p}__bias", p)]
            report["nodes"][f"{p}__bias"] = "Affine (bias only, from an Input that needs no data)"
    probed = {pb.target for pb in net.probes if pb.variable == "v"}
    for p in net.populations:
        if p.name in probed:
            oname = f"{p.name}__out"
            nodes[oname] = nir.Output(output_type=np.array([p.size]))
            edges.append((p.name, oname))
    for pb in net.probes:
        if pb.variable not in ("spikes", "v"):
            drop(pb.name, f"probe of {pb.variable}", "NIR Outputs carry spikes only")
    meta = {"time_unit": time_unit, "dt": float(dt), "steps": int(net.simulation.steps), "seed": int(net.simulation.seed),
            "name": net.name, "report": json.dumps({"dropped": report["dropped"], "approximated": report["approximated"]},
                                                  default=str)}
    if net.simulation.schedule != SCHEDULES[0]:
        meta["schedule"] = net.simulation.schedule
    graph = nir.NIRGraph(nodes=nodes, edges=edges, metadata={NS: meta}, type_check=True)
    buf = io.BytesIO()
    nir.write(buf, graph)
    atomic_write_bytes(path, buf.getvalue())
    return report


# --------------------------------------------------------------------------------------------
# CLI


__all__ = ["Imported", "convert", "export_nir", "import_nir", "read_graph", "read_inputs", "write_spec"]
