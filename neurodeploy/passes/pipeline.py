"""The compile pipeline: :data:`PASSES` (expand, place, lower, quantize, partition) on a network
for a target, and the artifact ``neurodeploy compile`` writes. ``place`` ends with the resource
estimate (:mod:`neurodeploy.passes.estimate`): the target's limits and the memory bounded from
the IR's counts before ``lower`` draws any synapse.

For the Lava targets (``lava``, ``loihi2-sim``, ``loihi2``) the artifact directory holds:

=====================  ===================================================================
``ir.json``            the verified IR (lossless)
``lava_params.npz``    what the Lava processes are built from: per population the LIF
                       parameters (integers for fixed-point targets), per projection the
                       weights as (post, pre, weight) triplets of the (n_post, n_pre)
                       matrix, its exponent and the delay in steps (uncompressed; indices
                       int32 where they fit)
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

A coder block (``ipvae``) is compiled by its backend's block lowering instead
(:mod:`neurodeploy.backends.lava.blocks.ipvae_compile` for the fixed-point Loihi 2 targets).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..core.io import atomic_write_json, atomic_write_text, output_dir
from ..core.targets import Target
from ..core.versions import versions
from ..ir import to_json
from ..ir.nodes import Network
from ..spec import verify
from .base import Compilation, Unsupported, run_passes
from .expand import Expand
from .lower import Lower
from .partition import Partition
from .place import Place
from .quantize import Quantize

#: what ``neurodeploy compile`` runs, in order
PASSES = (Expand(), Place(), Lower(), Quantize(), Partition())
#: what a run on a Loihi-form backend (Lava, the torch emulator) needs: no placement, no cores
RUN_PASSES = (Lower(), Quantize())


def compile_network(net: Network, target: Target, *, unsupported: Unsupported | None = None,
                    fallback_unsupported: Unsupported | None = None, allow_fallback: bool = True) -> Compilation:
    """Run :data:`PASSES` on ``net`` for ``target`` (``unsupported``: the target backend's, for the
    placement pass; None places every node on the target)."""
    verify(net)
    c = Compilation(net, target, allow_fallback, unsupported, fallback_unsupported)
    return run_passes(c, PASSES)


def lower_for(net: Network, target: Target):
    """(lowered, quantized or None): the Loihi form of ``net`` in ``target``'s number format, with
    its learning-engine encodings checked (what the Lava and torch backends simulate)."""
    c = Compilation(net, target, part=net)
    run_passes(c, RUN_PASSES)
    return c.lowered, c.quantized


#: the artifact's last file: its presence means the artifact is complete
MANIFEST = "manifest.json"


def artifact_files(out_dir) -> tuple[str, ...]:
    """The file names of the artifact in ``out_dir`` by its manifest (empty when there is none):
    what a new compile into that directory replaces, so no file of the old artifact stays."""
    try:
        names = json.loads((Path(out_dir) / MANIFEST).read_text()).get("files", {}).values()
    except (OSError, ValueError, AttributeError):
        return ()
    return tuple(n for n in names if isinstance(n, str) and n and "/" not in n and not n.startswith("."))


def write(compiled: Compilation, net: Network, out_dir: str | Path, *, compress: bool = False) -> dict[str, Path]:
    """Write the artifact into ``out_dir`` all or nothing (:func:`~neurodeploy.core.io.output_dir`:
    staged, then moved into place, ``manifest.json`` last); returns the files by kind.
    ``compress``: zlib-compress ``lava_params.npz`` (smaller, but zlib was ~half of a large
    compile's time; ``np.load`` reads both)."""
    with output_dir(out_dir, marker=MANIFEST, owns=artifact_files(out_dir)) as st:
        return st.final(_write(compiled, net, st.path, compress))


def _write_npz(path: Path, arrays: dict[str, np.ndarray], compress: bool) -> Path:
    """``arrays`` streamed into ``path`` (no copy of the archive in memory: at 20M synapses that
    was two copies of 300 MB), under a temporary name renamed when complete and synced."""
    tmp = path.with_name(f".{path.name}.part")
    try:
        with open(tmp, "wb") as f:
            (np.savez_compressed if compress else np.savez)(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _write(compiled: Compilation, net: Network, out: Path, compress: bool = False) -> dict[str, Path]:
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
        idx = np.int32 if max(M.shape) <= 2**31 - 1 else np.int64  # compact indices
        arrays[f"projection/{name}/post"] = coo.row.astype(idx, copy=False)
        arrays[f"projection/{name}/pre"] = coo.col.astype(idx, copy=False)
        arrays[f"projection/{name}/weights"] = coo.data
        arrays[f"projection/{name}/weight_exp"] = np.asarray(qp.weight_exp if qp else 0)
        arrays[f"projection/{name}/delay_steps"] = np.asarray(pr.delay_steps)
    files["lava_params"] = _write_npz(out / "lava_params.npz", arrays, compress)
    del arrays
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
