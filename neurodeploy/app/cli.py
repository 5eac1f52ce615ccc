"""The ``neurodeploy`` command line: a thin shell over the Python API.

Exit codes: 0 ok, 1 invalid input, 2 usage error, 3 backend/runtime failure or a feature that
has not landed yet. Bad input never produces a Python traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import textwrap
from pathlib import Path

from .. import __version__
from ..core.errors import (
    EXIT_BACKEND,
    EXIT_INVALID,
    EXIT_OK,
    EXIT_USAGE,
    Diagnostic,
    NeurodeployError,
    SpecError,
)

EPILOG = """\
examples:
  neurodeploy check models/*.yaml            validate specs (exit 1 if any is invalid)
  neurodeploy check models/ei_network.yaml --json
  neurodeploy check models/single_lif.yaml --ir out/single_lif.ir.json
  neurodeploy info                           versions and which backends work here
  neurodeploy compile models/cuba_chain.yaml --target loihi2-sim -o out/chain
  neurodeploy run models/single_lif.yaml --target brian2 -o out/lif
  neurodeploy validate models/cuba_chain.yaml --target loihi2-sim -o out/val
  neurodeploy import tests/fixtures/nir-paper-lif/lif_norse.nir -o out/lif_norse.yaml
  neurodeploy export models/cuba_chain.yaml -o out/chain.nir
  neurodeploy train models/train/ipvae_digits.yaml -o out/ipvae
  neurodeploy eval models/ipvae/ipvae_digits.yaml --target loihi2-sim -o out/eval --images 64
  neurodeploy compile models/ipvae/ipvae_digits.yaml --target loihi2-sim -o out/ipvae_loihi

exit codes: 0 ok, 1 invalid input, 2 usage error, 3 backend failure / not implemented yet
docs: docs/spec.md (the YAML format), docs/validate.md, docs/interop.md, docs/torch.md,
      docs/ipvae.md, docs/learning.md, README.md (set-up, status)
"""


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
    from ..core.io import atomic_write_text
    from ..ir import to_json
    from ..spec import check

    files = []
    for s in args.specs:
        p = Path(s)
        files.extend(sorted(p.glob("*.yaml")) + sorted(p.glob("*.yml")) if p.is_dir() else [p])
    if not files:
        raise NeurodeployError("no spec files found")
    if args.ir and len(files) != 1:
        sys.stderr.write("neurodeploy check: --ir takes exactly one spec\n")
        return EXIT_USAGE
    records, worst = [], EXIT_OK
    for f in files:
        net, diags = check(f, str(f))
        errors = [d for d in diags if d.severity == "error"]
        ok = net is not None and not errors
        summary = None
        expansion = []
        if ok and args.expand and net.blocks:
            from ..passes.expand import expand, expansion_summary

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


def cmd_info(args) -> int:
    from ..backends.base import backend_statuses
    from ..library.blocks import BLOCKS
    from ..library.neurons import NEURONS
    from ..library.plasticity import RULES
    from ..core.targets import available_targets

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


def _spec_and_target(args):
    from ..core.targets import load_target

    from ..spec import load

    net = load(args.spec)
    target = load_target(args.target)
    return net, target


def cmd_compile(args) -> int:
    from ..passes import pipeline as compiler
    from ..validate.blocks import has_ipvae_block

    net, target = _spec_and_target(args)
    _refuse_lca_compile(net)
    if has_ipvae_block(net):
        from ..backends.lava.blocks.ipvae_compile import summary_text

        say = None if args.json else (lambda msg: print(msg, file=sys.stderr))
        report, files = compiler.compile_blocks(net, target, args.out, log=say)
        if args.json:
            _print_json({"ok": True, "files": {k: str(v) for k, v in files.items()}, "report": report})
            return EXIT_OK
        print(summary_text(report))
        print(f"wrote {', '.join(str(v) for v in files.values())}")
        return EXIT_OK
    compiled = compiler.compile_network(net, target, allow_fallback=not args.no_fallback)
    files = compiler.write(compiled, net, args.out)
    if args.json:
        _print_json({"ok": True, "files": {k: str(v) for k, v in files.items()},
                     "quantization": compiled.quantized.report if compiled.quantized else None,
                     "coremap": compiled.coremap.to_json() if compiled.coremap else None,
                     "placement": compiled.placement.to_json() if compiled.placement else None,
                     "timings_s": compiled.timings})
        return EXIT_OK
    _print_compiled(compiled)
    print(f"wrote {', '.join(str(v) for v in files.values())}")
    return EXIT_OK


def _has_lca_only(net) -> bool:
    """An ``lca`` block and no ``ipvae`` block: eval/run/deploy go to blocks/run_lca.py."""
    from ..validate.blocks import has_ipvae_block
    from ..validate.blocks_lca import has_lca_block

    return has_lca_block(net) and not has_ipvae_block(net)


def _refuse_lca_compile(net) -> None:
    from ..validate.blocks_lca import has_lca_block
    from ..core.errors import NotImplementedYet

    if has_lca_block(net):
        raise NotImplementedYet(
            "compiling an lca block is not implemented yet (there is no Loihi 2 resource report for "
            "LCA); `neurodeploy eval SPEC -t loihi2-sim` runs its fixed-point model, and -t "
            "torch|brian2|lava the float one")


def _print_compiled(compiled) -> None:
    low = compiled.lowered
    print(f"compiled {low.name} for {compiled.target.name}: " + ", ".join(
        f"{n} -> {p.process}" for n, p in low.populations.items()))
    if compiled.quantized is not None:
        from ..passes.quantize import report_table

        print(report_table(compiled.quantized.report))
    if compiled.coremap is not None:
        print(compiled.coremap.table())
    if compiled.placement is not None and compiled.target.fallback:
        print(compiled.placement.table())
    for w in getattr(low, "warnings", []):
        print(f"warning: {w}", file=sys.stderr)


def cmd_run(args) -> int:
    from ..validate.blocks import has_ipvae_block
    from .runner import run_to_dir

    net, target = _spec_and_target(args)
    if has_ipvae_block(net) or _has_lca_only(net):  # a coder block: run = evaluate on the spec's own images
        return _eval(net, target, args, images=None, iterations=None, seed=net.simulation.seed,
                     batch=None)
    options = {}
    if target.backend == "brian2":
        options = {"codegen": args.codegen, "device": args.device, "poisson": args.poisson,
                   "progress": not args.json and not args.quiet}
    elif target.backend == "lava":
        options = {"progress": not args.json and not args.quiet}
    elif target.backend == "torch":
        options = {"device": args.torch_device, "dtype": args.dtype, "progress": not args.json and not args.quiet}
    if not args.json and not args.quiet:
        extra = ""
        if target.backend == "brian2" and args.device == "runtime":
            from ..backends.brian2.simulator import choose_codegen

            cg = choose_codegen(args.codegen)
            extra = f"; Brian2 code generation: {cg}" + (
                " (compiles C code the first time a model is seen, cached afterwards)" if cg == "cython" else "")
        elif target.backend == "brian2":
            extra = "; Brian2 cpp_standalone (compiling the whole run to C++ first)"
        print(f"running {net.name} on {target.name}: {net.simulation.steps} steps of "
              f"{net.simulation.dt * 1e3:g} ms ({net.simulation.duration * 1e3:g} ms simulated){extra}",
              file=sys.stderr)
    outs = run_to_dir(net, target, args.out, plot=args.plot, no_fallback=args.no_fallback, **options)
    summary = outs.result.summary()
    if args.json:
        _print_json({"ok": True, "summary": summary, "files": {
            "result": str(outs.result_path), "summary": str(outs.summary_path),
            "plot": str(outs.plot_path) if outs.plot_path else None}})
        return EXIT_OK
    print(f"{net.name} on {target.name} ({summary['options'].get('codegen', summary['backend'])}): "
          f"{summary['wall_time_s']:.2f} s wall for {summary['duration_s'] * 1e3:g} ms simulated")
    width = max([len(k) for k in summary["populations"]] + [10])
    print(f"  {'population':<{width}} {'size':>8} {'spikes':>9} {'rate (Hz)':>10} {'silent':>7}")
    for name, p in summary["populations"].items():
        print(f"  {name:<{width}} {p['size']:>8} {p['spikes']:>9} {p['mean_rate_hz']:>10.2f} "
              f"{p['silent_fraction'] * 100:>6.1f}%")
    print(f"wrote {outs.result_path}, {outs.summary_path}" + (f", {outs.plot_path}" if outs.plot_path else ""))
    return EXIT_OK


def cmd_eval(args) -> int:
    if args.batch is not None and args.batch < 1:
        sys.stderr.write("neurodeploy eval: --batch must be >= 1\n")
        return EXIT_USAGE
    net, target = _spec_and_target(args)
    seed = net.simulation.seed if args.seed is None else args.seed
    return _eval(net, target, args, images=args.images, iterations=args.iterations, seed=seed,
                 batch=args.batch)


def _eval(net, target, args, images, iterations, seed, batch) -> int:
    """Evaluate the spec's ipvae block (or its lca block) on ``target`` into ``args.out``."""
    lca = _has_lca_only(net)
    if lca:
        from ..validate import blocks_lca as runner

        coder = runner.lca_block(net)
        runner.runner_for(target)  # unsupported targets: exit 3 before anything is printed or loaded
    else:
        from ..validate import blocks as runner

        coder = runner.ipvae_block(net)
        runner.runner_for(target, runner.block_form(coder))
    quiet = args.json or args.quiet
    if not quiet:
        print(f"evaluating {net.name}{' (LCA)' if lca else ''} on {target.name} ...", file=sys.stderr)
    m = runner.eval_to_dir(net, target, args.out, images=images, iterations=iterations, seed=seed,
                           progress=not quiet, torch_device=args.torch_device, batch=batch, coder=coder)
    if args.json:
        _print_json({"ok": True, **{k: v for k, v in m.items() if k != "versions"}})
        return EXIT_OK
    im = m["images"]
    what = f" (lca, lambda {m['lam']:g})" if lca else ""
    print(f"{net.name} block '{m['block']}'{what} on {target.name} [{m['runner']}]: {im['count']} images "
          f"({im['selection']}" + (f", {im['dataset']}" if "dataset" in im else "") + f"), seed {seed}")
    if lca:
        print(f"  {'T':>6} {'R2':>7} {'median':>7} {'pooled':>7} {'zeros':>7} {'max a':>7} {'d':>7} {'s':>7}")
    else:
        print(f"  {'T':>6} {'R2':>7} {'median':>7} {'pooled':>7} {'R2 avg':>7} {'zeros':>7} {'max u':>7} "
              f"{'|du|':>7} {'d':>7} {'s':>7}")
    for r in m["results"]:
        head = f"  {r['T']:>6} {r['r2']:7.4f} {r['r2_median']:7.4f} {r['r2_pooled']:7.4f}"
        if lca:
            print(f"{head} {r['zeros']:7.4f} {r['a_max']:7.3f} {r['d']:7.4f} {r['seconds']:7.2f}")
        else:
            du = f"{r['du_norm']:7.3f}" if r["du_norm"] is not None else f"{'-':>7}"
            print(f"{head} {r['r2_avg']:7.4f} {r['zeros']:7.4f} {r['u_max']:7.3f} {du} {r['d']:7.4f} "
                  f"{r['seconds']:7.2f}")
    print(f"wrote {', '.join(m['files'].values())}")
    return EXIT_OK


def cmd_validate(args) -> int:
    from .commands.validate import run

    return run(args)


def cmd_deploy(args) -> int:
    from ..passes import pipeline as compiler
    from .runner import require_loihi2_hardware, run_to_dir

    net, target = _spec_and_target(args)
    from ..validate.blocks import has_ipvae_block

    if _has_lca_only(net):  # LCA: no compile report; evaluate on the target (_eval exits 3 first if it cannot)
        args.quiet, args.torch_device = getattr(args, "quiet", False), getattr(args, "torch_device", "auto")
        return _eval(net, target, args, images=None, iterations=None, seed=net.simulation.seed, batch=None)
    if has_ipvae_block(net):  # a coder block: compile (fixed-point Loihi targets), then evaluate there
        # (other targets: _eval exits 3 before anything is written when it cannot run them)
        if target.backend == "lava" and target.number_format == "fixed":
            say = None if args.json else (lambda msg: print(msg, file=sys.stderr))
            compiler.compile_blocks(net, target, args.out, log=say)
            if not args.json:
                print(f"wrote the deployable artifact under {args.out}")
        if target.device == "loihi2":
            require_loihi2_hardware()
        args.quiet, args.torch_device = getattr(args, "quiet", False), getattr(args, "torch_device", "auto")
        return _eval(net, target, args, images=None, iterations=None, seed=net.simulation.seed, batch=None)
    compiled = compiler.compile_network(net, target, allow_fallback=not args.no_fallback)
    files = compiler.write(compiled, net, args.out)
    if not args.json:
        _print_compiled(compiled)
        print(f"wrote the deployable artifact: {', '.join(str(v) for v in files.values())}")
    if target.device == "loihi2":
        require_loihi2_hardware()  # exits 3 here, after the artifact is on disk
    outs = run_to_dir(net, target, args.out, no_fallback=args.no_fallback)
    if args.json:
        _print_json({"ok": True, "files": {k: str(v) for k, v in files.items()},
                     "summary": outs.result.summary()})
    else:
        print(f"ran on {target.name}: wrote {outs.result_path}, {outs.summary_path}")
    return EXIT_OK


def cmd_import(args) -> int:
    from .commands.interop import run_import

    return run_import(args)


def cmd_export(args) -> int:
    from .commands.interop import run_export

    return run_export(args)


def cmd_train(args) -> int:
    from .commands.train import run

    return run(args)


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
    tt.add_argument("--dtype", choices=["float32", "float64"], default="float32",
                    help="float arithmetic of the torch target (loihi2-torch is always integer)")

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
    sp.add_argument("--batch", type=int, metavar="B", help="images per Brian2/Lava run (default 50)")
    sp.add_argument("--torch-device", choices=["auto", "cpu", "cuda"], default="auto",
                    help="torch target: auto = CUDA when a GPU is visible, else the CPU")
    sp.add_argument("--json", action="store_true", help="print machine-readable output")
    sp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    from .commands import interop as interop_cmd
    from .commands import train as learn_cmd
    from .commands import validate as validate_cmd

    sp = add("validate", cmd_validate, "run a target and the reference on the same inputs and compare them",
             "neurodeploy validate models/single_lif.yaml --target loihi2-sim --reference brian2 -o out/val")
    validate_cmd.add_arguments(sp)

    sp = add("import", cmd_import, "convert a NIR or ONNX file into a spec", "neurodeploy import net.nir -o net.yaml")
    sp.add_argument("file", metavar="FILE", help="a .nir or .onnx file")
    sp.add_argument("-o", "--out", metavar="SPEC", required=True, help="the spec (YAML) to write")
    interop_cmd.add_import_arguments(sp)

    sp = add("export", cmd_export, "write a spec as NIR or ONNX", "neurodeploy export models/cuba_chain.yaml -o chain.nir")
    sp.add_argument("spec", metavar="SPEC")
    sp.add_argument("-o", "--out", metavar="FILE", required=True, help="a .nir or .onnx file to write")
    interop_cmd.add_export_arguments(sp)

    sp = add("train", cmd_train, "train a spec's learnable parts on the GPU fallback", "neurodeploy train models/train/ipvae_digits.yaml")
    learn_cmd.add_arguments(sp)
    return p


def main(argv: list[str] | None = None) -> int:
    import logging

    nd_log = logging.getLogger("neurodeploy")  # our messages only; Brian2 keeps its own logging
    if not nd_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
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
