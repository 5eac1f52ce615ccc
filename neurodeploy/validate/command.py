"""``neurodeploy validate`` (not implemented yet)."""

from __future__ import annotations

from ..errors import NotImplementedYet


def add_arguments(sp) -> None:
    sp.add_argument("spec", metavar="SPEC")
    sp.add_argument("--target", "-t", required=True, help="target to validate")
    sp.add_argument("--reference", default="brian2", help="reference target (default: brian2)")
    sp.add_argument("--tolerance-file", metavar="FILE", help="YAML file overriding the default tolerances")
    sp.add_argument("-o", "--out", metavar="DIR", required=True, help="output directory (report.json + readable report)")
    sp.add_argument("--json", action="store_true", help="print machine-readable output")


def run(args) -> int:
    from ..spec import load
    from ..targets import load_target

    load(args.spec)
    load_target(args.target)
    load_target(args.reference)
    raise NotImplementedYet("neurodeploy validate is not implemented yet (it lands with the validation issue)")
