"""The ``neurodeploy`` command line: a thin shell over the Python API (:mod:`neurodeploy.app.api`).

Each command parses its arguments, calls one API function and prints what it returns; it knows
neither block kinds nor backends (the API and the registries do). Exit codes: 0 ok, 1 invalid
input, 2 usage error, 3 backend/runtime failure or a feature that has not landed yet. Bad input
never produces a Python traceback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import textwrap
from pathlib import Path

from ..backends.base import backend_statuses
from ..core.errors import (
    EXIT_BACKEND,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    Diagnostic,
    NeurodeployError,
    SpecError,
)
from ..core.io import atomic_write_text, check_output_file
from ..core.result import Result
from ..core.targets import available_targets
from ..core.versions import __version__
from ..ir import to_json
from ..library.blocks import BLOCKS
from ..library.neurons import NEURONS
from ..library.plasticity import RULES
from ..passes.expand import expand, expansion_summary
from ..spec.loader import outside_paths_allowed
from ..spec.overrides import parse_assignments
from . import api
from .commands import interop as interop_cmd, sweep as sweep_cmd, train as train_cmd, validate as validate_cmd

EPILOG = """\
examples:
  neurodeploy check models/*.yaml            validate specs (exit 1 if any is invalid)
  neurodeploy check models/ei_network.yaml --json
  neurodeploy check models/single_lif.yaml --ir out/single_lif.ir.json
  neurodeploy info                           versions and which backends work here
  neurodeploy compile models/cuba_chain.yaml --target loihi2-sim -o out/chain
  neurodeploy run models/single_lif.yaml --target brian2 -o out/lif
  neurodeploy run single_lif -t torch -o out/lif --duration '50 ms' --set neuron.tau_m='10 ms'
  neurodeploy validate models/cuba_chain.yaml --target loihi2-sim -o out/val
  neurodeploy import tests/fixtures/nir-paper-lif/lif_norse.nir -o out/lif_norse.yaml
  neurodeploy export models/cuba_chain.yaml -o out/chain.nir
  neurodeploy train models/train/ipvae_digits.yaml -o out/ipvae
  neurodeploy sweep models/ei_network.yaml --seeds 0..99 --targets torch -o out/ei_seeds
  neurodeploy eval models/ipvae/ipvae_digits.yaml --target loihi2-sim -o out/eval --images 64
  neurodeploy compile models/ipvae/ipvae_digits.yaml --target loihi2-sim -o out/ipvae_loihi

exit codes: 0 ok, 1 invalid input, 2 usage error, 3 backend failure / not implemented yet
docs: docs/spec.md (the YAML format), docs/validate.md, docs/interop.md, docs/torch.md,
      docs/ipvae.md, docs/learning.md, README.md (set-up, status)
"""


#: commands that load specs (they take --allow-outside-paths)
SPEC_COMMANDS = ("check", "compile", "run", "deploy", "eval", "validate", "export", "sweep")


def _color(stream) -> bool:
    return stream.isatty() and os.environ.get("NO_COLOR") is None and os.environ.get("TERM") != "dumb"


def _print_json(obj) -> None:
    sys.stdout.write(json.dumps(obj, indent=2) + "\n")


def _render(diags: list[Diagnostic]) -> None:
    color = _color(sys.stderr)
    for d in diags:
        sys.stderr.write(d.render(color) + "\n")


# --- commands --------------------------------------------------------------------------------

def cmd_check(args) -> int:
    files = []
    for s in args.specs:
        p = Path(s)
        files.extend(sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml")) if p.is_dir() else [p])
    if not files:
        raise NeurodeployError("no spec files found")
    if args.ir and len(files) != 1:
        sys.stderr.write("neurodeploy check: --ir takes exactly one spec\n")
        return EXIT_USAGE
    if args.ir:
        check_output_file(args.ir, "--ir")  # exit 2 naming the path and why, before reading the spec
    records, worst = [], EXIT_OK
    for f in files:
        net, diags = api.check(f)
        errors = [d for d in diags if d.severity == "error"]
        ok = net is not None
        summary = None
        expansion = []
        if ok and args.expand and net.blocks:
            before, net = net, expand(net)
            expansion = expansion_summary(before, net)
        if ok:
            summary = {
                "name": net.name,
                "populations": len(net.populations),
                "neurons": sum(p.size for p in net.populations),
                "stimuli": len(net.stimuli),
                "projections": len(net.projections),
                "probes": len(net.probes),
                "blocks": len(net.blocks),
                "dt_s": net.simulation.dt,
                "steps": net.simulation.steps,
            }
            if args.expand:
                summary["expanded"] = expansion
            if args.ir:
                atomic_write_text(args.ir, to_json(net))
        else:
            worst = EXIT_INVALID
        records.append({"file": str(f), "ok": ok, "diagnostics": [d.to_json() for d in diags],
                        "summary": summary})
        if not args.json:
            _render(diags)
            if ok:
                s = summary
                warn = len(diags)
                print(f"ok  {f}: {_n(s['populations'], 'population')} ({_n(s['neurons'], 'neuron')}), "
                      f"{_n(s['stimuli'], 'stimulus', 'stimuli')}, {_n(s['projections'], 'projection')}, "
                      f"{_n(s['probes'], 'probe')}" + (f", {_n(s['blocks'], 'block')}" if s["blocks"] else "")
                      + f"; {s['steps']} steps of {s['dt_s'] * 1e3:g} ms"
                      + (f" ({warn} warning{'s' * (warn != 1)})" if warn else ""))
                for line in expansion:
                    print(f"    + {line}")
            else:
                n = len(errors) or len(diags)
                print(f"FAIL {f}: {n} error{'s' * (n != 1)}", file=sys.stderr)
    if args.json:
        _print_json(records)
    elif args.ir and worst == EXIT_OK:
        print(f"wrote {args.ir}")
    return worst


def _n(k: int, one: str, many: str | None = None) -> str:
    return f"{k} {one if k == 1 else (many or one + 's')}"


def cmd_convert(args) -> int:
    """A saved result (result.npz, or a run's directory) as an NWB file (docs/running.md)."""
    src = Path(args.result)
    src = src / "result.npz" if src.is_dir() else src
    out = Path(args.out)
    if out.suffix != ".nwb":
        sys.stderr.write(f"neurodeploy convert: the output of --to nwb must end in .nwb, got '{out}'\n")
        return EXIT_USAGE
    try:
        res = Result.load(src)
    except (OSError, ValueError, KeyError) as e:  # missing, not a zip, not our format, a member missing
        sys.stderr.write(f"neurodeploy convert: {src}: not a readable neurodeploy result.npz ({type(e).__name__}: "
                         f"{e}); hint: give the result.npz (or the directory) that `neurodeploy run` wrote\n")
        return EXIT_INVALID
    try:
        res.save_nwb(out)
    except ImportError as e:
        sys.stderr.write(f"neurodeploy convert: {e}; install with pip install 'neurodeploy[neo]'\n")
        return EXIT_BACKEND
    print(f"wrote {out}")
    return EXIT_OK


def cmd_info(args) -> int:
    statuses = backend_statuses()
    targets = available_targets()
    info = {
        "neurodeploy": __version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "backends": [
            {"name": b.name, "available": b.available, "detail": b.detail,
             "implemented": b.implemented,
             "status": ("ready" if b.available else f"not available here ({b.issue})") if b.implemented
             else f"not implemented yet ({b.issue})"}
            for b in statuses
        ],
        "targets": {k: str(v) for k, v in targets.items()},
        "neuron_models": sorted(NEURONS),
        "plasticity_rules": sorted(RULES),
        "blocks": sorted(BLOCKS),
    }
    if args.json:
        _print_json(info)
        return EXIT_OK
    print(f"neurodeploy {__version__} on Python {info['python']} ({info['platform']})")
    print("\nbackends (package found here / implementation in neurodeploy):")
    for b in info["backends"]:
        mark = "yes" if b["available"] else "no "
        print(f"  {b['name']:<8} {mark}  {b['detail']}")
        print(f"  {'':<8}      {b['status']}")
    print("\ntargets:       " + ", ".join(sorted(targets)))
    print("neuron models: " + ", ".join(info["neuron_models"]))
    print("plasticity:    " + ", ".join(info["plasticity_rules"]))
    print("blocks:        " + ", ".join(info["blocks"]))
    return EXIT_OK


def _say(args):
    """Progress messages on stderr, or nothing with --json / --quiet."""
    if getattr(args, "json", False) or getattr(args, "quiet", False):
        return None
    return lambda msg: print(msg, file=sys.stderr)


def _overrides(args) -> dict | None:
    """--set KEY=VALUE (repeatable) as spec overrides (--duration and --seed go to the API as such)."""
    return dict(parse_assignments(getattr(args, "set", None) or [])) or None


def _options(args, target) -> object:
    """The target's backend options from the command line's backend option flags."""
    flags = {k: getattr(args, k, None) for k in ("codegen", "device", "poisson", "torch_device", "dtype", "threads",
                                                 "torch_kernel")}
    flags["progress"] = not (getattr(args, "json", False) or getattr(args, "quiet", False))
    return api.backend(target).options(flags, strict=False)


def _show(args, out) -> None:
    if args.json:
        _print_json(out.to_json())
    else:
        print("\n".join(out.lines()))


def cmd_compile(args) -> int:
    say = _say(args)
    compiled = api.compile(args.spec, args.target, out=args.out, allow_fallback=not args.no_fallback, log=say)
    if args.json:
        _print_json(compiled.to_json())
        return EXIT_OK
    print(compiled.summary)
    for w in compiled.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(f"wrote {', '.join(str(v) for v in compiled.files.values())}")
    return EXIT_OK


def cmd_run(args) -> int:
    out = api.run(args.spec, args.target, args.out, overrides=_overrides(args), duration=args.duration,
                  seed=args.seed, plot=args.plot,
                  allow_fallback=not args.no_fallback, log=_say(args), device=args.torch_device,
                  options=_options(args, args.target))
    _show(args, out)
    return EXIT_OK


def cmd_eval(args) -> int:
    if args.batch is not None and args.batch < 1:
        sys.stderr.write("neurodeploy eval: --batch must be >= 1\n")
        return EXIT_USAGE
    out = api.evaluate(args.spec, args.target, args.out, images=args.images, iterations=args.iterations,
                       seed=args.seed, batch=args.batch, device=args.torch_device, threads=args.threads,
                       progress=not (args.json or args.quiet), overrides=_overrides(args), log=_say(args))
    _show(args, out)
    return EXIT_OK


def cmd_validate(args) -> int:
    return validate_cmd.run(args, overrides=_overrides(args))


def cmd_deploy(args) -> int:
    say = _say(args)
    done = api.deploy(args.spec, args.target, args.out, allow_fallback=not args.no_fallback, log=say)
    if args.json:
        out = done.ran.to_json() if done.ran is not None else {"ok": True}
        if done.compiled is not None:
            out["files"] = {**{k: str(v) for k, v in done.compiled.files.items()}, **out.get("files", {})}
        _print_json(out)
    elif done.ran is not None:
        print("\n".join(done.ran.lines()))
    return EXIT_OK


def cmd_import(args) -> int:
    return interop_cmd.run_import(args)


def cmd_export(args) -> int:
    return interop_cmd.run_export(args)


def cmd_train(args) -> int:
    return train_cmd.run(args)


def cmd_sweep(args) -> int:
    return sweep_cmd.run(args)


# --- parser ----------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="neurodeploy",
        description=textwrap.dedent("""\
            Describe a spiking model once in YAML (with physical units); compile it for a target,
            validate it against the Brian2 reference, and deploy it to Intel Lava (CPU simulation,
            bit-accurate Loihi 2 fixed point, Loihi 2 hardware) or a PyTorch GPU fallback."""),
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"neurodeploy {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name, func, help, example, description=None):
        sp = sub.add_parser(name, help=help, description=description or help,
                            epilog="example:\n  " + example,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
        sp.set_defaults(func=func)
        if name in SPEC_COMMANDS:
            sp.add_argument("--allow-outside-paths", action="store_true",
                            help="let the spec read array files (file:) outside its own folder or by absolute "
                                 "path; refused by default (docs/spec.md, 'Files a spec may read')")
        return sp

    sp = add("check", cmd_check, "validate model specs (every error with file:line:col and a hint)",
             "neurodeploy check models/*.yaml --json",
             "Validate one or more spec files (or directories of them). Every problem is reported "
             "with file:line:col, the key path, a stable error code and a hint. Exit 1 if any "
             "spec is invalid.")
    sp.add_argument("specs", nargs="+", metavar="SPEC", help="spec files or directories")
    sp.add_argument("--json", action="store_true", help="print machine-readable records")
    sp.add_argument("--ir", metavar="FILE", help="also write the verified IR as JSON (one spec only)")
    sp.add_argument("--expand", action="store_true",
                    help="expand blocks (ipvae, lca) into their populations and projections first: list what "
                         "each block became, and write the expanded IR with --ir")

    sp = add("info", cmd_info, "versions, and which backends and targets are available here",
             "neurodeploy info --json")
    sp.add_argument("--json", action="store_true", help="print machine-readable output")

    sp = add("convert", cmd_convert, "write a saved result (result.npz) as an NWB file (units table + traces)",
             "neurodeploy convert out/ei/result.npz --to nwb -o out/ei/result.nwb")
    sp.add_argument("result", metavar="RESULT", help="a result.npz, or the directory `neurodeploy run` wrote")
    sp.add_argument("--to", required=True, choices=["nwb"],
                    help="the format (Neo objects: Result.to_neo() in Python)")
    sp.add_argument("-o", "--out", required=True, metavar="FILE", help="the .nwb file to write")

    cmds = {}
    for name, func, help, ex in (
        ("compile", cmd_compile, "lower a spec for a target: the artifact and its reports (JSON) under DIR",
         "neurodeploy compile models/cuba_chain.yaml --target loihi2-sim -o out/chain"),
        ("run", cmd_run, "simulate a spec on a target: DIR/result.npz and DIR/summary.json (+ --plot)",
         "neurodeploy run models/ei_network.yaml --target brian2 -o out/ei --plot"),
        ("deploy", cmd_deploy, "deploy a compiled spec to a target",
         "neurodeploy deploy models/cuba_chain.yaml --target loihi2 -o out/hw"),
    ):
        sp = add(name, func, help, ex)
        sp.add_argument("spec", metavar="SPEC")
        sp.add_argument("--target", "-t", required=True, help="target name (see `neurodeploy info`) or a target YAML file")
        sp.add_argument("-o", "--out", metavar="DIR", required=True, help="output directory")
        sp.add_argument("--json", action="store_true", help="print machine-readable output")
        sp.add_argument("--no-fallback", action="store_true",
                        help="nodes the target cannot run are errors instead of running on its fallback (torch)")
        cmds[name] = sp
    sp = cmds["run"]
    sp.add_argument("--plot", action="store_true", help="also write DIR/raster.png (spike raster + recorded traces)")
    sp.add_argument("--quiet", "-q", action="store_true", help="no progress bar or table")
    b2 = sp.add_argument_group("brian2 target options")
    b2.add_argument("--codegen", choices=["auto", "cython", "numpy"], default="auto",
                    help="Brian2 code generation: cython (fast; compiles C on first use, cached), numpy "
                         "(no compile step), auto = cython when a compiler is present (default)")
    b2.add_argument("--device", choices=["runtime", "cpp_standalone"], default="runtime",
                    help="cpp_standalone compiles the whole run to C++: best for long runs")
    b2.add_argument("--poisson", choices=["shared", "native"], default="shared",
                    help="shared: Poisson inputs drawn once by neurodeploy, identical on every backend "
                         "(default); native: Brian2's PoissonGroup (seeded)")
    tt = sp.add_argument_group("torch target options (targets torch, loihi2-torch)")
    tt.add_argument("--torch-device", choices=["auto", "cpu", "cuda"], default="auto",
                    help="auto = CUDA when a GPU is visible, else the CPU")
    tt.add_argument("--dtype", choices=["float32", "float64"], default=None,
                    help="float arithmetic of the torch target (default: the target's number format, "
                         "float32 for torch; loihi2-torch is always integer)")
    tt.add_argument("--threads", type=int, default=None, metavar="N",
                    help="CPU threads of a torch run (default: 1 for a single trial, every core for a batch)")
    tt.add_argument("--torch-kernel", choices=["auto", "fused", "eager"], default=None,
                    help="time loop of a torch run: auto = the fused CPU kernel (Numba) for a single float trial "
                         "on the CPU where it applies, else the eager loop (default); fused = an error where it "
                         "does not apply; eager = the eager loop (docs/torch.md)")
    _add_overrides(sp)

    sp = add("eval", cmd_eval, "evaluate a spec's ipvae (or lca) block on a target: DIR/metrics.json + DIR/reconstructions.png",
             "neurodeploy eval models/ipvae/ipvae_digits.yaml --target brian2 -o out/eval --images 64 --iterations 32 1000",
             "Run the spec's ipvae (iP-VAE coder) block on held-out images on a target and report, per "
             "number of iterations T: mean, median and pooled R^2 of the reconstruction Phi z from the "
             "last counts, R^2 of the averaged counts, fraction of zero counts, max u, mean ||du|| "
             "(torch only) and the distance d to (R^2 = 1, zeros = 1). Targets: torch (exact spiking "
             "inference with the torch module; CUDA when visible), brian2, lava (floating point), "
             "loihi2-sim (bit-accurate fixed point); others exit 3. `neurodeploy run` on such a spec "
             "does the same with the defaults. A spec with an lca block (Rozell's LCA, the sparse-coding "
             "baseline) is evaluated the same way on torch and lava (float); its activity replaces the "
             "counts and the table shows max a instead of max u.")
    sp.add_argument("spec", metavar="SPEC")
    sp.add_argument("--target", "-t", required=True, help="target name (see `neurodeploy info`) or a target YAML file")
    sp.add_argument("-o", "--out", metavar="DIR", required=True, help="output directory")
    sp.add_argument("--images", type=int, metavar="N",
                    help="evaluate the first N images of the dataset's held-out split (digits: the last 297, "
                         "patches8: the last 2000) instead of the spec's own samples (the default)")
    sp.add_argument("--iterations", type=int, nargs="+", metavar="T",
                    help="numbers of inference iterations to report (default: the block's `iterations`); "
                         "torch records them in one pass, the other targets run once per T")
    sp.add_argument("--seed", type=int, help="random seed (default: the spec's simulation seed)")
    sp.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                    help="change the spec before it is read (repeatable), e.g. --set coder.step_size=0.5; the "
                         "length of a run is --iterations")
    sp.add_argument("--batch", type=int, metavar="B", help="images per Brian2/Lava run (default 50)")
    sp.add_argument("--threads", type=int, default=None, metavar="N",
                    help="CPU threads of the torch target (default: every core; the images run as one batch)")
    sp.add_argument("--torch-device", choices=["auto", "cpu", "cuda"], default="auto",
                    help="torch target: auto = CUDA when a GPU is visible, else the CPU")
    sp.add_argument("--json", action="store_true", help="print machine-readable output")
    sp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    sp = add("validate", cmd_validate, "run a target and the reference on the same inputs and compare them",
             "neurodeploy validate models/single_lif.yaml --target loihi2-sim --reference brian2 -o out/val")
    validate_cmd.add_arguments(sp)
    _add_overrides(sp)

    sp = add("import", cmd_import, "convert a NIR or ONNX file into a spec", "neurodeploy import net.nir -o net.yaml")
    sp.add_argument("file", metavar="FILE", help="a .nir or .onnx file")
    sp.add_argument("-o", "--out", metavar="SPEC", required=True, help="the spec (YAML) to write")
    interop_cmd.add_import_arguments(sp)

    sp = add("export", cmd_export, "write a spec as NIR or ONNX", "neurodeploy export models/cuba_chain.yaml -o chain.nir")
    sp.add_argument("spec", metavar="SPEC")
    sp.add_argument("-o", "--out", metavar="FILE", required=True, help="a .nir or .onnx file to write")
    interop_cmd.add_export_arguments(sp)

    sp = add("train", cmd_train, "train a spec's learnable parts on the GPU fallback", "neurodeploy train models/train/ipvae_digits.yaml")
    train_cmd.add_arguments(sp)

    sp = add("sweep", cmd_sweep, "run a spec over parameter values x seeds x targets, in parallel and resumable",
             "", sweep_cmd.DESCRIPTION)
    sp.epilog = sweep_cmd.EXAMPLES
    sweep_cmd.add_arguments(sp)
    return p


def _add_overrides(sp) -> None:
    """--duration, --seed and --set: change the model for this run (spec overrides)."""
    g = sp.add_argument_group("changing the model for this run")
    g.add_argument("--duration", metavar="TIME", help="simulated time instead of the spec's, e.g. '50 ms'")
    g.add_argument("--seed", type=int, help="random seed instead of the spec's simulation seed")
    g.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                   help="change a value of the spec before it is read (repeatable): NODE.PARAM "
                        "(exc.tau_m='10 ms'), a full path (simulation.dt='0.5 ms'), or a bare parameter "
                        "for every population that has it (tau_m='10 ms'); checked like the file itself")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a message is logged (not the stream of the first
    ``main`` call: a test harness or an embedding program may have replaced or closed that one)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def main(argv: list[str] | None = None) -> int:
    nd_log = logging.getLogger("neurodeploy")  # our messages only; Brian2 keeps its own logging
    if not nd_log.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        nd_log.addHandler(handler)
        nd_log.setLevel(logging.INFO)
        nd_log.propagate = False
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        with outside_paths_allowed(getattr(args, "allow_outside_paths", False)):
            return int(args.func(args) or 0)
    except SpecError as e:
        if getattr(args, "json", False):
            _print_json({"ok": False, "diagnostics": [d.to_json() for d in e.diagnostics]})
        else:
            _render(e.diagnostics)
        return EXIT_INVALID
    except NeurodeployError as e:
        if getattr(args, "json", False):
            _print_json({"ok": False, "error": type(e).__name__, "message": str(e)})
        sys.stderr.write(f"neurodeploy {args.command}: {e}\n")
        return e.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as e:  # a bug in neurodeploy: say so, without a wall of traceback
        if os.environ.get("NEURODEPLOY_DEBUG"):
            raise
        sys.stderr.write(f"neurodeploy {args.command}: internal error: {type(e).__name__}: {e}\n"
                         "this is a bug in neurodeploy; rerun with NEURODEPLOY_DEBUG=1 for the traceback "
                         "and please report it\n")
        return EXIT_BACKEND


if __name__ == "__main__":
    sys.exit(main())
