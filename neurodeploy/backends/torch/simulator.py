"""Torch backend (the GPU fallback): CUDA when available, else the CPU; batched over trials.

It simulates the *Lava form* of a network (:mod:`neurodeploy.lowering.loihi`), the
change of variables that is exactly equivalent to the reference semantics, in one of two
arithmetics:

* ``float`` (targets ``torch``): float32 by default (``dtype="float64"`` for validation); with
  float64 it reproduces Brian2 and the numpy reference spike for spike;
* ``fixed`` (target ``loihi2-torch``): the integers of the quantize pass with Lava's
  bit-accurate LIF/NDLIF and Dense arithmetic (int64 state, 12-bit decays with truncation toward
  zero, ``a_in << 6``, 24-bit wrap of ``u`` and saturation of ``v``): a Loihi-exact simulator
  that runs on a GPU. It matches Lava's ``fixed_pt`` bit for bit (tested). Pair STDP (rules
  ``stdp`` and ``bengio_stdp``, what ``loihi2-sim`` runs on a LearningDense) runs on Lava's fixed-point learning
  engine emulated by :mod:`.lava_learning` (traces, stochastic rounding with Lava's random
  streams, sign-mode and 8-bit saturation): the learned weights equal ``loihi2-sim``'s integer
  for integer (tested); other plasticity rules run in float only (target ``torch``).

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
import logging
import time
import warnings
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from ...core.errors import BackendError, CompileError, NotImplementedYet, UsageError
from ...core.result import Result, SpikeTrains, Trace
from ...core.targets import Target
from ...core.versions import versions
from ...ir.nodes import ArrayStimulus, CurrentStimulus, Network
from ...library import materialize as mat
from ...library.neurons import get_neuron
from ...library.plasticity import lowering
from ...library.plasticity.canonical import SynapseState
from ...lowering.learning_engine import LEARNING_RNG_SEED, stdp_bounds, stdp_encoding
from ...lowering.loihi import (
    LoweredProjection,
    Unsupported,
    attach_plasticity,
    discrete_order,
    initial_values,
    lower_population,
    schedule_delay,
    unsupported_nodes as lava_unsupported,
    weight_scale,
)
from ...lowering.loihi_result import loihi_result
from ...passes.pipeline import lower_for
from . import fused
from .lava_learning import LavaFixedLearning

log = logging.getLogger("neurodeploy.torch")

SINCE_NEVER = 2**30
#: connections up to this many (pre x post) elements use a dense matmul, larger ones sparse CSR
DENSE_MAX_ELEMENTS = 16_000_000
#: bound on the bytes a run holds for its recordings and inputs (the probes' buffers, the input
#: spikes, the time-varying drives, the spikes recorded so far), checked before allocating them
MAX_RECORD_BYTES = 4_000_000_000
#: recorded spikes are gathered on the device in chunks of up to this many (step x trial x neuron)
#: cells, then kept as indices (step, trial, neuron): one host transfer per chunk, not per step
SPIKE_CHUNK_CELLS = 16_000_000
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
    #: CPU intra-op threads for the run (``--threads``). None: 1 for a single trial (its small
    #: elementwise operations only wait for each other on more threads; measured: docs/torch.md),
    #: torch's default (every core) for a batch of trials
    cpu_threads: int | None = None
    #: the time loop (issue 17, fused.py): auto (the fused CPU kernel where it applies, else eager)
    #: | fused (an error where it does not apply) | eager; $NEURODEPLOY_TORCH_KERNEL overrides it
    kernel: str = "auto"

    #: command-line option -> field
    CLI = {"torch_device": "device", "dtype": "dtype", "progress": "progress", "threads": "cpu_threads",
           "torch_kernel": "kernel"}

    def threads(self, trials: int) -> int | None:
        """The intra-op threads of a CPU run of ``trials`` trials (None: torch's default)."""
        if self.cpu_threads is not None:
            return int(self.cpu_threads)
        return 1 if trials == 1 else None


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


def _lava_form(net: Network, keep_plasticity: bool = False) -> Network:
    """``net`` without what only torch adds to the Lava form (time-varying currents, plasticity;
    ``keep_plasticity``: the plastic projections stay, for the fixed-point learning engine)."""
    varying = {s.name for s in varying_currents(net)}
    projections = net.projections if keep_plasticity else tuple(
        dataclasses.replace(p, plasticity=None) for p in net.projections)
    return dataclasses.replace(net, stimuli=tuple(s for s in net.stimuli if s.name not in varying),
                               projections=projections)


def unsupported_nodes(net: Network, fixed: bool = False) -> list:
    """Nodes of ``net`` the torch backend cannot run, as lowering.Unsupported (empty if none)."""
    if fixed:
        return _unsupported_fixed(net)
    # same-step delivery (schedule 'discrete') in float only: the integers are Lava's datapath
    out = list(lava_unsupported(_lava_form(net), same_step=not fixed))
    for pr in net.projections:
        if pr.plasticity is not None and net.simulation.schedule != "exact":
            out.append(Unsupported(pr.name, f"plasticity under schedule '{net.simulation.schedule}' is not "
                                            "implemented on torch yet (schedule 'exact' runs it)"))
        elif pr.plasticity is not None:
            why = lowering(pr.plasticity.rule, pr.plasticity.params, net.simulation.dt).problem()
            if why:
                out.append(Unsupported(pr.name, f"plasticity rule '{pr.plasticity.rule}': {why}"))
    return out


def _unsupported_fixed(net: Network) -> list:
    """The integer emulation is Lava's ``fixed_pt`` datapath: only what ``loihi2-sim`` runs, and of
    the plasticity rules only pair STDP (Lava's fixed-point learning engine, emulated by
    :mod:`.lava_learning`)."""
    # Lava's own limits, plastic projections included (delays, w_min, multiplicative, mixed sign)
    out = list(lava_unsupported(_lava_form(net, keep_plasticity=True), same_step=False))
    named = {u.node for u in out}
    out += [Unsupported(s.name, "time-varying currents run on torch in float only (target 'torch')")
            for s in varying_currents(net)]
    for pr in net.projections:
        if pr.plasticity is None or pr.name in named:
            continue
        if net.simulation.schedule != "exact":
            out.append(Unsupported(pr.name, f"plasticity under schedule '{net.simulation.schedule}' is not "
                                            "implemented on torch yet (schedule 'exact' runs it)"))
        elif lowering(pr.plasticity.rule, pr.plasticity.params, net.simulation.dt).kind != "stdp":
            out.append(Unsupported(pr.name, f"plasticity rule '{pr.plasticity.rule}': target 'loihi2-torch' "
                                            "emulates Lava's fixed-point learning engine for pair STDP only "
                                            "(rules 'stdp' and 'bengio_stdp'); this rule runs on torch in "
                                            "float (target 'torch') or on Lava (target 'loihi2-sim')"))
    return out


def lower(net: Network, target: Target, defer: bool = False):
    """The Lava form of ``net`` plus torch's extras; (lowered, quantized or None).

    ``defer`` (float targets): leave out of the lowering the static projections that no
    ``weights`` probe reads and return them too, ``(lowered, quantized, deferred)``, so that the
    caller materialises them one at a time (the set-up then never holds every projection's
    synapse arrays at once). Raises NotImplementedYet naming every node torch cannot run."""
    fixed = target.number_format == "fixed"
    bad = unsupported_nodes(net, fixed)
    if bad:
        raise NotImplementedYet(f"target '{target.name}' cannot run " + "; ".join(
            f"'{u.node}': {u.reason}" for u in bad))
    if fixed:  # the plastic projections quantised and lowered as loihi2-sim does (w_max headroom)
        low, q = lower_for(_lava_form(net, keep_plasticity=True), target)
        return (low, q, []) if defer else (low, q)
    form, deferred = _lava_form(net), []
    if defer and not fixed:
        probed = {pb.target for pb in net.probes if pb.variable == "weights"}
        deferred = [p for p in form.projections if p.plasticity is None and p.name not in probed]
        names = {p.name for p in deferred}
        form = dataclasses.replace(form, projections=tuple(p for p in form.projections if p.name not in names))
    low, q = lower_for(form, target)
    for pr in net.projections:
        if pr.plasticity is not None:
            attach_plasticity(low.projections[pr.name], pr, net.simulation.dt)
    return (low, q, deferred) if defer else (low, q)


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
        self.low, self.q, deferred = lower(net, target, defer=True)
        low, q = self.low, self.q
        self.fixed = fixed = q is not None
        self.fdtype = fdtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
        self.external = frozenset(external)
        B = self.B = len(seeds)
        self.steps = steps = low.steps + 1
        self.trials = trials = [dataclasses.replace(net, simulation=dataclasses.replace(net.simulation, seed=s))
                                for s in seeds]
        for pb in net.probes:
            if pb.target in low.populations and pb.variable not in ("spikes", "v", "I", "I_ext", "weights"):
                raise NotImplementedYet(f"probe '{pb.name}': probing '{pb.variable}' on the torch backend "
                                        "is not implemented yet")
        varying = varying_currents(net)
        drive_pops = {s.target for s in varying}
        state_dtype = torch.int64 if fixed else fdtype
        # what the run records: v/I of the probed neurons at each probe's period, spikes as indices
        self.traces = [_TraceRec(pb, low.populations[pb.target], low.steps, B, state_dtype, device, low.dt,
                                 low.schedule)
                       for pb in net.probes if pb.variable in ("v", "I") and pb.target in low.populations
                       and pb.target not in self.external]
        spike_probes: dict[str, list] = {}
        for pb in net.probes:
            if pb.variable == "spikes" and pb.target in low.populations and pb.target not in self.external:
                spike_probes.setdefault(pb.target, []).append(pb)
        if record_all_spikes:
            for n in low.populations:
                spike_probes.setdefault(n, [])
        self.spike_recs = {n: _SpikeRec(n, low.populations[n].size, pbs, B, low.steps, device)
                           for n, pbs in spike_probes.items()}
        # input spikes of every trial as (step-sorted) indices, not a dense (steps x trials x size) array
        drawn = {}
        for name, s in low.sources.items():
            if name in self.external:
                continue
            stim = next(x for x in net.stimuli if x.name == name)
            ks, flat = [], []
            for b, tr in enumerate(trials):
                idx, k = mat.source_spikes(tr, stim)
                keep = (k >= 0) & (k < steps)
                ks.append(np.asarray(k[keep], dtype=np.int64))
                flat.append(np.asarray(idx[keep], dtype=np.int64) + b * s.size)
            drawn[name] = (np.concatenate(ks), np.concatenate(flat))
        # bound what is held (recordings, inputs, drives) before allocating it, naming the biggest parts
        itemsize = torch.empty((), dtype=state_dtype).element_size()
        parts = [(r.nbytes(itemsize), f"probe '{r.pb.name}' ({r.pb.variable} of {r.n} neuron(s) x {len(r.rows)} "
                                      f"sample(s) x {B} trial(s))") for r in self.traces]
        parts += [(r.chunk_bytes(), f"the spike buffer of '{n}' ({r.C} step(s) x {B} trial(s) x {r.n} neuron(s))")
                  for n, r in self.spike_recs.items()]
        parts += [(16 * len(k) + 8 * (steps + 1), f"the input spikes of '{n}' ({len(k)} spikes)")
                  for n, (k, _) in drawn.items()]
        fsize = torch.empty((), dtype=fdtype).element_size()
        parts += [(steps * low.populations[t].size * fsize, f"the time-varying current of '{t}'")
                  for t in drive_pops]
        self.planned_bytes = total = sum(b for b, _ in parts)
        if total > MAX_RECORD_BYTES:
            biggest = "; ".join(f"{what} = {_gb(b)}" for b, what in sorted(parts, key=lambda x: -x[0])[:3])
            raise CompileError(
                f"this run would hold {_gb(total)} of recordings and inputs, more than the limit of "
                f"{_gb(MAX_RECORD_BYTES)}: {biggest}; hint: record fewer neurons (the probe's indices), sample less "
                f"often (its period), or run fewer steps or trials")
        for r in self.traces:
            r.allocate()
        for r in self.spike_recs.values():
            r.allocate()
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
        delays = [pr.delay_steps for pr in low.projections.values()]
        same = discrete_order(net)[1] if low.schedule == "discrete" else set()
        delays += [schedule_delay(net, p, mat.delay_steps(p.delay, low.dt), same)[0] for p in deferred]
        L = self.L = max(delays, default=0) + 2
        emitters = {**{n: p.size for n, p in low.populations.items()}, **{n: s.size for n, s in low.sources.items()}}
        self.hist = {n: torch.zeros((L, B, size), dtype=torch.bool, device=device) for n, size in emitters.items()}
        self.src = {}  # source -> (flat indices b * size + i, sorted by step; row pointer per step)
        for name, (k, flat) in drawn.items():
            order = np.argsort(k, kind="stable")
            ptr = np.searchsorted(k[order], np.arange(steps + 1), side="left")
            self.src[name] = (torch.as_tensor(flat[order], device=device), ptr)
        del drawn
        # schedule 'discrete': connections delivered within their step (self.same_conns), the
        # populations stepped in that order (lowering.discrete_order); self.conns: one step late
        self.conns, self.plastic, self.same_conns = [], [], []
        self.order = discrete_order(net)[0] if low.schedule == "discrete" else list(low.populations)
        event_above = EVENT_DRIVEN_ABOVE_CPU if device.type == "cpu" else EVENT_DRIVEN_ABOVE
        keep_arrays = {pb.target for pb in net.probes if pb.variable == "weights"}
        deferred = {p.name: p for p in deferred}
        for proj in net.projections:
            pr = low.projections.get(proj.name)
            if pr is not None and pr.plasticity is not None:
                self.plastic.append(_FixedPlastic(pr, low, q, B, device) if fixed
                                    else _Plastic(net, pr, low, B, fdtype, device))
                continue
            if pr is None:  # deferred: materialised now, alone, exactly as the lowering would
                proj = deferred[proj.name]
                syn = mat.synapses(net, proj)
                tgt = low.populations[proj.target]
                pre, post, w, shift = syn.i, syn.j, syn.w * tgt.weight_factor, 0
                d, same_step = schedule_delay(net, proj, syn.delay_steps, same)
                pr = LoweredProjection(proj.name, proj.source, proj.target, _EMPTY_I, _EMPTY_I, _EMPTY_W,
                                       d, proj.sign, emitters[proj.source], tgt.size, _EMPTY_W, None,
                                       tgt.weight_factor * syn.sign, same_step=same_step)
                low.projections[proj.name] = pr
                del syn
            elif fixed:
                qp = q.projections[pr.name]
                M, shift = qp.weights.tocoo(), qp.weight_exp  # (n_post, n_pre), integers
                pre, post, w = M.col, M.row, M.data
                del M
            else:
                pre, post, w, shift = pr.i, pr.j, pr.w, 0
            wdtype = torch.float64 if fixed else fdtype  # fixed: integer sums, exact in float64
            size = pr.n_tgt * pr.n_src
            if size <= DENSE_MAX_ELEMENTS:
                Wd = np.zeros((pr.n_src, pr.n_tgt))  # (n_pre, n_post); repeated pairs add up
                np.add.at(Wd, (pre, post), w)
                Wd = torch.tensor(Wd, dtype=wdtype, device=device)
                # one trial: add up the rows of the neurons that spiked; else one matmul per step
                W = _DenseRows(Wd) if B == 1 and size > event_above else Wd
            elif B == 1:  # one trial, a big connection: deliver only the rows of the neurons that spiked
                indptr, indices, data = _compact_csr(pre, post, w, pr.n_src, wdtype)
                W = _Rows(indptr.to(device), indices.to(device), data.to(device), pr.n_tgt)
            else:  # a batch, a big connection: a (n_post, n_pre) sparse CSR product per step
                import scipy.sparse as sparse  # slow to import: not at `import neurodeploy`

                c = sparse.csr_matrix((w, (post, pre)), shape=(pr.n_tgt, pr.n_src))
                c.sum_duplicates()  # sorted, unique column indices per row
                with warnings.catch_warnings():  # "sparse CSR support is in beta": it works for mm
                    warnings.simplefilter("ignore", UserWarning)
                    W = torch.sparse_csr_tensor(torch.from_numpy(c.indptr), torch.from_numpy(c.indices),
                                                torch.from_numpy(c.data).to(wdtype), size=(pr.n_tgt, pr.n_src),
                                                check_invariants=False).to(device)
                del c
            del pre, post, w
            if pr.name not in keep_arrays:
                # the lowered copies are no longer needed: free them before the next projection is built
                low.projections[pr.name] = dataclasses.replace(pr, i=_EMPTY_I, j=_EMPTY_I, w=_EMPTY_W, w_si=_EMPTY_W)
            (self.same_conns if pr.same_step else self.conns).append((pr.source, pr.target, pr.delay_steps, W, shift))
        low.projections = {p.name: low.projections[p.name] for p in net.projections}
        self.counts = {n: torch.zeros((B, p.size), dtype=torch.int64, device=device)
                       for n, p in low.populations.items()}
        self.weight_probes = [pb for pb in net.probes if pb.variable == "weights"]
        # fixed point: what the learning engine does not enforce (w_max above the 8-bit ceiling...),
        # as loihi2-sim reports it
        names = tuple(f"projection '{pl.name}'" for pl in self.plastic) if fixed else ()
        self.learning_warnings = [w for w in low.warnings if w.startswith(names)] if names else []
        for pl in self.plastic:
            pl.probes = [pb for pb in self.weight_probes if pb.target == pl.name]

    # -- stepping ------------------------------------------------------------------------------

    def push(self, name: str, m: int, spikes) -> None:
        """External emitter ``name``'s spikes of Lava step ``m``, shape (trials, size) or (size,)."""
        self.hist[name][m % self.L].copy_(spikes if spikes.dim() == 2 else spikes.expand_as(self.hist[name][0]))

    def step(self, m: int) -> None:
        hist, L = self.hist, self.L
        # the sources' spikes of reference step m - 1 fill slot m (read from step m + 1 on, or in
        # step m by a same-step connection of schedule 'discrete')
        for name, (flat, ptr) in self.src.items():
            slot = hist[name][m % L]
            slot.zero_()
            a, b = int(ptr[m - 1]), int(ptr[m])
            if b > a:
                slot.view(-1)[flat[a:b]] = True
        for P in self.pops.values():
            P["a_in"] = None
        for pl in self.plastic:  # the plastic update of step m - 1 (its inputs are all known now)
            if m >= 2:
                pl.update(m - 1, hist, L, self.pops, self.steps)
        for source, dest, d, W, shift in self.conns:
            emitted = m - 1 - d
            if emitted < 1:
                continue
            self._deliver(hist[source][emitted % L], dest, W, shift)
        for pl in self.plastic:
            if pl.pending is not None:
                P = self.pops[pl.target]
                P["a_in"] = pl.pending if P["a_in"] is None else P["a_in"] + pl.pending
                pl.pending = None
        same = self.same_conns
        for name in self.order:
            P = self.pops[name]
            for source, dest, _d, W, shift in same:  # schedule 'discrete': this step's spikes
                if dest == name:
                    self._deliver(hist[source][m % L], dest, W, shift)
            spikes = self._neurons(P, m)
            hist[name][m % L].copy_(spikes)
            if m <= self.low.steps:
                self.counts[name] += spikes
                rec = self.spike_recs.get(name)
                if rec is not None and rec.record(m - 1, spikes):  # a chunk went to the host
                    self._check_spikes(m)
        for r in self.traces:
            r.record(m, self.pops[r.pop])
        if m == self.low.steps and self.spike_recs:
            for rec in self.spike_recs.values():
                rec.flush()
            self._check_spikes(m)

    def _deliver(self, s, dest: str, W, shift: int) -> None:
        """Add the synaptic input of spikes ``s`` (trials x n_pre) through ``W`` to ``dest``'s a_in."""
        import torch

        if isinstance(W, (_Rows, _DenseRows)):
            acc = W.deliver(s[0])
            if acc is None:  # nothing was emitted
                return
        else:
            s = s.to(W.dtype)
            acc = s @ W if W.layout == torch.strided else (W @ s.T).T  # (B, n_tgt)
        P = self.pops[dest]
        if self.fixed:
            acc = acc.to(torch.int64)
            acc = acc << shift if shift >= 0 else acc >> -shift
        P["a_in"] = acc if P["a_in"] is None else P["a_in"] + acc

    def _check_spikes(self, m: int) -> None:
        """Recorded spikes grow as the run goes: bound them as they reach the host."""
        held = sum(rec.held_bytes() for rec in self.spike_recs.values())
        if self.planned_bytes + held > MAX_RECORD_BYTES:
            name, rec = max(self.spike_recs.items(), key=lambda kv: kv[1].held_bytes())
            probes = ", ".join(f"'{pb.name}'" for pb in rec.probes) or f"the spikes of '{name}'"
            raise CompileError(
                f"spike probe {probes} recorded {_gb(rec.held_bytes())} of spike indices by step {m} "
                f"({_gb(self.planned_bytes + held)} held in all, more than the limit of {_gb(MAX_RECORD_BYTES)}); "
                "hint: probe fewer neurons (the probe's indices), or run fewer steps or trials")

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
        items = [("trace", r, (attr, tuple(getattr(r, attr).shape))) for r in self.traces for attr in r.buffers()]
        items = [(kind, r, shape, attr) for kind, r, (attr, shape) in items]
        items += [("spikes", rec, (self.low.steps, self.B, rec.n)) for rec in self.spike_recs.values()]
        items += [("count", n, tuple(c.shape)) for n, c in self.counts.items()]
        for pl in self.plastic:
            for pb in pl.probes:
                n = len(pl.i) if pb.indices is None else len(pb.indices)
                items.append(("w", pb.name, (len(range(0, self.low.steps, pl._period(pb))), self.B, n), pl))
        return items

    def record_size(self) -> int:
        return int(sum(np.prod(it[2]) for it in self._layout()))

    def export(self) -> np.ndarray:
        """Every recording (and the spike counts, and the weight samples) as one float64 vector
        (recorded spikes as a dense 0/1 block: a hybrid run's torch part is small)."""
        import torch

        parts = []
        for it in self._layout():
            kind, key, shape = it[:3]
            if kind == "trace":
                parts.append(getattr(key, it[3]).to(torch.float64).cpu().numpy().ravel())
            elif kind == "spikes":
                key.flush()
                dense = np.zeros(shape)
                k, b, c = key.arrays()
                dense[k, b, c] = 1.0
                parts.append(dense.ravel())
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
            if kind == "trace":
                buf = getattr(key, it[3])
                setattr(key, it[3], torch.as_tensor(block).to(buf.dtype))
            elif kind == "spikes":
                key.set_arrays(*np.nonzero(block != 0))
            elif kind == "count":
                self.counts[key] = torch.as_tensor(np.rint(block).astype(np.int64))
            else:
                it[3].rec[key] = list(block)

    # -- results -------------------------------------------------------------------------------

    def results(self, wall: float, dtype: str) -> list[Result]:
        low, q = self.low, self.q
        for rec in self.spike_recs.values():
            rec.flush()
        spikes = {n: rec.arrays() for n, rec in self.spike_recs.items()}
        traces = [(r, r.host()) for r in self.traces]
        results = []
        for b, tr in enumerate(self.trials):
            plain = tuple(pb for pb in tr.probes if pb.variable != "weights" and pb.target not in self.external)
            # what loihi_result computes without recordings (counts, input spikes, constant currents)
            rest = tuple(pb for pb in plain if not (pb.target in low.populations and pb.variable in ("spikes", "v", "I")))
            res = loihi_result(dataclasses.replace(tr, probes=rest), low, q, self.target, {}, wall,
                               counts={n: c[b].cpu().numpy() for n, c in self.counts.items()})
            for name in self.external:
                res.counts.pop(name, None)
                res.spikes.pop(name, None)
            for name in {pb.target for pb in plain if pb.variable == "spikes" and pb.target in low.populations}:
                k, bb, c = spikes[name]
                sel = bb == b  # (step, trial, neuron) order: already sorted by step, then neuron
                res.spikes[name] = SpikeTrains(low.populations[name].size,
                                               self.spike_recs[name].neurons(c[sel]), k[sel].astype(np.int64) * low.dt)
            for r, host in traces:
                res.traces[r.pb.name] = r.trace(host, b, low, q)
            res.traces = {**{pb.name: res.traces[pb.name] for pb in plain if pb.name in res.traces}, **res.traces}
            res.keep_probed_indices(plain)
            self._currents(tr, res)
            for pb in self.weight_probes:
                pl = next((p for p in self.plastic if p.name == pb.target), None)
                res.traces[pb.name] = pl.trace(pb, b) if pl is not None else _static_weights(tr, pb, low)
            res.backend = "torch"
            res.versions = versions()
            res.options = {"device": str(self.device), "arithmetic": "fixed (Loihi 2 integers)" if self.fixed
                           else dtype, "batch": self.B, "trial_seed": self.seeds[b]}
            if self.learning_warnings:
                res.options["warnings"] = list(self.learning_warnings)
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


class _WeightProbes:
    """The weight probes of a plastic projection (``probes``, ``rec``, ``i``, ``dt``, ``unit``):
    one row of the probed synapses' weights per sample of each probe's period."""

    def _period(self, pb) -> int:
        return max(1, int(round((pb.period or self.dt) / self.dt)))

    def _indices(self, pb) -> np.ndarray:
        return np.arange(len(self.i)) if pb.indices is None else np.asarray(pb.indices)

    def _record(self, k: int, steps: int, weights_of) -> None:
        """At reference step ``k``: ``weights_of(probe)`` ((trials, n) numpy) for every probe due."""
        for pb in self.probes:
            if k % self._period(pb) == 0 and k < steps - 1:
                self.rec.setdefault(pb.name, []).append(weights_of(pb))

    def _values(self, rows: np.ndarray) -> np.ndarray:
        """Recorded rows -> weights in the spec's unit."""
        return rows

    def trace(self, pb, b: int) -> Trace:
        rows = np.asarray(self.rec.get(pb.name, []))
        vals = self._values(rows[:, b]) if rows.size else np.zeros((0, 0))
        return Trace(pb.target, "weights", self.unit, np.arange(len(vals)) * self._period(pb) * self.dt,
                     self._indices(pb), vals)


class _Plastic(_WeightProbes):
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
        self._record(m - 1, steps, lambda pb: (self.w * self.sign)[:, self._indices(pb)].to(torch.float64).cpu().numpy())


class _FixedPlastic(_WeightProbes):
    """Pair STDP on one projection in Lava's fixed-point learning engine (target ``loihi2-torch``):
    the LearningDense that ``loihi2-sim`` builds (``backends/lava/simulator._learning_dense``: the
    quantised weights, the rule of ``stdp_encoding`` with ``rng_seed`` ``LEARNING_RNG_SEED``, ``sign_mode`` from
    ``stdp_bounds``) emulated by :class:`.lava_learning.LavaFixedLearning`, integer for integer.

    :meth:`update` ``(m)`` is Lava step ``m``: the dendritic sum of the pre spikes of step ``m``
    with the weights before this step's learning (delivered in step ``m + 1``, as Dense), then the
    learning phase with the post spikes of step ``m``. Same interface as :class:`_Plastic`."""

    def __init__(self, pr, low, q, B: int, device):
        self.name, self.source, self.target, self.d = pr.name, pr.source, pr.target, pr.delay_steps
        if self.d:  # unsupported_nodes refuses it (Lava's LearningDense has no delays)
            raise NotImplementedYet(f"projection '{pr.name}': plastic projections with a delay")
        qp = q.projections[pr.name]
        scale = weight_scale(q, pr)
        enc = stdp_encoding(pr.plasticity, low.dt, pr.factor, True, scale)
        mode = stdp_bounds(pr.plasticity, pr.factor, True, scale).sign_mode
        self.engine = LavaFixedLearning.from_stdp_encoding(
            enc, qp.weights.toarray(), mode, num_weight_bits=int(qp.num_weight_bits), rng_seed=LEARNING_RNG_SEED, batch=B,
            device=device)
        self.weight_exp = int(qp.weight_exp)
        # integer mantissa -> neurodeploy weight (loihi_result._weight_trace's conversion)
        self.K, self.factor = q.populations[pr.target].K, pr.factor
        self.i, self.j = np.asarray(pr.i), np.asarray(pr.j)
        self.dt, self.unit = low.dt, get_neuron(low.populations[pr.target].model).weight_unit
        self.pending = None
        self.last_done = 0
        self.probes = []
        self.rec = {}  # probe name -> list of (trials, n) integer rows

    def update(self, m: int, hist, L: int, pops, steps: int) -> None:
        pre = hist[self.source][m % L]
        post = hist[self.target][m % L]
        if bool(pre.any()):
            acc = self.engine.accumulate(pre)
            self.pending = acc << self.weight_exp if self.weight_exp >= 0 else acc >> -self.weight_exp
        self.engine.learn(pre, post)
        self.last_done = m
        self._record(m - 1, steps, lambda pb: self.engine.w[:, self.j[self._indices(pb)], self.i[self._indices(pb)]]
                     .cpu().numpy().astype(float))

    def _values(self, rows: np.ndarray) -> np.ndarray:
        return rows * 2.0**self.weight_exp * 64 / self.K / abs(self.factor)  # loihi_result's float ops


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
    if opts.cpu_threads is not None and (isinstance(opts.cpu_threads, bool) or not isinstance(opts.cpu_threads, int)
                                         or opts.cpu_threads < 1):
        raise UsageError(f"--threads {opts.cpu_threads!r}: expected a whole number >= 1 (CPU threads of a torch run)")
    device = pick_device(opts.device)
    seeds = tuple(opts.trial_seeds) if opts.trial_seeds else (net.simulation.seed,)
    dtype = float_dtype(opts, target)
    before = torch.get_num_threads()
    threads = opts.threads(len(seeds)) if device.type == "cpu" else None
    try:  # the set-up's tensor operations too: one trial on many threads mostly waits for them
        if threads is not None:
            torch.set_num_threads(threads)
        sim = TorchSim(net, target, device, dtype, seeds)
        for w in sim.learning_warnings:
            log.warning("warning: %s", w)
        t0 = time.perf_counter()
        wall, kernel = fused.loop(sim, net, opts)  # issue 17: the fused CPU kernel where it applies
        if wall is None:  # (fused.py); else the eager loop, the reference
            wall = _loop(sim, device, opts, t0)
        results = sim.results(wall, dtype)
    finally:
        torch.set_num_threads(before)
    for r in results:
        r.options["threads"] = threads if threads is not None else before
        r.options["kernel"] = kernel  # "fused-numba" | "eager (<why>)"
    return results


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


_EMPTY_I = np.zeros(0, dtype=np.int64)
_EMPTY_W = np.zeros(0)


def _gb(n: float) -> str:
    return f"{n / 1e9:.3g} GB" if n >= 1e8 else f"{n / 1e6:.3g} MB"


def _compact_csr(major, minor, vals, n_major: int, wdtype):
    """(indptr int64, indices int32, data ``wdtype``) torch tensors of the CSR by ``major``,
    built straight from the synapse arrays (no scipy matrix, no int64 copy of the indices);
    repeated pairs stay separate entries (the deliveries add them up)."""
    import torch

    major = np.asarray(major)
    counts = np.bincount(major, minlength=n_major) if len(major) else np.zeros(n_major, dtype=np.int64)
    indptr = np.zeros(n_major + 1, dtype=np.int64)
    np.cumsum(counts, out=indptr[1:])
    del counts
    if n_major > 2**31 - 1 or (len(minor) and int(np.max(minor)) > 2**31 - 1):
        raise BackendError("a connection with more than 2**31 neurons on one side is beyond the torch backend")
    np_w = np.float64 if wdtype == torch.float64 else np.float32
    if len(major) > 1 and not bool(np.all(major[1:] >= major[:-1])):
        order = np.argsort(major, kind="stable")
        indices = np.asarray(minor, dtype=np.int32)[order]
        data = np.asarray(vals, dtype=np_w)[order]
        del order
    else:  # already grouped by major (random connectivity is drawn source by source)
        indices = np.asarray(minor, dtype=np.int32)
        data = np.asarray(vals, dtype=np_w)
    return torch.from_numpy(indptr), torch.from_numpy(np.ascontiguousarray(indices)), \
        torch.from_numpy(np.ascontiguousarray(data)).to(wdtype)


class _TraceRec:
    """One ``v`` or ``I`` probe: buffers for its neurons only, one row per sample of its period.

    Row ``s`` holds reference step ``k = s * period``: ``v`` after Lava step ``k + 1``; ``u`` after
    Lava step ``k + 2`` (the input of step ``k``, which Lava delivers one step later); for ``lif``
    whether that input counts (the neuron is past its refractory time and input drop), from the
    steps-since-spike counter. The same change of variables as
    :func:`neurodeploy.lowering.loihi_result.loihi_result`, on the probed neurons only."""

    def __init__(self, pb, pop, steps: int, B: int, dtype, device, dt: float, schedule: str = "exact"):
        self.pb, self.pop, self.steps, self.B, self.dtype, self.device = pb, pop.name, steps, B, dtype, device
        #: the Euler schedules have no change of variables: v and u of Lava step k + 1 are step k's
        self.euler = schedule != "exact"
        self.period = max(1, int(round((pb.period or dt) / dt)))
        self.rows = np.arange(0, steps, self.period)
        self.index = np.arange(pop.size) if pb.indices is None else np.asarray(pb.indices, dtype=np.int64)
        self.n = len(self.index)
        self.idx = None  # a torch index when the probe selects neurons
        self.sel = pb.indices is not None
        self.lif_v = pb.variable == "v" and pop.model == "lif" and not self.euler
        self.gate = pop.refractory_steps + pop.input_drop
        self.v = self.u = self.used = None

    def buffers(self) -> list[str]:
        out = ["v"] if self.pb.variable == "v" else []
        if self.pb.variable == "I" or self.lif_v:
            out.append("u")
        if self.lif_v:
            out.append("used")
        return out

    def nbytes(self, itemsize: int) -> int:
        cells = len(self.rows) * self.B * self.n
        return sum(cells * (1 if b == "used" else itemsize) for b in self.buffers())

    def allocate(self) -> None:
        import torch

        if self.sel:
            self.idx = torch.as_tensor(self.index, device=self.device)
        shape = (len(self.rows), self.B, self.n)
        for b in self.buffers():
            setattr(self, b, torch.zeros(shape, dtype=torch.bool if b == "used" else self.dtype, device=self.device))

    def _pick(self, x):
        return x.index_select(1, self.idx) if self.sel else x

    def record(self, m: int, P) -> None:
        k = m - 1  # the reference step of Lava step m
        if k < self.steps and k % self.period == 0:
            s = k // self.period
            if self.v is not None:
                self.v[s] = self._pick(P["v"])
            if self.used is not None:
                self.used[s] = self._pick(P["since"]) + 1 >= self.gate
        k = m - 1 if self.euler else m - 2  # exact: u after Lava step m is the input of reference step m - 2
        if self.u is not None and 0 <= k < self.steps and k % self.period == 0:
            self.u[k // self.period] = self._pick(P["u"])

    def host(self) -> dict:
        import torch

        return {b: getattr(self, b).cpu().numpy() if b == "used" else getattr(self, b).to(torch.float64).cpu().numpy()
                for b in self.buffers()}

    def trace(self, host: dict, b: int, low, q) -> Trace:
        pb, pop = self.pb, low.populations[self.pop]
        K = q.populations[self.pop].K if q is not None else 1.0
        dt = low.dt
        if pb.variable == "v":
            v = host["v"][:, b] / K
            if self.lif_v:
                a = 1.0 - (q.populations[self.pop].dv / 4096 if q is not None else pop.dv)
                v = v + np.where(host["used"][:, b], host["u"][:, b] / K / a, 0.0)
            vals = v + pop.v_offset
        else:
            vals = host["u"][:, b] / K / (pop.u_scale * (1.0 if self.euler else np.exp(-dt / pop.tau_syn)))
        return Trace(pb.target, pb.variable, get_neuron(pop.model).state[pb.variable], self.rows * dt,
                     self.index.copy(), vals)


class _SpikeRec:
    """A population's recorded spikes as indices (step, trial, column of the recorded neurons):
    gathered on the device in chunks of steps, moved to the host as int32 indices per chunk.
    Only the neurons the spike probes name are recorded (all of them if one probe names none)."""

    def __init__(self, name: str, size: int, probes: list, B: int, steps: int, device):
        self.name, self.probes, self.B, self.device = name, probes, B, device
        if probes and all(pb.indices is not None for pb in probes):
            self.index = np.unique(np.concatenate([np.asarray(pb.indices, dtype=np.int64) for pb in probes]))
        else:
            self.index = None
        self.n = size if self.index is None else len(self.index)
        self.C = max(1, min(max(steps, 1), SPIKE_CHUNK_CELLS // max(1, B * self.n)))
        self.chunk = self.idx = None
        self.filled, self.k0 = 0, 0
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self._held = 0

    def chunk_bytes(self) -> int:
        return self.C * self.B * self.n

    def allocate(self) -> None:
        import torch

        self.chunk = torch.zeros((self.C, self.B, self.n), dtype=torch.bool, device=self.device)
        if self.index is not None:
            self.idx = torch.as_tensor(self.index, device=self.device)

    def record(self, k: int, spikes) -> bool:
        """Spikes (trials, size) of reference step ``k`` (consecutive steps); True when a chunk was
        moved to the host."""
        if self.filled == 0:
            self.k0 = k
        self.chunk[self.filled] = spikes if self.idx is None else spikes.index_select(1, self.idx)
        self.filled += 1
        if self.filled == self.C:
            self.flush()
            return True
        return False

    def flush(self) -> None:
        if not self.filled:
            return
        nz = self.chunk[: self.filled].nonzero().cpu().numpy()
        self.filled = 0
        if len(nz):
            k = (nz[:, 0] + self.k0).astype(np.int32)
            self.parts.append((k, nz[:, 1].astype(np.int32), nz[:, 2].astype(np.int32)))
            self._held += 12 * len(nz)

    def held_bytes(self) -> int:
        return self._held

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if not self.parts:
            z = np.zeros(0, dtype=np.int32)
            return z, z, z
        if len(self.parts) > 1:
            self.parts = [tuple(np.concatenate(a) for a in zip(*self.parts))]
        return self.parts[0]

    def set_arrays(self, k, b, c) -> None:
        self.parts = [(np.asarray(k, dtype=np.int32), np.asarray(b, dtype=np.int32), np.asarray(c, dtype=np.int32))]
        self.filled = 0
        self._held = 12 * len(k)

    def neurons(self, c: np.ndarray) -> np.ndarray:
        """Columns of the recorded set -> neuron indices (int64)."""
        return c.astype(np.int64) if self.index is None else self.index[c]


def _trunc_mul(x, factor: int):
    """x * factor / 4096 with truncation toward zero (Lava's decay), in int64."""
    import torch

    prod = x * factor
    return torch.sign(prod) * (torch.abs(prod) >> 12)
