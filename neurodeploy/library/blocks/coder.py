"""What the coder blocks (``ipvae``, ``lca``) share: a coder recognised in an expanded network,
its input images, running it in chunks of images, and the metrics of a reconstruction.

A block is expanded into graded populations and projections (:meth:`BlockDef.expand`); every
target lowering runs a coder *from that expanded network*: :func:`coders` finds each latent
population whose model is a block's ``latent_model``, checks that the projections around it are
the structure the block expands into (the drive, lateral, decode and error weights are the
expected multiples of one decoder, to :data:`STRUCTURE_RTOL`), and hands the block definition
what it needs to build the deployable arrays (:meth:`BlockDef.bind`). So a hand-written expanded
spec and a block spec evaluate the same way, and a network that is not such a structure is
refused, naming what does not match.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ...core.data import DATASETS, TEST_SIZES, DataError, load_array
from ...core.errors import NotImplementedYet, UsageError
from ...ir.nodes import ArrayStimulus, Network
from ..materialize import dense_weights, frame_steps, population_params
from ..neurons.graded import populations_of
from .base import BLOCKS, expand_blocks

#: relative tolerance of the structure check (weights equal to the pattern up to rounding)
STRUCTURE_RTOL = 1e-9


# --- metrics ---------------------------------------------------------------------------------

def r2_per_image(x, xhat):
    """1 - SS_res/SS_tot over the pixels of each image (array of length batch)."""
    x, xhat = np.asarray(x, float), np.asarray(xhat, float)
    ss_res = ((x - xhat) ** 2).sum(1)
    ss_tot = ((x - x.mean(1, keepdims=True)) ** 2).sum(1)
    return 1.0 - ss_res / np.maximum(ss_tot, 1e-12)


def r2_pooled(x, xhat):
    x, xhat = np.asarray(x, float), np.asarray(xhat, float)
    return float(1.0 - ((x - xhat) ** 2).sum() / ((x - x.mean(1, keepdims=True)) ** 2).sum())


def distance(r2, zeros):
    """Distance to the ideal corner (R^2 = 1, all zeros) of the sparsity-reconstruction plane."""
    return float(math.hypot(1.0 - r2, 1.0 - zeros))


# --- a coder recognised in an expanded network -------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Coder:
    """An iP-VAE or LCA coder recognised in an expanded network: what the target lowerings run.

    It reads like the block it came from (``name``, ``kind``, ``params`` with ``input``,
    ``iterations``, ``form`` and ``latent``), so a hand-written expanded network and a block
    evaluate the same way. ``arrays``: what the block's lowerings take (for ``ipvae`` the keys of
    ``IPVAE.export_arrays()``: ``Phi``, ``u0``, ``b``, ``eta``, ``sigma``, caps; for ``lca``
    ``Phi``, ``lam``, ``dt_tau``). ``latents``: the name of the latent population.
    """

    name: str
    kind: str
    params: dict
    arrays: dict
    latents: str

    @property
    def block(self):
        """The block definition (:class:`~neurodeploy.library.blocks.base.BlockDef` subclass)."""
        return BLOCKS[self.kind]


@dataclasses.dataclass(frozen=True)
class Structure:
    """What :func:`recognise` read off the projections around a latent population: the form, the
    input stimulus, the decoder ``Phi`` (M, K), the input scale ``c`` (``1/sigma^2`` for the
    iP-VAE, 1 for LCA), the population's parameters and the iterations per image."""

    form: str
    stimulus: str
    Phi: np.ndarray
    c: float
    params: object
    iterations: int


def _close(W, want) -> float:
    """Max abs difference of ``W`` and ``want`` relative to max |want| (inf on shape mismatch)."""
    W, want = np.asarray(W), np.asarray(want)
    if W.shape != want.shape:
        return float("inf")
    return float(np.abs(W - want).max() / max(np.abs(want).max(), 1e-300))


def _scale_of(W, Phi) -> float:
    """The c that best fits ``W = c Phi`` (least squares)."""
    return float(np.vdot(W, Phi) / max(np.vdot(Phi, Phi), 1e-300))


def refusal(pop, why: str) -> NotImplementedYet:
    """The error for a latent population that is not the structure its block expands into."""
    return NotImplementedYet(
        f"'{pop.name}' ({pop.model}): {why}. The {pop.model} lowerings run the structure the "
        f"'{pop.model}' block expands into (docs/ipvae.md, \"Block expansion\"); "
        "neurodeploy.backends.reference.graded.simulate_graded runs any graded network in numpy")


def recognise(net: Network, pop) -> Coder:
    """The coder around latent population ``pop`` of the expanded ``net`` (see the module doc)."""
    bdef = block_of_model(pop.model)
    name = pop.name[:-len(".latents")] if pop.name.endswith(".latents") else pop.name
    models = {p.name: p.model for p in net.populations}
    into = [pr for pr in net.projections if pr.target == pop.name]
    outs = [pr for pr in net.projections if pr.source == pop.name and pr.target != pop.name
            and models.get(pr.target) == "linear"]

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
        raise refusal(pop, f"needs exactly one projection to a linear readout (has {len(decode)})")
    Phi = dense_weights(net, decode[0]).T  # decode weights are (K, M) = Phi^T
    checks = []
    if len(into) == 2 and len(lateral) == 1 and len(drive) == 1:
        form, stim = "lateral", drive[0].source
        Wd = dense_weights(net, drive[0])
        c = _scale_of(Wd, Phi)
        checks += [(drive[0].name, Wd, c * Phi), (lateral[0].name, dense_weights(net, lateral[0]), -c * Phi.T @ Phi)]
    elif "predictive_coding" in bdef.forms and len(into) == 1 and errors is not None:
        form = "predictive_coding"
        e_in = [pr for pr in net.projections if pr.target == errors]
        fb = [pr for pr in e_in if pr.source == pop.name]
        ext = [pr for pr in e_in if is_value_stimulus(pr.source)]
        if len(e_in) != 2 or len(fb) != 1 or len(ext) != 1:
            raise refusal(pop, f"error units '{errors}' need one input from a value stimulus and one from the latents")
        stim = ext[0].source
        We = dense_weights(net, ext[0])
        c = float(np.mean(np.diag(We))) if We.shape[0] == We.shape[1] else float("nan")
        checks += [(ext[0].name, We, c * np.eye(len(We)) if np.isfinite(c) else np.zeros((0, 0))),
                   (fb[0].name, dense_weights(net, fb[0]), -c * Phi.T),
                   (via_errors[0].name, dense_weights(net, via_errors[0]), Phi)]
    else:
        raise refusal(pop, "needs either a drive from a value stimulus plus a self (lateral) projection"
                      + (", or one projection from linear error units" if "predictive_coding" in bdef.forms else ""))
    if not np.isfinite(c) or c <= 0:
        raise refusal(pop, f"the input scale 1/sigma^2 must be positive (found {c:.6g})")
    for pname, W, want in checks:
        err = _close(W, want)
        if err > STRUCTURE_RTOL:
            raise refusal(pop, f"projection '{pname}' is not the expected multiple of the decoder "
                               f"(relative error {err:.2g} > {STRUCTURE_RTOL:g})")
    prm = population_params(net, pop)
    iterations = int(prm.restart_every) or frame_steps(net, net.node(stim))
    return bdef.bind(name, pop, Structure(form, stim, Phi, c, prm, iterations))


def block_of_model(model: str):
    """The block definition whose expansion holds latents of neuron model ``model``."""
    for bdef in BLOCKS.values():
        if bdef.latent_model == model:
            return bdef
    raise KeyError(model)


def coder_models() -> set[str]:
    return {b.latent_model for b in BLOCKS.values() if b.latent_model}


def coders(net: Network, kind: str | None = None) -> list[Coder]:
    """Every coder of ``net`` (its blocks expanded first), optionally of one ``kind``."""
    x = expand_blocks(net)
    models = coder_models() if kind is None else {BLOCKS[kind].latent_model}
    return [recognise(x, p) for p in x.populations if p.model in models]


def has_coder(net: Network, kind: str | None = None) -> bool:
    """A coder block (of ``kind``), or a population of a coder's latent model (cheap: nothing is
    expanded)."""
    kinds = set(BLOCKS) if kind is None else {kind}
    models = {BLOCKS[k].latent_model for k in kinds if k in BLOCKS}
    return any(b.kind in kinds for b in net.blocks) or any(p.model in models for p in net.populations)


def coder_kinds(net: Network) -> list[str]:
    """The kinds of the coders of ``net``, in block order (cheap)."""
    kinds = [b.kind for b in net.blocks if b.kind in BLOCKS]
    kinds += [block_of_model(p.model).kind for p in net.populations if p.model in coder_models()]
    return list(dict.fromkeys(kinds))


def find_coder(net: Network, kind: str | None = None, name: str | None = None) -> Coder:
    """The spec's one coder (of ``kind``; ``name`` picks one): from its block or its expanded
    populations. A UsageError names what is missing or ambiguous."""
    if kind is None:
        kinds = coder_kinds(net)
        if not kinds:
            raise UsageError(f"spec '{net.name}' has no coder block ({', '.join(sorted(BLOCKS))}) "
                             "to evaluate")
        kind = kinds[0] if len(kinds) == 1 else None
        if kind is None:
            raise UsageError(f"spec '{net.name}' has coders of kinds {', '.join(kinds)}; evaluating several "
                             "is not supported")
    spiking = populations_of(net, graded=False)
    if spiking and has_coder(net, kind):
        raise NotImplementedYet(
            f"spec '{net.name}' has spiking populations ({', '.join(spiking)}) next to its {kind} coder: "
            "eval / compile run the coder alone and would ignore them; put the coder in a spec of its own")
    found = [c for c in coders(net, kind) if name is None or c.name == name]
    if not found:
        raise UsageError(f"spec '{net.name}' has no {kind} block" + (f" called '{name}'" if name else "")
                         + f" (nor a population of model '{BLOCKS[kind].latent_model}')")
    if len(found) > 1:
        raise UsageError(f"spec '{net.name}' has {len(found)} {kind} coders "
                         f"({', '.join(c.name for c in found)}); evaluating several is not supported")
    return found[0]


# --- input images ------------------------------------------------------------------------------

def _base_dir(net: Network) -> Path:
    return Path(net.origin).parent if net.origin else Path(".")


def block_images(net: Network, coder, images: int | None = None) -> tuple[np.ndarray, dict]:
    """(X, description): the coder's input images, (B, M) float64.

    ``images=None``: the stimulus's own rows (the spec's samples). ``images=N``: the first N
    rows of the held-out split of the stimulus's dataset (only for dataset stimuli).
    """
    name = coder.params["input"]
    try:
        stim = net.node(name)
    except KeyError:
        raise UsageError(f"block '{coder.name}': input '{name}' not found") from None
    if not isinstance(stim, ArrayStimulus) or stim.encoding != "value":
        raise NotImplementedYet(f"block '{coder.name}': evaluating needs an array stimulus with "
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


# --- running in chunks of images ---------------------------------------------------------------

def chunks(n: int, batch: int) -> list[slice]:
    """Slices of ``range(n)`` of at most ``batch`` items."""
    if batch < 1:
        raise ValueError(f"batch must be >= 1, got {batch}")
    return [slice(s, min(s + batch, n)) for s in range(0, n, batch)]


def run_in_chunks(fn, X, T: int, seed: int, batch: int, progress: bool, label: str, keys=("u", "z", "zbar")):
    """Run ``fn(X[chunk], T, seed + i)`` on each chunk of ``batch`` images (chunk i seeded with
    ``seed + i``) and stack ``keys`` of its results over the images. Returns (stacked arrays,
    the last chunk's other entries, seconds)."""
    B = len(X)
    out: dict = {}
    extra: dict = {}
    bar = tqdm(total=B, desc=label, unit="image", dynamic_ncols=True, leave=False) if progress else None
    t0 = time.perf_counter()
    try:
        for i, sl in enumerate(chunks(B, batch)):
            r = fn(X[sl], T, int(seed) + i)
            for k in keys:
                v = np.asarray(r[k])
                out.setdefault(k, np.empty((B, *v.shape[1:]), v.dtype))[sl] = v
            extra.update({k: v for k, v in r.items() if k not in keys})
            if bar is not None:
                bar.update(sl.stop - sl.start)
    finally:
        if bar is not None:
            bar.close()
    return out, extra, time.perf_counter() - t0
