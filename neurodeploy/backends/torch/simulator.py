"""Torch backend (the GPU fallback): CUDA when available, else the CPU; batched over trials.

It simulates the *Lava form* of a network (:mod:`neurodeploy.lowering.loihi`), the
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

Beyond the Lava form, the float arithmetic also runs what Lava cannot host, so that the
placement pass can put it here: time-varying injected currents (``current`` stimuli with
``times``/``values`` or a ``start``/``stop`` window, ``array`` stimuli with ``encoding:
current``) as a per-step bias, and pair STDP (additive or multiplicative, any bounds, with
delays) on plastic projections, one weight vector per trial.

A batch runs ``len(trial_seeds)`` independent trials at once: the network's structure (synapses,
weights) comes from the spec's seed; each trial's input spikes and initial state come from its
own seed. :class:`TorchSim` is the stepper; the hybrid Lava + torch run
(:mod:`neurodeploy.backends.hybrid`) drives one from inside a Lava process.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ...core.errors import BackendError, NotImplementedYet
from ...core.result import Result, Trace
from ...core.targets import Target
from ...core.versions import versions
from ...ir.nodes import ArrayStimulus, CurrentStimulus, Network
from ...library import materialize as mat
from ...library.neurons import get_neuron
from ...library.plasticity import lowering
from ...library.plasticity.canonical import SynapseState
from ...lowering.loihi import (
    Unsupported,
    attach_plasticity,
    initial_values,
    lower_population,
    unsupported_nodes as lava_unsupported,
)
from ...lowering.loihi_result import loihi_result
from ...passes.pipeline import lower_for

SINCE_NEVER = 2**30
#: connections up to this many (pre x post) elements use a dense matmul, larger ones sparse CSR
DENSE_MAX_ELEMENTS = 16_000_000
#: bound on (step x trial x neuron) values held for inputs and recordings
MAX_RECORD_CELLS = 500_000_000
#: with a single trial, connections above this size deliver event by event (rows of spiking neurons)
EVENT_DRIVEN_ABOVE = 1_000_000
#: ... and on the CPU already above this size: a (1 x n_pre) @ (n_pre x n_post) product per step
#: costs far more there than gathering the few rows of the neurons that spiked (measured)
EVENT_DRIVEN_ABOVE_CPU = 10_000
UV_MAX = 2**23


@dataclass
class TorchOptions:
    device: str = "auto"  # auto | cpu | cuda
    #: float arithmetic: float32 | float64 (None: the target's number format when it is one of them,
    #: else float32)
    dtype: str | None = None
    trial_seeds: tuple[int, ...] | None = None  # None: one trial with the spec's seed
    progress: bool = True
    #: CPU intra-op threads for the run (None: torch's default). On a small shared CPU, 1 avoids
    #: threads waiting for each other on every elementwise operation (measured: docs/torch.md)
    cpu_threads: int | None = None

    #: command-line option -> field
    CLI = {"torch_device": "device", "dtype": "dtype", "progress": "progress"}


def pick_device(name: str):
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise BackendError("--device cuda: no CUDA device is visible (torch.cuda.is_available() is False)")
    return torch.device(name)


# ---------------------------------------------------------------------------------------------
# what torch can run


def varying_currents(net: Network) -> list:
    """The injected-current stimuli that are not constant over the whole run (no Lava bias)."""
    out = []
    for s in net.stimuli:
        if isinstance(s, CurrentStimulus):
            constant = s.amplitude is not None and s.start <= 0 and (
                s.stop is None or s.stop >= net.simulation.duration)
            if not constant:
                out.append(s)
        elif isinstance(s, ArrayStimulus) and s.encoding == "current":
            out.append(s)
    return out


def _lava_form(net: Network) -> Network:
    """``net`` without what only torch adds to the Lava form (time-varying currents, plasticity)."""
    varying = {s.name for s in varying_currents(net)}
    return dataclasses.replace(
        net, stimuli=tuple(s for s in net.stimuli if s.name not in varying),
        projections=tuple(dataclasses.replace(p, plasticity=None) for p in net.projections))


def unsupported_nodes(net: Network, fixed: bool = False) -> list:
    """Nodes of ``net`` the torch backend cannot run, as lowering.Unsupported (empty if none)."""

    out = list(lava_unsupported(_lava_form(net)))
    for pr in net.projections:
        if pr.plasticity is not None:
            why = lowering(pr.plasticity.rule, pr.plasticity.params, net.simulation.dt).problem()
            if why:
                out.append(Unsupported(pr.name, f"plasticity rule '{pr.plasticity.rule}': {why}"))
    if fixed:  # the integer emulation is Lava's datapath: only what Lava itself runs
        out += [Unsupported(s.name, "time-varying currents run on torch in float only (target 'torch')")
                for s in varying_currents(net)]
        out += [Unsupported(p.name, "plasticity runs on torch in float only (target 'torch')")
                for p in net.projections if p.plasticity is not None]
    return out


def lower(net: Network, target: Target):
    """The Lava form of ``net`` plus torch's extras; (lowered, quantized or None).

    Raises NotImplementedYet naming every node torch cannot run."""
    fixed = target.number_format == "fixed"
    bad = unsupported_nodes(net, fixed)
    if bad:
        raise NotImplementedYet(f"target '{target.name}' cannot run " + "; ".join(
            f"'{u.node}': {u.reason}" for u in bad))
    low, q = lower_for(_lava_form(net), target)
    for pr in net.projections:
        if pr.plasticity is not None:
            attach_plasticity(low.projections[pr.name], pr, net.simulation.dt)
    return low, q


# ---------------------------------------------------------------------------------------------
# the stepper


class TorchSim:
    """The Lava form of ``net`` as tensors, stepped one Lava time step at a time.

    ``external``: names of emitters (populations or sources of ``net``, usually placeholder spike
    sources) whose spikes another simulator produces: call :meth:`push` with the spikes they
    emitted in Lava step ``m - 1`` before :meth:`step` ``(m)``. Lava steps run from 1 to
    ``steps + 1`` (the extra step carries the synaptic input of the last one, as in the Lava
    backend); what a step records lands in row ``m - 1``.
    """

    def __init__(self, net: Network, target: Target, device, dtype: str, seeds: tuple[int, ...],
                 external: frozenset = frozenset(), record_all_spikes: bool = False):
        import torch

        self.net, self.target, self.device, self.seeds = net, target, device, seeds
        self.low, self.q = lower(net, target)
        low, q = self.low, self.q
        self.fixed = fixed = q is not None
        self.fdtype = fdtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
        self.external = frozenset(external)
        B = self.B = len(seeds)
        self.steps = steps = low.steps + 1
        self.trials = trials = [dataclasses.replace(net, simulation=dataclasses.replace(net.simulation, seed=s))
                                for s in seeds]
        varying = varying_currents(net)
        drive_pops = {s.target for s in varying}
        # bound what is held per (step, trial, neuron) before allocating it: inputs, drives, records
        recorded = {pb.target for pb in net.probes if pb.target in low.populations and pb.variable != "weights"}
        if record_all_spikes:
            recorded |= set(low.populations)
        cells = steps * B * (sum(s.size for n, s in low.sources.items() if n not in self.external)
                             + sum(low.populations[t].size for t in recorded)) \
            + steps * sum(low.populations[t].size for t in drive_pops)
        if cells > MAX_RECORD_CELLS:
            raise BackendError(
                f"this run holds {steps} steps x {B} trials x the recorded and input neurons = {cells:.3g} values, "
                f"more than the limit of {MAX_RECORD_CELLS:.0e}; run fewer steps or trials, or record fewer neurons")
        pops = self.pops = {}
        for name, p in low.populations.items():
            pop_ir = next(x for x in net.populations if x.name == name)
            v0s, u0s = zip(*(initial_values(tr, pop_ir, p) for tr in trials))  # per trial
            if fixed:
                qp = q.populations[name]
                v0 = np.stack([np.rint(v * qp.K) for v in v0s]).astype(np.int64)
                u0 = np.stack([np.rint(u * qp.K) for u in u0s]).astype(np.int64)
                bias_exp = qp.bias_exp.astype(np.int64)
                eff_bias = np.where(bias_exp >= 0, qp.bias_mant.astype(np.int64) << np.maximum(bias_exp, 0),
                                    qp.bias_mant.astype(np.int64) >> np.maximum(-bias_exp, 0))
                P = dict(u=torch.tensor(u0, device=device), v=torch.tensor(v0, device=device),
                         du=4096 - (qp.du + 1), dv=4096 - qp.dv, vth=int(qp.vth) << 6,
                         bias=torch.tensor(eff_bias, device=device), v_reset=int(qp.v_reset))
            else:
                P = dict(u=torch.tensor(np.stack(u0s), dtype=fdtype, device=device),
                         v=torch.tensor(np.stack(v0s), dtype=fdtype, device=device),
                         du=1.0 - p.du, dv=1.0 - p.dv, vth=p.vth,
                         bias=torch.tensor(p.bias, dtype=fdtype, device=device), v_reset=p.v_reset)
            P.update(since=torch.full((B, p.size), SINCE_NEVER, dtype=torch.int64, device=device),
                     R=p.refractory_steps, drop=p.input_drop, mode=p.reset_mode, size=p.size,
                     a_in=None, drive=None)
            pops[name] = P
        # time-varying currents: a per-step bias dv R_m I_ext(k) (Lava step m = reference step m - 1)
        if varying:
            sub = dataclasses.replace(net, stimuli=tuple(varying))
            per_pop = {}
            kk = np.arange(low.steps)
            for d in mat.current_drives(sub):
                n = low.populations[d.target].size
                if d.frames is not None:
                    f = kk // d.frame_steps
                    I = np.where((f < len(d.frames))[:, None], d.frames[np.minimum(f, len(d.frames) - 1)], 0.0)
                else:
                    I = d.amplitude[:, None] * d.mask[None, :]
                per_pop[d.target] = per_pop.get(d.target, np.zeros((low.steps, n))) + I
            self.varying_current = per_pop
            for name, I in per_pop.items():
                # the lowering's bias is linear in the injected current: its bias per ampere
                pop_ir = next(x for x in net.populations if x.name == name)
                n = pop_ir.size
                per_amp = (lower_population(net, pop_ir, np.ones(n)).bias
                           - lower_population(net, pop_ir, np.zeros(n)).bias)
                extra = np.zeros((steps, n))
                extra[: low.steps] = per_amp * I
                pops[name]["drive"] = torch.tensor(extra, dtype=fdtype, device=device)
        else:
            self.varying_current = {}
        # spike history per emitter: slot m % L holds what it emitted in Lava step m
        L = self.L = max([pr.delay_steps for pr in low.projections.values()], default=0) + 2
        emitters = {**{n: p.size for n, p in low.populations.items()}, **{n: s.size for n, s in low.sources.items()}}
        self.hist = {n: torch.zeros((L, B, size), dtype=torch.bool, device=device) for n, size in emitters.items()}
        self.src = {}
        for name, s in low.sources.items():
            if name in self.external:
                continue
            data = np.zeros((steps, B, s.size), dtype=bool)
            stim = next(x for x in net.stimuli if x.name == name)
            for b, tr in enumerate(trials):
                idx, k = mat.source_spikes(tr, stim)
                data[k, b, idx] = True
            self.src[name] = torch.tensor(data, device=device)
        self.conns, self.plastic = [], []
        for pr in low.projections.values():
            if pr.plasticity is not None:
                self.plastic.append(_Plastic(net, pr, low, B, fdtype, device))
                continue
            if fixed:
                qp = q.projections[pr.name]
                M, shift = qp.weights.tocoo(), qp.weight_exp
            else:
                M, shift = pr.matrix().tocoo(), 0
            wdtype = torch.float64 if fixed else fdtype  # fixed: integer sums, exact in float64
            event_above = EVENT_DRIVEN_ABOVE_CPU if device.type == "cpu" else EVENT_DRIVEN_ABOVE
            if B == 1 and event_above < pr.n_tgt * pr.n_src <= DENSE_MAX_ELEMENTS:
                # one trial: add up the (dense) rows of the neurons that spiked
                Wd = np.zeros((pr.n_src, pr.n_tgt))
                np.add.at(Wd, (M.col, M.row), M.data)
                W = _DenseRows(torch.tensor(Wd, dtype=wdtype, device=device))
            elif B == 1 and pr.n_tgt * pr.n_src > event_above:
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
            self.conns.append((pr.source, pr.target, pr.delay_steps, W, shift))
        rec_v = {pb.target for pb in net.probes if pb.variable in ("v",) and pb.target in low.populations}
        rec_u = {pb.target for pb in net.probes if pb.variable == "I" and pb.target in low.populations}
        rec_u |= {t for t in rec_v if low.populations[t].model == "lif"}
        rec_s = {pb.target for pb in net.probes if pb.variable == "spikes"} | {
            t for t in rec_v if low.populations[t].model == "lif"}
        if record_all_spikes:
            rec_s |= set(low.populations)
        out = self.out = {(n, "spikes"): torch.zeros((steps, B, low.populations[n].size), dtype=torch.bool,
                                                     device=device) for n in rec_s if n in low.populations}
        for n in rec_v:
            out[(n, "v")] = torch.zeros((steps, B, low.populations[n].size), dtype=torch.float64, device=device)
        for n in rec_u:
            out[(n, "I")] = torch.zeros((steps, B, low.populations[n].size), dtype=torch.float64, device=device)
        self.counts = {n: torch.zeros((B, p.size), dtype=torch.int64, device=device)
                       for n, p in low.populations.items()}
        self.weight_probes = [pb for pb in net.probes if pb.variable == "weights"]
        for pl in self.plastic:
            pl.probes = [pb for pb in self.weight_probes if pb.target == pl.name]

    # -- stepping ------------------------------------------------------------------------------

    def push(self, name: str, m: int, spikes) -> None:
        """External emitter ``name``'s spikes of Lava step ``m``, shape (trials, size) or (size,)."""
        self.hist[name][m % self.L].copy_(spikes if spikes.dim() == 2 else spikes.expand_as(self.hist[name][0]))

    def step(self, m: int) -> None:
        import torch

        hist, L, fixed = self.hist, self.L, self.fixed
        for P in self.pops.values():
            P["a_in"] = None
        for pl in self.plastic:  # the plastic update of step m - 1 (its inputs are all known now)
            if m >= 2:
                pl.update(m - 1, hist, L, self.pops, self.steps)
        for source, dest, d, W, shift in self.conns:
            emitted = m - 1 - d
            if emitted < 1:
                continue
            s = hist[source][emitted % L]
            if isinstance(W, (_Rows, _DenseRows)):
                acc = W.deliver(s[0])
                if acc is None:  # nothing was emitted
                    continue
            else:
                s = s.to(W.dtype)
                acc = s @ W if W.layout == torch.strided else (W @ s.T).T  # (B, n_tgt)
            P = self.pops[dest]
            if fixed:
                acc = acc.to(torch.int64)
                acc = acc << shift if shift >= 0 else acc >> -shift
            P["a_in"] = acc if P["a_in"] is None else P["a_in"] + acc
        for pl in self.plastic:
            if pl.pending is not None:
                P = self.pops[pl.target]
                P["a_in"] = pl.pending if P["a_in"] is None else P["a_in"] + pl.pending
                pl.pending = None
        for name, P in self.pops.items():
            spikes = self._neurons(P, m)
            hist[name][m % L].copy_(spikes)
            if m <= self.low.steps:
                self.counts[name] += spikes
            out = self.out
            if (name, "spikes") in out:
                out[(name, "spikes")][m - 1] = spikes
            if (name, "v") in out:
                out[(name, "v")][m - 1] = P["v"]
            if (name, "I") in out:
                out[(name, "I")][m - 1] = P["u"]
        for name, data in self.src.items():
            hist[name][m % L].copy_(data[m - 1])

    def _neurons(self, P, m: int):
        import torch

        since = P["since"]
        since.add_(1).clamp_(max=SINCE_NEVER)
        integrate = since >= P["R"]
        use_u = since >= P["R"] + P["drop"]
        if self.fixed:
            u = _trunc_mul(P["u"], P["du"])
            if P["a_in"] is not None:
                u = u + (P["a_in"] << 6)
            u = torch.where(u > UV_MAX, u - 2 * UV_MAX, torch.where(u <= -UV_MAX, u + 2 * UV_MAX, u))
            v_new = _trunc_mul(P["v"], P["dv"]) + torch.where(use_u, u, 0) + P["bias"]
            v_new.clamp_(-UV_MAX + 1, UV_MAX - 1)
        else:
            u = P["u"] * P["du"]
            if P["a_in"] is not None:
                u = u + P["a_in"]
            v_new = P["v"] * P["dv"]
            v_new += torch.where(use_u, u, 0.0)
            v_new += P["bias"]
            if P["drive"] is not None:
                v_new += P["drive"][m - 1]
        v = torch.where(integrate, v_new, P["v"])
        spikes = integrate & (v > P["vth"])
        if P["mode"] == 0:
            v.masked_fill_(spikes, P["v_reset"])
        else:
            v = torch.where(spikes, v - P["vth"], v)
        since.masked_fill_(spikes, 0)
        P["u"], P["v"] = u, v
        return spikes

    # -- moving the recordings between processes (a hybrid run steps the torch part in a Lava child)

    def _layout(self) -> list:
        items = [("out", k, tuple(t.shape)) for k, t in self.out.items()]
        items += [("count", n, tuple(c.shape)) for n, c in self.counts.items()]
        for pl in self.plastic:
            for pb in pl.probes:
                n = len(pl.i) if pb.indices is None else len(pb.indices)
                items.append(("w", pb.name, (len(range(0, self.low.steps, pl._period(pb))), self.B, n), pl))
        return items

    def record_size(self) -> int:
        return int(sum(np.prod(it[2]) for it in self._layout()))

    def export(self) -> np.ndarray:
        """Every recording (and the spike counts, and the weight samples) as one float64 vector."""
        import torch

        parts = []
        for it in self._layout():
            kind, key, shape = it[:3]
            if kind == "out":
                parts.append(self.out[key].to(torch.float64).cpu().numpy().ravel())
            elif kind == "count":
                parts.append(self.counts[key].cpu().numpy().astype(float).ravel())
            else:
                parts.append(np.asarray(it[3].rec.get(key, []), dtype=float).reshape(shape).ravel())
        return np.concatenate(parts) if parts else np.zeros(0)

    def load(self, flat: np.ndarray) -> None:
        """The inverse of :meth:`export` (on a TorchSim built from the same network)."""
        import torch

        pos = 0
        for it in self._layout():
            kind, key, shape = it[:3]
            n = int(np.prod(shape))
            block = np.asarray(flat[pos: pos + n]).reshape(shape)
            pos += n
            if kind == "out":
                self.out[key] = torch.as_tensor(block).to(self.out[key].dtype)
            elif kind == "count":
                self.counts[key] = torch.as_tensor(np.rint(block).astype(np.int64))
            else:
                it[3].rec[key] = list(block)

    # -- results -------------------------------------------------------------------------------

    def results(self, wall: float, dtype: str) -> list[Result]:
        low, q = self.low, self.q
        results = []
        for b, tr in enumerate(self.trials):
            data = {k: v[:, b].cpu().numpy() for k, v in self.out.items()}
            for n in low.populations:
                data.setdefault((n, "spikes"), None)
            plain = dataclasses.replace(tr, probes=tuple(pb for pb in tr.probes if pb.variable != "weights"
                                                         and pb.target not in self.external))
            res = loihi_result(plain, low, q, self.target, data, wall,
                              counts={n: c[b].cpu().numpy() for n, c in self.counts.items()})
            for name in self.external:
                res.counts.pop(name, None)
                res.spikes.pop(name, None)
            self._currents(tr, res)
            for pb in self.weight_probes:
                pl = next((p for p in self.plastic if p.name == pb.target), None)
                res.traces[pb.name] = pl.trace(pb, b) if pl is not None else _static_weights(tr, pb, low)
            res.backend = "torch"
            res.versions = versions()
            res.options = {"device": str(self.device), "arithmetic": "fixed (Loihi 2 integers)" if self.fixed
                           else dtype, "batch": self.B, "trial_seed": self.seeds[b]}
            results.append(res)
        return results

    def _currents(self, net: Network, res: Result) -> None:
        """I_ext probes: constant and time-varying currents, as the reference records them."""
        for pb in net.probes:
            if pb.variable != "I_ext":
                continue
            pop = self.low.populations[pb.target]
            total = np.zeros((self.low.steps, pop.size))
            for d in mat.current_drives(net):
                if d.target == pb.target:
                    total += np.stack([np.broadcast_to(d.at(k), (pop.size,)) for k in range(self.low.steps)])
            period = max(1, int(round((pb.period or net.simulation.dt) / net.simulation.dt)))
            rows = np.arange(0, self.low.steps, period)
            idx = np.arange(pop.size) if pb.indices is None else np.asarray(pb.indices)
            model = next(p.model for p in net.populations if p.name == pb.target)
            res.traces[pb.name] = Trace(pb.target, "I_ext", get_neuron(model).state["I_ext"],
                                        rows * net.simulation.dt, idx, total[rows][:, idx])


class _Plastic:
    """Pair STDP on one projection, as the reference's trace form, for every trial at once.

    Lava step ``m`` is reference step ``m - 1``: its update (decay the traces; deliver the spikes
    that arrive, with the weights before this step's change; potentiate/depress) runs at the start
    of step ``m + 1`` and its delivery is that step's synaptic input (the one-step delay of the
    Lava form), so both the pre and the post spikes of step ``m`` are known by then."""

    def __init__(self, net: Network, pr, low, B: int, fdtype, device):
        import torch

        proj = next(p for p in net.projections if p.name == pr.name)
        syn = mat.synapses(net, proj)
        self.name, self.source, self.target, self.d = pr.name, pr.source, pr.target, pr.delay_steps
        self.p = p = dict(pr.plasticity)
        self.i = torch.tensor(syn.i, dtype=torch.int64, device=device)
        self.j = torch.tensor(syn.j, dtype=torch.int64, device=device)
        self.sign = float(syn.sign)
        self.factor = low.populations[pr.target].weight_factor
        self.n_tgt = pr.n_tgt
        self.dt, self.unit = low.dt, proj.weights.unit
        w0 = torch.tensor(syn.w * syn.sign, dtype=fdtype, device=device)
        self.w = w0.expand(B, -1).clone()  # magnitudes (signed weights for sign: mixed), per trial
        self.pending = None
        self.last_done = 0
        self.probes = []
        self.rec = {}  # probe name -> list of (trials, n) rows
        self.canonical = None
        if pr.canonical is not None:  # any other rule: its canonical form, event semantics

            self.canonical = SynapseState(pr.canonical, self.w, low.dt, xp=torch)
            self.mod, self.gate = pr.modulator, pr.gate
            if self.mod is not None:  # third factor: the modulator's spike trace, per post neuron
                self.mod_trace = torch.zeros((B, pr.n_tgt), dtype=fdtype, device=device)
                self.mod_decay = float(np.exp(-low.dt / self.mod["tau"]))
            return
        self.apre = torch.zeros_like(self.w)
        self.apost = torch.zeros_like(self.w)
        self.dpre = float(np.exp(-low.dt / p["tau_pre"]))
        self.dpost = float(np.exp(-low.dt / p["tau_post"]))
        self.mult = bool(p.get("multiplicative", False))
        self.w_min, self.w_max = float(p.get("w_min", 0.0)), float(p["w_max"])
        self.span = self.w_max - self.w_min

    @property
    def w(self):
        return self.canonical.w if self.canonical is not None else self._w

    @w.setter
    def w(self, value):
        if getattr(self, "canonical", None) is not None:
            self.canonical.w = value
        else:
            self._w = value

    def _deliver(self, arrived) -> None:
        import torch

        contrib = torch.where(arrived, self.w * self.sign, 0.0)
        out = torch.zeros((self.w.shape[0], self.n_tgt), dtype=self.w.dtype, device=self.w.device)
        out.index_add_(1, self.j, contrib)
        self.pending = out * self.factor

    def _learn(self, arrived, post, mod_spikes=None, k: int = 0) -> None:
        import torch

        if self.canonical is not None:
            if arrived is not None and bool(arrived.any()):
                self._deliver(arrived)
            r = None
            if self.mod is not None:
                self.mod_trace = self.mod_trace * self.mod_decay + mod_spikes
                r = self.mod_trace[:, self.j] - self.mod["offset"]
            elif self.gate is not None:  # phase gate: 1 in reference steps k0 < k <= k1
                r = float(self.gate[0] < k <= self.gate[1])
            self.canonical.step(arrived if arrived is not None else torch.zeros_like(post), post, r)
            return
        self.apre.mul_(self.dpre)
        self.apost.mul_(self.dpost)
        if arrived is not None and bool(arrived.any()):
            self._deliver(arrived)
            self.apre += arrived.to(self.w.dtype) * self.p["a_plus"]  # not bool * float: float32
            dw = self.apost * ((self.w - self.w_min) / self.span) if self.mult else self.apost
            self.w = torch.where(arrived, torch.clamp(self.w + dw, self.w_min, self.w_max), self.w)
        if bool(post.any()):
            self.apost -= post.to(self.w.dtype) * self.p["a_minus"]
            dw = self.apre * ((self.w_max - self.w) / self.span) if self.mult else self.apre
            self.w = torch.where(post, torch.clamp(self.w + dw, self.w_min, self.w_max), self.w)

    def update(self, m: int, hist, L: int, pops, steps: int) -> None:
        import torch

        arrived = (hist[self.source][(m - self.d) % L] != 0)[:, self.i] if m - self.d >= 1 else None
        post = (hist[self.target][m % L] != 0)[:, self.j]
        mod = None
        if self.canonical is not None and self.mod is not None:
            mod = (hist[self.mod["source"]][m % L] != 0).to(self.mod_trace.dtype)
        self._learn(arrived, post, mod, m - 1)
        self.last_done = m
        k = m - 1  # reference step
        for pb in self.probes:
            if k % self._period(pb) == 0 and k < steps - 1:
                w = self.w * self.sign
                if pb.indices is not None:
                    w = w[:, list(pb.indices)]
                self.rec.setdefault(pb.name, []).append(w.to(torch.float64).cpu().numpy())

    def _period(self, pb) -> int:
        return max(1, int(round((pb.period or self.dt) / self.dt)))

    def trace(self, pb, b: int) -> Trace:
        rows = np.asarray(self.rec.get(pb.name, []))
        vals = rows[:, b] if rows.size else np.zeros((0, 0))
        idx = np.arange(len(self.i)) if pb.indices is None else np.asarray(pb.indices)
        return Trace(pb.target, "weights", self.unit, np.arange(len(vals)) * self._period(pb) * self.dt, idx, vals)


def _static_weights(net: Network, pb, low) -> Trace:
    pr = low.projections[pb.target]
    period = max(1, int(round((pb.period or low.dt) / low.dt)))
    rows = np.arange(0, low.steps, period)
    idx = np.arange(len(pr.i)) if pb.indices is None else np.asarray(pb.indices)

    unit = get_neuron(low.populations[pr.target].model).weight_unit
    vals = np.broadcast_to(pr.w_si[idx], (len(rows), len(idx))).copy()
    return Trace(pb.target, "weights", unit, rows * low.dt, idx, vals)


def run(net: Network, target: Target, options: TorchOptions | None = None) -> list[Result]:
    """Simulate every trial; returns one :class:`Result` per trial seed."""
    import torch

    opts = options or TorchOptions()
    device = pick_device(opts.device)
    seeds = tuple(opts.trial_seeds) if opts.trial_seeds else (net.simulation.seed,)
    dtype = float_dtype(opts, target)
    sim = TorchSim(net, target, device, dtype, seeds)
    threads = torch.get_num_threads()
    if opts.cpu_threads and device.type == "cpu":
        torch.set_num_threads(opts.cpu_threads)
    t0 = time.perf_counter()
    try:
        wall = _loop(sim, device, opts, t0)
    finally:
        torch.set_num_threads(threads)
    return sim.results(wall, dtype)


def float_dtype(opts: TorchOptions, target: Target) -> str:
    """The float arithmetic of a run: the option, else the target's number format, else float32."""
    if opts.dtype is not None:
        return opts.dtype
    return target.number_format if target.number_format in ("float32", "float64") else "float32"


def _loop(sim: TorchSim, device, opts: TorchOptions, t0: float) -> float:
    import torch

    with torch.inference_mode():
        # a bar only for runs that last (tqdm's delay), never for --json / --quiet
        for m in tqdm(range(1, sim.steps + 1), desc="torch", unit="step", leave=False, delay=2.0,
                      disable=not opts.progress):  # Lava time steps
            sim.step(m)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return time.perf_counter() - t0


class _DenseRows:
    """A dense (n_pre, n_post) connection that adds up only the rows of the neurons that spiked."""

    def __init__(self, W):
        self.W, self.dtype = W, W.dtype

    def deliver(self, spikes):  # spikes: (n_pre,) bool -> (1, n_post), or None if nothing arrives
        active = spikes.nonzero().flatten()
        if active.numel() == 0:
            return None
        return self.W.index_select(0, active).sum(0, keepdim=True)


class _Rows:
    """A source-major CSR connection that delivers only the rows of the neurons that spiked
    (a vectorised ragged gather + index_add: no loop over neurons or synapses)."""

    def __init__(self, indptr, indices, data, n_post: int):
        self.indptr, self.indices, self.data, self.n_post = indptr, indices, data, n_post
        self.dtype = data.dtype

    def deliver(self, spikes):  # spikes: (n_pre,) bool -> (1, n_post), or None if nothing arrives
        import torch

        active = torch.nonzero(spikes).flatten()
        if active.numel() == 0:
            return None
        starts = self.indptr[active]
        lens = self.indptr[active + 1] - starts
        total = int(lens.sum())
        if total == 0:
            return None
        out = torch.zeros((1, self.n_post), dtype=self.dtype, device=self.data.device)
        first = torch.cumsum(lens, 0) - lens  # position of each row's first synapse in the output
        pos = torch.arange(total, device=lens.device) - torch.repeat_interleave(first, lens, output_size=total) \
            + torch.repeat_interleave(starts, lens, output_size=total)
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
