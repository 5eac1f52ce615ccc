"""Checking an untrusted HDF5 file (a NIR graph) before anything reads it.

:func:`check_hdf5` walks the file's links iteratively with h5py's low-level API, reading only
headers, and refuses (a :class:`~neurodeploy.core.errors.SpecError` naming the file and the
object's path, exit 1):

* links other than plain hard links: external links (another file), soft links (dangling or
  not; ``nir.write`` writes none), user-defined links; an object reached by two links (a hard
  link alias, which is also how a cycle is made);
* datasets whose data is not inside the file or is computed: external raw storage
  (``H5Pset_external``), virtual datasets (``H5D_VIRTUAL``), and any filter other than the
  standard lossless ones (deflate/gzip, shuffle, fletcher32, szip, lzf): an unknown filter
  would make HDF5 look for a plugin;
* datatypes other than integers, floats, booleans/enums and strings (compound types, complex
  numbers, references, variable-length sequences, arrays, opaque, named datatypes);
* sizes: the bytes every dataset declares (shape x item size, with Python ints; a chunked
  dataset counts its chunk when larger), their total, the file itself
  (:data:`~neurodeploy.core.limits.MAX_INTERCHANGE_BYTES`); variable-length strings are read
  a bounded block at a time and their total length is bounded
  (:data:`~neurodeploy.core.limits.MAX_INTERCHANGE_STRING_BYTES`); the number of objects and
  the depth of nested groups.

A file that passes can be handed to ``h5py`` readers that load every dataset (``nir.read``)
without reading anything outside the file or allocating more than the bounds.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import Diagnostic, Span, SpecError
from ..limits import (
    MAX_INTERCHANGE_BYTES,
    MAX_INTERCHANGE_OBJECTS,
    MAX_INTERCHANGE_STRING_BYTES,
)

#: HDF5 filter ids that may appear: deflate, shuffle, fletcher32, szip, lzf
STANDARD_FILTERS = {1: "deflate", 2: "shuffle", 3: "fletcher32", 4: "szip", 32000: "lzf"}
#: bytes charged per variable-length string besides its characters (a Python object each)
STRING_OVERHEAD = 64
HINT = "NIR files written by nir.write hold only groups and datasets stored inside the file"


@dataclass
class Hdf5Summary:
    """What the walk found: objects, declared bytes of the datasets, bytes of the strings."""

    objects: int = 0
    datasets: int = 0
    elements: int = 0
    bytes: int = 0
    string_bytes: int = 0
    depth: int = 0


def _refuse(path, code: str, message: str, where: str = "", hint: str | None = HINT) -> SpecError:
    return SpecError([Diagnostic(code, message, Span(str(path)), where, hint)])


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB" if n < 2**40 else f"{n:.3g} bytes"


def check_hdf5(path, *, max_depth: int = 68, max_bytes: int = MAX_INTERCHANGE_BYTES,
               max_string_bytes: int = MAX_INTERCHANGE_STRING_BYTES,
               max_objects: int = MAX_INTERCHANGE_OBJECTS, what: str = "HDF5 file",
               numeric: Collection[str] = ()) -> Hdf5Summary:
    """Walk the HDF5 file ``path`` (see the module docstring); raise a SpecError or return a
    summary. ``max_depth``: groups nested inside each other below the root; ``what``: the file's
    kind in messages; ``numeric``: names of datasets that must hold numbers (a NIR node's
    parameters), refused when they hold text."""
    import h5py
    from h5py import h5d, h5l, h5o, h5s, h5t

    path = Path(path)
    size = os.stat(path).st_size
    if size > max_bytes:
        raise _refuse(path, "ND102", f"the file is {_mib(size)}, more than {_mib(max_bytes)}", hint=None)
    try:
        f = h5py.File(path, "r")
    except Exception as e:
        raise _refuse(path, "ND601", f"not a readable {what}: {type(e).__name__}: {e}",
                      hint="NIR files are HDF5, written by nir.write") from None
    summary = Hdf5Summary()
    strings: list[tuple[str, object]] = []  # datasets of variable-length strings, read after the walk
    with f:
        try:
            _walk(f, path, summary, strings, max_depth, max_bytes, max_objects, frozenset(numeric),
                  h5d, h5l, h5o, h5s, h5t)
            for where, ds in strings:
                _bound_strings(path, where, ds, summary, max_string_bytes, size)
        except SpecError:
            raise
        except Exception as e:  # a damaged header: HDF5 refuses it while we read headers
            raise _refuse(path, "ND601", f"not a readable {what}: {type(e).__name__}: {e}",
                          hint="NIR files are HDF5, written by nir.write") from None
    return summary


def _walk(f, path, summary, strings, max_depth, max_bytes, max_objects, numeric, h5d, h5l, h5o, h5s, h5t) -> None:
    import h5py

    seen: set[int] = set()
    stack = [("", f.id, 0)]  # (path of the group, its GroupID, depth)
    while stack:
        gpath, gid, depth = stack.pop()
        summary.depth = max(summary.depth, depth)
        if depth > max_depth:
            raise _refuse(path, "ND206", f"groups nested {depth} levels deep (at most {max_depth}: NIR graphs "
                          "nested more than 32 deep)", gpath if len(gpath) < 120 else "..." + gpath[-100:], hint=None)
        names: list = []

        def collect(n, names=names):  # a non-None return stops the iteration
            names.append(n)
            return 1 if len(names) > max_objects else None

        gid.links.iterate(collect)
        for bname in names:
            summary.objects += 1
            if summary.objects > max_objects:
                raise _refuse(path, "ND206", f"more than {max_objects:,} objects in the file", gpath or "/", hint=None)
            name = bname.decode("utf-8", "replace") if isinstance(bname, bytes) else str(bname)
            where = f"{gpath}/{name}"
            info = gid.links.get_info(bname)
            if info.type == h5l.TYPE_EXTERNAL:
                target = gid.links.get_val(bname)
                tf, tp = (x.decode("utf-8", "replace") if isinstance(x, bytes) else str(x) for x in target)
                raise _refuse(path, "ND601", f"'{where}' is an external link to '{tp}' in file '{tf}': a NIR "
                              "file may not refer to other files", where)
            if info.type == h5l.TYPE_SOFT:
                target = gid.links.get_val(bname)
                tp = target.decode("utf-8", "replace") if isinstance(target, bytes) else str(target)
                try:
                    h5o.open(gid, bname)
                    dangling = False
                except Exception:
                    dangling = True
                raise _refuse(path, "ND601", f"'{where}' is a soft link to '{tp}'"
                              f"{' (dangling)' if dangling else ''}: a NIR file holds no links", where)
            if info.type != h5l.TYPE_HARD:
                raise _refuse(path, "ND601", f"'{where}' is a user-defined link (type {info.type})", where)
            oid = h5o.open(gid, bname)
            oinfo = h5o.get_info(oid)
            if oinfo.rc != 1 or oinfo.addr in seen:
                raise _refuse(path, "ND601", f"'{where}' is reached by {max(oinfo.rc, 2)} links (an alias or a "
                              "cycle of groups)", where)
            seen.add(oinfo.addr)
            if oinfo.type == h5o.TYPE_GROUP:
                stack.append((where, oid, depth + 1))
            elif oinfo.type == h5o.TYPE_DATASET:
                summary.datasets += 1
                if name in numeric and oid.get_type().get_class() == h5t.STRING:
                    raise _refuse(path, "ND203", f"dataset '{where}' holds text; NIR parameter '{name}' must be "
                                  "numbers", where, hint="NIR parameters are real float or integer arrays")
                n = _check_dataset(path, where, oid, h5d, h5s, h5t, summary)
                if n is None:
                    strings.append((where, h5py.Dataset(oid)))
                    continue
                if n > max_bytes:
                    raise _refuse(path, "ND206", f"dataset '{where}' declares {_mib(n)}, more than "
                                  f"{_mib(max_bytes)} (its shape x item size, or one chunk if larger; read "
                                  "from the header)", where, hint=None)
                summary.bytes += n
                if summary.bytes > max_bytes:
                    raise _refuse(path, "ND206", f"the file's datasets declare more than {_mib(max_bytes)} in all "
                                  f"(reached at '{where}', {_mib(n)})", where, hint=None)
            else:
                raise _refuse(path, "ND601", f"'{where}' is a named datatype or another kind of object "
                              f"(type {oinfo.type}); a NIR file holds groups and datasets", where)


def _check_dataset(path, where, oid, h5d, h5s, h5t, summary) -> int | None:
    """Declared bytes of dataset ``oid`` (None for variable-length strings), or a SpecError."""
    dcpl = oid.get_create_plist()
    if dcpl.get_external_count():
        name = dcpl.get_external(0)[0]
        name = name.decode("utf-8", "replace") if isinstance(name, bytes) else str(name)
        raise _refuse(path, "ND601", f"dataset '{where}' keeps its data in the external file '{name}': a NIR "
                      "file may not refer to other files", where)
    layout = dcpl.get_layout()
    if layout == h5d.VIRTUAL:
        raise _refuse(path, "ND601", f"dataset '{where}' is a virtual dataset (its data is mapped from other "
                      "datasets or files)", where)
    for i in range(dcpl.get_nfilters()):
        code, _flags, _values, fname = dcpl.get_filter(i)
        if code not in STANDARD_FILTERS:
            fname = fname.decode("utf-8", "replace") if isinstance(fname, bytes) else str(fname)
            raise _refuse(path, "ND601", f"dataset '{where}' uses HDF5 filter {code} ({fname or 'unnamed'}), not a "
                          "standard compression", where,
                          "allowed filters: " + ", ".join(STANDARD_FILTERS.values()))
    tid = oid.get_type()
    cls = tid.get_class()
    if cls == h5t.STRING:
        if tid.is_variable_str():
            summary.elements += _elements(oid.get_space(), h5s)
            return None
        item = int(tid.get_size())
    elif cls in (h5t.INTEGER, h5t.FLOAT, h5t.ENUM):
        item = int(tid.get_size())
    elif cls == h5t.COMPOUND:
        raise _refuse(path, "ND203", f"dataset '{where}' has a compound type (complex numbers are stored so); "
                      "NIR parameters are real numbers", where, hint="store real weights (float32/float64)")
    else:
        kinds = {h5t.REFERENCE: "references", h5t.VLEN: "variable-length sequences", h5t.ARRAY: "an array type",
                 h5t.OPAQUE: "an opaque type", h5t.BITFIELD: "a bitfield", h5t.TIME: "a time type"}
        raise _refuse(path, "ND203", f"dataset '{where}' holds {kinds.get(cls, f'datatype class {cls}')}; NIR "
                      "datasets hold numbers and strings", where)
    elements = _elements(oid.get_space(), h5s)
    n = elements * item
    summary.elements += elements
    if layout == h5d.CHUNKED:
        chunk = 1
        for d in dcpl.get_chunk() or ():
            chunk *= int(d)
        n = max(n, chunk * item)  # HDF5 allocates whole chunks (a fill value, or a decompressed chunk)
    return n


def _elements(space, h5s) -> int:
    kind = space.get_simple_extent_type()
    if kind == h5s.NULL:
        return 0
    if kind == h5s.SCALAR:
        return 1
    n = 1
    for d in space.get_simple_extent_dims():
        n *= int(d)
    return n


def _bound_strings(path, where, ds, summary, max_string_bytes, file_size) -> None:
    """Read variable-length strings in blocks small enough that a block cannot exceed the bound
    (each string lies in the file, so it is at most the file's size), summing their lengths."""
    n = 1
    for d in ds.shape or ():
        n *= int(d)
    if ds.shape is None or n == 0:
        return
    summary.string_bytes += n * STRING_OVERHEAD
    if summary.string_bytes > max_string_bytes:
        raise _refuse(path, "ND206", f"the file's strings hold more than {_mib(max_string_bytes)} (reached at "
                      f"'{where}', {n:,} strings)", where, hint=None)
    block = max(1, min(4096, max_string_bytes // max(file_size, 1)))
    if not ds.shape:
        rows, last = [()], 1
    else:
        lead, last = ds.shape[:-1], int(ds.shape[-1])
        rows = np.ndindex(*lead) if lead else [()]
    for idx in rows:
        for j in range(0, last, block):
            part = ds[()] if not ds.shape else ds[tuple(idx) + (slice(j, j + block),)]
            for s in np.asarray(part, dtype=object).reshape(-1):
                summary.string_bytes += len(s) if isinstance(s, (bytes, str)) else 0
            if summary.string_bytes > max_string_bytes:
                raise _refuse(path, "ND206", f"the file's strings hold more than {_mib(max_string_bytes)} (reached "
                              f"at '{where}')", where, hint=None)


__all__ = ["STANDARD_FILTERS", "Hdf5Summary", "check_hdf5"]
