"""Array data referenced by specs: user files (.npy/.npz) and bundled datasets.

Files from users are untrusted: shapes are read from the file header before anything is
allocated (element counts and byte sizes as Python ints, so a huge declared shape cannot wrap
around), the file (or ``.npz`` member) must hold every byte its header declares, object arrays
are refused, nothing is ever unpickled (``allow_pickle=False``), and every value must be finite
(NaN or inf is refused with the index of the first one; :func:`array_header` scans the values in
bounded chunks). Datasets come from installed packages only (no downloads).
"""

from __future__ import annotations

import math
import zipfile
import zlib
from pathlib import Path
from typing import NamedTuple

import numpy as np

from ..errors import did_you_mean
from ..limits import MAX_ARRAY_ELEMENTS
from .onnx import OnnxImportError, read_linear_decoder
from .patches import load_patches

#: name -> (shape of one sample, number of samples, description)
DATASETS = {
    "digits": ((64,), 1797, "scikit-learn's bundled 8x8 handwritten digits, scaled to [0, 1]"),
    "patches8": ((64,), 18000, "8x8 natural-image patches from scikit-image's bundled photos, "
                 "whitened and contrast-normalised (16000 train, then 2000 test)"),
    "patches16": ((256,), 9000, "16x16 natural-image patches, as patches8 (8000 train, then 1000 test)"),
}


class DataError(ValueError):
    def __init__(self, code: str, message: str, hint: str | None = None):
        super().__init__(message)
        self.code, self.message, self.hint = code, message, hint


#: values read at a time when a file's values are scanned (bytes)
SCAN_CHUNK_BYTES = 8 * 2**20
#: the longest .npy header read (numpy writes a few hundred bytes; it refuses more than 10000)
MAX_HEADER_BYTES = 65_536
#: the largest .npz member opened, before its header is read: the element limit at 8 bytes each
MAX_MEMBER_BYTES = MAX_ARRAY_ELEMENTS * 8 + MAX_HEADER_BYTES


class Header(NamedTuple):
    """What an .npy header declares, checked: ``offset`` is where the data starts."""

    shape: tuple[int, ...]
    dtype: np.dtype
    fortran: bool
    offset: int
    nbytes: int


def _check_header(shape, dtype, where: str) -> tuple[tuple[int, ...], int]:
    """(shape as Python ints, bytes of data) of a declared header; DataError if refused."""
    if dtype.hasobject:
        raise DataError("ND601", f"{where} holds Python objects; only numeric arrays are accepted",
                        "save a numeric array (np.save with a float or int dtype)")
    if dtype.kind not in "biuf":
        raise DataError("ND601", f"{where} has dtype {dtype}; expected numbers")
    dims = tuple(int(d) for d in shape)  # Python ints: the product below cannot wrap around
    if any(d < 0 for d in dims):
        raise DataError("ND601", f"{where}: the header declares a negative dimension, shape {dims}",
                        "the file is damaged; save the array again with numpy.save")
    n = math.prod(dims)
    if n > MAX_ARRAY_ELEMENTS:
        raise DataError("ND206", f"{where} declares shape {dims}: {n} elements; the limit is {MAX_ARRAY_ELEMENTS}")
    return dims, n * dtype.itemsize


def array_header(path: Path, key: str | None = None, *,
                 values: bool = True) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of an .npy file or an .npz member, checked without loading the data: the
    header (dtype, shape within the limits), the file's size against it, and with ``values``
    every value finite (read in chunks of :data:`SCAN_CHUNK_BYTES`). Raises :class:`DataError`."""
    if not path.exists():
        raise DataError("ND600", f"data file '{path}' not found",
                        "paths are relative to the spec file's directory")
    if not path.is_file():
        raise DataError("ND600", f"'{path}' is not a file")
    try:
        if path.suffix == ".npz":
            with zipfile.ZipFile(path) as zf:
                names = [n[:-4] for n in zf.namelist() if n.endswith(".npy")]
                if key is None:
                    if len(names) != 1:
                        raise DataError("ND601", f"'{path.name}' holds {len(names)} arrays ({', '.join(names)}); say which with 'key:'")
                    key = names[0]
                if key not in names:
                    raise DataError("ND601", f"'{path.name}' has no array '{key}'",
                                    did_you_mean(key, names) or "arrays: " + ", ".join(names))
                where = f"{path.name}[{key}]"
                info = zf.getinfo(key + ".npy")
                if info.file_size > MAX_MEMBER_BYTES:
                    raise DataError("ND206", f"{where} unpacks to {info.file_size} bytes; the limit is "
                                             f"{MAX_MEMBER_BYTES} ({MAX_ARRAY_ELEMENTS} elements of 8 bytes)")
                with zf.open(info) as f:
                    h = _read_npy_header(f, where, info.file_size)
                    if values:
                        _scan_finite(f, h, where)
                return h.shape, h.dtype
        if path.suffix == ".onnx":
            if key is not None:
                raise DataError("ND601", "'key:' applies to .npz files only")
            return _onnx_decoder(path).shape, np.dtype(float)
        if path.suffix == ".npy":
            if key is not None:
                raise DataError("ND601", "'key:' applies to .npz files only")
            with open(path, "rb") as f:
                h = _read_npy_header(f, path.name, path.stat().st_size)
                if values:
                    _scan_finite(f, h, path.name)
            return h.shape, h.dtype
    except (OSError, zipfile.BadZipFile, zlib.error, EOFError, ValueError, SyntaxError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError("ND601", f"cannot read '{path.name}': {e}") from None
    raise DataError("ND601", f"'{path.name}' is neither .npy, .npz nor .onnx",
                    "save arrays with numpy.save (.npy) or numpy.savez (.npz), or a linear decoder as ONNX")


def _onnx_decoder(path: Path) -> np.ndarray:
    """Phi (M, K) of a linear ONNX decoder graph z -> x (see neurodeploy.interop.onnx)."""
    try:
        phi = read_linear_decoder(path)
    except OnnxImportError as e:
        raise DataError(e.code, e.message, e.hint) from None
    _finite(np.asarray(phi), path.name)
    return phi


def _read_npy_header(f, where: str, available: int) -> Header:
    """The checked header of the .npy data in ``f`` (at its start), which holds ``available``
    bytes in all: fewer than the header declares is a truncated file."""
    try:
        version = np.lib.format.read_magic(f)
    except ValueError:
        raise DataError("ND601", f"{where} is not an .npy array (no numpy magic bytes)",
                        "save arrays with numpy.save (.npy) or numpy.savez (.npz)") from None
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(f)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise DataError("ND601", f"{where}: unsupported .npy version {version}")
    dims, nbytes = _check_header(shape, dtype, where)
    offset = f.tell()
    if available - offset < nbytes:
        raise DataError("ND601", f"{where} is truncated: its header declares shape {dims} of {dtype} "
                                 f"({nbytes} bytes of data) but it holds {max(available - offset, 0)} bytes after "
                                 f"the header", "the file was cut short (an interrupted copy?); save it again")
    return Header(dims, dtype, bool(fortran), offset, nbytes)


def _scan_finite(f, h: Header, where: str) -> None:
    """Read the data after the header in chunks; DataError at the first NaN or inf."""
    if h.dtype.kind != "f" or h.nbytes == 0:
        return  # integers and booleans are always finite
    size = h.dtype.itemsize
    total = h.nbytes // size
    buf = np.empty(min(max(1, SCAN_CHUNK_BYTES // size), total), dtype=h.dtype)  # reused for every chunk
    raw = memoryview(buf).cast("B")
    done = 0
    while done < total:
        k = min(len(buf), total - done)
        got = 0
        while got < k * size:
            n = f.readinto(raw[got: k * size])
            if not n:
                raise DataError("ND601", f"{where} is truncated: its data ends after {done + got // size} of "
                                         f"{total} values", "the file was cut short (an interrupted copy?); save it again")
            got += n
        chunk = buf[:k]
        bad = ~np.isfinite(chunk)
        if bad.any():
            i = int(np.argmax(bad))
            _refuse_value(chunk[i], done + i, h.shape, h.fortran, where)
        done += k


def _refuse_value(value, flat: int, shape: tuple[int, ...], fortran: bool, where: str):
    idx = np.unravel_index(flat, shape, order="F" if fortran else "C") if shape else ()
    what = "NaN" if np.isnan(value) else ("+inf" if value > 0 else "-inf")
    raise DataError("ND205", f"{where} holds {what} at index [{', '.join(str(int(i)) for i in idx)}] "
                             f"(the first non-finite value); every value must be finite",
                    "replace NaN/inf before saving (e.g. numpy.nan_to_num), or fix what produced them")


def _finite(arr: np.ndarray, where: str) -> None:
    """DataError naming the first NaN/inf of an array that is already in memory."""
    if arr.dtype.kind not in "fc":
        return
    bad = ~np.isfinite(arr)
    if bad.any():
        flat = int(np.argmax(bad.reshape(-1, order="C")))
        _refuse_value(arr.reshape(-1, order="C")[flat], flat, tuple(arr.shape), False, where)


def dataset_shape(name: str, samples: tuple[int, ...] | None) -> tuple[int, ...]:
    shape, n, _ = DATASETS[name]
    count = len(samples) if samples is not None else n
    return (count, *shape)


#: ``ArrayRef.transform`` values: what each does to a 2-D array
TRANSFORMS = {"transpose": "A^T", "gram": "A^T A"}


def transformed_shape(shape: tuple[int, ...], transform: str | None) -> tuple[int, ...]:
    """The shape of ``transform`` applied to an array of ``shape`` (DataError if not 2-D)."""
    if transform is None:
        return tuple(shape)
    if transform not in TRANSFORMS:
        raise DataError("ND207", f"unknown transform '{transform}'", "one of: " + ", ".join(TRANSFORMS))
    if len(shape) != 2:
        raise DataError("ND503", f"transform '{transform}' needs 2-D data; the array has shape {tuple(shape)}")
    return (shape[1], shape[0]) if transform == "transpose" else (shape[1], shape[1])


def _transform(arr: np.ndarray, transform: str | None) -> np.ndarray:
    if transform is None:
        return arr
    transformed_shape(arr.shape, transform)  # checks
    return arr.T.copy() if transform == "transpose" else arr.T @ arr


def load_array(ref, base_dir: str | Path = ".") -> np.ndarray:
    """Materialise an :class:`ArrayRef` as a float64 array: the values, ``ref.transform``
    applied, times ``ref.scale``."""
    if ref.source == "inline":
        arr = np.asarray(ref.values, dtype=float)
    elif ref.source == "file":
        path = Path(base_dir) / ref.path
        # re-check the header and size (the file may have changed since `check`); the values are
        # checked once they are in memory
        array_header(path, ref.key, values=False)
        try:
            if path.suffix == ".onnx":
                arr = _onnx_decoder(path)
            elif path.suffix == ".npz":
                with np.load(path, allow_pickle=False) as z:
                    key = ref.key or next(iter(z.files))
                    arr = np.asarray(z[key], dtype=float)
            else:
                arr = np.asarray(np.load(path, allow_pickle=False), dtype=float)
        except (OSError, zipfile.BadZipFile, zlib.error, EOFError, ValueError) as e:
            if isinstance(e, DataError):
                raise
            raise DataError("ND601", f"cannot read '{path.name}': {e}") from None
        _finite(arr, path.name if ref.key is None else f"{path.name}[{ref.key}]")
    elif ref.source == "dataset":
        arr = _load_dataset(ref.dataset, ref.samples)
    else:
        raise ValueError(f"unknown array source {ref.source!r}")
    arr = _transform(arr, getattr(ref, "transform", None))
    if tuple(arr.shape) != tuple(ref.shape):
        raise DataError("ND503", f"array has shape {arr.shape}, expected {ref.shape} (did the file change?)")
    return arr * ref.scale


def _load_dataset(name: str, samples):
    if name == "digits":
        from sklearn.datasets import load_digits

        x = load_digits().data / 16.0
    elif name in ("patches8", "patches16"):
        x = load_patches(name)
    else:
        raise ValueError(f"unknown dataset {name!r}")
    return x if samples is None else x[np.asarray(samples, dtype=int)]


#: number of held-out samples at the end of each dataset (a fixed train/test split)
TEST_SIZES = {"digits": 297, "patches8": 2000, "patches16": 1000}


def train_test(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The fixed split of a bundled dataset: (train, test) as float64 arrays."""
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}")
    x = _load_dataset(name, None)
    n_test = TEST_SIZES[name]
    return x[:-n_test], x[-n_test:]
