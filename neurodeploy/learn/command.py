"""``neurodeploy train`` (not implemented yet)."""

from __future__ import annotations

from ..errors import NotImplementedYet


def add_arguments(sp) -> None:
    sp.add_argument("spec", metavar="SPEC")


def run(args) -> int:
    from ..spec import load

    load(args.spec)
    raise NotImplementedYet("neurodeploy train is not implemented yet (it lands with the iP-VAE and plasticity issues)")
