"""``neurodeploy compile`` for an ``ipvae`` block on the fixed-point Loihi 2 targets: the
deployable integers and a report of resources, synaptic operations, number formats and every
approximation with its measured effect.

What goes on the chip (the mapping the Lava ``fixed_pt`` model implements, see
:mod:`neurodeploy.backends.lava.blocks.ipvae`):

* **neurons**: the K latents (``IPVAELatents``) per image; ``u`` is an integer in Q units;
* **lateral synapses**: ``-W = -eta Phi^T Sigma^-1 Phi`` (K x K, self-connections kept) as 8-bit
  signed mantissas with one shared exponent, carrying graded spikes (the counts, 8-bit payload);
* **feedforward drive**: computed once per image on the host,
  ``drive = eta (Phi^T Sigma^-1 x - exp(b))``, rounded to Q units and written to each latent
  as a constant (no input neurons, no feedforward synapses). The on-chip alternative (M input
  neurons, M x K synapses) is sized in the report too;
* **readout**: ``x_hat = Phi z`` on the host from the counts of the last iteration.

Resources follow the target's ``limits``: latents per core are bounded by ``neurons_per_core``
and by ``synapse_memory_bits_per_core / (K weight_bits)`` (each latent holds K dense 8-bit
weights; no index overhead assumed); the fan-in (K) must not exceed ``fan_in_axons_per_core``.

Measured at compile time on ``MEASURE_IMAGES`` held-out images (the dataset's held-out split,
or the stimulus's rows when it is not a dataset) at the block's ``iterations``, all in numpy:
a float64 reference (exact Poisson counts), float runs with one approximation switched on at a
time (8-bit weights; the rate table), the fixed-point model with the other count sampler (the
full table vs the core-sized one, same seed: the sampler's effect), and the full fixed-point model
(:func:`neurodeploy.library.blocks.ipvae.fixed.fixed_step`, which the Lava ``fixed_pt``
ProcessModel matches bit for bit: ``tests/backends/test_ipvae_spiking.py``). The fixed run also
gives the synaptic operations: per inference, the graded spikes sent (non-zero counts of
iterations 0..T-1) times the fan-out K, and the unary equivalent (sum of counts times K).
Differences are means over images of per-image differences, with their standard error (the
float runs share one seed, i.e. common random numbers; the fixed run draws from its own PRNG,
so a difference within ~2 SE is Monte-Carlo noise).

With ``form: predictive_coding`` the report describes the PC network instead
(:func:`_compile_pc`; docs/ipvae.md, "Two forms of the same inference"): M graded error units
(bias ``x``, gain ``1/sigma^2``) and K latents, decoder ``Phi`` (latents -> errors) and encoder
``eta Phi^T`` (errors -> latents) as 8-bit mantissas with shared exponents (``2 M K`` synapses,
no host feedforward), counts in 8-bit and errors in signed ``eps_bits`` graded payloads, two time
steps per iteration. Its measurement runs the fixed-point PC reference
(``lava/ipvae/pc_reference.py``, bit-exact with the Lava ``fixed_pt`` PC models) against the
float64 PC form (:func:`neurodeploy.library.blocks.ipvae.pc.run_ipvae_pc`) and counts the synaptic
events of both pathways.
"""

from __future__ import annotations

import io
import math
import time
from pathlib import Path

import numpy as np

from ....core.data import TEST_SIZES
from ....core.errors import CompileError, NotImplementedYet
from ....core.io import atomic_write_bytes, atomic_write_json, atomic_write_text
from ....core.targets import Target
from ....core.versions import versions
from ....ir import to_json
from ....ir.nodes import Network
from ....library.blocks.coder import Coder, block_images, find_coder
from ....library.blocks.ipvae.fixed import (
    CORE_MEMORY_BYTES,
    DEFAULT_SAMPLER,
    SAMPLERS,
    SOFTPLUS_RANGE,
    UNIFORM_BITS,
    count_table,
    count_table_bytes,
    count_tables,
    fixed_format,
    fixed_step,
    float_update,
    quantize_weights,
    seed_states,
)
from ....library.blocks.ipvae.pc import run_ipvae_pc, synapse_counts
from ....library.blocks.ipvae.pc_fixed import errors_fixed, pc_fixed_constants
from ....library.blocks.ipvae.reference import average_counts, drive, ipvae_params, ipvae_result, lateral_matrix
from ....passes.expand import expand

MEASURE_IMAGES = 64


def _check_target(target: Target) -> None:
    if target.backend != "lava" or target.number_format != "fixed":
        raise NotImplementedYet(
            f"compiling an ipvae block for '{target.name}' ({target.backend}, {target.number_format}) is not "
            "implemented: the compile report targets the fixed-point Loihi 2 targets (loihi2-sim, loihi2); "
            f"`neurodeploy eval SPEC -t {target.name}` runs the block there")


def _measure_images(net, block, n: int):
    stim = net.node(block.params["input"])
    if getattr(stim, "data", None) is not None and stim.data.source == "dataset":
        return block_images(net, block, min(n, TEST_SIZES[stim.data.dataset]))
    X, desc = block_images(net, block, None)
    return X[:n], dict(desc, count=int(min(n, len(X))))


# --- numpy simulators -----------------------------------------------------------------------

def _float_run(p, X, T, seed, L=None, lut_bits=None, count_max=None):
    """Float64 iterations with lateral input ``z @ L.T`` (default ``L = -W``); ``lut_bits``
    rounds u to that many fractional bits before exp (the rate table); ``count_max`` clips."""
    rng = np.random.default_rng(seed)
    D = drive(p, X)
    L = -lateral_matrix(p) if L is None else L
    u = np.broadcast_to(p.u0, D.shape).copy()
    z = rng.poisson(np.exp(u)).astype(np.float64)
    zbar = np.zeros_like(u)
    zmax = 0.0
    for t in range(1, T + 1):
        u = float_update(u, D, z @ L.T, u_min=p.u_min, u_max=p.u_max, du_max=p.du_max, soft=p.soft)
        v = u if lut_bits is None else np.round(u * 2.0 ** lut_bits) / 2.0 ** lut_bits
        z = rng.poisson(np.exp(v)).astype(np.float64)
        zmax = max(zmax, float(z.max()))
        if count_max is not None:
            z = np.minimum(z, count_max)
        zbar = average_counts(zbar, z, t)
    return ipvae_result(p, X, u, z, zbar, count_max_seen=zmax)


def _fixed_run(p, X, T, seed, fmt, q, s):
    """The fixed_pt model in numpy (bit-exact with Lava); also counts the messages sent."""
    rng = np.random.default_rng(seed)
    B, K = len(X), p.latents
    D = fmt.q(drive(p, X)).ravel()
    u = np.broadcast_to(np.clip(fmt.q(p.u0), fmt.u_min_q, fmt.u_max_q), (B, K)).ravel().copy()
    z = np.clip(rng.poisson(np.exp(np.broadcast_to(p.u0, (B, K)))), 0, fmt.count_max).astype(np.int64)
    state = seed_states(B * K, int(rng.integers(2 ** 31)))
    W2, shift = (2 * q).astype(np.int64), s - 1 + fmt.frac_bits
    zbar = np.zeros((B, K))
    spikes = np.zeros(B)  # graded messages per image (non-zero counts sent)
    counts = np.zeros(B)  # sum of the counts sent
    clipped, z_max = 0, 0
    for t in range(1, T + 1):
        spikes += (z > 0).sum(1)
        counts += z.sum(1)
        a_in = (z @ W2.T).ravel()
        u, zf, state = fixed_step(u, D, a_in, state, shift, fmt)
        z = zf.reshape(B, K).astype(np.int64)
        clipped += int((z >= fmt.count_max).sum())
        z_max = max(z_max, int(z.max()))
        zbar = average_counts(zbar, z, t)
    return ipvae_result(p, X, fmt.to_float(u.reshape(B, K)), z, zbar, spikes=spikes, counts=counts,
                        clipped=clipped, z_max=z_max, drive_q=D)


def _pc_fixed_run(p, X, T, seed, fmt, c):
    """The fixed_pt PC model in numpy, per image (the same integers as
    :func:`~neurodeploy.library.blocks.ipvae.pc_fixed.pc_fixed_run` with block-diagonal
    weights, and the same random stream as ``run_ipvae_pc_lava(fixed=True)`` with one chunk);
    also counts the messages of both pathways."""
    rng = np.random.default_rng(seed)
    B, K, M = len(X), p.latents, p.inputs
    z = np.clip(rng.poisson(np.exp(np.broadcast_to(p.u0, (B, K)))), 0, fmt.count_max).astype(np.int64)
    state = seed_states(B * K, int(rng.integers(2 ** 31)))
    u = np.broadcast_to(np.clip(fmt.q(p.u0), fmt.u_min_q, fmt.u_max_q), (B, K)).ravel().astype(np.int64)
    x_q, gain = fmt.q(X).astype(np.int64), np.broadcast_to(c["gain_q"], (B, M))
    leak = -np.broadcast_to(c["leak_q"], (B, K)).ravel().astype(np.int64)
    dec, enc = np.asarray(c["dec_w"], np.int64), np.asarray(c["enc_w"], np.int64)
    zbar = np.zeros((B, K))
    lat_msgs, err_msgs, counts = np.zeros(B), np.zeros(B), np.zeros(B)
    eps_lim = (1 << (c["eps_bits"] - 1)) - 1
    eps_clipped, eps_max, z_max = 0, 0, 0
    for t in range(1, T + 1):
        lat_msgs += (z > 0).sum(1)
        counts += z.sum(1)
        eps = errors_fixed(x_q, z @ dec.T, gain, c["dec_shift"], c["gain_bits"], fmt.frac_bits,
                           c["eps_frac_bits"], c["eps_bits"])
        err_msgs += (eps != 0).sum(1)
        eps_clipped += int((np.abs(eps) >= eps_lim).sum())
        eps_max = max(eps_max, int(np.abs(eps).max()))
        u, zf, state = fixed_step(u, leak, (eps @ enc.T).ravel(), state, c["lat_shift"], fmt)
        z = zf.reshape(B, K).astype(np.int64)
        z_max = max(z_max, int(z.max()))
        zbar = average_counts(zbar, z, t)
    return ipvae_result(p, X, fmt.to_float(u.reshape(B, K)), z, zbar, lat_msgs=lat_msgs, err_msgs=err_msgs,
                        counts=counts, eps_clipped=eps_clipped, eps_max=eps_max, z_max=z_max)


def _diff(a, b, key):
    """Mean and standard error of per-image differences a - b."""
    d = np.asarray(a[key + "_images"]) - np.asarray(b[key + "_images"])
    return {"mean": float(d.mean()), "se": float(d.std(ddof=1) / math.sqrt(len(d))) if len(d) > 1 else None}


def _summary(r):
    return {"r2": r["r2"], "r2_pooled": r["r2_pooled"], "zeros": r["zeros"], "u_max": r["u_max"]}


def _effect(r, ref):
    return {"r2": _diff(r, ref, "r2"), "zeros": _diff(r, ref, "zeros"),
            "r2_pooled": float(r["r2_pooled"] - ref["r2_pooled"])}


# --- the report -----------------------------------------------------------------------------

def resources(K: int, M: int, target: Target, weight_bits: int) -> dict:
    """Neurons, cores and synapse memory of one image's network on ``target``."""
    lim = target.limits
    npc = int(lim.get("neurons_per_core", K))
    mem = lim.get("synapse_memory_bits_per_core")
    fan_in = lim.get("fan_in_axons_per_core")
    per_neuron_bits = K * weight_bits
    by_mem = int(mem // per_neuron_bits) if mem else K
    if by_mem < 1:
        raise CompileError(f"one latent's {K} lateral weights ({per_neuron_bits} bits) exceed the "
                           f"{mem}-bit synapse memory of a core of '{target.name}'")
    if fan_in is not None and K > fan_in:
        raise CompileError(f"each latent receives {K} lateral inputs; '{target.name}' allows "
                           f"{fan_in} input axons per core")
    per_core = min(npc, by_mem, K)
    cores = -(-K // per_core)
    chip_cores = int(lim.get("cores_per_chip", cores)) * int(lim.get("chips", 1))
    if cores > chip_cores:
        raise CompileError(f"{K} latents need {cores} cores; '{target.name}' has {chip_cores}")
    syn_bits = K * K * weight_bits
    return {
        "neurons": K, "latents_per_core": per_core,
        "latents_per_core_bound": "synapse memory" if by_mem < min(npc, K) else
        ("neurons_per_core" if npc < K else "all latents fit one core"),
        "cores": cores, "cores_available": chip_cores,
        "images_in_parallel": chip_cores // cores,
        "lateral_synapses": K * K, "weight_bits": weight_bits,
        "synapse_memory_bits": syn_bits, "synapse_memory_bytes": syn_bits // 8,
        "synapse_memory_bits_per_core_used": per_core * per_neuron_bits,
        "synapse_memory_bits_per_core_limit": mem,
        "synapse_memory_utilisation": (per_core * per_neuron_bits / mem) if mem else None,
        "fan_in_per_latent": K, "fan_in_limit": fan_in, "fan_out_per_latent": K,
        "feedforward": {"where": "host", "host_macs_per_image": M * K,
                        "on_chip_alternative": {"input_neurons": M, "synapses": M * K,
                                                "synapse_memory_bits": M * K * weight_bits}},
        "readout": {"where": "host", "macs_per_image": M * K},
    }


def sampler_sizes(p, res: dict, target: Target) -> dict:
    """Count-table memory of the ``full`` and the ``core`` sampler of coder ``p`` (unpacked and
    packed, :func:`~neurodeploy.library.blocks.ipvae.fixed.count_table_bytes`) and whether the
    packed table fits one core's synapse memory next to that core's lateral weights (every core
    holding latents needs its own copy)."""
    mem_bits = target.limits.get("synapse_memory_bits_per_core")
    mem = int(mem_bits // 8) if mem_bits else CORE_MEMORY_BYTES
    lateral = int(res["synapse_memory_bits_per_core_used"] // 8)
    out = {"core_memory_bytes": mem, "lateral_bytes_per_core": lateral}
    for name in ("full", "core"):
        fmt = fixed_format(p, sampler=name)
        b = count_table_bytes(fmt)
        out[name] = {"lut_bits": fmt.lut_bits, "levels": b["full_levels"], "entries_per_level": b["full_entries_per_level"],
                     "bytes_unpacked": b["full"], "bytes_packed": b["packed"],
                     "packed_levels": b["packed_levels"], "packed_entries": b["packed_entries"],
                     "packed_widest_row": b["packed_widest_row"], "row_header_bytes": b["row_header_bytes"],
                     "fits_core_with_lateral_unpacked": bool(b["full"] + lateral <= mem),
                     "fits_core_with_lateral_packed": bool(b["packed"] + lateral <= mem)}
    return out


def compile_ipvae(net: Network, target: Target, out_dir, images: int = MEASURE_IMAGES, seed: int = 0,
                  log=None, sampler: str | None = None, coder: Coder | None = None) -> tuple[dict, dict]:
    """Write ``ipvae_params.npz``, ``compile_report.json``, ``ir.json`` and ``manifest.json``
    under ``out_dir``; returns (report, files). ``sampler`` (``'full'`` or ``'core'``, default
    :data:`~neurodeploy.backends.lava.blocks.ipvae.DEFAULT_SAMPLER`) is the count table the compiled
    latents use; the report measures the other one against it too."""
    _check_target(target)
    sampler = DEFAULT_SAMPLER if sampler is None else sampler
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {SAMPLERS}, got {sampler!r}")
    t0 = time.perf_counter()
    block = coder if coder is not None else find_coder(net, "ipvae")
    arrays = dict(block.arrays)
    if block.params.get("form") == "predictive_coding":
        return _compile_pc(net, target, block, arrays, out_dir, images, seed, log, t0)
    p = ipvae_params(arrays)
    K, M, T = p.latents, p.inputs, int(block.params["iterations"])
    fmt = fixed_format(p, sampler=sampler)
    other = "full" if sampler == "core" else "core"
    W = lateral_matrix(p)
    q, s = quantize_weights(-W)
    wbits = int(target.precision.get("weight_bits", 8))
    res = resources(K, M, target, wbits)
    sizes = sampler_sizes(p, res, target)

    X, desc = _measure_images(net, block, images)
    say = log or (lambda msg: None)
    say(f"measuring float vs fixed point on {len(X)} images, T = {T} ...")
    t1 = time.perf_counter()
    ref = _float_run(p, X, T, seed)
    qW = _float_run(p, X, T, seed, L=q * 2.0 ** s)  # same seed: common random numbers
    lut = _float_run(p, X, T, seed, lut_bits=fmt.lut_bits, count_max=fmt.count_max)
    fx = _fixed_run(p, X, T, seed, fmt, q, s)
    fx_other = _fixed_run(p, X, T, seed, fixed_format(p, sampler=other), q, s)  # same seed and PRNG states
    fx_core, fx_full = (fx, fx_other) if sampler == "core" else (fx_other, fx)
    t_measure = time.perf_counter() - t1

    rel = np.abs(q * 2.0 ** s - (-W)) / max(np.abs(W).max(), 1e-300)
    rates, cdf = count_tables(fmt)
    drive_q = fx["drive_q"]
    drive_bits = int(np.ceil(np.log2(np.abs(drive_q).max() + 1))) + 1
    u_levels = fmt.u_max_q - fmt.u_min_q + 1
    bias_bits = target.precision.get("bias_mant_bits")
    state_bits = target.precision.get("state_bits")
    total = _effect(fx, ref)
    n_cells = fx["z"].size * T
    formats = {
        "u": {"type": "signed integer", "q_format": f"Q.{fmt.frac_bits}", "resolution": 2.0 ** -fmt.frac_bits,
              "range": [p.u_min, p.u_max], "range_q": [fmt.u_min_q, fmt.u_max_q], "levels": u_levels,
              "bits": int(np.ceil(np.log2(max(abs(fmt.u_min_q), abs(fmt.u_max_q)) + 1))) + 1,
              "state_bits_available": state_bits},
        "du": {"q_format": f"Q.{fmt.frac_bits}", "range": [p.u_min, p.du_max]},
        "drive": {"q_format": f"Q.{fmt.frac_bits}", "computed": "host, float64, rounded to Q units",
                  "max_abs_measured": float(np.abs(drive_q).max() / fmt.one), "bits_measured": drive_bits,
                  "target_bias_mant_bits": bias_bits,
                  "fits_bias_mantissa": None if bias_bits is None else bool(drive_bits <= bias_bits),
                  "note": "the CPU model holds the drive as an integer Var; on Loihi 2 a drive wider than "
                          "the bias mantissa needs the bias exponent (coarser steps) or a second input"},
        "rate_table": {"sampler": sampler, "indexed_by": f"u rounded to {fmt.lut_bits} fractional bits",
                       "levels": int(len(rates)),
                       "entries_per_level": int(cdf.shape[1]), "entry_bits": UNIFORM_BITS,
                       "bytes": int(cdf.size * UNIFORM_BITS // 8),
                       "bytes_packed": sizes[sampler]["bytes_packed"],
                       "fits_core_with_lateral": sizes[sampler]["fits_core_with_lateral_packed"],
                       "content": "integer Poisson CDF floor(2^24 P(Z <= n)), n < 2^count_bits - 1",
                       "storage": "packed: per level only the entries in (0, 2^24) (leading zeros kept as a skip "
                                  "count, entries 2^24 are never counted), levels above the first all-zero row "
                                  "dropped (they draw count_max), a row header of start pointer + skip; the "
                                  "same counts as the unpacked table for every u and uniform",
                       "samplers": sizes,
                       "bytes_if_cut_at_largest_count": int(len(rates) * (fx["z_max"] + 1) * UNIFORM_BITS // 8),
                       "note": "'full' (2^-8 levels) is far larger than a Loihi 2 core's memory even packed; "
                               "'core' (FixedFormat.core_sized, 2^-5 levels) packed fits next to the lateral "
                               "weights when fits_core_with_lateral_packed says so (assumes the table shares "
                               "the synapse memory; no microcode for the table walk is implemented)"},
        "softplus_table": {"domain": f"|c - y| <= {SOFTPLUS_RANGE:g}", "entries": int(2 * SOFTPLUS_RANGE * fmt.one + 1),
                           "used": p.soft},
        "prng": {"kind": "xorshift32 per neuron (uint32 state)", "uniform_bits": UNIFORM_BITS,
                 "counts": "inverse CDF: number of table entries <= the uniform"},
        "payload": {"bits": fmt.count_bits, "max_count": fmt.count_max, "message": "graded spike = count"},
        "weights": {"bits": wbits, "mantissa_range": [-127, 127], "exponent": int(s),
                    "lava_dense_storage": "2 q (mixed-sign Dense truncates the LSB)",
                    "lat_shift": int(s - 1 + fmt.frac_bits),
                    "max_abs_error_rel_to_max": float(rel.max()), "rms_error_rel_to_max": float(np.sqrt((rel ** 2).mean())),
                    "exponent_applied": "in the latent as the shift lat_shift = exponent - 1 + frac_bits; "
                                        "the Dense/Sparse weight exponent stays 0",
                    "dense_weight_exponent": 0},
    }
    approximations = [
        {"name": "8-bit lateral weights", "what": f"-W as q 2^{s}, q in [-127, 127] (round to nearest)",
         "bound": f"|error| <= 2^{s - 1} = {2.0 ** (s - 1):.3g} (max |W| = {np.abs(W).max():.3g})",
         "measured_effect": _effect(qW, ref), "how": "float run with the quantised weights vs float"},
        {"name": "rate / CDF table", "what": f"exp(u) and the Poisson CDF looked up at u rounded to 2^-{fmt.lut_bits}",
         "bound": f"rate relative error <= {math.expm1(2.0 ** -(fmt.lut_bits + 1)):.2e}",
         "measured_effect": _effect(lut, ref), "how": "float run with u rounded before exp and counts clipped to the payload vs float"},
        {"name": "core-sized count sampler",
         "what": f"table levels at u rounded to 2^-{sizes['core']['lut_bits']} instead of 2^-{sizes['full']['lut_bits']}, "
                 f"packed: {sizes['core']['bytes_packed']} bytes vs {sizes['full']['bytes_packed']} packed / "
                 f"{sizes['full']['bytes_unpacked']} unpacked ({'used' if sampler == 'core' else 'not used'} here)",
         "bound": f"rate relative error <= {math.expm1(2.0 ** -(sizes['core']['lut_bits'] + 1)):.2e} "
                  f"(full: {math.expm1(2.0 ** -(sizes['full']['lut_bits'] + 1)):.2e})",
         "sampler": sampler,
         "bytes": {"full_unpacked": sizes["full"]["bytes_unpacked"], "full_packed": sizes["full"]["bytes_packed"],
                   "core_packed": sizes["core"]["bytes_packed"], "lateral_per_core": sizes["lateral_bytes_per_core"],
                   "core_memory": sizes["core_memory_bytes"]},
         "fits_core_with_lateral": {"full": sizes["full"]["fits_core_with_lateral_packed"],
                                    "core": sizes["core"]["fits_core_with_lateral_packed"]},
         "measured_effect": _effect(fx_core, fx_full),
         "how": "fixed-point run with the core-sized table minus the full table (same seed and PRNG states)"},
        {"name": f"{fmt.count_bits}-bit count payload", "what": f"counts clipped to {fmt.count_max}",
         "bound": "exact unless a rate exceeds ~200",
         "measured": {"clipped_counts_fixed": fx["clipped"], "fraction": fx["clipped"] / n_cells,
                      "largest_count_float": ref["count_max_seen"]}},
        {"name": f"Q.{fmt.frac_bits} potentials, increments and drive", "what": "u, du, drive rounded to 2^-%d" % fmt.frac_bits,
         "bound": f"{2.0 ** -(fmt.frac_bits + 1):.2e} per rounding", "measured_effect": "in the total below"},
        {"name": "soft clamp by table", "what": f"softplus tabulated on |c - y| <= {SOFTPLUS_RANGE:g}, entries rounded",
         "bound": "< 2^-11 outside the table, rounding 2^-11 inside", "measured_effect": "in the total below"},
        {"name": "on-core PRNG", "what": f"xorshift32, top {UNIFORM_BITS} bits, CDF floored to 2^-{UNIFORM_BITS}",
         "bound": f"count probabilities within 2^-{UNIFORM_BITS}", "measured_effect": "in the total below"},
        {"name": "lateral input shift", "what": f"a_in 2^({s - 1 + fmt.frac_bits}) to Q units, rounded half up when a right shift",
         "bound": "half a Q unit", "measured_effect": "in the total below"},
        {"name": "total: fixed point vs float", "what": "every approximation above together (the fixed_pt model)",
         "measured_effect": total},
    ]
    comms = {"images": int(len(X)), "T": T,
             "graded_spikes_per_inference": float(fx["spikes"].mean()),
             "counts_per_inference": float(fx["counts"].mean()),
             "synops_per_inference": float(fx["spikes"].mean() * K),
             "synops_per_inference_unary": float(fx["counts"].mean() * K),
             "definition": "graded: sum over iterations 0..T-1 of the non-zero counts sent, times the fan-out K; "
                           "unary: sum of the counts times K (one synaptic event per spike)",
             "host_macs_per_inference": 2 * M * K}
    report = {
        "block": block.name, "kind": "ipvae", "network": net.name, "target": target.name,
        "inputs": M, "latents": K, "iterations": T,
        "mapping": {"on_chip": f"{K} IPVAELatents neurons + lateral K x K graded synapses",
                    "feedforward": "host computes drive = eta (Phi^T Sigma^-1 x - exp(b)) once per image, "
                                   "written to each latent as a constant",
                    "readout": "host: x_hat = Phi z from the last counts"},
        "resources": res, "synaptic_operations": comms, "formats": formats,
        "approximations": approximations,
        "measurement": {"images": desc, "seed": seed, "T": T, "float": _summary(ref), "fixed": _summary(fx),
                        "weights_8bit": _summary(qW), "rate_table": _summary(lut),
                        "sampler": sampler, f"fixed_{other}_sampler": _summary(fx_other),
                        "fixed_vs_float": total, "seconds": round(t_measure, 2),
                        "how": "numpy: float64 reference and the fixed_pt reference model "
                               "(bit-exact with the Lava ProcessModel); float runs share one seed, the fixed run has its own PRNG"},
    }
    out = Path(out_dir)
    buf = io.BytesIO()
    np.savez_compressed(buf, lateral_mantissa=q.astype(np.int8), lateral_exponent=np.asarray(s),
                        lat_shift=np.asarray(s - 1 + fmt.frac_bits),
                        u0_q=np.clip(fmt.q(p.u0), fmt.u_min_q, fmt.u_max_q).astype(np.int32),
                        u_min_q=np.asarray(fmt.u_min_q), u_max_q=np.asarray(fmt.u_max_q),
                        du_max_q=np.asarray(fmt.du_max_q), frac_bits=np.asarray(fmt.frac_bits),
                        lut_bits=np.asarray(fmt.lut_bits), count_bits=np.asarray(fmt.count_bits),
                        soft_clamp=np.asarray(p.soft), **_packed_table(fmt),
                        host_Phi=p.Phi, host_sigma=p.sigma, host_eta=np.asarray(p.eta), host_b=p.b)
    return _write_artifacts(net, target, block, out, buf, report, t0, t_measure,
                            "IPVAELatents (fixed_pt) + Sparse/Dense lateral")


def _packed_table(fmt) -> dict:
    """The packed count table as deployable arrays: ``count_table_skip`` and
    ``count_table_start`` per level (uint8 / int32) and the concatenated ``count_table_entries``
    (int32, 24-bit values); row l is entries[start[l]:start[l + 1]]."""
    tab = count_table(fmt)
    start = np.concatenate([[0], np.cumsum(tab.length)]).astype(np.int32)
    entries = np.concatenate([tab.window[i, :n] for i, n in enumerate(tab.length)]).astype(np.int32)
    return {"count_table_skip": tab.skip.astype(np.uint8 if fmt.count_bits <= 8 else np.int32),
            "count_table_start": start, "count_table_entries": entries}


def _compile_pc(net: Network, target: Target, block, arrays, out_dir, images, seed, log, t0):
    """The ``predictive_coding`` form of :func:`compile_ipvae` (see the module doc)."""
    p = ipvae_params(arrays)
    K, M, T = p.latents, p.inputs, int(block.params["iterations"])
    fmt = fixed_format(p, sampler=DEFAULT_SAMPLER)  # the core-sized count table, as the lateral form
    c = pc_fixed_constants(p, fmt)
    wbits = int(target.precision.get("weight_bits", 8))
    qd, qe = np.asarray(c["dec_w"]) // 2, np.asarray(c["enc_w"]) // 2
    sd, se = c["dec_exp"], c["enc_exp"]
    sc = synapse_counts(K, M)
    lim = target.limits
    npc, mem = lim.get("neurons_per_core"), lim.get("synapse_memory_bits_per_core")
    fan_in = lim.get("fan_in_axons_per_core")
    for who, n_in in (("latent", M), ("error unit", K)):
        if fan_in is not None and n_in > fan_in:
            raise CompileError(f"each {who} receives {n_in} inputs; '{target.name}' allows {fan_in} input axons per core")
    syn_bits = 2 * M * K * wbits
    cores = max(-(-(M + K) // int(npc)) if npc else 1, -(-syn_bits // int(mem)) if mem else 1)
    chip_cores = int(lim.get("cores_per_chip", cores)) * int(lim.get("chips", 1))
    if cores > chip_cores:
        raise CompileError(f"{M + K} neurons need {cores} cores; '{target.name}' has {chip_cores}")
    res = {"neurons": M + K, "latents": K, "error_units": M,
           "synapses": 2 * M * K, "decoder_synapses": M * K, "encoder_synapses": K * M, "weight_bits": wbits,
           "synapse_memory_bits": syn_bits, "synapse_memory_bytes": syn_bits // 8,
           "cores": cores, "cores_available": chip_cores, "images_in_parallel": chip_cores // cores,
           "cores_estimate": "max(neurons / neurons_per_core, synapse bits / synapse memory per core), "
                             "dense weights, no index overhead, populations packed freely",
           "fan_in_per_latent": M, "fan_in_per_error_unit": K, "fan_out_per_latent": M,
           "fan_out_per_error_unit": K, "fan_in_limit": fan_in,
           "time_steps_per_iteration": 2, "time_steps": 2 * T + 1,
           "lateral_form_for_comparison": {"neurons": sc["neurons_lateral"], "synapses": K * K,
                                           "synapses_with_input_on_chip": sc["lateral"], "time_steps_per_iteration": 1},
           "feedforward": {"where": "on chip: the image is the error units' bias, no host MACs"},
           "readout": {"where": "host", "macs_per_image": M * K}}

    X, desc = _measure_images(net, block, images)
    say = log or (lambda msg: None)
    say(f"measuring PC float vs fixed point on {len(X)} images, T = {T} ...")
    t1 = time.perf_counter()
    ref = run_ipvae_pc(arrays, X, T, seed=seed)
    q_arrays = dict(arrays, Phi=qd * 2.0 ** sd)  # same seed: common random numbers
    qW = run_ipvae_pc(q_arrays, X, T, seed=seed, encoder=qe * 2.0 ** se / p.eta)
    fx = _pc_fixed_run(p, X, T, seed, fmt, c)
    t_measure = time.perf_counter() - t1
    total = _effect(fx, ref)
    lat_ev, err_ev = fx["lat_msgs"].mean() * M, fx["err_msgs"].mean() * K
    comms = {"images": int(len(X)), "T": T,
             "latent_messages_per_inference": float(fx["lat_msgs"].mean()),
             "error_messages_per_inference": float(fx["err_msgs"].mean()),
             "synaptic_events_latents_to_errors": float(lat_ev),
             "synaptic_events_errors_to_latents": float(err_ev),
             "synops_per_inference": float(lat_ev + err_ev),
             "synops_per_iteration": float((lat_ev + err_ev) / T),
             "counts_per_inference": float(fx["counts"].mean()),
             "definition": "over iterations 1..T: non-zero counts sent by the latents times their fan-out M, plus "
                           "non-zero graded errors times their fan-out K (fixed-point PC reference)",
             "host_macs_per_inference": M * K}
    formats = {
        "u": {"type": "signed integer", "q_format": f"Q.{fmt.frac_bits}", "range": [p.u_min, p.u_max],
              "range_q": [fmt.u_min_q, fmt.u_max_q]},
        "count_payload": {"bits": fmt.count_bits, "max_count": fmt.count_max, "message": "graded spike = count"},
        "error_payload": {"bits": c["eps_bits"], "signed": True, "frac_bits": c["eps_frac_bits"],
                          "resolution": 2.0 ** -c["eps_frac_bits"],
                          "range": (2 ** (c["eps_bits"] - 1) - 1) / 2.0 ** c["eps_frac_bits"],
                          "max_abs_measured": fx["eps_max"] / 2.0 ** c["eps_frac_bits"],
                          "message": "graded spike = eps = (x - Phi z) / sigma^2"},
        "decoder_weights": {"bits": wbits, "matrix": "Phi (M x K, latents -> errors)", "exponent": int(sd),
                            "lava_dense_storage": "2 q", "dec_shift": c["dec_shift"]},
        "encoder_weights": {"bits": wbits, "matrix": "eta Phi^T (K x M, errors -> latents)", "exponent": int(se),
                            "lava_dense_storage": "2 q", "lat_shift": c["lat_shift"]},
        "error_gain": {"bits": c["gain_bits"], "value": "round(2^gain_bits / sigma^2)"},
        "image_bias": {"q_format": f"Q.{fmt.frac_bits}"},
        "rate_table_prng": "as the lateral form (latents reuse its count table, soft-clamp table and xorshift32)",
    }
    approximations = [
        {"name": "8-bit decoder and encoder weights",
         "what": f"Phi as q 2^{sd}, eta Phi^T as q 2^{se}, q in [-127, 127]",
         "measured_effect": _effect(qW, ref), "how": "float PC run with the quantised pair vs float"},
        {"name": f"{c['eps_bits']}-bit error payload",
         "what": f"eps rounded to 2^-{c['eps_frac_bits']}, clipped to +-{formats['error_payload']['range']:.4g}",
         "measured": {"clipped_errors_fixed": fx["eps_clipped"], "max_abs_eps": formats["error_payload"]["max_abs_measured"]}},
        {"name": "Q units, tables, PRNG", "what": "as the lateral form's fixed point", "measured_effect": "in the total below"},
        {"name": "total: fixed point vs float", "what": "the fixed_pt PC model vs the float64 PC form",
         "measured_effect": total},
    ]
    report = {
        "block": block.name, "kind": "ipvae", "form": "predictive_coding", "network": net.name, "target": target.name,
        "inputs": M, "latents": K, "iterations": T,
        "mapping": {"on_chip": f"{M} IPVAEErrors + {K} IPVAEPCLatents neurons; decoder M x K and encoder K x M "
                               "graded synapses",
                    "feedforward": "none on the host: x is the error units' bias",
                    "readout": "host: x_hat = Phi z from the last counts"},
        "resources": res, "synaptic_operations": comms, "formats": formats, "approximations": approximations,
        "measurement": {"images": desc, "seed": seed, "T": T, "float": _summary(ref), "fixed": _summary(fx),
                        "weights_8bit": _summary(qW), "fixed_vs_float": total, "seconds": round(t_measure, 2),
                        "how": "numpy: float64 PC form (run_ipvae_pc) and the fixed_pt PC reference "
                               "(pc_reference, bit-exact with the Lava ProcessModels); the float runs share one "
                               "seed, the fixed run has its own PRNG"},
    }
    out = Path(out_dir)
    buf = io.BytesIO()
    np.savez_compressed(buf, decoder_mantissa=qd.astype(np.int8), decoder_exponent=np.asarray(sd),
                        encoder_mantissa=qe.astype(np.int8), encoder_exponent=np.asarray(se),
                        dec_shift=np.asarray(c["dec_shift"]), lat_shift=np.asarray(c["lat_shift"]),
                        gain_q=np.asarray(c["gain_q"]), leak_q=np.asarray(c["leak_q"]),
                        gain_bits=np.asarray(c["gain_bits"]), eps_frac_bits=np.asarray(c["eps_frac_bits"]),
                        eps_bits=np.asarray(c["eps_bits"]),
                        u0_q=np.clip(fmt.q(p.u0), fmt.u_min_q, fmt.u_max_q).astype(np.int32),
                        u_min_q=np.asarray(fmt.u_min_q), u_max_q=np.asarray(fmt.u_max_q),
                        du_max_q=np.asarray(fmt.du_max_q), frac_bits=np.asarray(fmt.frac_bits),
                        lut_bits=np.asarray(fmt.lut_bits), count_bits=np.asarray(fmt.count_bits),
                        soft_clamp=np.asarray(p.soft), host_Phi=p.Phi)
    return _write_artifacts(net, target, block, out, buf, report, t0, t_measure,
                            "IPVAEPCLatents + IPVAEErrors (fixed_pt) + Sparse/Dense decoder and encoder")


def _write_artifacts(net, target, block, out, buf, report: dict, t0: float, t_measure: float, processes: str):
    """ir.json, ipvae_params.npz (``buf``), compile_report.json, then manifest.json last (atomic
    writes); returns (report, files)."""
    files = {"ir": atomic_write_text(out / "ir.json", to_json(expand(net))),  # the expanded network
             "ipvae_params": atomic_write_bytes(out / "ipvae_params.npz", buf.getvalue())}
    report["timings_s"] = {"total": round(time.perf_counter() - t0, 2), "measure": round(t_measure, 2)}
    files["report"] = atomic_write_json(out / "compile_report.json", report)
    manifest = {"network": net.name, "target": target.name, "backend": target.backend,
                "number_format": target.number_format, "blocks": {block.name: "ipvae"},
                "latents": block.latents if hasattr(block, "latents") else None,
                "processes": {block.name: processes},
                "timings_s": report["timings_s"], "versions": versions(),
                "files": {k: v.name for k, v in files.items()}}
    files["manifest"] = atomic_write_json(out / "manifest.json", manifest)
    return report, files


def _summary_text_pc(r: dict) -> str:
    res, c, m, f = r["resources"], r["synaptic_operations"], r["measurement"], r["formats"]
    lines = [
        f"compiled ipvae block '{r['block']}' (predictive coding) of {r['network']} for {r['target']}: "
        f"{r['inputs']} error units + {r['latents']} latents, {r['iterations']} iterations "
        f"({res['time_steps_per_iteration']} time steps each, {res['time_steps']} steps)",
        f"  neurons {res['neurons']}  cores {res['cores']} (estimate); {res['images_in_parallel']} images in parallel per chip",
        f"  synapses 2MK = {res['synapses']} x {res['weight_bits']} bit = {res['synapse_memory_bytes'] / 1024:.1f} KiB "
        f"(lateral form: {res['lateral_form_for_comparison']['synapses']})",
        f"  payloads: counts {f['count_payload']['bits']} bits, errors {f['error_payload']['bits']} bits signed "
        f"(Q.{f['error_payload']['frac_bits']})",
        f"  synaptic events per inference (measured, {c['images']} images, T = {c['T']}): {c['synops_per_inference']:.3g} "
        f"({c['synaptic_events_latents_to_errors']:.3g} latents -> errors, "
        f"{c['synaptic_events_errors_to_latents']:.3g} errors -> latents)",
        "  approximations (effect vs float PC, mean +- SE over images):",
    ]
    return "\n".join(lines + _approximation_lines(
        r, m, lambda ms: f"{ms['clipped_errors_fixed']} errors clipped (largest |eps| {ms['max_abs_eps']:.3g})"))


def _approximation_lines(r: dict, m: dict, clipped) -> list[str]:
    """One line per approximation (its measured effect; ``clipped`` words a clip count), then the
    float and fixed totals."""
    lines = []
    for a in r["approximations"]:
        e = a.get("measured_effect")
        if isinstance(e, dict):
            eff = (f"R2 {e['r2']['mean']:+.4f} +- {e['r2']['se']:.4f}, zeros {e['zeros']['mean']:+.4f} "
                   f"+- {e['zeros']['se']:.4f}") if e["r2"]["se"] is not None else f"R2 {e['r2']['mean']:+.4f}"
        elif "measured" in a:
            eff = clipped(a["measured"])
        else:
            eff = str(e)
        lines.append(f"    {a['name']:<38} {eff}")
    lines.append(f"  float R2 {m['float']['r2']:.4f} zeros {m['float']['zeros']:.4f}; fixed R2 {m['fixed']['r2']:.4f} "
                 f"zeros {m['fixed']['zeros']:.4f} ({m['images']['count']} images, {m['seconds']:.1f} s)")
    return lines


def summary_text(r: dict) -> str:
    """The printed summary of a compile report."""
    if r.get("form") == "predictive_coding":
        return _summary_text_pc(r)
    res, c, m = r["resources"], r["synaptic_operations"], r["measurement"]
    f = r["formats"]
    lines = [
        f"compiled ipvae block '{r['block']}' of {r['network']} for {r['target']}: "
        f"{r['inputs']} inputs -> {r['latents']} latents, {r['iterations']} iterations",
        f"  neurons {res['neurons']}  cores {res['cores']} ({res['latents_per_core']} latents/core, "
        f"bound: {res['latents_per_core_bound']}); {res['images_in_parallel']} images in parallel per chip",
        f"  lateral synapses {res['lateral_synapses']} x {res['weight_bits']} bit = "
        f"{res['synapse_memory_bytes'] / 1024:.1f} KiB"
        + (f" ({100 * res['synapse_memory_utilisation']:.0f}% of a core's synapse memory)"
           if res["synapse_memory_utilisation"] is not None else ""),
        f"  feedforward drive on the host ({res['feedforward']['host_macs_per_image']} MACs/image; on chip it "
        f"would take {res['feedforward']['on_chip_alternative']['input_neurons']} input neurons and "
        f"{res['feedforward']['on_chip_alternative']['synapses']} synapses)",
        f"  synaptic ops per inference (measured, {c['images']} images, T = {c['T']}): "
        f"{c['synops_per_inference']:.3g} graded ({c['graded_spikes_per_inference']:.3g} spikes x {r['latents']}); "
        f"{c['synops_per_inference_unary']:.3g} if counts were unary spikes",
        f"  formats: u {f['u']['q_format']} in [{f['u']['range'][0]:g}, {f['u']['range'][1]:g}] ({f['u']['bits']} bits); "
        f"rate/CDF table ({f['rate_table']['sampler']} sampler) {f['rate_table']['levels']} x "
        f"{f['rate_table']['entries_per_level']} x {f['rate_table']['entry_bits']} bit "
        f"({f['rate_table']['bytes'] / 1024:.0f} KiB, packed {f['rate_table']['bytes_packed'] / 1024:.1f} KiB, "
        f"{'fits' if f['rate_table']['fits_core_with_lateral'] else 'does not fit'} a core with the lateral weights); "
        f"PRNG xorshift32; "
        f"payload {f['payload']['bits']} bits; weights {f['weights']['bits']} bit, exponent {f['weights']['exponent']}",
        "  approximations (effect vs float, mean +- SE over images):",
    ]
    return "\n".join(lines + _approximation_lines(
        r, m, lambda ms: f"{ms['clipped_counts_fixed']} counts clipped (largest float count "
                         f"{ms['largest_count_float']:g})"))


__all__ = ["MEASURE_IMAGES", "compile_ipvae", "resources", "sampler_sizes", "summary_text"]
