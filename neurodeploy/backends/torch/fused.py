"""The fused CPU time loop of the torch fallback: one compiled (Numba) kernel per run.

The eager loop (:meth:`TorchSim.step`) issues ~20-100 small tensor operations per simulated
step; on the CPU their dispatch, not the arithmetic, is what a step costs (docs/torch.md). For
the common case -- **one trial, on the CPU, float arithmetic, static synapses, the default
(``exact``) schedule, no time-varying currents** -- this module runs the whole loop in one
compiled function over plain arrays taken from an already built :class:`TorchSim`:

* per step, connections deliver event by event: for every neuron that emitted ``d + 1`` steps
  ago (a ring buffer of spike *indices* per step, not boolean rows), its CSR row is added to the
  target's input (``a_in``);
* then every population's LIF / CUBA-LIF update runs neuron by neuron, with exactly the eager
  loop's arithmetic in the run's dtype (``u = u (1 - du) + a_in``, ``v_new = v (1 - dv) + [u] +
  bias``, refractory counter, threshold, reset to ``v_reset`` or by subtraction);
* spikes, counts and the ``v``/``I`` probes are recorded as the eager loop records them, and
  written back into the ``TorchSim``'s recorders, so :meth:`TorchSim.results` is unchanged.

What differs from the eager loop is only the order in which one step's synaptic inputs are added
up (float sums are not associative); in float64 the two give the same spikes (tested on every
shipped model that qualifies, ``tests/backends/test_torch_fused.py``).

Numba is imported on first use only (``import neurodeploy`` never imports it); the kernel is
compiled once per dtype and cached on disk (``cache=True``: ``__pycache__`` beside this file,
or Numba's user-wide cache when that is read-only), so a fresh machine pays the compile
(a few seconds) once. Where Numba is missing, ``kernel="auto"`` runs the eager loop and says so.
"""

from __future__ import annotations

import os
import time

import numpy as np
from tqdm import tqdm

from ...core.errors import BackendError, UsageError

#: environment override of ``TorchOptions.kernel`` (auto | fused | eager)
ENV = "NEURODEPLOY_TORCH_KERNEL"
KERNELS = ("auto", "fused", "eager")
#: steps per kernel call (between calls: the progress bar and the bound on recorded spikes)
CHUNK_STEPS = 256
#: recorded spikes the kernel's first buffer holds (it doubles when a step could overflow it)
SPIKE_BUFFER = 1 << 16


def choice(opts) -> str:
    """The kernel asked for: the ``NEURODEPLOY_TORCH_KERNEL`` environment variable, else the option."""
    want = os.environ.get(ENV) or getattr(opts, "kernel", "auto") or "auto"
    if want not in KERNELS:
        raise UsageError(f"torch kernel {want!r} (option 'kernel' / --torch-kernel / ${ENV}): expected one of "
                         f"{', '.join(KERNELS)}")
    return want


def unsupported(sim, net) -> str | None:
    """Why the fused kernel cannot run ``sim`` (a built TorchSim of ``net``); None if it can."""
    if getattr(net.simulation, "schedule", "exact") != "exact":
        return f"schedule '{net.simulation.schedule}' (the fused kernel runs the exact schedule)"
    if sim.device.type != "cpu":
        return f"device {sim.device.type} (the fused kernel is CPU only)"
    if sim.B != 1:
        return f"a batch of {sim.B} trials (the fused kernel runs one trial)"
    if sim.fixed:
        return "Loihi 2 integer arithmetic (the fused kernel runs float arithmetic)"
    if sim.plastic:
        return "plastic projections " + ", ".join(f"'{p.name}'" for p in sim.plastic)
    if sim.external:
        return "external emitters (a hybrid run)"
    for name, P in sim.pops.items():
        if P["drive"] is not None:
            return f"a time-varying current into '{name}'"
    return None


def available() -> tuple[bool, str]:
    try:
        import numba  # noqa: F401
    except Exception as e:  # noqa: BLE001 - any import failure means: not available
        return False, f"numba is not importable ({type(e).__name__}: {e})"
    return True, ""


def loop(sim, net, opts) -> tuple[float | None, str]:
    """Run ``sim``'s time loop fused when the options and the network allow it.

    Returns ``(wall seconds, kernel)``: ``(None, "eager (<why>)")`` when the caller is to run the
    eager loop instead, ``(wall, "fused-numba")`` when it ran here (the wall time of the kernel's
    loop, as the eager loop's: without the set-up, which here includes turning the TorchSim's
    tensors into the kernel's arrays)."""
    want = choice(opts)
    if want == "eager":
        return None, "eager (asked for)"
    why = unsupported(sim, net)
    if why is None:
        ok, why = available()
        why = None if ok else why
    if why is not None:
        if want == "fused":
            raise BackendError(f"torch kernel 'fused' cannot run this network: {why}; hint: use --torch-kernel "
                               "auto (runs the eager loop where the fused kernel cannot)")
        return None, f"eager ({why})"
    return _run(sim, opts), "fused-numba"


# ---------------------------------------------------------------------------------------------
# the arrays the kernel works on


class _Plan:
    """``sim`` as flat arrays: neurons of every population concatenated (global index), emitters
    (populations then sources) numbered, every connection a source-major CSR with offsets."""

    def __init__(self, sim):
        import torch

        fd = np.float64 if sim.fdtype == torch.float64 else np.float32
        self.fd = fd
        pops = list(sim.pops.items())
        self.pop_names = [n for n, _ in pops]
        sizes = np.array([P["size"] for _, P in pops], dtype=np.int64)
        self.pop_off = np.zeros(len(pops) + 1, dtype=np.int64)
        np.cumsum(sizes, out=self.pop_off[1:])
        N = self.N = int(self.pop_off[-1])
        self.u = np.concatenate([P["u"][0].numpy() for _, P in pops]).astype(fd) if N else np.zeros(0, fd)
        self.v = np.concatenate([P["v"][0].numpy() for _, P in pops]).astype(fd) if N else np.zeros(0, fd)
        # steps since the last spike (capped at 2**30 < 2**31): int32, half the memory traffic
        self.since = np.concatenate([P["since"][0].numpy() for _, P in pops]).astype(np.int32) if N \
            else np.zeros(0, np.int32)
        self.bias = np.concatenate([P["bias"].numpy() for _, P in pops]).astype(fd) if N else np.zeros(0, fd)
        # scalars per population, in the run's dtype: torch casts a Python scalar to the tensor's dtype
        self.du = np.array([P["du"] for _, P in pops], dtype=fd)
        self.dv = np.array([P["dv"] for _, P in pops], dtype=fd)
        self.vth = np.array([P["vth"] for _, P in pops], dtype=fd)
        self.v_reset = np.array([P["v_reset"] for _, P in pops], dtype=fd)
        self.R = np.array([P["R"] for _, P in pops], dtype=np.int32)
        self.drop = np.array([P["drop"] for _, P in pops], dtype=np.int32)
        self.mode = np.array([P["mode"] for _, P in pops], dtype=np.int64)
        self.has_bias = np.array([bool(P["bias"].any()) for _, P in pops], dtype=np.bool_)
        # u is needed across steps where it decays (du < 1) or a v / I probe reads it
        u_probed = {r.pop for r in sim.traces if "u" in r.buffers()}
        self.keep_u = np.array([P["du"] != 0 or name in u_probed for name, P in pops], dtype=np.bool_)
        # emitters: populations (0..P-1), then sources
        self.emitters = self.pop_names + list(sim.src)
        eid = {n: i for i, n in enumerate(self.emitters)}
        esize = [P["size"] for _, P in pops] + [int(sim.hist[n].shape[-1]) for n in sim.src]
        self.max_emit = int(sum(esize))
        # sources: flat indices sorted by step, a row pointer per step
        ns = len(sim.src)
        steps = sim.steps
        self.src_ptr = np.zeros((max(ns, 1), steps + 1), dtype=np.int64)
        flats, base = [], 0
        for r, (name, (flat, ptr)) in enumerate(sim.src.items()):
            # one entry per (step, neuron), ascending (the eager loop sets a boolean row: a
            # repeated spike counts once)
            size = int(sim.hist[name].shape[-1])
            ptr = np.asarray(ptr, dtype=np.int64)[: steps + 1]
            k = np.repeat(np.arange(steps, dtype=np.int64), np.diff(ptr))
            key = np.unique(k * size + flat.cpu().numpy()[: ptr[-1]].astype(np.int64))
            f = (key % size).astype(np.int32)
            flats.append(f)
            self.src_ptr[r] = np.searchsorted(key // size, np.arange(steps + 1), side="left") + base
            base += len(f)
        self.src_idx = np.concatenate(flats) if flats else np.zeros(0, np.int32)
        self.n_src = ns
        # connections: source-major CSR, concatenated into arrays allocated once; a big (_Rows)
        # connection's torch arrays are then rebound to views of its slice, so the synapses are
        # held once, not twice (np.empty pages are committed as they are filled, and each
        # connection's own arrays are freed after its copy: the peak is one copy plus one
        # connection)
        popid = {n: i for i, n in enumerate(self.pop_names)}
        conns = list(sim.conns)
        small = {i: _csr(W, fd) for i, (_, _, _, W, _) in enumerate(conns) if not hasattr(W, "indptr")}
        nnz = [len(small[i][1]) if i in small else int(W.indices.numel()) for i, (_, _, _, W, _) in enumerate(conns)]
        # unsigned columns: no negative-index wrap-around in the kernel's hot loop. (Packing
        # (column, weight) pairs into one array to save a memory stream per row was tried:
        # slower, 0.33 vs 0.27 ms per step at 100 k neurons.)
        self.cols = np.empty(sum(nnz), dtype=np.uint32)
        self.vals = np.empty(sum(nnz), dtype=fd)
        c_src, c_dst, c_n, c_d, c_ip, c_ix, indptrs = [], [], [], [], [], [], []
        ip_base = ix_base = 0
        for i, (source, dest, d, W, _shift) in enumerate(conns):
            indptr, idx, w = small.pop(i) if i in small else _csr(W, fd)
            end = ix_base + nnz[i]
            self.cols.view(np.int32)[ix_base:end] = idx
            self.vals[ix_base:end] = w
            del idx, w
            if hasattr(W, "indptr") and W.indices.device.type == "cpu" and W.indices.dtype == torch.int32 \
                    and W.data.numpy().dtype == fd:
                W.indices = torch.from_numpy(self.cols[ix_base:end].view(np.int32))
                W.data = torch.from_numpy(self.vals[ix_base:end])
            c_src.append(eid[source])
            c_dst.append(int(self.pop_off[popid[dest]]))
            c_n.append(int(sim.pops[dest]["size"]))
            c_d.append(int(d))
            c_ip.append(ip_base)
            c_ix.append(ix_base)
            indptrs.append(indptr)
            ip_base += len(indptr)
            ix_base = end
        self.c_src = np.array(c_src, dtype=np.int64)
        self.c_dst = np.array(c_dst, dtype=np.int64)
        self.c_n = np.array(c_n, dtype=np.int64)
        self.c_d = np.array(c_d, dtype=np.int64)
        self.c_ip = np.array(c_ip, dtype=np.int64)
        self.c_ix = np.array(c_ix, dtype=np.int64)
        self.indptr = np.concatenate(indptrs) if indptrs else np.zeros(1, np.int64)
        del indptrs
        # spike recording: the recorder of each population (-1: none), and which neurons it keeps
        self.rec_of = np.full(max(len(pops), 1), -1, dtype=np.int64)
        self.record = np.zeros(N, dtype=np.bool_)
        self.rec_names = []
        for r, (name, rec) in enumerate(sim.spike_recs.items()):
            p = popid[name]
            self.rec_of[p] = r
            self.rec_names.append(name)
            lo = int(self.pop_off[p])
            if rec.index is None:
                self.record[lo: int(self.pop_off[p + 1])] = True
            else:
                self.record[lo + rec.index] = True
        self.n_record = int(self.record.sum())
        # v / I probes: global neuron indices, period, and offsets into three flat buffers
        tr = sim.traces
        nt = len(tr)
        self.t_period = np.array([r.period for r in tr], dtype=np.int64)
        self.t_rows = np.array([len(r.rows) for r in tr], dtype=np.int64)
        self.t_gate = np.array([r.gate for r in tr], dtype=np.int64)
        self.t_iptr = np.zeros(nt + 1, dtype=np.int64)
        self.t_idx = np.concatenate([r.index + int(self.pop_off[popid[r.pop]]) for r in tr]).astype(np.int64) \
            if nt else np.zeros(0, np.int64)
        np.cumsum([r.n for r in tr], out=self.t_iptr[1:])
        offs = {"v": [], "u": [], "used": []}
        tot = {"v": 0, "u": 0, "used": 0}
        for r in tr:
            have = r.buffers()
            for b, at in offs.items():
                if b in have:
                    at.append(tot[b])
                    tot[b] += len(r.rows) * r.n
                else:
                    at.append(-1)
        self.t_voff = np.array(offs["v"], dtype=np.int64)
        self.t_uoff = np.array(offs["u"], dtype=np.int64)
        self.t_usedoff = np.array(offs["used"], dtype=np.int64)
        self.t_v = np.zeros(tot["v"], dtype=fd)
        self.t_u = np.zeros(tot["u"], dtype=fd)
        self.t_used = np.zeros(tot["used"], dtype=np.bool_)
        # ring buffer of emitted spikes: slot s holds the global emitter-local indices of step s,
        # ordered by emitter, with a pointer per emitter
        self.L = sim.L
        self.h_idx = np.zeros((self.L, max(self.max_emit, 1)), dtype=np.int32)
        self.h_ptr = np.zeros((self.L, len(self.emitters) + 1), dtype=np.int64)
        self.a_in = np.zeros(N, dtype=fd)
        # this step's spikes, one byte a neuron, each population from a multiple of 8 (padding
        # stays 0), so that the kernel finds the few spikes by testing 8 bytes at a time
        self.fl_off = np.zeros(len(pops) + 1, dtype=np.int64)
        np.cumsum((sizes + 7) // 8 * 8, out=self.fl_off[1:])
        self.flag = np.zeros(max(int(self.fl_off[-1]), 8), dtype=np.bool_)
        self.counts = np.zeros(N, dtype=np.int64)
        self.rec_held = np.zeros(max(len(sim.spike_recs), 1), dtype=np.int64)


def _csr(W, fd):
    """(indptr int64, indices int32, data) of a connection of the eager loop, source-major
    (views of a CPU _Rows connection's own arrays where the dtypes agree)."""
    import torch

    if hasattr(W, "indptr"):  # _Rows: already source-major CSR
        return (W.indptr.cpu().numpy().astype(np.int64, copy=False), W.indices.cpu().numpy().astype(np.int32, copy=False),
                W.data.cpu().numpy().astype(fd, copy=False))
    M = W.W if hasattr(W, "W") else W  # _DenseRows or a dense (n_pre, n_post) tensor
    if M.layout != torch.strided:
        raise TypeError("a sparse (batched) connection reached the fused kernel")
    M = np.ascontiguousarray(M.cpu().numpy())
    indptr = np.zeros(M.shape[0] + 1, dtype=np.int64)
    nnz = _dense_counts()(M, indptr)  # one compiled pass per direction (np.nonzero was 5x slower)
    cols = np.zeros(nnz, dtype=np.int32)
    vals = np.zeros(nnz, dtype=M.dtype)
    _dense_fill()(M, indptr, cols, vals)
    return indptr, cols, vals.astype(fd, copy=False)


def _count_rows(M, indptr):
    nnz = 0
    for r in range(M.shape[0]):
        for c in range(M.shape[1]):
            if M[r, c] != 0:
                nnz += 1
        indptr[r + 1] = nnz
    return nnz


def _fill_rows(M, indptr, cols, vals):
    for r in range(M.shape[0]):
        q = indptr[r]
        for c in range(M.shape[1]):
            x = M[r, c]
            if x != 0:
                cols[q] = c
                vals[q] = x
                q += 1


_JIT: dict = {}


def _jit(fn):
    if fn.__name__ not in _JIT:
        import numba

        _JIT[fn.__name__] = numba.njit(cache=True, nogil=True)(fn)
    return _JIT[fn.__name__]


def _dense_counts():
    return _jit(_count_rows)


def _dense_fill():
    return _jit(_fill_rows)


# ---------------------------------------------------------------------------------------------
# the kernel


def _kernel():
    """The compiled step loop (compiled on first use, cached on disk)."""
    global update
    update = _jit(_update)  # the global the kernel calls (Numba binds it when compiling)
    return _jit(_advance)


update = None


def _update(dup, dvp, th, vr, Rp, gate, md, keep_u, has_bias, since_never, u, v, since, a_in, bias, flag):
    """One population's neurons (views), one step: the eager loop's arithmetic, in its order.
    (The loop runs from 0 over views: an index known to be >= 0 lets LLVM drop Numba's
    negative-index wrap-around and vectorise; with ``range(lo, hi)`` it ran ~15x slower.)
    ``keep_u`` False (``du`` = 1, lif: ``u (1 - du)`` is 0 and nothing reads ``u``): ``u`` is
    ``a_in`` and is not stored; ``has_bias`` False: the bias is 0 and is not read (adding 0
    as the eager loop does). Both only spare memory traffic."""
    zero = dup - dup  # 0 in the run's dtype
    for i in range(v.shape[0]):
        sc = min(since[i] + 1, since_never)
        if keep_u:
            un = u[i] * dup
            un = un + a_in[i]
            u[i] = un
        else:
            un = zero + a_in[i]
        a_in[i] = zero
        vi = v[i]
        vn = vi * dvp
        vn = vn + (un if sc >= gate else zero)
        vn = vn + (bias[i] if has_bias else zero)
        integ = sc >= Rp
        vn = vn if integ else vi
        s = integ & (vn > th)
        reset = vr if md == 0 else vn - th
        v[i] = reset if s else vn
        since[i] = 0 if s else sc
        flag[i] = s


def _advance(m0, m1, n_low, since_never,
            pop_off, du, dv, vth, v_reset, R, drop, mode, keep_u, has_bias, bias, u, v, since, a_in, counts,
            c_src, c_dst, c_n, c_d, c_ip, c_ix, indptr, cols, vals,
            n_src, src_ptr, src_idx,
            L, h_idx, h_ptr, flag, fl_off,
            record, rec_of, spk_k, spk_n, n_spk, rec_held, n_record,
            t_period, t_rows, t_gate, t_iptr, t_idx, t_voff, t_uoff, t_usedoff, t_v, t_u, t_used):
    """Lava steps m0 .. m1 - 1; returns (next step, spikes recorded): stops early, at a step
    boundary, when the spike buffer could overflow in the next step."""
    n_pops = pop_off.shape[0] - 1
    words = flag.view(np.uint64)
    cap = spk_k.shape[0]
    m = m0
    while m < m1:
        if n_spk + n_record > cap:
            break
        slot = m % L
        # 1. deliveries: what each connection's source emitted d + 1 steps ago
        for c in range(c_src.shape[0]):
            e = m - 1 - c_d[c]
            if e < 1:
                continue
            s = e % L
            a, b = h_ptr[s, c_src[c]], h_ptr[s, c_src[c] + 1]
            ip, ix, dst = c_ip[c], c_ix[c], c_dst[c]
            tgt = a_in[dst: dst + c_n[c]]
            for q in range(a, b):
                i = h_idx[s, q]
                lo_z, hi_z = ix + indptr[ip + i], ix + indptr[ip + i + 1]
                # views from 0 and unsigned columns: no negative-index wrap-around in the hot loop
                cz, vz = cols[lo_z:hi_z], vals[lo_z:hi_z]
                for z in range(cz.shape[0]):
                    tgt[cz[z]] += vz[z]
        # 2. neurons: the eager loop's arithmetic, element by element
        pos = 0
        for p in range(n_pops):
            h_ptr[slot, p] = pos
            lo, hi = pop_off[p], pop_off[p + 1]
            dup, dvp, th, vr = du[p], dv[p], vth[p], v_reset[p]
            Rp, gate, md = R[p], R[p] + drop[p], mode[p]  # int32
            r = rec_of[p]
            # branch-free (vectorisable) update; the spikes are collected in a second pass
            f0 = fl_off[p]
            update(dup, dvp, th, vr, Rp, gate, md, keep_u[p], has_bias[p], since_never, u[lo:hi], v[lo:hi],
                   since[lo:hi], a_in[lo:hi], bias[lo:hi], flag[f0:f0 + hi - lo])
            for wd in range(f0 // 8, fl_off[p + 1] // 8):
                if words[wd] == 0:
                    continue
                for b in range(wd * 8, wd * 8 + 8):
                    if not flag[b]:
                        continue
                    i = lo + b - f0
                    h_idx[slot, pos] = i - lo
                    pos += 1
                    if m <= n_low:
                        counts[i] += 1
                        if record[i]:
                            spk_k[n_spk] = m - 1
                            spk_n[n_spk] = i
                            n_spk += 1
                            rec_held[r] += 1
        # 3. v / I probes (the eager _TraceRec.record)
        for t in range(t_period.shape[0]):
            per = t_period[t]
            k = m - 1
            lo_t, hi_t = t_iptr[t], t_iptr[t + 1]
            nt = hi_t - lo_t
            if k < n_low and k % per == 0:
                row = k // per
                if t_voff[t] >= 0:
                    for j in range(nt):
                        t_v[t_voff[t] + row * nt + j] = v[t_idx[lo_t + j]]
                if t_usedoff[t] >= 0:
                    for j in range(nt):
                        t_used[t_usedoff[t] + row * nt + j] = since[t_idx[lo_t + j]] + 1 >= t_gate[t]
            k = m - 2
            if t_uoff[t] >= 0 and k >= 0 and k < n_low and k % per == 0:
                row = k // per
                for j in range(nt):
                    t_u[t_uoff[t] + row * nt + j] = u[t_idx[lo_t + j]]
        # 4. sources: their spikes of this step
        for r2 in range(n_src):
            h_ptr[slot, n_pops + r2] = pos
            for q in range(src_ptr[r2, m - 1], src_ptr[r2, m]):
                h_idx[slot, pos] = src_idx[q]
                pos += 1
        h_ptr[slot, n_pops + n_src] = pos
        m += 1
    return m, n_spk


def _run(sim, opts) -> float:
    """The fused loop over ``sim``; writes counts, spikes and traces back; returns its wall time."""
    kern = _kernel()
    pl = _Plan(sim)
    t0 = time.perf_counter()  # the plan is set-up (arrays from the built TorchSim), not the loop
    n_low = int(sim.low.steps)
    cap = max(SPIKE_BUFFER, 1)
    spk_k = np.zeros(cap, dtype=np.int32)
    spk_n = np.zeros(cap, dtype=np.int64)
    n_spk = 0
    m, end = 1, sim.steps + 1
    with tqdm(total=sim.steps, desc="torch (fused)", unit="step", leave=False, delay=2.0,
              disable=not opts.progress) as bar:
        while m < end:
            stop = min(end, m + CHUNK_STEPS)
            m_new, n_spk = _call(kern, pl, m, stop, n_low, spk_k, spk_n, n_spk)
            bar.update(m_new - m)
            m = m_new
            if m < stop:  # the spike buffer is full: grow it
                cap *= 2
                spk_k = np.resize(spk_k, cap)
                spk_n = np.resize(spk_n, cap)
            if sim.spike_recs:  # the eager loop's bound on recorded spikes, as they arrive
                for r, name in enumerate(pl.rec_names):
                    sim.spike_recs[name]._held = 12 * int(pl.rec_held[r])
                sim._check_spikes(m - 1)
    wall = time.perf_counter() - t0  # the loop alone, as the eager loop's
    _write_back(sim, pl, spk_k[:n_spk], spk_n[:n_spk])
    return wall


def _call(kern, pl: _Plan, m: int, stop: int, n_low: int, spk_k, spk_n, n_spk: int):
    return kern(m, stop, n_low, np.int32(2**30),
                pl.pop_off, pl.du, pl.dv, pl.vth, pl.v_reset, pl.R, pl.drop, pl.mode, pl.keep_u, pl.has_bias, pl.bias,
                pl.u, pl.v, pl.since, pl.a_in, pl.counts,
                pl.c_src, pl.c_dst, pl.c_n, pl.c_d, pl.c_ip, pl.c_ix, pl.indptr, pl.cols, pl.vals,
                pl.n_src, pl.src_ptr, pl.src_idx,
                pl.L, pl.h_idx, pl.h_ptr, pl.flag, pl.fl_off,
                pl.record, pl.rec_of, spk_k, spk_n, n_spk, pl.rec_held, pl.n_record,
                pl.t_period, pl.t_rows, pl.t_gate, pl.t_iptr, pl.t_idx, pl.t_voff, pl.t_uoff,
                pl.t_usedoff, pl.t_v, pl.t_u, pl.t_used)


def _write_back(sim, pl: _Plan, k: np.ndarray, n: np.ndarray) -> None:
    """Counts, recorded spikes, probe buffers and the final state into ``sim`` (as the eager loop
    leaves them)."""
    import torch

    for p, name in enumerate(pl.pop_names):
        lo, hi = int(pl.pop_off[p]), int(pl.pop_off[p + 1])
        sim.counts[name] = torch.from_numpy(pl.counts[lo:hi].copy()).reshape(1, -1)
        P = sim.pops[name]
        if pl.keep_u[p]:  # (else u was not kept: nothing reads it after the loop)
            P["u"] = torch.from_numpy(pl.u[lo:hi].copy()).reshape(1, -1).to(sim.fdtype)
        P["v"] = torch.from_numpy(pl.v[lo:hi].copy()).reshape(1, -1).to(sim.fdtype)
        P["since"] = torch.from_numpy(pl.since[lo:hi].astype(np.int64)).reshape(1, -1)
        rec = sim.spike_recs.get(name)
        if rec is None:
            continue
        sel = (n >= lo) & (n < hi)
        c = n[sel] - lo
        if rec.index is not None:
            c = np.searchsorted(rec.index, c)
        ks = k[sel]
        rec.set_arrays(ks, np.zeros(len(ks), dtype=np.int32), c)
    for t, r in enumerate(sim.traces):
        shape = (len(r.rows), r.n)
        lo = int(pl.t_voff[t])
        if lo >= 0:
            r.v.copy_(torch.from_numpy(pl.t_v[lo: lo + shape[0] * shape[1]].reshape(shape)).unsqueeze(1))
        lo = int(pl.t_uoff[t])
        if lo >= 0:
            r.u.copy_(torch.from_numpy(pl.t_u[lo: lo + shape[0] * shape[1]].reshape(shape)).unsqueeze(1))
        lo = int(pl.t_usedoff[t])
        if lo >= 0:
            r.used.copy_(torch.from_numpy(pl.t_used[lo: lo + shape[0] * shape[1]].reshape(shape)).unsqueeze(1))
