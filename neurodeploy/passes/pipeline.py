"""`neurodeploy compile`: lower a network for a target and write the artifact and its reports.

For the Lava targets (``lava``, ``loihi2-sim``, ``loihi2``) the artifact directory holds:

=====================  ===================================================================
``ir.json``            the verified IR (lossless)
``lava_params.npz``    what the Lava processes are built from: per population the LIF
                       parameters (integers for fixed-point targets), per projection the
                       weights as (post, pre, weight) triplets of the (n_post, n_pre)
                       matrix, its exponent and the delay in steps
``quantization.json``  fixed-point targets: every parameter's float value, integer, effective
                       value and relative error, clipping/overflow flags, effect on time
                       constants and threshold
``coremap.json``       targets with per-core limits: populations placed onto neurocores,
                       memory and utilisation per core
``placement.json``     which node runs on the target and which on its fallback (torch), why,
                       and the exchange points (projections that cross); the Lava files above
                       describe the target part only
``manifest.json``      what was compiled, for which target, with which versions; written last
=====================  ===================================================================

A spec with an ``ipvae`` block takes :func:`compile_blocks` instead (fixed-point Loihi 2
targets): ``ir.json``, ``ipvae_params.npz`` (the deployable integers and the host-side arrays),
``compile_report.json`` (neurons, cores, synapse memory, synaptic operations per inference,
number formats, every approximation with its measured effect) and ``manifest.json``; see
:mod:`neurodeploy.backends.lava.blocks.ipvae_compile`.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..core.errors import CompileError, NotImplementedYet
from ..core.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from ..ir import to_json
from ..ir.nodes import Network
from ..spec import verify
from ..core.targets import Target


@dataclass
class Compiled:
    target: Target
    lowered: object
    quantized: object | None = None
    coremap: object | None = None
    timings: dict = field(default_factory=dict)
    placement: object | None = None


def compile_network(net: Network, target: Target, allow_fallback: bool = True) -> Compiled:
    verify(net)
    if target.backend not in ("lava", "torch") or (target.backend == "torch" and target.number_format != "fixed"):
        raise NotImplementedYet(f"compiling for target '{target.name}' ({target.backend}, {target.number_format}) "
                                "is not implemented yet (`neurodeploy run` simulates it directly)")
    from ..backends.lava.simulator import compile_network as lava_compile

    t0 = time.perf_counter()
    from .place import place, split

    plan = place(net, target, allow_fallback=allow_fallback)
    whole = net
    if plan.on_fallback:
        net, _ = split(net, plan)  # the target part (fallback emitters feeding it as placeholders)
        if net is None:
            raise NotImplementedYet(f"target '{target.name}' can run none of '{whole.name}''s populations: "
                                    f"every node is placed on the fallback; use --target {target.fallback}")
    max_delay = target.limits.get("max_delay_steps")
    if max_delay is not None:
        from ..library.materialize import delay_steps

        for pr in net.projections:
            d = delay_steps(pr.delay, net.simulation.dt)
            if d > max_delay:
                raise CompileError(
                    f"projection '{pr.name}': delay of {d} steps exceeds target '{target.name}''s limit of "
                    f"{max_delay} steps (max_delay_steps, 6 delay bits); shorten the delay or use a larger dt",
                )
    low, q = lava_compile(net, target)
    t1 = time.perf_counter()
    out = Compiled(target, low, q, timings={"lower_quantize_s": t1 - t0}, placement=plan)
    if target.limits.get("neurons_per_core"):
        from ..library.materialize import SynapseData
        from .partition import partition

        syn = {name: SynapseData(p.i, p.j, p.w_si, p.delay_steps, 1.0) for name, p in low.projections.items()}
        out.coremap = partition(net, target, synapses=syn)
        out.timings["partition_s"] = time.perf_counter() - t1
    return out


def compile_blocks(net: Network, target: Target, out_dir: str | Path, log=None) -> tuple[dict, dict]:
    """Compile a block spec (an ``ipvae`` block) for ``target``: writes the artefacts under
    ``out_dir`` and returns (report, files). Raises :class:`NotImplementedYet` for other blocks."""
    from ..validate.blocks import has_ipvae_block

    verify(net)
    if not has_ipvae_block(net):
        kinds = ", ".join(sorted({b.kind for b in net.blocks}))
        raise NotImplementedYet(f"compiling blocks of kind {kinds} is not implemented yet")
    from ..backends.lava.blocks.ipvae_compile import compile_ipvae

    return compile_ipvae(net, target, out_dir, log=log)


def write(compiled: Compiled, net: Network, out_dir: str | Path) -> dict[str, Path]:
    from ..core.versions import versions

    out = Path(out_dir)
    files = {"ir": atomic_write_text(out / "ir.json", to_json(net))}
    low, q = compiled.lowered, compiled.quantized
    arrays: dict[str, np.ndarray] = {}
    for name, p in low.populations.items():
        qp = q.populations[name] if q is not None else None
        vals = {
            "du": qp.du if qp else p.du, "dv": qp.dv if qp else p.dv, "vth": qp.vth if qp else p.vth,
            "bias_mant": qp.bias_mant if qp else p.bias, "bias_exp": qp.bias_exp if qp else np.zeros(p.size),
            "v_init": qp.v0 if qp else p.v0, "u_init": qp.u0 if qp else p.u0,
            "refractory_steps": p.refractory_steps, "input_drop": p.input_drop, "reset_mode": p.reset_mode,
            "v_reset": qp.v_reset if qp else p.v_reset,
        }
        for k, v in vals.items():
            arrays[f"population/{name}/{k}"] = np.asarray(v)
    for name, pr in low.projections.items():
        qp = q.projections[name] if q is not None else None
        M = qp.weights if qp else pr.matrix()  # (n_post, n_pre), stored as COO triplets
        coo = M.tocoo()
        arrays[f"projection/{name}/post"] = coo.row.astype(np.int64)
        arrays[f"projection/{name}/pre"] = coo.col.astype(np.int64)
        arrays[f"projection/{name}/weights"] = coo.data
        arrays[f"projection/{name}/weight_exp"] = np.asarray(qp.weight_exp if qp else 0)
        arrays[f"projection/{name}/delay_steps"] = np.asarray(pr.delay_steps)
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    files["lava_params"] = atomic_write_bytes(out / "lava_params.npz", buf.getvalue())
    if q is not None:
        files["quantization"] = atomic_write_json(out / "quantization.json", q.report)
    if compiled.coremap is not None:
        files["coremap"] = atomic_write_json(out / "coremap.json", compiled.coremap.to_json())
    if compiled.placement is not None:
        files["placement"] = atomic_write_json(out / "placement.json", compiled.placement.to_json())
    manifest = {
        "network": net.name, "target": compiled.target.name, "backend": compiled.target.backend,
        "number_format": compiled.target.number_format,
        "processes": {n: p.process for n, p in low.populations.items()},
        "scales_K_per_volt": {n: p.K for n, p in q.populations.items()} if q is not None else None,
        "v_offsets_V": {n: p.v_offset for n, p in low.populations.items()},
        "timings_s": compiled.timings, "versions": versions(), "warnings": list(low.warnings),
        "files": {k: v.name for k, v in files.items()},
    }
    files["manifest"] = atomic_write_json(out / "manifest.json", manifest)
    return files
