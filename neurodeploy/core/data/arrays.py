"""Array data referenced by specs: user files (.npy/.npz) and bundled datasets.

Files from users are untrusted: shapes are read from the file header before anything is
allocated, object arrays are refused, and nothing is ever unpickled (``allow_pickle=False``).
Datasets come from installed packages only (no downloads).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

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


def _check_header(shape, dtype, where: str):
    if dtype.hasobject:
        raise DataError("ND601", f"{where} holds Python objects; only numeric arrays are accepted",
                        "save a numeric array (np.save with a float or int dtype)")
    if dtype.kind not in "biuf":
        raise DataError("ND601", f"{where} has dtype {dtype}; expected numbers")
    n = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if n > MAX_ARRAY_ELEMENTS:
        raise DataError("ND206", f"{where} has {n} elements; the limit is {MAX_ARRAY_ELEMENTS}")
    return tuple(int(s) for s in shape), dtype


def array_header(path: Path, key: str | None = None) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of an .npy file or an .npz member, without loading the data."""
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
                with zf.open(key + ".npy") as f:
                    return _read_npy_header(f, f"{path.name}[{key}]")
        if path.suffix == ".onnx":
            if key is not None:
                raise DataError("ND601", "'key:' applies to .npz files only")
            return _onnx_decoder(path).shape, np.dtype(float)
        if path.suffix == ".npy":
            if key is not None:
                raise DataError("ND601", "'key:' applies to .npz files only")
            with open(path, "rb") as f:
                return _read_npy_header(f, path.name)
    except (OSError, zipfile.BadZipFile, ValueError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError("ND601", f"cannot read '{path.name}': {e}") from None
    raise DataError("ND601", f"'{path.name}' is neither .npy, .npz nor .onnx",
                    "save arrays with numpy.save (.npy) or numpy.savez (.npz), or a linear decoder as ONNX")


def _onnx_decoder(path: Path) -> np.ndarray:
    """Phi (M, K) of a linear ONNX decoder graph z -> x (see neurodeploy.interop.onnx)."""
    try:
        return read_linear_decoder(path)
    except OnnxImportError as e:
        raise DataError(e.code, e.message, e.hint) from None


def _read_npy_header(f, where: str):
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(f)
    elif version in ((2, 0), (3, 0)):
        shape, _, dtype = np.lib.format.read_array_header_2_0(f)
    else:
        raise DataError("ND601", f"{where}: unsupported .npy version {version}")
    return _check_header(shape, dtype, where)


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
        shape, _ = array_header(path, ref.key)  # re-check: the file may have changed
        if path.suffix == ".onnx":
            arr = _onnx_decoder(path)
        elif path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as z:
                key = ref.key or next(iter(z.files))
                arr = np.asarray(z[key], dtype=float)
        else:
            arr = np.asarray(np.load(path, allow_pickle=False), dtype=float)
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
