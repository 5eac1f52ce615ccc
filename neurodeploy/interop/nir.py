"""NIR import and export (not implemented yet)."""

from __future__ import annotations

from ..errors import NotImplementedYet


def add_import_arguments(sp) -> None:
    pass


def add_export_arguments(sp) -> None:
    pass


def run_import(args) -> int:
    raise NotImplementedYet("importing NIR is not implemented yet (it lands with the interop issue)")


def run_export(args) -> int:
    raise NotImplementedYet("exporting NIR is not implemented yet (it lands with the interop issue)")
