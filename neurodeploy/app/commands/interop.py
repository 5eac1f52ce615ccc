"""``neurodeploy import`` / ``neurodeploy export``: dispatch on the file's suffix.

``.nir`` goes to :mod:`neurodeploy.interop.nir`, ``.onnx`` to :mod:`neurodeploy.interop.onnx`.
Each of those modules provides ``add_import_arguments(parser)``, ``run_import(args)``,
``add_export_arguments(parser)`` and ``run_export(args)`` (the arguments are shared: the
parser is built once, before the suffix is known, so option names must not collide).
"""

from __future__ import annotations

from pathlib import Path

from ...core.errors import Diagnostic, Span, SpecError, UsageError
from ...interop import nir, onnx

FORMATS = {".nir": nir, ".onnx": onnx}


def _module(path: str, what: str):
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise UsageError(f"{what} {path!r}: unknown format {suffix or '(no suffix)'!r}; "
                         f"expected one of {', '.join(sorted(FORMATS))}")
    return FORMATS[suffix]


def add_import_arguments(sp) -> None:
    for mod in FORMATS.values():
        mod.add_import_arguments(sp)


def add_export_arguments(sp) -> None:
    for mod in FORMATS.values():
        mod.add_export_arguments(sp)


def run_import(args) -> int:
    mod = _module(args.file, "input file")
    if not Path(args.file).exists():
        raise SpecError([Diagnostic("ND100", "file not found", Span(str(args.file)))])
    return mod.run_import(args)


def run_export(args) -> int:
    return _module(args.out, "output file").run_export(args)
