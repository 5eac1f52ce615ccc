"""Turning the IR's *descriptions* into arrays, identically for every backend.

Random connectivity, weight initializers, initial states and Poisson inputs are drawn here, in
numpy, from one seeded stream per node (``rng_for``), so that Brian2, Lava, torch and the numpy
reference all simulate exactly the same synapses, weights and input spikes. That is what lets
``validate`` compare backends spike for spike where the arithmetic allows it.

Conventions (documented in docs/spec.md):

* time step ``k`` covers ``[k dt, (k+1) dt)``; a spike "at step k" has time ``k dt``;
* a delay ``d`` delivers a spike emitted in step ``k`` in step ``k + round(d/dt)``;
* weights are *effective* (signed) values in SI units: for ``sign: excitatory/inhibitory`` the
  specified magnitudes are clipped at 0 and the sign applied;
* an array stimulus shows frame ``f`` during steps ``[f F, (f+1) F)`` with ``F = frame_duration/dt``
  and is silent after its last frame.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..core.data import DataError, load_array
from ..core.errors import UsageError
from ..ir.nodes import (
    ArrayRef,
    ArrayStimulus,
    CurrentStimulus,
    Network,
    PoissonStimulus,
    Population,
    Projection,
    SpikeTimesStimulus,
)
from ..ir.serialize import _build
from .endpoints import endpoints
from .neurons import get_neuron

#: bound on the Bernoulli matrix drawn at once for Poisson inputs (elements)
_CHUNK = 4_000_000
SIGN = {"excitatory": 1.0, "inhibitory": -1.0, "mixed": 1.0}


def rng_for(net: Network, *names: str) -> np.random.Generator:
    """An independent, reproducible stream for one node (seed + the node's name)."""
    key = [int(net.simulation.seed)] + [zlib.crc32(n.encode()) for n in names]
    return np.random.default_rng(key)


def steps_of(t: float, dt: float) -> int:
    """The step that contains time ``t`` (Brian2's rule, robust to float error)."""
    return int(np.floor(t / dt + 1e-3))


def delay_steps(delay: float, dt: float) -> int:
    return int(round(delay / dt))


def base_dir(net: Network) -> Path:
    return Path(net.origin).parent if net.origin else Path(".")


@dataclass(frozen=True)
class SynapseData:
    """One projection's synapses: pre index ``i``, post index ``j``, effective weight ``w``."""

    i: np.ndarray
    j: np.ndarray
    w: np.ndarray  # SI, signed
    delay_steps: int
    sign: float  # +1 or -1: the sign applied to magnitudes (for plastic projections)


def connectivity(net: Network, proj: Projection, n_src: int, n_tgt: int) -> tuple[np.ndarray, np.ndarray]:
    c = proj.connectivity
    if c.kind == "dense":
        i = np.repeat(np.arange(n_src), n_tgt)
        j = np.tile(np.arange(n_tgt), n_src)
    elif c.kind == "one_to_one":
        i = j = np.arange(n_src)
    elif c.kind == "random":
        rng = rng_for(net, proj.name, "connectivity")
        if c.p <= 0.1:
            # sparse: the number of targets of each source is Binomial(n_tgt, p), then that many
            # distinct targets; O(synapses) instead of O(n_src * n_tgt) draws
            k = rng.binomial(n_tgt, c.p, size=n_src)
            i = np.repeat(np.arange(n_src), k)
            j = np.concatenate([np.sort(rng.choice(n_tgt, kk, replace=False)) for kk in k]) if n_src else np.zeros(0, int)
        else:
            rows = max(1, _CHUNK // max(n_tgt, 1))
            ii, jj = [], []
            for start in range(0, n_src, rows):
                stop = min(n_src, start + rows)
                a, b = np.nonzero(rng.random((stop - start, n_tgt)) < c.p)
                ii.append(a + start)
                jj.append(b)
            i = np.concatenate(ii) if ii else np.zeros(0, int)
            j = np.concatenate(jj) if jj else np.zeros(0, int)
    elif c.kind == "sparse":
        if c.data is not None:
            pairs = load_array(c.data, base_dir(net)).astype(np.int64)
            if pairs.shape[0] == 2 and pairs.shape[1] != 2:
                pairs = pairs.T
            i, j = pairs[:, 0], pairs[:, 1]
        else:
            i, j = np.asarray(c.i, dtype=np.int64), np.asarray(c.j, dtype=np.int64)
    else:
        raise ValueError(f"unknown connectivity {c.kind!r}")
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    if not c.allow_self and proj.source == proj.target and c.kind in ("dense", "random"):
        keep = i != j
        i, j = i[keep], j[keep]
    return i, j


def weights(net: Network, proj: Projection, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    w = proj.weights
    n = len(i)
    if w.kind == "constant":
        vals = np.full(n, w.params["value"], dtype=float)
    elif w.kind == "uniform":
        vals = rng_for(net, proj.name, "weights").uniform(w.params["low"], w.params["high"], n)
    elif w.kind == "normal":
        vals = rng_for(net, proj.name, "weights").normal(w.params["mean"], w.params["std"], n)
    else:  # inline / file
        arr = load_array(w.data, base_dir(net))
        if arr.ndim == 2:  # dense / random: (source size, target size)
            vals = arr[i, j]
        elif proj.connectivity.kind == "sparse":  # one weight per listed pair
            vals = arr
        else:  # one_to_one
            vals = arr[i]
        vals = np.asarray(vals, dtype=float)
    sign = SIGN[proj.sign]
    if proj.sign != "mixed":
        vals = sign * np.clip(vals, 0.0, None)
    return vals


def synapses(net: Network, proj: Projection) -> SynapseData:
    eps = endpoints(net)
    n_src, n_tgt = eps[proj.source].size, eps[proj.target].size
    i, j = connectivity(net, proj, n_src, n_tgt)
    return SynapseData(i, j, weights(net, proj, i, j), delay_steps(proj.delay, net.simulation.dt),
                       SIGN[proj.sign])


def initial_state(net: Network, pop: Population) -> dict[str, np.ndarray]:
    """Initial values of every state variable of ``pop`` (SI)."""
    model = get_neuron(pop.model)
    p = model.make_params(pop.params)
    init = {}
    for var, spec in pop.init.items():
        if spec.kind == "constant":
            init[var] = np.full(pop.size, spec.a)
        elif spec.kind == "uniform":
            init[var] = rng_for(net, pop.name, "init", var).uniform(spec.a, spec.b, pop.size)
        else:
            init[var] = rng_for(net, pop.name, "init", var).normal(spec.a, spec.b, pop.size)
    return model.initial_state(p, pop.size, init)


def source_spikes(net: Network, stim) -> tuple[np.ndarray, np.ndarray]:
    """Spikes of a spike source as (neuron indices, step indices), sorted by step."""
    dt, steps = net.simulation.dt, net.simulation.steps
    if isinstance(stim, SpikeTimesStimulus):
        k = np.array([steps_of(t, dt) for t in stim.times], dtype=np.int64)
        idx = np.asarray(stim.indices, dtype=np.int64)
        keep = k < steps
        order = np.lexsort((idx[keep], k[keep]))
        return idx[keep][order], k[keep][order]
    if isinstance(stim, PoissonStimulus):
        if stim.rates is not None:
            rates = load_array(stim.rates, base_dir(net))
            rates = rates[0] if rates.ndim == 2 else rates
            return _bernoulli(rng_for(net, stim.name, "spikes"), np.asarray(rates) * dt, steps)
        return _bernoulli(rng_for(net, stim.name, "spikes"), np.full(stim.size, stim.rate * dt), steps)
    if isinstance(stim, ArrayStimulus) and stim.encoding == "rate":
        frames = _frames(net, stim) * stim.gain * dt
        fsteps = frame_steps(net, stim)
        rng = rng_for(net, stim.name, "spikes")
        ii, kk = [], []
        for f in range(frames.shape[0]):
            start = f * fsteps
            if start >= steps:
                break
            n = min(fsteps, steps - start)
            a, b = _bernoulli(rng, frames[f], n)
            ii.append(a)
            kk.append(b + start)
        if not ii:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return np.concatenate(ii), np.concatenate(kk)
    raise TypeError(f"{stim.name} is not a spike source")


def _bernoulli(rng: np.random.Generator, p: np.ndarray, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-step Bernoulli draws, in the same stream order as the poisson_source reference step."""
    n = len(p)
    rows = max(1, _CHUNK // max(n, 1))
    ii, kk = [], []
    for start in range(0, steps, rows):
        stop = min(steps, start + rows)
        k, i = np.nonzero(rng.random((stop - start, n)) < p)
        ii.append(i)
        kk.append(k + start)
    return (np.concatenate(ii).astype(np.int64), np.concatenate(kk).astype(np.int64)) if ii else (
        np.zeros(0, np.int64), np.zeros(0, np.int64))


def frame_steps(net: Network, stim: ArrayStimulus) -> int:
    return max(1, int(round(stim.frame_duration / net.simulation.dt)))


def _frames(net: Network, stim: ArrayStimulus) -> np.ndarray:
    arr = load_array(stim.data, base_dir(net))
    return arr.reshape(1, -1) if arr.ndim == 1 else arr


@dataclass(frozen=True)
class CurrentDrive:
    """Injected current into one population: ``amplitude[k] * mask`` (per-step waveform) or,
    for array stimuli, ``frames[k // frame_steps]`` (zero after the last frame)."""

    target: str
    amplitude: np.ndarray | None = None  # (steps,) A
    mask: np.ndarray | None = None  # (n,) 0/1
    frames: np.ndarray | None = None  # (F, n) A
    frame_steps: int = 1

    def at(self, k: int) -> np.ndarray | float:
        if self.frames is not None:
            f = k // self.frame_steps
            return self.frames[f] if f < len(self.frames) else 0.0
        return self.amplitude[k] * self.mask


def current_drives(net: Network) -> list[CurrentDrive]:
    dt, steps = net.simulation.dt, net.simulation.steps
    sizes = {p.name: p.size for p in net.populations}
    out = []
    for s in net.stimuli:
        if isinstance(s, CurrentStimulus):
            mask = np.zeros(sizes[s.target])
            mask[list(s.indices) if s.indices is not None else slice(None)] = 1.0
            amp = np.zeros(steps)
            if s.amplitude is not None:
                k0 = steps_of(s.start, dt)
                k1 = steps if s.stop is None else min(steps, steps_of(s.stop, dt))
                amp[k0:k1] = s.amplitude
            else:
                for t, v in zip(s.times, s.values):
                    amp[steps_of(t, dt):] = v
            out.append(CurrentDrive(s.target, amplitude=amp, mask=mask))
        elif isinstance(s, ArrayStimulus) and s.encoding == "current":
            out.append(CurrentDrive(s.target, frames=_frames(net, s) * s.gain, frame_steps=frame_steps(net, s)))
    return out


# --- graded networks (the coders' expanded form) ------------------------------------------------

#: dense matrices only: a graded network this simulator builds must stay small
MAX_DENSE = 50_000_000


def population_params(net: Network, pop):
    """The model's ``Params`` for ``pop`` with its ``data`` parameters loaded (per-neuron arrays)."""
    model = get_neuron(pop.model)
    values = dict(pop.params)
    for k, (info, _) in model.param_infos().items():
        v = values.get(k)
        if info.kind == "data" and v is not None:
            try:
                arr = load_array(v if isinstance(v, ArrayRef) else _build(ArrayRef, v), base_dir(net))
            except DataError as e:
                raise UsageError(f"population '{pop.name}': parameter '{k}': {e.message}") from None
            if arr.size != pop.size:
                raise UsageError(f"population '{pop.name}': parameter '{k}' has {arr.size} values, "
                                 f"expected {pop.size}")
            values[k] = arr.reshape(-1)
    return model.make_params(values)


def dense_weights(net: Network, proj) -> np.ndarray:
    """The projection's weights as a dense (source size, target size) matrix (zeros where no
    synapse)."""
    eps = endpoints(net)
    shape = (eps[proj.source].size, eps[proj.target].size)
    if shape[0] * shape[1] > MAX_DENSE:
        raise UsageError(f"projection '{proj.name}': {shape[0]} x {shape[1]} is too large for the dense "
                         "graded simulator")
    syn = synapses(net, proj)
    W = np.zeros(shape)
    np.add.at(W, (syn.i, syn.j), syn.w)
    return W
