"""Torch backend (the GPU fallback): CUDA when available, else the CPU; batched over trials.

It simulates the *Lava form* of a network (:mod:`neurodeploy.backends.lava.lowering`), the
change of variables that is exactly equivalent to the reference semantics, in one of two
arithmetics:

* ``float`` (targets ``torch``): float32 by default (``dtype="float64"`` for validation); with
  float64 it reproduces Brian2 and the numpy reference spike for spike;
* ``fixed`` (target ``loihi2-torch``): the integers of the quantize pass with Lava's
  bit-accurate LIF/NDLIF and Dense arithmetic (int64 state, 12-bit decays with truncation toward
  zero, ``a_in << 6``, 24-bit wrap of ``u`` and saturation of ``v``): a Loihi-exact simulator
  that runs on a GPU. It matches Lava's ``fixed_pt`` bit for bit (tested).

Per step, per population: ``u = u (1 - du) + a_in``; ``v = v (1 - dv) + u + bias`` where the
neuron integrates; spike where ``v > vth``; reset. Connections deliver one step late (plus their
delay), as Lava's Dense. Neurons and synapses are tensors (no Python loop over them); the time
loop is Python.

A batch runs ``len(trial_seeds)`` independent trials at once: the network's structure (synapses,
weights) comes from the spec's seed; each trial's input spikes and initial state come from its
own seed. Plasticity is not simulated yet.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass

import numpy as np

from ... import materialize as mat
from ...errors import BackendError, NotImplementedYet
from ...ir.nodes import Network
from ...result import Result
from ...targets import Target

SINCE_NEVER = 2**30
#: connections up to this many (pre x post) elements use a dense matmul, larger ones sparse CSR
DENSE_MAX_ELEMENTS = 16_000_000
#: bound on (step x trial x neuron) values held for inputs and recordings
MAX_RECORD_CELLS = 500_000_000
#: with a single trial, connections above this size deliver event by event (rows of spiking neurons)
EVENT_DRIVEN_ABOVE = 1_000_000
UV_MAX = 2**23


@dataclass
class TorchOptions:
    device: str = "auto"  # auto | cpu | cuda
    dtype: str = "float32"  # float arithmetic: float32 | float64
    trial_seeds: tuple[int, ...] | None = None  # None: one trial with the spec's seed
    progress: bool = True


def available() -> tuple[bool, str]:
    from .. import torch_status

    s = torch_status()
    return s.available, s.detail


def pick_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BackendError("--device cuda: no CUDA device is visible (torch.cuda.is_available() is False)")
    return torch.device(name)


def run(net: Network, target: Target, options: TorchOptions | None = None) -> list[Result]:
    """Simulate every trial; returns one :class:`Result` per trial seed."""
    import torch

    from ..lava import compile_network
    from ..lava import _result as lava_result
    from ..lava.lowering import _constant_currents, lower_population
    from ..versions import versions

    opts = options or TorchOptions()
    if any(p.plasticity is not None for p in net.projections):
        raise NotImplementedYet("plasticity on the torch backend is not implemented yet (use brian2 or lava)")
    low, q = compile_network(net, target)
    fixed = q is not None
    device = pick_device(opts.device)
    fdtype = {"float32": torch.float32, "float64": torch.float64}[opts.dtype]
    seeds = tuple(opts.trial_seeds) if opts.trial_seeds else (net.simulation.seed,)
    B, steps = len(seeds), low.steps + 1
    trials = [dataclasses.replace(net, simulation=dataclasses.replace(net.simulation, seed=s)) for s in seeds]
    currents = _constant_currents(net)
    # bound what is held per (step, trial, neuron) before allocating it: source spikes and records
    recorded = {pb.target for pb in net.probes if pb.target in low.populations and pb.variable != "weights"}
    cells = steps * B * (sum(s.size for s in low.sources.values())
                         + sum(low.populations[t].size for t in recorded))
    if cells > MAX_RECORD_CELLS:
        raise BackendError(
            f"this run holds {steps} steps x {B} trials x the recorded and input neurons = {cells:.3g} values, "
            f"more than the limit of {MAX_RECORD_CELLS:.0e}; run fewer steps or trials, or record fewer neurons")
    t0 = time.perf_counter()
    with torch.no_grad():
        pops = {}
        for name, p in low.populations.items():
            pop_ir = next(x for x in net.populations if x.name == name)
            inits = [lower_population(tr, pop_ir, currents.get(name)) for tr in trials]
            if fixed:
                qp = q.populations[name]
                K = qp.K
                v0 = np.stack([np.rint(i.v0 * K) for i in inits]).astype(np.int64)
                u0 = np.stack([np.rint(i.u0 * K) for i in inits]).astype(np.int64)
                bias_exp = qp.bias_exp.astype(np.int64)
                eff_bias = np.where(bias_exp >= 0, qp.bias_mant.astype(np.int64) << np.maximum(bias_exp, 0),
                                    qp.bias_mant.astype(np.int64) >> np.maximum(-bias_exp, 0))
                pops[name] = dict(
                    u=torch.tensor(u0, device=device), v=torch.tensor(v0, device=device),
                    du=4096 - (qp.du + 1), dv=4096 - qp.dv, vth=int(qp.vth) << 6,
                    bias=torch.tensor(eff_bias, device=device), v_reset=int(qp.v_reset))
            else:
                pops[name] = dict(
                    u=torch.tensor(np.stack([i.u0 for i in inits]), dtype=fdtype, device=device),
                    v=torch.tensor(np.stack([i.v0 for i in inits]), dtype=fdtype, device=device),
                    du=1.0 - p.du, dv=1.0 - p.dv, vth=p.vth,
                    bias=torch.tensor(p.bias, dtype=fdtype, device=device), v_reset=p.v_reset)
            pops[name].update(since=torch.full((B, p.size), SINCE_NEVER, dtype=torch.int64, device=device),
                              R=p.refractory_steps, drop=p.input_drop, mode=p.reset_mode, size=p.size)
        # spike history per emitter: slot m % L holds what it emitted in Lava step m
        L = max([pr.delay_steps for pr in low.projections.values()], default=0) + 2
        emitters = {**{n: p.size for n, p in low.populations.items()}, **{n: s.size for n, s in low.sources.items()}}
        hist = {n: torch.zeros((L, B, size), dtype=torch.bool, device=device) for n, size in emitters.items()}
        src = {}
        for name, s in low.sources.items():
            data = np.zeros((steps, B, s.size), dtype=bool)
            for b, tr in enumerate(trials):
                stim = next(x for x in net.stimuli if x.name == name)
                idx, k = mat.source_spikes(tr, stim)
                data[k, b, idx] = True
            src[name] = torch.tensor(data, device=device)
        conns = []
        for pr in low.projections.values():
            if fixed:
                qp = q.projections[pr.name]
                M = qp.weights.tocoo()
                shift = qp.weight_exp
            else:
                M, shift = pr.matrix().tocoo(), 0
            wdtype = torch.float64 if fixed else fdtype  # fixed: integer sums, exact in float64
            if B == 1 and pr.n_tgt * pr.n_src > EVENT_DRIVEN_ABOVE:
                # one trial, a big connection: deliver only the rows of the neurons that spiked
                c = M.tocsr().T.tocsr()  # source-major (n_pre, n_post)
                c.sum_duplicates()
                W = _Rows(torch.tensor(c.indptr, dtype=torch.int64, device=device),
                          torch.tensor(c.indices, dtype=torch.int64, device=device),
                          torch.tensor(c.data, dtype=wdtype, device=device), pr.n_tgt)
            elif pr.n_tgt * pr.n_src <= DENSE_MAX_ELEMENTS:  # (n_pre, n_post) dense: one matmul per step
                Wd = np.zeros((pr.n_src, pr.n_tgt))
                np.add.at(Wd, (M.col, M.row), M.data)
                W = torch.tensor(Wd, dtype=wdtype, device=device)
            else:
                with warnings.catch_warnings():  # "sparse CSR support is in beta": it works for mm
                    warnings.simplefilter("ignore", UserWarning)
                    W = torch.sparse_csr_tensor(*_csr(M), size=(pr.n_tgt, pr.n_src), dtype=wdtype,
                                                check_invariants=False).to(device)
            conns.append((pr.source, pr.target, pr.delay_steps, W, shift))
        rec_v = {pb.target for pb in net.probes if pb.variable in ("v",) and pb.target in low.populations}
        rec_u = {pb.target for pb in net.probes if pb.variable == "I" and pb.target in low.populations}
        rec_u |= {t for t in rec_v if low.populations[t].model == "lif"}
        rec_s = {pb.target for pb in net.probes if pb.variable == "spikes"} | {
            t for t in rec_v if low.populations[t].model == "lif"}
        out = {(n, "spikes"): torch.zeros((steps, B, low.populations[n].size), dtype=torch.bool, device=device)
               for n in rec_s if n in low.populations}
        counts = {n: torch.zeros((B, p.size), dtype=torch.int64, device=device) for n, p in low.populations.items()}
        for n in rec_v:
            out[(n, "v")] = torch.zeros((steps, B, low.populations[n].size), dtype=torch.float64, device=device)
        for n in rec_u:
            out[(n, "I")] = torch.zeros((steps, B, low.populations[n].size), dtype=torch.float64, device=device)

        from tqdm import tqdm

        # a bar only for runs that last (tqdm's delay), never for --json / --quiet
        for m in tqdm(range(1, steps + 1), desc="torch", unit="step", leave=False, delay=2.0,
                      disable=not opts.progress):  # Lava time steps
            a_in = {n: None for n in pops}
            for source, dest, d, W, shift in conns:
                emitted = m - 1 - d
                if emitted < 1:
                    continue
                if isinstance(W, _Rows):
                    acc = W.deliver(hist[source][emitted % L][0])
                else:
                    s = hist[source][emitted % L].to(W.dtype)
                    acc = s @ W if W.layout == torch.strided else (W @ s.T).T  # (B, n_tgt)
                if fixed:
                    acc = acc.to(torch.int64)
                    acc = acc << shift if shift >= 0 else acc >> -shift
                a_in[dest] = acc if a_in[dest] is None else a_in[dest] + acc
            for name, P in pops.items():
                ain = a_in[name]
                P["since"] = torch.clamp(P["since"] + 1, max=SINCE_NEVER)
                integrate = P["since"] >= P["R"]
                use_u = P["since"] >= P["R"] + P["drop"]
                if fixed:
                    u = _trunc_mul(P["u"], P["du"])
                    if ain is not None:
                        u = u + (ain << 6)
                    u = torch.where(u > UV_MAX, u - 2 * UV_MAX, torch.where(u <= -UV_MAX, u + 2 * UV_MAX, u))
                    v_new = _trunc_mul(P["v"], P["dv"]) + torch.where(use_u, u, torch.zeros_like(u)) + P["bias"]
                    v_new = torch.clamp(v_new, -UV_MAX + 1, UV_MAX - 1)
                else:
                    u = P["u"] * P["du"]
                    if ain is not None:
                        u = u + ain
                    v_new = P["v"] * P["dv"] + torch.where(use_u, u, torch.zeros_like(u)) + P["bias"]
                v = torch.where(integrate, v_new, P["v"])
                spikes = integrate & (v > P["vth"])
                if P["mode"] == 0:
                    v = torch.where(spikes, torch.full_like(v, P["v_reset"]), v)
                else:
                    v = torch.where(spikes, v - P["vth"], v)
                P["since"] = torch.where(spikes, torch.zeros_like(P["since"]), P["since"])
                P["u"], P["v"] = u, v
                hist[name][m % L] = spikes
                counts[name] += spikes if m <= low.steps else 0
                if (name, "spikes") in out:
                    out[(name, "spikes")][m - 1] = spikes
                if (name, "v") in out:
                    out[(name, "v")][m - 1] = v.to(torch.float64)
                if (name, "I") in out:
                    out[(name, "I")][m - 1] = u.to(torch.float64)
            for name in low.sources:
                hist[name][m % L] = src[name][m - 1]
        if device.type == "cuda":
            torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    results = []
    for b, tr in enumerate(trials):
        data = {k: v[:, b].cpu().numpy() for k, v in out.items()}
        for n in low.populations:
            data.setdefault((n, "spikes"), None)
        res = lava_result(tr, low, q, target, data, wall, counts={n: c[b].cpu().numpy() for n, c in counts.items()})
        res.backend = "torch"
        res.versions = versions()
        res.options = {"device": str(device), "arithmetic": "fixed (Loihi 2 integers)" if fixed else opts.dtype,
                       "batch": B, "trial_seed": seeds[b]}
        results.append(res)
    return results


class _Rows:
    """A source-major CSR connection that delivers only the rows of the neurons that spiked
    (a vectorised ragged gather + index_add: no loop over neurons or synapses)."""

    def __init__(self, indptr, indices, data, n_post: int):
        self.indptr, self.indices, self.data, self.n_post = indptr, indices, data, n_post
        self.dtype = data.dtype

    def deliver(self, spikes):  # spikes: (n_pre,) bool -> (1, n_post)
        import torch

        out = torch.zeros((1, self.n_post), dtype=self.dtype, device=self.data.device)
        active = torch.nonzero(spikes).flatten()
        if active.numel() == 0:
            return out
        starts = self.indptr[active]
        lens = self.indptr[active + 1] - starts
        total = int(lens.sum())
        if total == 0:
            return out
        first = torch.cumsum(lens, 0) - lens  # position of each row's first synapse in the output
        pos = torch.arange(total, device=lens.device) - torch.repeat_interleave(first, lens) \
            + torch.repeat_interleave(starts, lens)
        out[0].index_add_(0, self.indices[pos], self.data[pos])
        return out


def _csr(M):
    import torch

    c = M.tocsr()
    c.sum_duplicates()
    return (torch.tensor(c.indptr, dtype=torch.int64), torch.tensor(c.indices, dtype=torch.int64),
            torch.tensor(c.data))


def _trunc_mul(x, factor: int):
    """x * factor / 4096 with truncation toward zero (Lava's decay), in int64."""
    import torch

    prod = x * factor
    return torch.sign(prod) * (torch.abs(prod) >> 12)
