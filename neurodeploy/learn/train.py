"""Training loop for the iP-VAE (BPTT through relaxed Poisson samples) and evaluation helpers.

Recipe (research note ipvae.md, section 2, scaled down for a CPU): Adamax with weight decay,
linear LR warm-up over the first 0.5 % of steps then cosine annealing, gradient-norm clipping,
temperature annealed linearly 1 -> 0.01 over the first half of training, beta warmed up linearly
over the first 10 % (starting at 1e-4), the soft caps on u and du ramped from 2 to their final
value over the same window. Loss = mean over the T_train iterations of NLL + beta KL (summed over
pixels / latents), mean over the batch, times 256 / M.
"""

from __future__ import annotations

import io
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..backends.torch.blocks.ipvae import IPVAE, IPVAEConfig, ipvae_from_arrays, n_exp_for
from ..backends.torch.blocks.lca import lca_infer
from ..core.data import train_test
from ..core.io import atomic_write_bytes, atomic_write_json
from ..library.blocks.coder import distance, r2_per_image, r2_pooled
from .ipvae import lca_learn


@dataclass
class TrainConfig:
    name: str = "ipvae"
    dataset: str = "digits"
    latent: int = 128
    T_train: int = 16
    beta: float = 6.0
    epochs: int = 100
    batch: int = 100
    lr: float = 2e-3
    weight_decay: float = 3e-4
    grad_clip: float = 1000.0
    seed: int = 1
    u_max: float = 10.0
    du_max: float = 10.0
    soft_clamp: bool = True
    temp_start: float = 1.0
    temp_end: float = 0.01
    temp_frac: float = 0.5
    warmup_frac: float = 0.1
    prior_hi: float = -4.0
    sigma: str = "scalar"
    checkpoint_every: int = 10  # epochs
    # evaluation after training
    eval_T: tuple = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000)
    eval_samples: int = 0  # 0 = the whole test split
    lca_lambdas: tuple = ()
    lca_epochs: int = 10
    extra: dict = field(default_factory=dict)


def _schedules(cfg: TrainConfig, step: int, total: int):
    frac = step / max(total, 1)
    tf = min(frac / cfg.temp_frac, 1.0) if cfg.temp_frac > 0 else 1.0
    temp = cfg.temp_start + (cfg.temp_end - cfg.temp_start) * tf
    wf = min(frac / cfg.warmup_frac, 1.0) if cfg.warmup_frac > 0 else 1.0
    beta = max(cfg.beta * wf, 1e-4)
    c = 2.0 + (cfg.u_max - 2.0) * wf if cfg.u_max > 2.0 else cfg.u_max
    c_du = 2.0 + (cfg.du_max - 2.0) * wf if cfg.du_max > 2.0 else cfg.du_max
    warm = max(int(0.005 * total), 1)
    lr_scale = min((step + 1) / warm, 1.0) * (1e-5 / cfg.lr + (1 - 1e-5 / cfg.lr) * 0.5 * (1 + math.cos(math.pi * frac)))
    return temp, beta, c, c_du, lr_scale


def _save_torch(path: Path, obj) -> None:
    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def train(cfg: TrainConfig, out_dir: str | Path, progress: bool = True, log=print, device=None,
          X_train=None):
    """Train an iP-VAE; writes ``checkpoint.pt`` (atomically, every ``checkpoint_every`` epochs
    and at the end). Returns (model, history list)."""
    import torch

    out = Path(out_dir)
    torch.manual_seed(cfg.seed)
    device = device or (torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu"))
    if X_train is None:
        X_train, _ = train_test(cfg.dataset)
    X = torch.as_tensor(np.asarray(X_train), dtype=torch.float32, device=device)
    N, M = X.shape
    mcfg = IPVAEConfig(inputs=M, latents=cfg.latent, u_max=cfg.u_max, du_max=cfg.du_max,
                       soft_clamp=cfg.soft_clamp, prior_hi=cfg.prior_hi, learn_sigma=cfg.sigma)
    model = IPVAE(mcfg, seed=cfg.seed).to(device)
    opt = torch.optim.Adamax(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    per_epoch = math.ceil(N / cfg.batch)
    total = per_epoch * cfg.epochs
    g = torch.Generator(device="cpu").manual_seed(cfg.seed)
    history, step, max_rate = [], 0, math.exp(model.u0.detach().max().item())
    scale = 256.0 / M
    t0 = time.time()
    bar = None
    if progress:
        bar = tqdm(total=total, desc=f"train {cfg.name}", unit="step", dynamic_ncols=True)
    try:
        for epoch in range(cfg.epochs):
            perm = torch.randperm(N, generator=g).to(device)
            sums = {"loss": 0.0, "nll": 0.0, "kl": 0.0, "mse": 0.0}
            for i in range(0, N, cfg.batch):
                temp, beta, c, c_du, lr_scale = _schedules(cfg, step, total)
                for grp in opt.param_groups:
                    grp["lr"] = cfg.lr * lr_scale
                n_exp = n_exp_for(min(max_rate, math.exp(c)))
                loss, info = model.forward_loss(X[perm[i:i + cfg.batch]], cfg.T_train, beta, temp, n_exp, c_u=c, c_du=c_du)
                loss = loss * scale
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                opt.step()
                max_rate = 0.9 * max_rate + 0.1 * info["max_rate"] if step else info["max_rate"]
                step += 1
                sums["loss"] += float(loss.detach())
                for k in ("nll", "kl", "mse"):
                    sums[k] += info[k]
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{float(loss.detach()):.1f}", mse=f"{info['mse']:.2f}", T=f"{temp:.2f}", beta=f"{beta:.2f}")
            rec = {k: v / per_epoch for k, v in sums.items()}
            rec.update(epoch=epoch + 1, eta=float(model.eta.detach()), seconds=round(time.time() - t0, 1))
            history.append(rec)
            if (epoch + 1) % cfg.checkpoint_every == 0 or epoch + 1 == cfg.epochs:
                _save_torch(out / "checkpoint.pt", {
                    "model": {k: v.detach().cpu() for k, v in model.state_dict().items()},
                    "optimizer": opt.state_dict(), "epoch": epoch + 1, "step": step,
                    "config": _plain(asdict(cfg)), "history": history})
    finally:
        if bar is not None:
            bar.close()
    return model, history


def _plain(obj):
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    return obj


# --- evaluation ------------------------------------------------------------------------------

def evaluate_ipvae(model_or_arrays, X_test, Ts=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1000),
                   seed: int = 0, mode: str = "exact", device=None) -> list[dict]:
    """T_test sweep on held-out data with exact Poisson sampling: per T, mean per-image R^2,
    pooled R^2, R^2 decoding from rates, zero fraction, mean |du|, max u, MSE and d."""
    import torch

    model = model_or_arrays if not isinstance(model_or_arrays, dict) else ipvae_from_arrays(model_or_arrays)
    device = device or next(model.parameters()).device
    model = model.to(device)
    x = torch.as_tensor(np.asarray(X_test), dtype=torch.float32, device=device)
    g = torch.Generator(device=device).manual_seed(seed)
    Ts = sorted(set(int(t) for t in Ts))
    _, _, rec = model.infer(x, max(Ts), mode=mode, record=Ts, generator=g)
    rows = []
    for t in Ts:
        m = rec[t]
        r2 = float(np.mean(m["r2_images"]))
        rows.append({"T": t, "r2": r2, "r2_median": float(np.median(m["r2_images"])),
                     "r2_pooled": m["r2_pooled"], "r2_rate": m["r2_rate"], "r2_avg": m["r2_avg"],
                     "zeros": m["zeros"],
                     "du_norm": m["du_norm"], "u_max": m["u_max"], "mse": m["mse"],
                     "d": distance(r2, m["zeros"])})
    return rows


SEED_KEYS = ("r2", "r2_pooled", "r2_rate", "r2_avg", "zeros", "du_norm", "u_max", "d", "d_rate")


def mean_se(values) -> tuple[float, float]:
    """Mean and standard error of the mean (nan for a single value)."""
    v = np.asarray(values, np.float64)
    return float(v.mean()), (float(v.std(ddof=1) / np.sqrt(len(v))) if len(v) > 1 else float("nan"))


def evaluate_ipvae_seeds(model_or_arrays, X_test, Ts, seeds: int = 5, mode: str = "exact",
                         device=None) -> tuple[list[dict], list[list[dict]]]:
    """:func:`evaluate_ipvae` with ``seeds`` independent Poisson streams (seeds 0 .. seeds-1):
    per T the mean over seeds of every statistic and its standard error (``<key>_se``), plus
    ``d_rate`` (d decoding the rates, the paper's d_MAP). Returns (aggregated rows, per-seed
    rows) so paired comparisons between Ts (same images, same seed) stay possible."""
    per_seed = []
    for s in range(int(seeds)):
        rows = evaluate_ipvae(model_or_arrays, X_test, Ts, seed=s, mode=mode, device=device)
        for r in rows:
            r["d_rate"] = distance(r["r2_rate"], r["zeros"])
        per_seed.append(rows)
    agg = []
    for i, r0 in enumerate(per_seed[0]):
        row = {"T": r0["T"], "seeds": int(seeds)}
        for k in SEED_KEYS:
            row[k], row[k + "_se"] = mean_se([p[i][k] for p in per_seed])
        agg.append(row)
    return agg, per_seed


def evaluate_lca(X_train, X_test, lambdas, K: int, epochs: int = 10, n_iter: int = 200,
                 dt_tau: float = 0.1, seed: int = 0, progress: bool = False, learn_lambda=None):
    """LCA baseline: learn one dictionary (at ``learn_lambda``, default the median of the sweep),
    then sweep lambda for inference. Returns (Phi, rows)."""
    import torch

    lam_learn = float(np.median(lambdas)) if learn_lambda is None else learn_lambda
    Phi = lca_learn(X_train, K, lam_learn, epochs=epochs, seed=seed, progress=progress,
                    n_iter=min(n_iter, 100), dt_tau=dt_tau)
    x = torch.as_tensor(np.asarray(X_test), dtype=torch.float32)
    rows = []
    for lam in lambdas:
        a = lca_infer(x, Phi, float(lam), n_iter, dt_tau)
        xh = (a @ Phi.T).double().numpy()
        xn = x.double().numpy()
        r2 = float(np.mean(r2_per_image(xn, xh)))
        zeros = float((a == 0).double().mean())
        rows.append({"lambda": float(lam), "r2": r2, "r2_pooled": r2_pooled(xn, xh), "zeros": zeros,
                     "d": distance(r2, zeros)})
    return Phi.double().numpy(), rows


def write_json(path, obj):
    atomic_write_json(path, json.loads(json.dumps(obj, default=float)))
