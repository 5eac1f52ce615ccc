"""Training a coder from a training file (``neurodeploy train SPEC``, ``neurodeploy.train``): the
iP-VAE on the GPU fallback (PyTorch), its deployable arrays, ONNX files and a network spec.

SPEC is a small training file (format in docs/ipvae.md; examples in models/train/), read with
the same located-diagnostics reader as network specs::

    neurodeploy-train: 1
    name: ipvae_digits
    model: ipvae
    dataset: digits              # digits | patches8 | patches16 (bundled, fixed train/test split)
    latent: 128
    train: {epochs: 120, batch: 100, lr: 0.002, T_train: 16, beta: 6, seed: 1}
    inference: {u_max: 10, du_max: 10, clamp: soft}
    eval: {T: [1, 16, 1000], lca_lambdas: [0.1, 0.3, 0.5]}
    deploy: {iterations: 1000}

It writes into the output directory (``-o``, default ``out/train/<name>``): ``checkpoint.pt``
(torch.save of plain tensors; reload with ``torch.load(weights_only=True)``), ``decoder.npz``
(Phi, u0, b, eta, sigma and the caps), ``decoder.onnx`` (x = Phi z), ``ipvae_rate.onnx`` (rate
form unrolled over T_train iterations, checked with onnxruntime), ``<name>.yaml`` (a
ready-to-deploy network spec with an ``ipvae`` block), ``metrics.json`` and PNG plots.
"""

from __future__ import annotations

import io
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import yaml

from ..backends.torch.simulator import pick_device
from ..core.data import train_test
from ..core.errors import SpecError, UsageError
from ..core.io import atomic_write_bytes, atomic_write_text, output_dir
from ..core.reader import Reader
from ..core.source import load_yaml_file
from ..interop.onnx import ipvae_rate_model, linear_decoder_model, run_onnxruntime, save_model
from .plots import plot_all
from .train import TrainConfig, evaluate_ipvae, evaluate_lca, train, write_json

DATASET_NAMES = ("digits", "patches8", "patches16")
TRAIN_KEYS = {  # key -> (kind, lo, hi)
    "epochs": ("int", 1, 100_000), "batch": ("int", 1, 100_000), "lr": ("num", 0.0, 1.0),
    "T_train": ("int", 1, 1000), "beta": ("num", 0.0, 1e6), "seed": ("int", 0, 2**31 - 1),
    "weight_decay": ("num", 0.0, 1.0), "grad_clip": ("num", 0.0, 1e9),
    "temp_start": ("num", 0.0, 100.0), "temp_end": ("num", 0.0, 100.0),
    "temp_frac": ("num", 0.0, 1.0), "warmup_frac": ("num", 0.0, 1.0),
    "checkpoint_every": ("int", 1, 100_000), "prior_hi": ("num", -8.0, 10.0),
}
INFER_KEYS = {"u_max": ("num", -8.0, 20.0), "du_max": ("num", 0.0, 20.0)}
EVAL_KEYS = ("T", "samples", "lca_lambdas", "lca_epochs")


def read_train_spec(path: str | Path):
    """Read and check a training file. Returns a TrainConfig plus the deploy options; raises
    SpecError listing every problem (file, line, key, hint)."""
    display = str(path)
    src, root, diags = load_yaml_file(path, display)
    if root is None:
        raise SpecError(diags)
    r = Reader(src)
    r.diags.extend(diags)
    top = ["neurodeploy-train", "name", "model", "dataset", "latent", "train", "inference", "eval", "deploy"]
    m = r.mapping(root, (), top, required=["neurodeploy-train", "name", "dataset", "latent"],
                  what="a training file", hints={"neurodeploy-train": "start the file with 'neurodeploy-train: 1'"})
    cfg = TrainConfig()
    deploy = {"iterations": 1000}
    if m is not None:
        if "neurodeploy-train" in m.entries:
            v = r.integer(m.get("neurodeploy-train"), ("neurodeploy-train",))
            if v != 1 and not r.has_error_at(("neurodeploy-train",)):
                r.error("ND700", m.get("neurodeploy-train"), ("neurodeploy-train",),
                        f"training file version {v} is not supported", "write 'neurodeploy-train: 1'")
        if "name" in m.entries:
            cfg.name = r.name(m.get("name"), ("name",), cfg.name)
        if "model" in m.entries:
            r.choice(m.get("model"), ("model",), ["ipvae"])
        if "dataset" in m.entries:
            cfg.dataset = r.choice(m.get("dataset"), ("dataset",), DATASET_NAMES, cfg.dataset)
        if "latent" in m.entries:
            cfg.latent = r.integer(m.get("latent"), ("latent",), 1, 8192, cfg.latent)
        tm = r.mapping(m.get("train"), ("train",), list(TRAIN_KEYS), what="train") if "train" in m.entries else None
        for key, (kind, lo, hi) in TRAIN_KEYS.items():
            if tm is not None and key in tm.entries:
                node, p = tm.get(key), ("train", key)
                val = r.integer(node, p, lo, hi, getattr(cfg, key)) if kind == "int" else \
                    r.number(node, p, lo, hi, getattr(cfg, key))
                setattr(cfg, key, val)
        im = r.mapping(m.get("inference"), ("inference",), [*INFER_KEYS, "clamp", "sigma"],
                       what="inference") if "inference" in m.entries else None
        if im is not None:
            for key, (_, lo, hi) in INFER_KEYS.items():
                if key in im.entries:
                    setattr(cfg, key, r.number(im.get(key), ("inference", key), lo, hi, getattr(cfg, key)))
            if "clamp" in im.entries:
                cfg.soft_clamp = r.choice(im.get("clamp"), ("inference", "clamp"), ["soft", "hard"], "soft") == "soft"
            if "sigma" in im.entries:
                cfg.sigma = r.choice(im.get("sigma"), ("inference", "sigma"), ["scalar", "pixel", "none"], cfg.sigma)
        em = r.mapping(m.get("eval"), ("eval",), EVAL_KEYS, what="eval") if "eval" in m.entries else None
        if em is not None:
            if "T" in em.entries:
                items = r.seq(em.get("T"), ("eval", "T"), "list of iteration counts")
                cfg.eval_T = tuple(r.integer(n, ("eval", "T", i), 1, 100_000, 1) for i, n in enumerate(items)) or cfg.eval_T
            if "samples" in em.entries:
                cfg.eval_samples = r.integer(em.get("samples"), ("eval", "samples"), 0, 1_000_000, 0)
            if "lca_lambdas" in em.entries:
                items = r.seq(em.get("lca_lambdas"), ("eval", "lca_lambdas"), "list of numbers")
                cfg.lca_lambdas = tuple(r.number(n, ("eval", "lca_lambdas", i), 0.0, 1e6) for i, n in enumerate(items))
            if "lca_epochs" in em.entries:
                cfg.lca_epochs = r.integer(em.get("lca_epochs"), ("eval", "lca_epochs"), 1, 10_000, cfg.lca_epochs)
        dm = r.mapping(m.get("deploy"), ("deploy",), ["iterations"], what="deploy") if "deploy" in m.entries else None
        if dm is not None and "iterations" in dm.entries:
            deploy["iterations"] = r.integer(dm.get("iterations"), ("deploy", "iterations"), 1, 100_000, 1000)
    errors = [d for d in r.diags if d.severity == "error"]
    if errors:
        raise SpecError(errors)
    return cfg, deploy


def _save_npz(path: Path, arrays: dict) -> None:
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(v) for k, v in arrays.items()})
    atomic_write_bytes(path, buf.getvalue())


def deploy_spec_text(name: str, arrays: dict, npz_name: str, dataset: str, samples: list[int],
                     iterations: int, beta: float) -> str:
    """A network spec (neurodeploy: 1) that deploys the trained coder on held-out data: one
    held-out image per frame, each shown for ``iterations`` steps of 1 ms (one step = one
    inference iteration)."""
    K = int(np.asarray(arrays["Phi"]).shape[1])
    sigma = float(np.mean(np.asarray(arrays["sigma"])))
    spec = {
        "neurodeploy": 1,
        "name": name,
        "simulation": {"dt": "1 ms", "steps": int(iterations) * len(samples), "seed": 1},
        "stimuli": [{"name": "image", "kind": "array", "encoding": "value",
                     "frame_duration": f"{int(iterations)} ms",
                     "data": {"dataset": dataset, "samples": [int(s) for s in samples]}}],
        "blocks": [{"name": "coder", "kind": "ipvae", "input": "image", "latent": K,
                    "decoder": {"file": npz_name, "key": "Phi"},
                    "prior": {"file": npz_name, "key": "u0"},
                    "bias": {"file": npz_name, "key": "b"},
                    "iterations": int(iterations), "beta": float(beta),
                    "step_size": round(float(arrays["eta"]), 8), "sigma": round(sigma, 8),
                    "u_max": float(arrays["u_max"]), "du_max": float(arrays["du_max"]),
                    "u_min": float(arrays["u_min"]),
                    "clamp": "soft" if bool(arrays["soft_clamp"]) else "hard"}],
    }
    head = f"# trained iP-VAE coder written by `neurodeploy train`; weights in {npz_name}\n"
    return head + yaml.safe_dump(spec, sort_keys=False, default_flow_style=None)


#: files of a training run that are not always written (removed from an output directory that a new
#: run does not write them into)
TRAIN_FILES = ("lca_dictionary.npz", "dictionary.png", "reconstructions.png", "curves.png", "plane.png",
               "lca_dictionary.png")


def train_from_spec(spec, out=None, *, epochs: int | None = None, device: str = "auto",
                    threads: int | None = None, progress: bool = True, plots: bool = True) -> dict:
    """Train the coder of training file ``spec`` (format in the module doc) into ``out`` (default
    ``out/train/<name>``); returns the metrics written to ``metrics.json`` plus ``out``, ``name``,
    ``device`` and ``train_seconds``. ``epochs`` overrides the file's; ``threads``: torch's CPU
    threads."""
    import torch

    cfg, deploy = read_train_spec(spec)
    if epochs is not None:
        if epochs < 1:
            raise UsageError("--epochs must be at least 1")
        cfg.epochs = epochs
    if threads:
        torch.set_num_threads(threads)

    device = pick_device(device)
    final = out if out is not None else Path("out/train") / cfg.name
    # all or nothing (core.io.output_dir): checked and locked before training, written into a staging
    # directory, moved into place at the end (metrics.json last); Ctrl-C leaves `final` as it was
    with output_dir(final, marker="metrics.json", owns=TRAIN_FILES) as st:
        out = st.path
        X_train, X_test = train_test(cfg.dataset)
        if cfg.eval_samples:
            X_test = X_test[:cfg.eval_samples]
        t0 = time.time()
        model, history = train(cfg, out, progress=progress, device=device, X_train=X_train)
        train_s = time.time() - t0
        model.eval()
        arrays = model.export_arrays()
        _save_npz(out / "decoder.npz", arrays)
        save_model(linear_decoder_model(arrays["Phi"]), out / "decoder.onnx")
        rate = ipvae_rate_model(arrays, cfg.T_train)
        save_model(rate, out / "ipvae_rate.onnx")
        # check the ONNX rate form against torch on a few held-out inputs
        xs = torch.as_tensor(X_test[:32], dtype=torch.float32)
        with torch.no_grad():
            u_t, _, _ = model.cpu().infer(xs, cfg.T_train, mode="rate")
            want = (torch.exp(u_t) @ model.Phi.T).numpy()
        got = run_onnxruntime(rate, {"x": X_test[:32]})["xhat"]
        onnx_err = float(np.max(np.abs(got - want)) / max(np.max(np.abs(want)), 1e-12))
        n_total = len(train_test(cfg.dataset)[0])
        samples = list(range(n_total, n_total + min(len(X_test), 16)))
        atomic_write_text(out / f"{cfg.name}.yaml",
                          deploy_spec_text(cfg.name, arrays, "decoder.npz", cfg.dataset, samples,
                                           deploy["iterations"], cfg.beta))
        t1 = time.time()
        rows = evaluate_ipvae(model.to(device), X_test, cfg.eval_T, seed=cfg.seed)
        eval_s = time.time() - t1
        metrics = {"config": {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(cfg).items()},
                   "device": str(device), "train_seconds": round(train_s, 1), "eval_seconds": round(eval_s, 1),
                   "onnx_rate_max_rel_err": onnx_err, "history": history, "ipvae": rows,
                   "eta": float(arrays["eta"]), "sigma_mean": float(np.mean(arrays["sigma"]))}
        lca_Phi = None
        if cfg.lca_lambdas:
            t2 = time.time()
            lca_Phi, lca_rows = evaluate_lca(X_train, X_test, cfg.lca_lambdas, cfg.latent, epochs=cfg.lca_epochs,
                                             seed=cfg.seed, progress=progress)
            metrics["lca"] = lca_rows
            metrics["lca_seconds"] = round(time.time() - t2, 1)
            _save_npz(out / "lca_dictionary.npz", {"Phi": lca_Phi})
        write_json(out / "metrics.json", metrics)
        if plots:
            plot_all(out, model.cpu(), X_test, rows, metrics.get("lca"), lca_Phi, cfg)
    return {**metrics, "out": str(final), "name": cfg.name}


