"""Run an ``lca`` block of a loaded spec on a target and evaluate it (``neurodeploy eval``).

The block's decoder (dictionary ``Phi``) is loaded like the ipvae block's (``.npz``/``.npy``
with ``allow_pickle=False``); ``lam``, ``dt_tau`` and ``iterations`` come from its parameters.
The images are the block's ``input`` stimulus, chosen exactly as for the ipvae block
(:func:`neurodeploy.validate.blocks.block_images`: the spec's samples, or with ``images=N``
the first N rows of the dataset's held-out split).

What each target runs (LCA is deterministic: no seed is used):

==============  =========================================================================
``torch``       :func:`neurodeploy.learn.ipvae.lca_infer` in float64, all images in one
                batch, on CUDA when visible (``device='auto'``)
``lava``        :func:`neurodeploy.backends.lava.blocks.lca.run_lca_lava`, ``floating_pt``: float
                LCA units with the graded lateral input ``(Phi^T Phi - I) a`` through a Lava
                ``Sparse``; equal to :func:`neurodeploy.learn.ipvae.lca_step` to rounding
``brian2``      :func:`neurodeploy.backends.brian2.blocks.lca.run_lca_brian2`: LCA units with a
                graded, block-diagonal lateral Synapses (summed variable) and the Euler update
                in a ``run_regularly`` at ``'end'``; equal to ``lca_step`` to ~1e-15
``loihi2-sim``  ``run_lca_lava(..., fixed=True)``: integer LCA units (v, a in Q.10, 24-bit
                saturating v, 16-bit graded activity payload, 8-bit lateral weights with a
                shared exponent, dt/tau as a rounded multiplier), bit-exact with
                ``backends/lava/lca/fixed_reference.py``
==============  =========================================================================

Other targets raise :class:`~neurodeploy.core.errors.NotImplementedYet` (exit 3) saying why
(``loihi2`` needs hardware; ``loihi2-torch`` has no LCA integer model).

Metrics at the last iteration (same keys as the ipvae eval where they apply): ``r2`` (mean
per-image R^2 of ``x_hat = Phi a``), ``r2_median``, ``r2_pooled``, ``zeros`` (fraction of zero
activities), ``d`` (distance to R^2 = 1, zeros = 1), ``a_max``, ``seconds`` and per image
``r2_images`` / ``zeros_images``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from ..core.errors import NotImplementedYet, UsageError
from ..ir.nodes import Network
from ..core.targets import Target
from .blocks import Coder, block_dictionary, block_images, find_coder, has_coder, plot_reconstructions

#: images per Lava run (memory ~ batch K^2 synapses)
BATCH = {"lava-float": 50, "lava-fixed": 50, "brian2": 50}


def lca_block(net: Network, name: str | None = None) -> Coder:
    """The spec's ``lca`` coder, from its expanded block or populations (``name`` picks one)."""
    return find_coder(net, "lca", name)


def has_lca_block(net: Network) -> bool:
    return has_coder(net, "lca")


def runner_for(target: Target) -> str:
    """Which implementation runs the lca block on ``target`` (or NotImplementedYet saying why)."""
    if target.backend == "torch" and target.number_format != "fixed":
        return "torch"
    if target.backend == "lava" and target.number_format != "fixed":
        return "lava-float"
    if target.backend == "brian2":
        return "brian2"
    if target.backend == "lava" and target.device == "loihi2":
        raise NotImplementedYet(
            f"running the lca block on '{target.name}' needs Loihi 2 hardware and lava-loihi; "
            "`--target loihi2-sim` runs the same fixed-point LCA bit-accurately on the CPU")
    if target.backend == "lava":
        return "lava-fixed"
    raise NotImplementedYet(
        f"the lca block has no lowering for target '{target.name}' ({target.backend}, "
        f"{target.number_format}): the fixed-point LCA runs on --target loihi2-sim; use torch, "
        "brian2 or lava for float")


def lca_metrics(Phi, X, a, seconds: float) -> dict:
    """The metrics of codes ``a`` (B, K) for images ``X`` (B, M) (see the module doc)."""
    from ..learn.ipvae import distance, r2_per_image, r2_pooled

    xhat = a @ Phi.T
    r2i = r2_per_image(X, xhat)
    zi = (a == 0).mean(1)
    r2, zeros = float(r2i.mean()), float(zi.mean())
    return {"r2": r2, "r2_median": float(np.median(r2i)), "r2_pooled": r2_pooled(X, xhat), "zeros": zeros,
            "d": distance(r2, zeros), "a_max": float(a.max()) if a.size else 0.0,
            "seconds": round(float(seconds), 3), "r2_images": [float(v) for v in r2i],
            "zeros_images": [float(v) for v in zi], "xhat": xhat}


def evaluate(Phi, X, target: Target, Ts, lam: float, dt_tau: float, torch_device: str = "auto",
             batch: int | None = None) -> dict:
    """Run LCA on ``target`` for every T in ``Ts``; returns ``{"runner", "rows", "xhat"}``
    (``rows``: one dict per T with the metrics of :func:`lca_metrics`; ``xhat``: T -> (B, M))."""
    kind = runner_for(target)
    Ts = sorted({int(t) for t in Ts})
    if not Ts or Ts[0] < 1:
        raise UsageError("iterations must be >= 1")
    Phi, X = np.asarray(Phi, np.float64), np.asarray(X, np.float64)
    if X.shape[1] != Phi.shape[0]:
        raise UsageError(f"images have {X.shape[1]} pixels, the decoder expects {Phi.shape[0]}")
    codes = {}
    if kind == "torch":
        import torch

        from ..learn.ipvae import lca_infer

        from ..backends.torch.simulator import pick_device

        dev = pick_device(torch_device)
        runner = f"torch lca_infer float64 ({dev.type})"
        Pt = torch.as_tensor(Phi, dtype=torch.float64, device=dev)
        xt = torch.as_tensor(X, dtype=torch.float64, device=dev)
        for T in Ts:  # lca_infer starts from v = 0 each call; deterministic, so separate runs are exact
            t0 = time.perf_counter()
            with torch.no_grad():
                a = lca_infer(xt, Pt, float(lam), n_iter=T, dt_tau=float(dt_tau)).cpu().numpy()
            codes[T] = (a, time.perf_counter() - t0)
    else:
        if kind == "brian2":
            from ..backends.brian2.blocks.lca import run_lca_brian2 as fn

            runner = "brian2 (numpy codegen, LCA units + graded lateral Synapses)"
        else:
            from functools import partial

            from ..backends.lava.blocks.lca import run_lca_lava

            fn = partial(run_lca_lava, fixed=kind == "lava-fixed")
            runner = ("lava fixed_pt (Loihi2SimCfg, integer LCA units in Q.10, 8-bit lateral weights, "
                      "16-bit graded activities)" if kind == "lava-fixed" else
                      "lava floating_pt (Loihi2SimCfg, LCA units + Sparse graded lateral input)")
        for T in Ts:
            r = fn(Phi, X, T, float(lam), float(dt_tau), batch=batch or BATCH[kind])
            codes[T] = (r["a"], r["seconds"])
    rows, xhat = [], {}
    for T in Ts:
        m = lca_metrics(Phi, X, *codes[T])
        xhat[T] = m.pop("xhat")
        rows.append({"T": T, **m})
    return {"runner": runner, "rows": rows, "xhat": xhat}


def eval_to_dir(net: Network, target: Target, out_dir, images: int | None = None, iterations=None,
                seed: int = 0, progress: bool = False, torch_device: str = "auto",
                batch: int | None = None, block_name: str | None = None, coder=None) -> dict:
    """Evaluate the spec's lca block on ``target``; writes ``DIR/metrics.json`` (atomically)
    and ``DIR/reconstructions.png``. Returns the metrics dict (plus ``files``). ``seed`` and
    ``progress`` are accepted for the CLI's sake (LCA is deterministic) and ``seed`` is recorded."""
    from ..core.versions import versions
    from ..core.io import atomic_write_json

    block = coder if coder is not None else lca_block(net, block_name)  # ``coder``: already found
    runner_for(target)  # unsupported targets fail before any data is loaded
    Phi = block_dictionary(net, block)
    X, desc = block_images(net, block, images)
    Ts = list(iterations) if iterations else [int(block.params["iterations"])]
    lam, dt_tau = float(block.params["lam"]), float(block.params["dt_tau"])
    t0 = time.perf_counter()
    res = evaluate(Phi, X, target, Ts, lam, dt_tau, torch_device=torch_device, batch=batch)
    out = Path(out_dir)
    metrics = {"network": net.name, "block": block.name, "kind": "lca", "target": target.name,
               "runner": res["runner"], "lam": lam, "dt_tau": dt_tau, "images": desc, "seed": seed,
               "iterations": sorted({int(t) for t in Ts}), "results": res["rows"],
               "wall_s": round(time.perf_counter() - t0, 3),
               "definitions": {
                   "r2": "mean over images of 1 - SS_res/SS_tot of x_hat = Phi a (activities of the last iteration)",
                   "r2_pooled": "1 - sum SS_res / sum SS_tot over all images",
                   "zeros": "fraction of zero activities a = max(v - lam, 0) at the last iteration",
                   "d": "sqrt((1 - r2)^2 + (1 - zeros)^2)",
                   "a_max": "largest activity"},
               "versions": versions()}
    files = {"metrics": out / "metrics.json"}
    plot = plot_reconstructions(X, res["xhat"], out / "reconstructions.png", title=f"{net.name} (LCA) on {target.name}")
    if plot is not None:
        files["plot"] = plot
    metrics["files"] = {k: str(v) for k, v in files.items()}
    atomic_write_json(files["metrics"], metrics)
    return metrics
