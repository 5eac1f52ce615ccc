"""Hostile NIR and ONNX files, each built here as an attacker sharing a model would: none may read
a file outside itself, exhaust memory, or end in an internal error. Each is refused with exit 1,
a diagnostic naming the file and the object (dataset path, node, initializer), and nothing
written. The memory-exhaustion cases also run in a subprocess whose address space is capped
(``RLIMIT_AS``, MEM_CAP below) so that a regression fails here instead of swapping.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from neurodeploy.app import cli
from neurodeploy.core.errors import SpecError
from neurodeploy.interop.nir import convert, import_nir

#: address-space cap of the subprocess: importing neurodeploy's CLI with numpy, scipy, h5py, nir
#: and onnx and importing a NIR fixture peaks at ~0.3 GiB of virtual memory (measured with
#: VmPeak), so 1 GiB leaves room and still fails on any multi-GiB allocation
MEM_CAP = 2**30
SECRET = b"root:x:0:0:root:/root:/bin/bash\nsecret-token-1234\n"


# --- building files -------------------------------------------------------------------------

def _graph(weight=None, tau=0.01, metadata=None) -> nir.NIRGraph:
    w = np.array([[1.0, 0.5]]) if weight is None else weight
    nodes = {"input": nir.Input(np.array([2])), "fc": nir.Linear(weight=w),
             "lif": nir.LIF(tau=np.array([tau]), r=np.array([1.0]), v_leak=np.array([0.0]),
                            v_threshold=np.array([1.0]), v_reset=np.array([0.0])),
             "output": nir.Output(np.array([1]))}
    return nir.NIRGraph(nodes=nodes, edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
                        metadata=metadata or {}, type_check=False)


def _nir_file(tmp_path, name="model.nir", **kw) -> Path:
    path = tmp_path / name
    nir.write(path, _graph(**kw))
    return path


def _replace(path, where: str, make) -> None:
    """Replace the object at ``where`` of HDF5 file ``path`` by what ``make(file, where)`` makes."""
    with h5py.File(path, "a") as f:
        del f[where]
        make(f, where)


def _import(path, tmp_path, capsys, *extra) -> tuple[int, str]:
    out = tmp_path / "out" / "spec.yaml"
    rc = cli.main(["import", str(path), "-o", str(out), *extra])
    cap = capsys.readouterr()
    assert not out.exists() and not out.with_suffix(".npz").exists(), "nothing may be written on refusal"
    return rc, cap.err


def _refused(path, tmp_path, capsys, *words, extra=()) -> str:
    rc, err = _import(path, tmp_path, capsys, *extra)
    assert rc == 1, err
    assert path.name in err and "internal error" not in err and "Traceback" not in err, err
    for w in words:
        assert w in err, (w, err)
    return err


def _secret(tmp_path) -> Path:
    p = tmp_path / "etc" / "passwd"  # stands in for /etc/passwd
    p.parent.mkdir()
    p.write_bytes(SECRET)
    return p


# --- 1. files that point outside themselves ------------------------------------------------

def test_control_a_plain_file_imports(tmp_path, capsys):
    out = tmp_path / "ok.yaml"
    assert cli.main(["import", str(_nir_file(tmp_path)), "-o", str(out)]) == 0
    assert out.exists() and out.with_suffix(".npz").exists()


def test_external_link_to_another_file_is_refused(tmp_path, capsys):
    other = tmp_path / "elsewhere" / "tau.h5"
    other.parent.mkdir()
    with h5py.File(other, "w") as f:
        f["tau"] = np.array([0.02])
    path = _nir_file(tmp_path)
    _replace(path, "node/nodes/lif/tau", lambda f, w: f.__setitem__(w, h5py.ExternalLink(str(other), "/tau")))
    _refused(path, tmp_path, capsys, "external link", "/node/nodes/lif/tau", "tau.h5")


def test_soft_links_are_refused_dangling_or_not(tmp_path, capsys):
    path = _nir_file(tmp_path)
    _replace(path, "node/nodes/lif/tau", lambda f, w: f.__setitem__(w, h5py.SoftLink("/node/nodes/lif/r")))
    _refused(path, tmp_path, capsys, "soft link", "/node/nodes/lif/tau")
    path = _nir_file(tmp_path, "dangling.nir")
    _replace(path, "node/nodes/lif/tau", lambda f, w: f.__setitem__(w, h5py.SoftLink("/../../etc/passwd")))
    _refused(path, tmp_path, capsys, "soft link", "(dangling)")


def test_external_raw_storage_is_refused_and_the_secret_never_read(tmp_path, capsys):
    secret = _secret(tmp_path)
    path = _nir_file(tmp_path)
    # the weight (1 x 2 float64, as the graph expects) is the first 16 bytes of the secret file: before
    # the check this imported with exit 0 and the .npz it wrote held them
    _replace(path, "node/nodes/fc/weight", lambda f, w: f.create_dataset(
        w, shape=(1, 2), dtype="<f8", external=[(str(secret), 0, 16)]))
    err = _refused(path, tmp_path, capsys, "external file", "/node/nodes/fc/weight", "passwd")
    assert "root:x" not in err


def test_virtual_dataset_is_refused(tmp_path, capsys):
    src = tmp_path / "src.h5"
    with h5py.File(src, "w") as f:
        f["w"] = np.ones((1, 2))
    path = _nir_file(tmp_path)

    def vds(f, w):
        lay = h5py.VirtualLayout(shape=(1, 2), dtype="f8")
        lay[:] = h5py.VirtualSource(str(src), "w", shape=(1, 2))
        f.create_virtual_dataset(w, lay)

    _replace(path, "node/nodes/fc/weight", vds)
    _refused(path, tmp_path, capsys, "virtual dataset", "/node/nodes/fc/weight")


def test_unknown_filter_is_refused(tmp_path, capsys):
    path = _nir_file(tmp_path)
    # filter 32018 is not registered: HDF5 would look for a plugin to read it
    _replace(path, "node/nodes/fc/weight", lambda f, w: f.create_dataset(
        w, shape=(1, 2), dtype="f8", chunks=(1, 2), compression=32018, allow_unknown_filter=True))
    _refused(path, tmp_path, capsys, "filter 32018", "not a standard compression", "/node/nodes/fc/weight")


def test_aliases_and_cycles_of_groups_are_refused(tmp_path, capsys):
    path = _nir_file(tmp_path)
    with h5py.File(path, "a") as f:
        f["node/nodes/lif/loop"] = f["node"]  # a hard link back up: nir.read would recurse forever
    _refused(path, tmp_path, capsys, "reached by 2 links")


# --- 2. sizes declared in headers ----------------------------------------------------------

def _huge_string_file(tmp_path) -> Path:
    # a few KB on disk; 4.2 GiB once read (a chunked dataset with a fill value and nothing written)
    path = _nir_file(tmp_path, "strings.nir")
    with h5py.File(path, "a") as f:
        f["node"].require_group("metadata").create_dataset("note", shape=(4_500_000,), dtype="S1000", chunks=(100,), fillvalue=b"x")
    return path


def _huge_float_file(tmp_path) -> Path:
    path = _nir_file(tmp_path, "floats.nir")
    _replace(path, "node/nodes/fc/weight", lambda f, w: f.create_dataset(w, shape=(1, 2**31), dtype="f8",
                                                                          chunks=(1, 4096)))
    return path


def _huge_chunk_file(tmp_path) -> Path:
    path = _nir_file(tmp_path, "chunk.nir")  # 2 values, one chunk of 2 GiB
    _replace(path, "node/nodes/fc/weight", lambda f, w: f.create_dataset(
        w, shape=(1, 2), maxshape=(1, None), dtype="f8", chunks=(1, 2**28)))
    return path


def _many_strings_file(tmp_path) -> Path:
    path = _nir_file(tmp_path, "vlen.nir")
    with h5py.File(path, "a") as f:
        f["node"].require_group("metadata").create_dataset("names", shape=(3_000_000,), dtype=h5py.string_dtype())
    return path


def test_huge_declared_datasets_in_small_files_are_refused_by_bytes(tmp_path, capsys):
    for make, words in [(_huge_string_file, ("/node/metadata/note", "4,291.5 MiB", "512.0 MiB")),
                        (_huge_float_file, ("/node/nodes/fc/weight", "16,384.0 MiB")),
                        (_huge_chunk_file, ("/node/nodes/fc/weight", "2,048.0 MiB", "one chunk")),
                        (_many_strings_file, ("3,000,000 strings", "64.0 MiB"))]:
        path = make(tmp_path)
        assert path.stat().st_size < 100_000
        _refused(path, tmp_path, capsys, "ND206", *words)


def test_deep_nesting_is_refused_quickly(tmp_path, capsys):
    path = _nir_file(tmp_path)
    with h5py.File(path, "a") as f:  # 1,200 graphs inside each other (built as groups: cheap)
        grp = f.create_group("node/nodes/sub/" + "/".join(["nodes/g"] * 1200))
        grp["type"] = np.bytes_("NIRGraph")
    _refused(path, tmp_path, capsys, "nested", "at most 68", "32")
    # a graph built in Python is bounded when it is flattened
    g = _graph()
    for _ in range(40):
        g = nir.NIRGraph(nodes={"input": nir.Input(np.array([2])), "inner": g, "output": nir.Output(np.array([1]))},
                         edges=[("input", "inner"), ("inner", "output")], type_check=False)
    with pytest.raises(SpecError, match="nested more than 32"):
        convert(g, path=tmp_path / "deep.nir")


# --- 3. content: values and metadata -------------------------------------------------------

@pytest.mark.parametrize("case, words", [
    ("nan_weight", ("node 'fc' (Linear)", "'weight'", "non-finite", "nodes.fc.weight")),
    ("inf_tau", ("node 'lif' (LIF)", "'tau'", "non-finite")),
    ("tau_zero", ("node 'lif' (LIF)", "time constant 'tau' must be > 0")),
    ("string_tau", ("/node/nodes/lif/tau", "holds text", "NIR parameter 'tau'")),
    ("complex_weight", ("/node/nodes/fc/weight", "compound type", "complex")),
    ("dt_text", ("metadata 'neurodeploy.dt'", "'0.1 ms'", "expected a time step")),
    ("dt_negative", ("metadata 'neurodeploy.dt'", "-0.1", "must be > 0", "give --dt")),
    ("steps_text", ("metadata 'neurodeploy.steps'", "'many'", "an integer")),
    ("steps_fraction", ("metadata 'neurodeploy.steps'", "2.5")),
])
def test_bad_values_in_nir_files_are_located_errors(case, words, tmp_path, capsys):
    kw = {"nan_weight": {"weight": np.array([[1.0, np.nan]])},
          "inf_tau": {"tau": np.inf}, "tau_zero": {"tau": 0.0},
          "complex_weight": {"weight": np.array([[1.0 + 2j, 0.5]])},
          "dt_text": {"metadata": {"neurodeploy": {"dt": "0.1 ms"}}},
          "dt_negative": {"metadata": {"neurodeploy": {"dt": -0.1}}},
          "steps_text": {"metadata": {"neurodeploy": {"steps": "many"}}},
          "steps_fraction": {"metadata": {"neurodeploy": {"steps": 2.5}}}}.get(case, {})
    path = _nir_file(tmp_path, f"{case}.nir", **kw)
    if case == "string_tau":
        _replace(path, "node/nodes/lif/tau", lambda f, w: f.create_dataset(w, data="fast", dtype=h5py.string_dtype()))
    err = _refused(path, tmp_path, capsys, *words)
    assert "--dt must be" not in err
    with pytest.raises(SpecError) as e:  # the API: the diagnostic names the file (never ': error ND205')
        import_nir(path, tmp_path / "api" / "x.yaml")
    assert all(Path(d.span.file).name == path.name for d in e.value.diagnostics)


def test_python_built_graphs_are_checked_the_same_way(tmp_path):
    for g, words in [(_graph(weight=np.array([[1.0 + 2j, 0.5]])), "complex numbers"),
                     (_graph(weight=np.array([[1.0, np.inf]])), "non-finite"),
                     (_graph(tau=-1.0), "must be > 0")]:
        with pytest.raises(SpecError, match=words) as e:
            convert(g, path=tmp_path / "py.nir")
        assert e.value.diagnostics[0].span.file.endswith("py.nir")


def test_input_spikes_in_metadata_and_biases_are_bounded_and_checked(tmp_path):
    g = _graph()
    n = 300_000  # more spike times than a spec may hold inline (and an O(n^2) grouping before)
    g.nodes["input"].metadata = {"neurodeploy": {"indices": np.zeros(n, np.int64), "times": np.zeros(n)}}
    with pytest.raises(SpecError, match="300,000 spike times, more than 200,000"):
        convert(g, path=tmp_path / "spikes.nir")
    g.nodes["input"].metadata = {"neurodeploy": {"indices": np.array([0, 7]), "times": np.array([0.0, 1e-3])}}
    with pytest.raises(SpecError, match="indices must lie in 0 ... 1"):
        convert(g, path=tmp_path / "spikes.nir")
    g = _graph()
    g.nodes["fc"] = nir.Affine(weight=np.array([[1.0, 0.5]]), bias=np.array([0.1, 0.2, 0.3]))
    with pytest.raises(SpecError, match="bias of 3 values for 1 outputs"):
        convert(g, path=tmp_path / "bias.nir")


def test_dt_given_on_the_command_line_overrides_bad_metadata(tmp_path, capsys):
    path = _nir_file(tmp_path, metadata={"neurodeploy": {"dt": "0.1 ms"}})
    assert cli.main(["import", str(path), "-o", str(tmp_path / "ok.yaml"), "--dt", "0.1 ms"]) == 0


# --- ONNX ------------------------------------------------------------------------------------

def _onnx(tmp_path, name, nodes, inputs, outputs, inits=()) -> Path:
    vi = lambda n, s: helper.make_tensor_value_info(n, TensorProto.FLOAT, s)
    g = helper.make_graph(nodes, "g", [vi(n, s) for n, s in inputs], [vi(n, s) for n, s in outputs], list(inits))
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    path = tmp_path / name
    path.write_bytes(m.SerializeToString())
    return path


def _activation_first(tmp_path, K: int) -> Path:
    return _onnx(tmp_path, f"relu_{K}.onnx", [helper.make_node("Relu", ["x"], ["y"], name="act")],
                 [("x", ["batch", K])], [("y", ["batch", K])])


def _broadcast_bomb(tmp_path) -> Path:
    # a linear decoder whose output adds two 20,000-element vectors as (N, 1) + (1, N): 3.2 GB
    N = 20_000
    inits = [numpy_helper.from_array(np.ones((2, 1), np.float32), "W"),
             numpy_helper.from_array(np.ones((N, 1), np.float32), "c1"),
             numpy_helper.from_array(np.ones((1, N), np.float32), "c2")]
    nodes = [helper.make_node("MatMul", ["z", "W"], ["y"], name="mm"),
             helper.make_node("Add", ["c1", "c2"], ["big"], name="bomb"),
             helper.make_node("Add", ["y", "big"], ["x"], name="out")]
    return _onnx(tmp_path, "bomb.onnx", nodes, [("z", ["batch", 2])], [("x", ["batch", N])], inits)


def test_activation_first_onnx_model_is_bounded_before_the_identity_is_built(tmp_path, capsys):
    path = _activation_first(tmp_path, 30_000)
    assert path.stat().st_size < 100
    _refused(path, tmp_path, capsys, "ND206", "node 'act' (Relu)", "identity layer of 30000 x 30000",
             "MAX_INTERCHANGE_BYTES")
    _refused(_activation_first(tmp_path, 100_000), tmp_path, capsys, "identity layer of 100000 x 100000")
    small = _activation_first(tmp_path, 3)  # the same graph, small, still imports as one identity layer
    assert cli.main(["import", str(small), "-o", str(tmp_path / "small.yaml"), "--onnx-as", "dense"]) == 0
    with np.load(tmp_path / "small.npz") as z:
        np.testing.assert_array_equal(z["W0"], np.eye(3))


def test_onnx_evaluation_is_bounded_before_each_node(tmp_path, capsys):
    _refused(_broadcast_bomb(tmp_path), tmp_path, capsys, "ND206", "node 'bomb' (Add", "(20000, 20000)",
             extra=("--onnx-as", "decoder"))


@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_onnx_initializers_are_refused(value, tmp_path, capsys):
    W = np.ones((3, 2), np.float32)
    W[1, 0] = value
    path = _onnx(tmp_path, "nan.onnx", [helper.make_node("MatMul", ["z", "W"], ["x"], name="mm")],
                 [("z", ["batch", 3])], [("x", ["batch", 2])], [numpy_helper.from_array(W, "W")])
    _refused(path, tmp_path, capsys, "initializer 'W'", "non-finite", "flat index 2")


def test_inconsistent_or_non_real_onnx_initializers_are_refused(tmp_path, capsys):
    def with_init(t, name):
        return _onnx(tmp_path, name, [helper.make_node("MatMul", ["z", "W"], ["x"], name="mm")],
                     [("z", ["batch", 3])], [("x", ["batch", 2])], [t])

    huge = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[2**20, 2**20], raw_data=b"")
    _refused(with_init(huge, "huge.onnx"), tmp_path, capsys, "initializer 'W'", "1099511627776 elements")
    short = TensorProto(name="W", data_type=TensorProto.FLOAT, dims=[3, 2], raw_data=b"\0" * 8)
    _refused(with_init(short, "short.onnx"), tmp_path, capsys, "initializer 'W'", "stores 8 bytes (expected 24)")
    cplx = helper.make_tensor("W", TensorProto.COMPLEX64, [3, 2], vals=np.ones(12, np.float32).tobytes(), raw=True)
    _refused(with_init(cplx, "cplx.onnx"), tmp_path, capsys, "initializer 'W'")


# --- the memory-exhaustion cases under an address-space cap ----------------------------------

_CAPPED = r"""
import json, resource, sys
resource.setrlimit(resource.RLIMIT_AS, ({cap}, {cap}))
from neurodeploy.app import cli
out = {{}}
for path, extra in json.loads(sys.argv[1]):
    out[path] = cli.main(["import", path, "-o", path + ".yaml", *extra])
print("RESULT " + json.dumps(out))
"""


def test_memory_exhaustion_cases_fail_cleanly_under_a_1_gib_address_space_cap(tmp_path):
    ok = _nir_file(tmp_path, "control.nir")
    cases = [(ok, []), (_huge_string_file(tmp_path), []), (_huge_float_file(tmp_path), []),
             (_huge_chunk_file(tmp_path), []), (_many_strings_file(tmp_path), []),
             (_activation_first(tmp_path, 30_000), []), (_activation_first(tmp_path, 100_000), []),
             (_broadcast_bomb(tmp_path), ["--onnx-as", "decoder"])]
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    p = subprocess.run([sys.executable, "-c", _CAPPED.format(cap=MEM_CAP),
                        json.dumps([[str(c), e] for c, e in cases])],
                       capture_output=True, text=True, timeout=120, env=env, check=False)
    lines = [ln for ln in p.stdout.splitlines() if ln.startswith("RESULT ")]
    assert p.returncode == 0 and lines, p.stderr[-3000:]
    rcs = json.loads(lines[0][len("RESULT "):])
    assert rcs.pop(str(ok)) == 0, p.stderr[-3000:]  # the cap leaves room for a normal import
    assert rcs and all(rc == 1 for rc in rcs.values()), (rcs, p.stderr[-3000:])
    assert "internal error" not in p.stderr and "MemoryError" not in p.stderr
