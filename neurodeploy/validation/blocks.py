"""Evaluating a coder block (``ipvae``, ``lca``) on a target: ``neurodeploy eval``.

The coder is recognised in the spec's expanded network
(:func:`neurodeploy.library.blocks.coder.find_coder`), its images are the block's ``input``
stimulus (an ``array`` stimulus with ``encoding: value``): the spec's own samples, or with
``images=N`` the first N rows of the dataset's fixed held-out split
(:data:`neurodeploy.core.data.TEST_SIZES`). The target's backend runs it through the block
lowering registered for it (:func:`neurodeploy.backends.base.block_lowering`: each backend's
``blocks/<kind>.py`` says what it runs and why a target cannot), and the block definition scores
what comes back (:meth:`~neurodeploy.library.blocks.base.BlockDef.row`). Nothing here knows a
block kind or a backend by name.

What each backend runs is documented with its lowering: ``backends/torch/blocks/ipvae.py``,
``ipvae_fixed.py``, ``lca.py``; ``backends/brian2/blocks/``; ``backends/lava/blocks/ipvae/``,
``lca/``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..backends.base import block_lowering, get_backend
from ..core.errors import UsageError
from ..core.io import Staged, atomic_write_json, output_dir
from ..core.plot import pyplot, save_figure
from ..core.targets import Target
from ..core.versions import versions
from ..ir.nodes import Network
from ..library.blocks.coder import Coder, block_images, find_coder


#: what an evaluation writes: ``metrics.json`` is its marker (present exactly when it finished)
MARKER, FILES = "metrics.json", ("reconstructions.png",)


def check(coder: Coder, target: Target):
    """The lowering that runs ``coder`` on ``target`` (NotImplementedYet, saying why, if none)."""
    low = block_lowering(target, coder.kind)
    low.check(target, coder)
    return low


def evaluate(coder: Coder, X, target: Target, Ts, seed: int = 0, progress: bool = False,
             torch_device: str = "auto", batch: int | None = None) -> dict:
    """Run ``coder`` on ``target`` for every T in ``Ts``; returns ``{"runner", "form_computed",
    "rows", "xhat"}``: one metrics row per T (the block's :meth:`row`) and the reconstructions
    (B, M) per T."""
    low = check(coder, target)
    Ts = sorted({int(t) for t in Ts})
    if not Ts or Ts[0] < 1:
        raise UsageError("iterations must be >= 1")
    X = np.asarray(X, np.float64)
    M = np.asarray(coder.arrays["Phi"]).shape[0]
    if X.shape[1] != M:
        raise UsageError(f"images have {X.shape[1]} pixels, the decoder expects {M}")
    raw = get_backend(target.backend).run_block(coder, X, Ts, target, seed=seed, batch=batch, progress=progress,
                                                device=torch_device)
    rows, xhat = [], {}
    for T in Ts:
        row, xhat[T] = coder.block.row(coder, X, T, raw[T])
        rows.append(row)
    return {"runner": low.describe(target, coder, torch_device), "form_computed": low.form_computed(target, coder),
            "rows": rows, "xhat": xhat}


def plot_reconstructions(X, xhat: dict, path, n: int = 8, title: str = "") -> Path | None:
    """Originals (top row) and the reconstructions at each T; None when the images are not square."""
    X = np.asarray(X)
    s = int(round(np.sqrt(X.shape[1])))
    if s * s != X.shape[1]:
        return None
    n = min(n, len(X))
    plt = pyplot()
    rows = [("input", X)] + [(f"T={t}", xhat[t]) for t in sorted(xhat)]
    fig, axes = plt.subplots(len(rows), n, figsize=(1.2 * n, 1.25 * len(rows)), squeeze=False)
    for i, (label, arr) in enumerate(rows):
        for j in range(n):
            ax = axes[i, j]
            v = max(np.abs(X[j]).max(), 1e-12)
            ax.imshow(np.asarray(arr[j]).reshape(s, s), cmap="gray", vmin=-v if X.min() < 0 else 0, vmax=v)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(label, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, Path(path))


def eval_to_dir(net: Network, target: Target, out_dir, images: int | None = None, iterations=None,
                seed: int = 0, progress: bool = False, torch_device: str = "auto",
                batch: int | None = None, block_name: str | None = None, coder: Coder | None = None) -> dict:
    """Evaluate the spec's coder on ``target``; writes ``DIR/metrics.json`` and
    ``DIR/reconstructions.png`` all or nothing (:func:`~neurodeploy.core.io.output_dir`: checked
    and locked before anything runs, moved into place at the end, ``metrics.json`` last). Returns
    the metrics dict (plus ``files``). ``coder``: already found (:func:`find_coder`)."""
    coder = coder if coder is not None else find_coder(net, None, block_name)
    check(coder, target)  # unsupported targets fail before any data is loaded
    with output_dir(out_dir, marker=MARKER, owns=FILES) as st:
        return _eval_into(net, target, st, coder, images, iterations, seed, progress, torch_device, batch)


def _eval_into(net, target, st: Staged, coder: Coder, images, iterations, seed, progress, torch_device,
               batch) -> dict:
    out = st.path
    X, desc = block_images(net, coder, images)
    Ts = list(iterations) if iterations else [int(coder.params["iterations"])]
    t0 = time.perf_counter()
    res = evaluate(coder, X, target, Ts, seed=seed, progress=progress, torch_device=torch_device, batch=batch)
    bdef = coder.block
    metrics = {"network": net.name, "block": coder.name, "target": target.name, "runner": res["runner"],
               **bdef.metadata(coder)}
    if len(bdef.forms) > 1:
        metrics["form_computed"] = res["form_computed"]
    metrics.update({"images": desc, "seed": seed, "iterations": sorted({int(t) for t in Ts}),
                    "results": res["rows"], "wall_s": round(time.perf_counter() - t0, 3),
                    "definitions": dict(bdef.definitions), "versions": versions()})
    files = {"metrics": out / MARKER}
    plot = plot_reconstructions(X, res["xhat"], out / "reconstructions.png",
                                title=f"{net.name}{bdef.title()} on {target.name}")
    if plot is not None:
        files["plot"] = plot
    metrics["files"] = {k: str(st.final(v)) for k, v in files.items()}  # where they are once moved into place
    atomic_write_json(files["metrics"], metrics)
    return metrics
