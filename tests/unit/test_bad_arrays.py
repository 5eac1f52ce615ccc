"""Hostile and malformed array files and spec files from users (issues 16 and 19): NaN/inf in
array data, .npy headers whose shape overflows, truncated data, paths that leave the spec's
folder, YAML nested deeper than the documented limit, and a bad ``import --input`` file. Each test
writes its own malformed file; every one must be refused with exit 1 and a located diagnostic,
never an internal error or a traceback."""

from __future__ import annotations

import io
import json
import os
import shutil
import time
import tracemalloc
import zipfile
from pathlib import Path

import numpy as np
import pytest

import neurodeploy as nd
from neurodeploy.app.cli import main
from neurodeploy.core.data import DataError, array_header, load_array
from neurodeploy.core.data import arrays
from neurodeploy.core.errors import SpecError
from neurodeploy.core.source import MAX_DEPTH
from neurodeploy.spec.loader import outside_paths_allowed

ROOT = Path(__file__).resolve().parents[2]

SPEC = """\
neurodeploy: 1
name: arrays
simulation:
  dt: 0.1 ms
  duration: 5 ms
populations:
  - name: a
    size: 4
    model: lif
  - name: b
    size: 3
    model: lif
projections:
  - name: ab
    source: a
    target: b
    weights: {WEIGHTS}
"""
WEIGHTS_LINE = 17  # the line of `weights:` in SPEC


def spec_with(folder: Path, weights: str, name: str = "s.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    p = folder / name
    p.write_text(SPEC.replace("{WEIGHTS}", weights))
    return p


def check_json(spec: Path, capsys, *extra: str) -> tuple[int, list[dict]]:
    rc = main(["check", str(spec), "--json", *extra])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err and "internal error" not in err, out + err
    return rc, json.loads(out)[0]["diagnostics"]


def only_error(diags: list[dict]) -> dict:
    errors = [d for d in diags if d["severity"] == "error"]
    assert len(errors) == 1, errors
    return errors[0]


def npy_bytes(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


def handwritten_npy(shape_text: str, descr: str = "<f8", data: bytes = b"") -> bytes:
    """An .npy (version 1.0) with exactly the header text given, padded as numpy pads it."""
    hdr = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % (descr, shape_text)
    hdr += " " * (64 - (10 + len(hdr) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(hdr).to_bytes(2, "little") + hdr.encode() + data


# --- NaN / inf ---------------------------------------------------------------------------------

def test_nan_in_npy_weights_is_located(tmp_path, capsys):
    w = np.full((4, 3), 0.5)
    w[2, 1] = np.nan
    np.save(tmp_path / "w.npy", w)
    rc, diags = check_json(spec_with(tmp_path, "{file: w.npy, unit: mV}"), capsys)
    d = only_error(diags)
    assert rc == 1 and d["code"] == "ND205"
    assert (d["line"], d["path"]) == (WEIGHTS_LINE, "projections[0].weights.file")
    assert d["file"].endswith("s.yaml")
    assert "w.npy holds NaN at index [2, 1]" in d["message"] and "nan_to_num" in d["hint"]


def test_inf_in_npz_member_is_located(tmp_path, capsys):
    np.savez(tmp_path / "w.npz", ok=np.ones((4, 3)), w=np.array([[0.5, 0.5, -np.inf]] * 4))
    rc, diags = check_json(spec_with(tmp_path, "{file: w.npz, key: w, unit: mV}"), capsys)
    d = only_error(diags)
    assert rc == 1 and d["code"] == "ND205" and d["line"] == WEIGHTS_LINE
    assert "w.npz[w] holds -inf at index [0, 2]" in d["message"]
    # the finite member of the same file is fine
    rc, diags = check_json(spec_with(tmp_path, "{file: w.npz, key: ok, unit: mV}"), capsys)
    assert rc == 0, diags


def test_nan_index_in_fortran_order_and_past_the_first_chunk(tmp_path, monkeypatch):
    monkeypatch.setattr(arrays, "SCAN_CHUNK_BYTES", 64)  # 8 values per read: many chunks
    a = np.zeros((30, 20))
    a[17, 9] = np.inf
    np.save(tmp_path / "c.npy", a)
    np.save(tmp_path / "f.npy", np.asfortranarray(a))
    for name in ("c.npy", "f.npy"):
        with pytest.raises(DataError) as e:
            array_header(tmp_path / name)
        assert e.value.code == "ND205" and "+inf at index [17, 9]" in e.value.message, e.value.message
    np.save(tmp_path / "ints.npy", np.arange(12, dtype=np.int32).reshape(3, 4))  # ints are always finite
    assert array_header(tmp_path / "ints.npy") == ((3, 4), np.dtype(np.int32))


def test_nan_in_other_array_uses_and_inline(tmp_path, capsys):
    rates = np.full(4, 10.0)
    rates[3] = np.nan
    np.save(tmp_path / "rates.npy", rates)
    spec = tmp_path / "rates.yaml"
    spec.write_text(SPEC.replace("{WEIGHTS}", "0.5 mV").replace(
        "projections:", "stimuli:\n  - {name: drive, kind: poisson, size: 4, rates: {file: rates.npy, unit: Hz}}\n"
                        "projections:"))
    rc, diags = check_json(spec, capsys)
    d = only_error(diags)
    assert rc == 1 and d["code"] == "ND205" and d["path"] == "stimuli[0].rates.file" and "[3]" in d["message"]
    rc, diags = check_json(spec_with(tmp_path, "{inline: [[0.5, .inf, 0.5], [0, 0, 0], [0, 0, 0], [0, 0, 0]], "
                                               "unit: mV}", "inline.yaml"), capsys)
    d = only_error(diags)
    assert rc == 1 and d["code"] == "ND205" and d["path"] == "projections[0].weights.inline[0][1]"


def test_nan_written_after_check_is_refused_when_loaded(tmp_path):
    np.save(tmp_path / "w.npy", np.full((4, 3), 0.5))
    net = nd.load(spec_with(tmp_path, "{file: w.npy, unit: mV}"))
    ref = net.projections[0].weights.data
    np.save(tmp_path / "w.npy", np.full((4, 3), np.nan))
    with pytest.raises(DataError, match="NaN at index \\[0, 0\\]"):
        load_array(ref, tmp_path)


def test_run_refuses_nan_weights_before_simulating(tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.full((4, 3), np.nan))
    rc = main(["run", str(spec_with(tmp_path, "{file: w.npy, unit: mV}")), "-t", "brian2", "-o", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 1 and "ND205" in err and "w.npy holds NaN" in err
    assert not (tmp_path / "o" / "summary.json").exists()


# --- headers and sizes -------------------------------------------------------------------------

def test_overflowing_header_shape_is_refused(tmp_path, capsys):
    assert int(np.prod((2**62, 4), dtype=np.int64)) == 0  # why the count needs Python ints
    (tmp_path / "w.npy").write_bytes(handwritten_npy("(4611686018427387904, 4)"))
    rc, diags = check_json(spec_with(tmp_path, "{file: w.npy, unit: mV}"), capsys)
    d = only_error(diags)
    assert rc == 1 and d["code"] == "ND206" and d["line"] == WEIGHTS_LINE
    assert str(2**64) in d["message"] and "limit" in d["message"]


def test_negative_header_dimension_is_refused(tmp_path):
    (tmp_path / "w.npy").write_bytes(handwritten_npy("(-3, 4)"))
    with pytest.raises(DataError, match="negative dimension"):
        array_header(tmp_path / "w.npy")


def test_truncated_npy_is_refused_at_check(tmp_path, capsys):
    (tmp_path / "w.npy").write_bytes(npy_bytes(np.full((4, 3), 0.5))[:-24])
    rc, diags = check_json(spec_with(tmp_path, "{file: w.npy, unit: mV}"), capsys)
    d = only_error(diags)
    assert rc == 1 and d["code"] == "ND601" and d["line"] == WEIGHTS_LINE
    assert "w.npy is truncated" in d["message"] and "96 bytes of data" in d["message"] and "72 bytes" in d["message"]
    # a header that declares data while the file ends right after it
    (tmp_path / "w.npy").write_bytes(handwritten_npy("(4, 3)"))
    rc, diags = check_json(tmp_path / "s.yaml", capsys)
    assert rc == 1 and "truncated" in only_error(diags)["message"]


def test_file_truncated_after_check_is_a_data_error_at_run(tmp_path):
    np.save(tmp_path / "w.npy", np.full((4, 3), 0.5))
    net = nd.load(spec_with(tmp_path, "{file: w.npy, unit: mV}"))
    (tmp_path / "w.npy").write_bytes(npy_bytes(np.full((4, 3), 0.5))[:-8])
    with pytest.raises(DataError, match="truncated"):
        load_array(net.projections[0].weights.data, tmp_path)


def test_truncated_npz_member_is_refused(tmp_path, capsys):
    with zipfile.ZipFile(tmp_path / "w.npz", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("w.npy", npy_bytes(np.full((4, 3), 0.5))[:-24])
    rc, diags = check_json(spec_with(tmp_path, "{file: w.npz, key: w, unit: mV}"), capsys)
    d = only_error(diags)
    assert rc == 1 and d["code"] == "ND601" and "w.npz[w] is truncated" in d["message"]


def test_npz_member_size_is_bounded_before_reading(tmp_path):
    with zipfile.ZipFile(tmp_path / "w.npz", "w", zipfile.ZIP_STORED) as z:
        z.writestr("w.npy", npy_bytes(np.full((4, 3), 0.5)))
    raw = bytearray((tmp_path / "w.npz").read_bytes())
    cd = raw.index(b"PK\x01\x02")  # the central directory entry: uncompressed size at +24
    raw[cd + 24: cd + 28] = (0xFFFFFFF0).to_bytes(4, "little")
    (tmp_path / "w.npz").write_bytes(bytes(raw))
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as e:
            array_header(tmp_path / "w.npz", "w")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert e.value.code == "ND206" and "unpacks to 4294967280 bytes" in e.value.message
    assert peak < 4 * 2**20, peak


def test_scan_memory_is_bounded_by_the_chunk(tmp_path):
    np.save(tmp_path / "big.npy", np.zeros(4_000_000))  # 32 MB of data, scanned in 8 MiB chunks
    tracemalloc.start()
    try:
        assert array_header(tmp_path / "big.npy") == ((4_000_000,), np.dtype(float))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * arrays.SCAN_CHUNK_BYTES < 32_000_000, peak  # one chunk, not the whole array


# --- paths outside the spec's folder -------------------------------------------------------------

@pytest.fixture
def outside(tmp_path) -> Path:
    """tmp_path/outside/w.npy (a valid array) and the spec folder tmp_path/project/specs."""
    (tmp_path / "outside").mkdir()
    np.save(tmp_path / "outside" / "w.npy", np.full((4, 3), 0.5))
    (tmp_path / "project" / "specs").mkdir(parents=True)
    return tmp_path / "outside" / "w.npy"


def test_relative_path_outside_the_folder_is_refused(tmp_path, outside, capsys):
    spec = spec_with(tmp_path / "project" / "specs", "{file: ../../outside/w.npy, unit: mV}")
    rc, diags = check_json(spec, capsys)
    d = only_error(diags)
    assert rc == 1 and d["code"] == "ND601" and d["line"] == WEIGHTS_LINE
    assert "'../../outside/w.npy' leads outside the spec's folder" in d["message"]
    assert "--allow-outside-paths" in d["hint"] and "allow_outside_paths=True" in d["hint"]
    rc, diags = check_json(spec, capsys, "--allow-outside-paths")
    assert rc == 0, diags
    assert nd.load(spec, allow_outside_paths=True).projections[0].weights.data.shape == (4, 3)
    with pytest.raises(SpecError):
        nd.load(spec)
    with outside_paths_allowed():
        assert nd.check(spec)[0] is not None
    assert nd.check(spec)[0] is None  # the context ends with the block
    # refused before the file is opened: a missing file outside gets the same answer
    rc, diags = check_json(spec_with(tmp_path / "project" / "specs", "{file: ../nope/w.npy, unit: mV}"), capsys)
    assert rc == 1 and "leads outside" in only_error(diags)["message"]


def test_absolute_path_is_refused(tmp_path, outside, capsys):
    spec = spec_with(tmp_path / "project" / "specs", f"{{file: '{outside}', unit: mV}}")
    rc, diags = check_json(spec, capsys)
    d = only_error(diags)
    assert rc == 1 and d["code"] == "ND601" and "is an absolute path" in d["message"]
    assert "--allow-outside-paths" in d["hint"]
    # even when it points into the spec's own folder
    np.save(tmp_path / "project" / "specs" / "w.npy", np.full((4, 3), 0.5))
    inside = spec_with(tmp_path / "project" / "specs", f"{{file: '{tmp_path / 'project/specs/w.npy'}', unit: mV}}")
    rc, diags = check_json(inside, capsys)
    assert rc == 1 and "absolute path" in only_error(diags)["message"]
    rc, diags = check_json(spec, capsys, "--allow-outside-paths")
    assert rc == 0, diags


def test_symbolic_links_are_resolved(tmp_path, outside, capsys):
    specs = tmp_path / "project" / "specs"
    np.save(specs / "real.npy", np.full((4, 3), 0.5))
    try:
        os.symlink(outside, specs / "leak.npy")
        os.symlink(specs / "real.npy", specs / "alias.npy")
    except OSError:
        pytest.skip("no symbolic links here")
    rc, diags = check_json(spec_with(specs, "{file: leak.npy, unit: mV}"), capsys)
    assert rc == 1 and "through a symbolic link outside" in only_error(diags)["message"]
    rc, diags = check_json(spec_with(specs, "{file: alias.npy, unit: mV}"), capsys)
    assert rc == 0, diags


def test_paths_inside_the_folder_are_read(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    np.save(tmp_path / "data" / "w.npy", np.full((4, 3), 0.5))
    for rel in ("data/w.npy", "data/../data/w.npy", "./data/w.npy"):
        rc, diags = check_json(spec_with(tmp_path, f"{{file: {rel}, unit: mV}}"), capsys)
        assert rc == 0, (rel, diags)


def test_shipped_models_share_their_weights_folder(tmp_path, capsys):
    names = ["models/ipvae/ipvae_digits.yaml", "models/ipvae/lca_digits.yaml", "models/ipvae/ipvae_digits_expanded.yaml"]
    for name in names:
        net, diags = nd.check(ROOT / name)
        assert net is not None, [d.render() for d in diags]
    # the same spec copied elsewhere, its `../weights/...` now leaving its folder, is refused
    copy = tmp_path / "mine" / "ipvae_digits.yaml"
    copy.parent.mkdir()
    shutil.copy(ROOT / names[0], copy)
    (tmp_path / "weights").symlink_to(ROOT / "models" / "weights")
    net, diags = nd.check(copy)
    assert net is None and {d.code for d in diags if d.severity == "error"} == {"ND601"}
    assert nd.check(copy, allow_outside_paths=True)[0] is not None


# --- deep YAML ---------------------------------------------------------------------------------

DEEP_HEAD = "neurodeploy: 1\nname: deep\nsimulation: {dt: 0.1 ms, steps: 10}\npopulations: [{name: a, size: 1, model: lif}]\n"


@pytest.mark.parametrize("style", ["flow_list", "flow_map", "block_list", "block_map"])
def test_deep_yaml_gives_a_located_diagnostic(tmp_path, capsys, style):
    n = 10_000
    body = {
        "flow_list": "description: " + "[" * n + "]" * n + "\n",
        "flow_map": "description: " + "{a: " * n + "1" + "}" * n + "\n",
        "block_list": "description:\n  " + "- " * n + "x\n",
        "block_map": "description:\n" + "".join(" " * i + f"k{i}:\n" for i in range(1, 400)) + " " * 400 + "v\n",
    }[style]
    spec = tmp_path / "deep.yaml"
    spec.write_text(DEEP_HEAD + body)
    t0 = time.perf_counter()
    rc, diags = check_json(spec, capsys)
    d = only_error(diags)
    assert rc == 1 and d["code"] == "ND102" and f"deeper than {MAX_DEPTH} levels" in d["message"]
    assert d["line"] >= 5 and d["col"] >= 1  # in the description, at the first level too deep
    assert time.perf_counter() - t0 < 5


def test_depth_limit_is_exact_and_holds_through_aliases(tmp_path, capsys):
    ok = tmp_path / "ok.yaml"
    ok.write_text(DEEP_HEAD + "description: " + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "\n")
    rc, diags = check_json(ok, capsys)
    assert all(d["code"] != "ND102" for d in diags), diags  # exactly the limit: not a depth error
    aliased = tmp_path / "alias.yaml"
    half = MAX_DEPTH // 2 + 2
    aliased.write_text(DEEP_HEAD + "x: &a " + "[" * half + "]" * half + "\n"
                       "description: " + "[" * half + "*a" + "]" * half + "\n")
    rc, diags = check_json(aliased, capsys)
    assert rc == 1 and "ND102" in {d["code"] for d in diags}


# --- import --input ------------------------------------------------------------------------------

PAPER = ROOT / "tests" / "fixtures" / "nir-paper-lif"


@pytest.mark.parametrize("case", ["nan", "truncated", "object", "not_csv", "missing", "suffix"])
def test_import_bad_input_file_exits_1_naming_it(tmp_path, capsys, case):
    pytest.importorskip("nir")
    f = tmp_path / {"not_csv": "in.csv", "suffix": "in.txt"}.get(case, "in.npy")
    if case == "nan":
        a = np.zeros((10, 1))
        a[4, 0] = np.nan
        np.save(f, a)
    elif case == "truncated":
        f.write_bytes(npy_bytes(np.zeros((10, 1)))[:-16])
    elif case == "object":
        np.save(f, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    elif case == "not_csv":
        f.write_text("step,spike\n0,yes\n")
    elif case == "suffix":
        f.write_text("0\n1\n")
    rc = main(["import", str(PAPER / "lif_norse.nir"), "-o", str(tmp_path / "o.yaml"), "--input", str(f), "--json"])
    out, err = capsys.readouterr()
    assert rc == 1, (out, err)
    assert "Traceback" not in out + err and "internal error" not in err
    d = json.loads(out)["diagnostics"][0]
    assert d["file"] == str(f) and d["path"] == "--input"
    assert {"nan": "ND205", "missing": "ND600"}.get(case, "ND601") == d["code"], d
    assert not (tmp_path / "o.yaml").exists()


def test_nan_in_an_onnx_decoder_is_refused(tmp_path, capsys):
    pytest.importorskip("onnx")
    from neurodeploy.interop.onnx import linear_decoder_model, save_model

    Phi = np.ones((9, 5))
    Phi[7, 3] = np.nan
    save_model(linear_decoder_model(Phi), tmp_path / "dec.onnx")
    spec = tmp_path / "coder.yaml"
    spec.write_text(
        "neurodeploy: 1\nname: c\nsimulation: {dt: 1 ms, steps: 10}\n"
        f"stimuli:\n  - {{name: x, kind: array, encoding: value, data: {{inline: [{[0.0] * 9}]}}}}\n"
        "blocks:\n  - {name: c, kind: ipvae, input: x, latent: 5, decoder: {file: dec.onnx}, iterations: 7}\n")
    rc, diags = check_json(spec, capsys)
    d = only_error(diags)
    assert rc == 1 and d["code"] == "ND205" and d["line"] == 7 and "dec.onnx" in d["message"] and "NaN" in d["message"]
