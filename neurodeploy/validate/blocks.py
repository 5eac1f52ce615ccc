"""Run an ``ipvae`` block of a loaded spec on a target and evaluate it (``neurodeploy eval``).

The block's decoder, prior and bias data references are loaded (``.npz``/``.npy`` with
``allow_pickle=False``, or a linear ONNX decoder); ``step_size``, ``sigma``, ``u_min``,
``u_max``, ``du_max`` and ``clamp`` come from the block's parameters. The images are the block's
``input`` stimulus (an ``array`` stimulus with ``encoding: value``): the spec's own samples, or
with ``images=N`` the first N rows of the dataset's fixed held-out split
(:data:`neurodeploy.core.data.arrays.TEST_SIZES`).

What each target runs (all draw exact Poisson counts and report the metrics of
:func:`neurodeploy.library.blocks.ipvae.reference.ipvae_result` at the last iteration):

==============  =========================================================================
``torch``       the torch module's exact spiking inference (``torch.poisson``), all images
                in one batch, on CUDA when visible (``device='auto'``); records every
                requested T in one pass and reports ``du_norm`` (mean over images of
                the L2 norm of the last increment)
``brian2``      :func:`neurodeploy.backends.brian2.blocks.ipvae.run_ipvae_brian2` (numpy codegen)
``lava``        :func:`neurodeploy.backends.lava.blocks.ipvae.run_ipvae_lava`, ``floating_pt``
``loihi2-sim``  the same, ``fixed_pt``: integer u (Q format), exp/Poisson look-up table,
                xorshift32 PRNG, 8-bit graded counts, 8-bit lateral weights
``loihi2-torch`` :func:`neurodeploy.backends.torch.blocks.ipvae_fixed.run_ipvae_torch_fixed`: the same
                integer model batched in torch (CUDA when visible), bit-exact with
                ``loihi2-sim`` for the same seed and batch (~11x faster on the CPU)
==============  =========================================================================

Other targets raise :class:`~neurodeploy.core.errors.NotImplementedYet` (exit 3) saying why. On the
spiking backends every requested T is a separate run from the initial state (same seed).

The block's ``form`` picks the network (docs/ipvae.md, "Two forms of the same inference"):
``lateral`` (above) or ``predictive_coding`` (M graded error units + K latents):

==============  =========================================================================
``lava``        :func:`neurodeploy.backends.lava.blocks.ipvae.pc.run_ipvae_pc_lava`, ``floating_pt``
``loihi2-sim``  the same, ``fixed_pt`` (bit-exact with ``lava/ipvae/pc_reference.py``)
``torch``       the torch module, i.e. the lateral form: with ``Psi = Phi^T`` both forms are
                the same algorithm (same caps, same counts for the same random numbers), and
                the module has no separate error population; ``metrics.json`` says so in
                ``form_computed``
``brian2``      :func:`neurodeploy.backends.brian2.blocks.ipvae_pc.run_ipvae_pc_brian2`: graded error
                units (Synapses latents -> errors and errors -> latents, summed variables
                ordered feedback first), numpy codegen; same counts as the lateral network
                for the same seed and batch
==============  =========================================================================

``metrics.json`` records ``form`` (the spec's) and ``form_computed`` (what ran).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np

from ..core.errors import NotImplementedYet, UsageError
from ..ir.nodes import ArrayStimulus, Block, Network
from ..core.targets import Target

#: images per Brian2 / Lava run (memory ~ batch K^2 synapses; see the backends' docs)
BATCH = {"brian2": 50, "brian2-pc": 50, "torch-fixed": 50, "lava-float": 50, "lava-fixed": 50, "lava-pc-float": 50, "lava-pc-fixed": 50}
PRIOR_DEFAULT = -3.0
FORMS = ("lateral", "predictive_coding")


def find_block(net: Network, kind: str, name: str | None = None) -> Block:
    """The spec's one block of ``kind`` (``name`` picks one when there are several)."""
    blocks = [b for b in net.blocks if b.kind == kind]
    if name is not None:
        blocks = [b for b in blocks if b.name == name]
    if not blocks:
        raise UsageError(f"spec '{net.name}' has no {kind} block" + (f" called '{name}'" if name else ""))
    if len(blocks) > 1:
        raise UsageError(f"spec '{net.name}' has {len(blocks)} {kind} blocks "
                         f"({', '.join(b.name for b in blocks)}); evaluating several is not supported")
    return blocks[0]


@dataclasses.dataclass(frozen=True)
class Coder:
    """An iP-VAE or LCA coder recognised in an expanded network: what the target lowerings run.

    It reads like the block it came from (``name``, ``kind``, ``params`` with ``input``,
    ``iterations``, ``form`` and ``latent``), so a hand-written expanded network and a block
    evaluate the same way. ``arrays``: for ``ipvae`` the keys of ``IPVAE.export_arrays()``
    (``Phi``, ``u0``, ``b``, ``eta``, ``sigma``, caps); for ``lca`` ``Phi``, ``lam``, ``dt_tau``.
    ``latents``: the name of the latent population.
    """

    name: str
    kind: str
    params: dict
    arrays: dict
    latents: str


#: relative tolerance of the structure check (weights equal to the pattern up to rounding)
STRUCTURE_RTOL = 1e-9


def _close(W, want) -> float:
    """Max abs difference of ``W`` and ``want`` relative to max |want| (inf on shape mismatch)."""
    W, want = np.asarray(W), np.asarray(want)
    if W.shape != want.shape:
        return float("inf")
    return float(np.abs(W - want).max() / max(np.abs(want).max(), 1e-300))


def _scale_of(W, Phi) -> float:
    """The c that best fits ``W = c Phi`` (least squares)."""
    return float(np.vdot(W, Phi) / max(np.vdot(Phi, Phi), 1e-300))


def _coder_of(net: Network, pop) -> Coder:
    """Recognise the expanded ``ipvae`` / ``lca`` structure around latent population ``pop``
    and recover the deployable arrays (NotImplementedYet naming what does not match)."""
    from ..backends.reference.graded import dense_weights, population_params

    name = pop.name[:-len(".latents")] if pop.name.endswith(".latents") else pop.name
    models = {p.name: p.model for p in net.populations}
    into = [pr for pr in net.projections if pr.target == pop.name]
    outs = [pr for pr in net.projections if pr.source == pop.name and pr.target != pop.name
            and models.get(pr.target) == "linear"]

    def refuse(why: str):
        raise NotImplementedYet(
            f"'{pop.name}' ({pop.model}): {why}. The {pop.model} lowerings run the structure the "
            f"'{pop.model}' block expands into (docs/ipvae.md, \"Block expansion\"); "
            "neurodeploy.backends.reference.graded.simulate_graded runs any graded network in numpy")

    def is_value_stimulus(ref):
        try:
            node = net.node(ref)
        except KeyError:
            return False
        return isinstance(node, ArrayStimulus) and node.encoding == "value"

    lateral = [pr for pr in into if pr.source == pop.name]
    drive = [pr for pr in into if is_value_stimulus(pr.source)]
    via_errors = [pr for pr in into if models.get(pr.source) == "linear"]
    errors = via_errors[0].source if len(via_errors) == 1 else None
    decode = [pr for pr in outs if pr.target != errors]
    if len(decode) != 1:
        refuse(f"needs exactly one projection to a linear readout (has {len(decode)})")
    Phi = dense_weights(net, decode[0]).T  # decode weights are (K, M) = Phi^T
    checks = []
    if len(into) == 2 and len(lateral) == 1 and len(drive) == 1:
        form, stim = "lateral", drive[0].source
        Wd = dense_weights(net, drive[0])
        c = _scale_of(Wd, Phi)
        checks += [(drive[0].name, Wd, c * Phi), (lateral[0].name, dense_weights(net, lateral[0]), -c * Phi.T @ Phi)]
    elif pop.model == "ipvae" and len(into) == 1 and errors is not None:
        form = "predictive_coding"
        e_in = [pr for pr in net.projections if pr.target == errors]
        fb = [pr for pr in e_in if pr.source == pop.name]
        ext = [pr for pr in e_in if is_value_stimulus(pr.source)]
        if len(e_in) != 2 or len(fb) != 1 or len(ext) != 1:
            refuse(f"error units '{errors}' need one input from a value stimulus and one from the latents")
        stim = ext[0].source
        We = dense_weights(net, ext[0])
        c = float(np.mean(np.diag(We))) if We.shape[0] == We.shape[1] else float("nan")
        checks += [(ext[0].name, We, c * np.eye(len(We)) if np.isfinite(c) else np.zeros((0, 0))),
                   (fb[0].name, dense_weights(net, fb[0]), -c * Phi.T),
                   (via_errors[0].name, dense_weights(net, via_errors[0]), Phi)]
    else:
        refuse("needs either a drive from a value stimulus plus a self (lateral) projection, or (ipvae) "
               "one projection from linear error units")
    if not np.isfinite(c) or c <= 0:
        refuse(f"the input scale 1/sigma^2 must be positive (found {c:.6g})")
    for pname, W, want in checks:
        err = _close(W, want)
        if err > STRUCTURE_RTOL:
            refuse(f"projection '{pname}' is not the expected multiple of the decoder "
                   f"(relative error {err:.2g} > {STRUCTURE_RTOL:g})")
    prm = population_params(net, pop)
    iterations = int(prm.restart_every) or None
    if iterations is None:
        from ..library.materialize import frame_steps

        iterations = frame_steps(net, net.node(stim))
    K = pop.size
    params = {"input": stim, "iterations": iterations, "form": form, "latent": K}
    if pop.model == "lca":
        if abs(c - 1.0) > STRUCTURE_RTOL:
            refuse(f"LCA's drive must be Phi itself (found {c:.6g} Phi)")
        arrays = {"Phi": Phi, "lam": float(prm.lam), "dt_tau": float(prm.dt_tau)}
        params.update(lam=float(prm.lam), dt_tau=float(prm.dt_tau))
        return Coder(name, "lca", params, arrays, pop.name)
    u0 = np.full(K, PRIOR_DEFAULT) if prm.prior is None else np.asarray(prm.prior, float).reshape(K)
    b = np.full(K, -np.inf) if prm.bias is None else np.asarray(prm.bias, float).reshape(K)
    arrays = {"Phi": Phi, "u0": u0, "b": b, "eta": np.array(float(prm.step_size)),
              "sigma": np.full(Phi.shape[0], float(np.sqrt(1.0 / c))), "u_max": np.array(float(prm.u_max)),
              "du_max": np.array(float(prm.du_max)), "u_min": np.array(float(prm.u_min)),
              "soft_clamp": np.array(prm.clamp == "soft")}
    params.update(step_size=float(prm.step_size), sigma=float(np.sqrt(1.0 / c)))
    return Coder(name, "ipvae", params, arrays, pop.name)


def coders(net: Network, kind: str | None = None) -> list[Coder]:
    """Every iP-VAE / LCA coder of ``net`` (its blocks expanded first), optionally of one ``kind``."""
    from ..passes.expand import expand

    x = expand(net)
    return [_coder_of(x, p) for p in x.populations
            if p.model in ("ipvae", "lca") and (kind is None or p.model == kind)]


def find_coder(net: Network, kind: str, name: str | None = None) -> Coder:
    """The spec's one ``kind`` coder (block or expanded populations; ``name`` picks one)."""
    from ..library.neurons.graded import populations_of

    spiking = populations_of(net, graded=False)
    if spiking and has_coder(net, kind):
        raise NotImplementedYet(
            f"spec '{net.name}' has spiking populations ({', '.join(spiking)}) next to its {kind} coder: "
            "eval / compile run the coder alone and would ignore them; put the coder in a spec of its own")
    found = [c for c in coders(net, kind) if name is None or c.name == name]
    if not found:
        raise UsageError(f"spec '{net.name}' has no {kind} block" + (f" called '{name}'" if name else "")
                         + f" (nor a population of model '{kind}')")
    if len(found) > 1:
        raise UsageError(f"spec '{net.name}' has {len(found)} {kind} coders "
                         f"({', '.join(c.name for c in found)}); evaluating several is not supported")
    return found[0]


def has_coder(net: Network, kind: str) -> bool:
    """A ``kind`` block, or a population of model ``kind`` (cheap: nothing is expanded)."""
    return any(b.kind == kind for b in net.blocks) or any(p.model == kind for p in net.populations)


def ipvae_block(net: Network, name: str | None = None) -> Coder:
    """The spec's ``ipvae`` coder, from its expanded block (``name`` picks one)."""
    return find_coder(net, "ipvae", name)


def has_ipvae_block(net: Network) -> bool:
    return has_coder(net, "ipvae")


def _base_dir(net: Network) -> Path:
    return Path(net.origin).parent if net.origin else Path(".")


def block_dictionary(net: Network, block) -> np.ndarray:
    """The coder's dictionary / decoder ``Phi`` (inputs, latent), float64."""
    return np.asarray(_as_coder(net, block).arrays["Phi"], np.float64)


def block_arrays(net: Network, block) -> dict:
    """The deployable arrays of the ipvae coder (the keys of ``IPVAE.export_arrays()``), float64,
    recovered from its expanded populations and projections (:func:`_coder_of`).

    ``prior`` defaults to -3 for every latent, ``bias`` to none (``b = -inf``, no constant
    drive); ``sigma`` is broadcast over the pixels.
    """
    return dict(_as_coder(net, block).arrays)


def _as_coder(net: Network, block) -> Coder:
    return block if isinstance(block, Coder) else find_coder(net, block.kind, block.name)


def block_images(net: Network, block: Block, images: int | None = None) -> tuple[np.ndarray, dict]:
    """(X, description): the block's input images, (B, M) float64.

    ``images=None``: the stimulus's own rows (the spec's samples). ``images=N``: the first N
    rows of the held-out split of the stimulus's dataset (only for dataset stimuli).
    """
    from ..core.data import DATASETS, TEST_SIZES, DataError, load_array

    name = block.params["input"]
    try:
        stim = net.node(name)
    except KeyError:
        raise UsageError(f"block '{block.name}': input '{name}' not found") from None
    if not isinstance(stim, ArrayStimulus) or stim.encoding != "value":
        raise NotImplementedYet(f"block '{block.name}': evaluating needs an array stimulus with "
                                f"encoding 'value' as input; '{name}' is not one")
    ref = stim.data
    held_start = None
    if ref.source == "dataset":
        held_start = DATASETS[ref.dataset][1] - TEST_SIZES[ref.dataset]
    if images is not None:
        if ref.source != "dataset":
            raise UsageError(f"--images needs a dataset stimulus; '{name}' reads {ref.source} data "
                             "(evaluate the spec's own samples instead)")
        n_test = TEST_SIZES[ref.dataset]
        if not 1 <= images <= n_test:
            raise UsageError(f"--images must be 1..{n_test} (the held-out split of '{ref.dataset}')")
        samples = tuple(range(held_start, held_start + images))
        ref = dataclasses.replace(ref, samples=samples, shape=(images, *ref.shape[1:]))
    try:
        X = load_array(ref, _base_dir(net)) * stim.gain
    except DataError as e:
        raise UsageError(f"stimulus '{name}': {e.message}") from None
    X = np.atleast_2d(X).reshape(-1, stim.size)
    desc = {"stimulus": name, "count": int(len(X)), "source": ref.source,
            "selection": "held-out split" if images is not None else "spec samples"}
    if ref.source == "dataset":
        idx = list(ref.samples) if ref.samples is not None else list(range(len(X)))
        desc.update(dataset=ref.dataset, indices=[int(i) for i in idx],
                    held_out=bool(held_start is not None and min(idx) >= held_start))
    return X, desc


def block_form(block: Block) -> str:
    """The block's ``form`` parameter (default ``lateral``)."""
    form = block.params.get("form") or "lateral"
    if form not in FORMS:  # the spec loader already rejects others; guards direct IR construction
        raise UsageError(f"block '{block.name}': form must be one of {', '.join(FORMS)}, got {form!r}")
    return form


def runner_for(target: Target, form: str = "lateral") -> str:
    """Which implementation runs the block of ``form`` on ``target`` (or NotImplementedYet
    saying why)."""
    if form not in FORMS:
        raise UsageError(f"form must be one of {', '.join(FORMS)}, got {form!r}")
    pc = form == "predictive_coding"
    if target.backend == "torch" and target.number_format != "fixed":
        return "torch"
    if target.backend == "torch":
        if pc:
            raise NotImplementedYet(
                f"'{target.name}' runs the lateral form's integer model; the predictive-coding network "
                "in fixed point (its own 8-bit decoder/encoder and 16-bit error payload) runs on "
                "--target loihi2-sim")
        return "torch-fixed"
    if target.backend == "brian2":
        return "brian2-pc" if pc else "brian2"
    if target.backend == "lava" and target.number_format != "fixed":
        return "lava-pc-float" if pc else "lava-float"
    if target.backend == "lava" and target.device == "loihi2":
        raise NotImplementedYet(
            f"running the ipvae block on '{target.name}' needs Loihi 2 hardware and Intel's lava-loihi "
            "extension, which this installation cannot reach; `--target loihi2-sim` runs the same "
            "fixed-point model bit-accurately on the CPU, and `neurodeploy compile -t loihi2` writes the "
            "resource report")
    if target.backend == "lava":
        return "lava-pc-fixed" if pc else "lava-fixed"
    raise NotImplementedYet(
        f"the ipvae block has no lowering for target '{target.name}' ({target.backend}, "
        f"{target.number_format}): use --target loihi2-sim or loihi2-torch for fixed point, or "
        "torch / brian2 / lava for float")


def _run_torch(arrays, X, Ts, seed, device):
    """Exact spiking inference with the torch module; metrics at every T in ``Ts``."""
    import torch

    from ..library.blocks.ipvae.reference import average_counts, ipvae_params, ipvae_result
    from ..learn.ipvae import ipvae_from_arrays

    from ..backends.torch.simulator import pick_device

    dev = pick_device(device)
    p = ipvae_params(arrays)
    model = ipvae_from_arrays(arrays).to(dev)
    x = torch.as_tensor(X, dtype=torch.float32, device=dev)
    g = torch.Generator(device=dev).manual_seed(int(seed))
    out, t0 = {}, time.perf_counter()
    with torch.no_grad():
        u = model.init_state(len(X)).clone()
        z = model.sample(u, "exact", generator=g)
        zbar = torch.zeros_like(u)
        for t in range(1, max(Ts) + 1):
            u_new = model.step(u, z, x)
            du, u = u_new - u, u_new
            z = model.sample(u, "exact", generator=g)
            zbar = average_counts(zbar, z, t)
            if t in Ts:
                np_ = (lambda a: a.detach().cpu().double().numpy())
                out[t] = ipvae_result(p, X, np_(u), np_(z), np_(zbar),
                                      du_norm=float(du.double().norm(dim=1).mean()),
                                      seconds=time.perf_counter() - t0)
    return out, f"torch ({dev.type})"


def _run_spiking(kind, arrays, X, T, seed, batch, progress, torch_device="auto"):
    """One Brian2 / Lava / torch-fixed run of T iterations over all images, ``batch`` images at
    a time, chunk i seeded with ``seed + i`` (torch-fixed chunks like Lava's, hence the same
    integers as ``loihi2-sim``)."""
    from ..library.blocks.ipvae.reference import chunks, ipvae_params, ipvae_result

    p = ipvae_params(arrays)
    if kind == "torch-fixed":
        from ..backends.torch.blocks.ipvae_fixed import run_ipvae_torch_fixed as fn

        kw = {"device": torch_device}
    elif kind == "brian2":
        from ..backends.brian2.blocks.ipvae import run_ipvae_brian2 as fn

        kw = {}
    elif kind == "brian2-pc":
        from ..backends.brian2.blocks.ipvae_pc import run_ipvae_pc_brian2 as fn

        kw = {}
    elif kind.startswith("lava-pc"):
        from ..backends.lava.blocks.ipvae.pc import run_ipvae_pc_lava as fn

        kw = {"fixed": kind == "lava-pc-fixed", "connection": "sparse"}
    else:
        from ..backends.lava.blocks.ipvae import run_ipvae_lava as fn

        kw = {"fixed": kind == "lava-fixed", "connection": "sparse"}
    B, K = len(X), p.latents
    U, Z, ZB = np.empty((B, K)), np.empty((B, K)), np.empty((B, K))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=B, desc=f"{kind} T={T}", unit="image", dynamic_ncols=True, leave=False)
    t0, extra = time.perf_counter(), {}
    try:
        for i, sl in enumerate(chunks(B, batch)):
            r = fn(arrays, X[sl], T, seed=int(seed) + i, batch=batch, **kw)
            U[sl], Z[sl], ZB[sl] = r["u"], r["z"], r["zbar"]
            if "weight_exponent" in r:
                extra["weight_exponent"] = r["weight_exponent"]
            if bar is not None:
                bar.update(sl.stop - sl.start)
    finally:
        if bar is not None:
            bar.close()
    return ipvae_result(p, X, U, Z, ZB, du_norm=None, seconds=time.perf_counter() - t0, **extra)


def evaluate(arrays: dict, X, target: Target, Ts, seed: int = 0, progress: bool = False,
             torch_device: str = "auto", batch: int | None = None, form: str = "lateral") -> dict:
    """Run the block in ``form`` on ``target`` for every T in ``Ts``; returns
    ``{"runner", "form_computed", "rows", "xhat"}``.

    ``rows``: one dict per T with ``r2`` (mean per-image R^2 of ``x_hat = Phi z`` from the last
    counts), ``r2_median``, ``r2_pooled``, ``r2_rate`` (decoding ``exp(u)``), ``r2_avg`` (the
    averaged counts), ``zeros`` (fraction of zero counts), ``u_max``, ``du_norm`` (torch only;
    else null), ``d`` (distance to R^2 = 1, zeros = 1), ``seconds``, and per image
    ``r2_images`` / ``zeros_images``. ``xhat``: T -> reconstructions (B, M).
    """
    from ..learn.ipvae import distance

    kind = runner_for(target, form)
    Ts = sorted({int(t) for t in Ts})
    if not Ts or Ts[0] < 1:
        raise UsageError("iterations must be >= 1")
    X = np.asarray(X, np.float64)
    if X.shape[1] != np.asarray(arrays["Phi"]).shape[0]:
        raise UsageError(f"images have {X.shape[1]} pixels, the decoder expects {np.asarray(arrays['Phi']).shape[0]}")
    if kind == "torch":
        res, runner = _run_torch(arrays, X, Ts, seed, torch_device)
    else:
        runner = {"brian2": "brian2 (numpy codegen)",
                  "torch-fixed": "torch fixed point (Loihi 2 integer model, bit-exact with loihi2-sim)",
                  "brian2-pc": "brian2 predictive-coding network (numpy codegen)", "lava-float": "lava floating_pt (Loihi2SimCfg)",
                  "lava-fixed": "lava fixed_pt (Loihi2SimCfg, bit-accurate integer model)",
                  "lava-pc-float": "lava predictive-coding floating_pt (Loihi2SimCfg)",
                  "lava-pc-fixed": "lava predictive-coding fixed_pt (Loihi2SimCfg, bit-accurate integer model)",
                  }[kind]
        res = {}
        for T in Ts:
            res[T] = _run_spiking(kind, arrays, X, T, seed, batch or BATCH[kind], progress, torch_device)
    rows, xhat = [], {}
    for T in Ts:
        r = res[T]
        rows.append({"T": T, "r2": r["r2"], "r2_median": float(np.median(r["r2_images"])),
                     "r2_pooled": r["r2_pooled"], "r2_rate": r["r2_rate"], "r2_avg": r["r2_avg"],
                     "zeros": r["zeros"], "u_max": r["u_max"], "du_norm": r.get("du_norm"),
                     "d": distance(r["r2"], r["zeros"]), "seconds": round(float(r["seconds"]), 3),
                     "r2_images": [float(v) for v in r["r2_images"]],
                     "zeros_images": [float(v) for v in r["zeros_images"]]})
        xhat[T] = r["xhat"]
    if kind.startswith("lava-pc") or kind == "brian2-pc":
        computed = "predictive_coding"
    elif form == "predictive_coding":  # torch: the module is the lateral form
        computed = "lateral (identical algorithm)"
    else:
        computed = "lateral"
    return {"runner": runner, "form_computed": computed, "rows": rows, "xhat": xhat}


def plot_reconstructions(X, xhat: dict, path, n: int = 8, title: str = "") -> Path | None:
    """Originals (top row) and the reconstructions ``Phi z`` at each T; None when the images
    are not square."""
    from ..learn.plots import _plt, _save

    X = np.asarray(X)
    s = int(round(np.sqrt(X.shape[1])))
    if s * s != X.shape[1]:
        return None
    n = min(n, len(X))
    plt = _plt()
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
    return _save(fig, Path(path))


def eval_to_dir(net: Network, target: Target, out_dir, images: int | None = None, iterations=None,
                seed: int = 0, progress: bool = False, torch_device: str = "auto",
                batch: int | None = None, block_name: str | None = None, coder=None) -> dict:
    """Evaluate the spec's ipvae block on ``target``; writes ``DIR/metrics.json`` (atomically)
    and ``DIR/reconstructions.png``. Returns the metrics dict (plus ``files``)."""
    from ..core.versions import versions
    from ..core.io import atomic_write_json

    block = coder if coder is not None else ipvae_block(net, block_name)  # ``coder``: already found
    form = block_form(block)
    runner_for(target, form)  # unsupported targets fail before any data is loaded
    arrays = block_arrays(net, block)
    X, desc = block_images(net, block, images)
    Ts = list(iterations) if iterations else [int(block.params["iterations"])]
    t0 = time.perf_counter()
    res = evaluate(arrays, X, target, Ts, seed=seed, progress=progress, torch_device=torch_device, batch=batch,
                   form=form)
    out = Path(out_dir)
    metrics = {"network": net.name, "block": block.name, "target": target.name, "runner": res["runner"],
               "form": form, "form_computed": res["form_computed"],
               "images": desc, "seed": seed, "iterations": sorted({int(t) for t in Ts}),
               "results": res["rows"], "wall_s": round(time.perf_counter() - t0, 3),
               "definitions": {
                   "r2": "mean over images of 1 - SS_res/SS_tot of x_hat = Phi z (counts of the last iteration)",
                   "r2_pooled": "1 - sum SS_res / sum SS_tot over all images",
                   "r2_rate": "as r2, decoding exp(u)", "r2_avg": "as r2, decoding the averaged counts (tau 16 iterations)",
                   "zeros": "fraction of zero counts at the last iteration",
                   "du_norm": "mean over images of ||u_T - u_{T-1}||_2 (torch only)",
                   "d": "sqrt((1 - r2)^2 + (1 - zeros)^2)",
                   "form_computed": "the network that ran; 'lateral (identical algorithm)': a predictive_coding "
                                    "spec on torch runs the lateral module, the same iteration (Psi = Phi^T)"},
               "versions": versions()}
    files = {"metrics": out / "metrics.json"}
    plot = plot_reconstructions(X, res["xhat"], out / "reconstructions.png",
                                title=f"{net.name} on {target.name}")
    if plot is not None:
        files["plot"] = plot
    metrics["files"] = {k: str(v) for k, v in files.items()}
    atomic_write_json(files["metrics"], metrics)
    return metrics
