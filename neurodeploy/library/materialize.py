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

import math
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


@dataclass(frozen=True)
class SynapseCount:
    """How many synapses a projection has, from the IR alone (nothing drawn): the ``expected``
    number, ``lower`` / ``upper`` bounds that hold whatever the draw (for ``random``: the binomial
    mean -/+ :data:`COUNT_SIGMAS` standard deviations, a failure probability far below 1e-9), and
    bounds of the fan-in of each target neuron (distinct presynaptic neurons; ``fan_in_lower``:
    every neuron has at least that many, 0 when unknown)."""

    name: str
    source: str
    target: str
    n_src: int
    n_tgt: int
    expected: float
    lower: int
    upper: int
    fan_in_lower: int
    fan_in_upper: int
    delay: float
    kind: str = ""
    p: float = 0.0


#: standard deviations either side of a binomial mean taken as certain bounds
COUNT_SIGMAS = 7.0


def _binomial_bounds(n: int, p: float) -> tuple[float, int, int]:
    mean = n * p
    slack = COUNT_SIGMAS * math.sqrt(max(n * p * (1.0 - p), 0.0)) + 1.0
    return mean, max(0, int(math.floor(mean - slack))), min(n, int(math.ceil(mean + slack)))


def synapse_counts(net: Network, proj: Projection, n_src: int, n_tgt: int) -> SynapseCount:
    """The synapse counts of ``proj`` (between endpoints of ``n_src`` and ``n_tgt`` neurons) from its
    description: what :func:`connectivity` will draw, bounded before it draws (see
    :class:`SynapseCount`). Listed pairs count from the IR's array shape; no file is read."""
    c = proj.connectivity
    self_pairs = (not c.allow_self) and proj.source == proj.target and c.kind in ("dense", "random")
    n_pairs = n_src * n_tgt
    if c.kind == "dense":
        m = n_pairs - (min(n_src, n_tgt) if self_pairs else 0)
        fin = n_src - (1 if self_pairs else 0)
        return SynapseCount(proj.name, proj.source, proj.target, n_src, n_tgt, float(m), m, m,
                            max(fin, 0), max(fin, 0), proj.delay, c.kind, 1.0)
    if c.kind == "one_to_one":
        return SynapseCount(proj.name, proj.source, proj.target, n_src, n_tgt, float(n_src), n_src, n_src,
                            1 if n_src else 0, 1 if n_src else 0, proj.delay, c.kind, 1.0)
    if c.kind == "random":
        p = float(c.p)
        mean, lo, hi = _binomial_bounds(n_pairs, p)
        if self_pairs:  # the diagonal pairs drawn are dropped afterwards
            mean -= min(n_src, n_tgt) * p
            lo = max(0, lo - min(n_src, n_tgt))
        _, fin_lo, fin_hi = _binomial_bounds(n_src, p)  # each target neuron: Binomial(n_src, p)
        if self_pairs:
            fin_lo = max(0, fin_lo - 1)
        return SynapseCount(proj.name, proj.source, proj.target, n_src, n_tgt, mean, lo, hi, fin_lo, fin_hi,
                            proj.delay, c.kind, p)
    if c.kind == "sparse":
        if c.data is not None:
            m = math.prod(int(d) for d in c.data.shape) // 2
        else:
            m = len(c.i or ())
        return SynapseCount(proj.name, proj.source, proj.target, n_src, n_tgt, float(m), m, m, 0,
                            min(m, n_src), proj.delay, c.kind, 0.0)
    raise ValueError(f"unknown connectivity {c.kind!r}")


def connectivity(net: Network, proj: Projection, n_src: int, n_tgt: int) -> tuple[np.ndarray, np.ndarray]:
    c = proj.connectivity
    dt = _index_dtype(max(n_src, n_tgt))
    if c.kind == "dense":
        i = np.repeat(np.arange(n_src, dtype=dt), n_tgt)
        j = np.tile(np.arange(n_tgt, dtype=dt), n_src)
    elif c.kind == "one_to_one":
        i = j = np.arange(n_src, dtype=dt)
    elif c.kind == "random":
        rng = rng_for(net, proj.name, "connectivity")
        if c.p <= 0.1:
            # sparse: the number of targets of each source is Binomial(n_tgt, p), then that many
            # distinct targets; O(synapses) instead of O(n_src * n_tgt) draws
            k = rng.binomial(n_tgt, c.p, size=n_src)
            i = np.repeat(np.arange(n_src, dtype=dt), k)
            j = choose_sorted(rng, n_tgt, k)
        else:
            rows = max(1, _CHUNK // max(n_tgt, 1))
            ii, jj = [], []
            for start in range(0, n_src, rows):
                stop = min(n_src, start + rows)
                a, b = np.nonzero(rng.random((stop - start, n_tgt)) < c.p)
                ii.append((a + start).astype(dt))
                jj.append(b.astype(dt))
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
    # compact indices (int32 when both sides allow; listed pairs only once checked in range, so
    # that an out-of-range index is never wrapped)
    fits = c.kind != "sparse" or (len(i) == 0 or (int(np.min(i)) >= 0 and int(np.max(i)) < n_src
                                                 and int(np.min(j)) >= 0 and int(np.max(j)) < n_tgt))
    dt_i = _index_dtype(max(n_src, n_tgt)) if fits else np.int64
    i = np.asarray(i, dtype=dt_i)
    j = np.asarray(j, dtype=dt_i)
    if not c.allow_self and proj.source == proj.target and c.kind in ("dense", "random"):
        keep = i != j
        i, j = i[keep], j[keep]
    return i, j


def _index_dtype(n: int):
    """int32 when every index below ``n`` fits, else int64."""
    return np.int32 if n <= 2**31 - 1 else np.int64


# --- random connectivity: numpy's choice(n, k, replace=False) per source, vectorised -----------
#
# ``connectivity`` draws, for each source neuron, ``k`` distinct targets with
# ``rng.choice(n_tgt, k, replace=False)`` and sorts them. One call per source neuron costs ~10 us
# of overhead each (2.4 s for 200k neurons). :func:`choose_sorted` gives *the same targets from the
# same stream* without a call per row, by replaying what numpy 1.17+'s ``Generator.choice`` does
# for ``replace=False, p=None, shuffle=True`` on a PCG64 stream:
#
# * Floyd's algorithm: for ``j = n-k, ..., n-1`` draw ``v = bounded(0, j)``; insert ``v`` unless
#   it is already in the set, else ``j``;
# * then the shuffle of the k results (``_shuffle_int(k, 1)``: bounds ``k-1, ..., 1``), whose
#   values do not matter once sorted but whose draws consume the stream;
# * ``bounded(0, r)`` is Lemire's method on ``next_uint32`` (a 64-bit output gives its low half,
#   then its buffered high half), redrawn when rejected (rare: probability below ``(r+1)/2**32``),
#   and consumes nothing when ``r == 0``.
#
# numpy uses a tail shuffle instead of Floyd's algorithm when ``n > 10000`` and ``k > n // 50``;
# those projections (dense-ish, where the per-call overhead does not matter) and any generator other
# than PCG64 keep the per-row calls. ``tests/unit/test_resource_bounds.py`` checks both paths agree.

_LOW32 = np.uint64(0xFFFFFFFF)
#: draws resolved per vectorised chunk (small enough to stay in cache)
_CHOICE_CHUNK = 1 << 16


class _Uint32Stream:
    """A PCG64 generator's ``next_uint32`` values pulled in bulk with ``random_raw``. The generator is
    consumed: after use it is *not* where per-call draws would have left it (the callers draw
    nothing more from it)."""

    def __init__(self, bg):
        st = bg.state
        self.bg = bg
        self.buf = np.array([st["uinteger"]], np.uint32) if st["has_uint32"] else np.zeros(0, np.uint32)
        self.pos = 0

    def ensure(self, m: int) -> None:
        if self.pos + m > self.buf.size:
            more = m - (self.buf.size - self.pos)
            raw = self.bg.random_raw(max(more + 1, 1 << 15) // 2 + 1)
            self.buf = np.concatenate((self.buf[self.pos:], raw.view(np.uint32)))
            self.pos = 0


def _bounded_products(stream: _Uint32Stream, excl: np.ndarray) -> np.ndarray:
    """Lemire's bounded draws for each ``excl = r + 1`` (uint64, ``2 <= excl < 2**32``) in turn,
    as the 64-bit products ``draw * excl`` (the drawn value is ``>> 32``)."""
    n = excl.size
    out = np.empty(n, dtype=np.uint64)
    d = 0
    while d < n:
        stop = min(n, d + _CHOICE_CHUNK)
        m = stop - d
        stream.ensure(m)
        x = out[d:stop]
        x[...] = stream.buf[stream.pos:stream.pos + m]
        e = excl[d:stop]
        x *= e
        low = x & _LOW32
        cand = np.flatnonzero(low < e)  # only these can be rejected (the threshold is below excl)
        f = m
        if cand.size:
            ec = e[cand]
            rej = low[cand] < (_LOW32 - (ec - np.uint64(1))) % ec
            if rej.any():
                f = int(cand[np.argmax(rej)])
        stream.pos += f
        d += f
        if f < m:  # draw d is rejected: redraw it until accepted, then go on after it
            e1 = excl[d]
            t = (_LOW32 - (e1 - np.uint64(1))) % e1
            while True:
                stream.ensure(1)
                y = np.uint64(stream.buf[stream.pos]) * e1
                stream.pos += 1
                if (y & _LOW32) >= t:
                    break
            out[d] = y
            d += 1
    return out


def choose_sorted(rng: np.random.Generator, n: int, k: np.ndarray) -> np.ndarray:
    """``np.concatenate([np.sort(rng.choice(n, kk, replace=False)) for kk in k])``: for each
    row, ``k[r]`` distinct values in ``[0, n)``, sorted; the same values from the same stream as
    those calls (see the comment above), int32 when ``n`` allows. Consumes ``rng``."""
    k = np.asarray(k, dtype=np.int64)
    dt = _index_dtype(n)
    if k.size == 0 or not k.any():
        return np.zeros(0, dt)
    if (n > 10000 and (k > n // 50).any()) or type(rng.bit_generator).__name__ != "PCG64":
        return np.concatenate([np.sort(rng.choice(n, kk, replace=False)) for kk in k]).astype(dt, copy=False)
    stream = _Uint32Stream(rng.bit_generator)
    cum = np.cumsum(2 * k)
    out, a = [], 0
    while a < k.size:
        b = int(np.searchsorted(cum, (cum[a - 1] if a else 0) + _CHOICE_CHUNK, side="right"))
        b = min(k.size, max(a + 1, b))
        out.append(_floyd_rows(stream, n, k[a:b], dt))
        a = b
    return np.concatenate(out)


def _floyd_rows(stream: _Uint32Stream, n: int, kc: np.ndarray, dt) -> np.ndarray:
    """Floyd's algorithm + the shuffle's draws for the rows ``kc``, sorted rows concatenated."""
    rows, kmax = kc.size, int(kc.max())
    if kmax == 0:
        return np.zeros(0, dt)
    L = np.maximum(2 * kc - 1, 0)  # Floyd's k draws, then the shuffle's k - 1
    tot = int(L.sum())
    kr = np.repeat(kc.astype(np.uint64), L)
    q = np.arange(tot, dtype=np.uint64)
    q -= np.repeat((np.cumsum(L) - L).astype(np.uint64), L)  # position among the row's draws
    floyd = q < kr
    excl = kr + kr  # the shuffle's bound k - (q - k) - 1, plus one
    excl -= q
    np.add(q, np.uint64(n + 1) - kr, out=excl, where=floyd)  # Floyd's bound j = n - k + q, plus one
    del kr, q
    if (kc == n).any():  # bound 0 (Floyd's first j when k == n) returns 0 without a draw
        x = np.zeros(tot, dtype=np.uint64)
        nz = excl > 1
        x[nz] = _bounded_products(stream, excl[nz])
    else:
        x = _bounded_products(stream, excl)
    vals = (x[floyd] >> np.uint64(32)).astype(np.int64)
    del x, excl, floyd
    V = np.full((rows, kmax), n, dtype=np.int64)  # n pads the short rows
    tt = np.arange(kmax)[None, :]
    V[tt < kc[:, None]] = vals
    S = np.sort(V, axis=1)
    dup = ((S[:, 1:] == S[:, :-1]) & (S[:, 1:] < n)).any(axis=1) if kmax > 1 else np.zeros(rows, bool)
    if dup.any():
        # rows where a draw repeats an earlier one: Floyd inserted j instead. The set after step t
        # holds every value drawn so far and the j of every such collision, so a draw collides iff
        # it repeats an earlier draw or equals the j of an earlier collision (resolved to a fixpoint)
        dr = np.flatnonzero(dup)
        Vd = V[dr]
        order = np.argsort(Vd, axis=1, kind="stable")
        Sd = np.take_along_axis(Vd, order, axis=1)
        rep = np.zeros(Sd.shape, bool)
        rep[:, 1:] = (Sd[:, 1:] == Sd[:, :-1]) & (Sd[:, 1:] < n)
        c1 = np.empty_like(rep)
        np.put_along_axis(c1, order, rep, axis=1)
        kd = kc[dr][:, None]
        s = Vd - (n - kd)  # the step whose j equals the drawn value
        cand = (s >= 0) & (s < tt) & (tt < kd)
        sc = np.clip(s, 0, kmax - 1)
        ridx = np.arange(dr.size)[:, None]
        coll = c1
        while True:
            new = c1 | (cand & coll[ridx, sc])
            if (new == coll).all():
                break
            coll = new
        final = np.where(coll, n - kd + tt, Vd)
        final[tt >= kd] = n
        S[dr] = np.sort(final, axis=1)
    return S[S < n].astype(dt, copy=False)


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
