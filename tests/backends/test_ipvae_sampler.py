"""The core-sized Poisson count sampler of the fixed-point iP-VAE (``FixedFormat.core_sized``,
``reference.count_table``): its packed table fits one Loihi 2 core next to the lateral weights,
the packed storage draws the same counts as the full CDF table, the Lava ``fixed_pt`` model with
it equals the numpy reference bit for bit, and the compile report measures and sizes it."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from neurodeploy.library.blocks.ipvae.reference import ipvae_params
from neurodeploy.library.blocks.ipvae.fixed import (
    CORE_MEMORY_BYTES,
    UNIFORM_BITS,
    FixedFormat,
    count_table,
    count_table_bytes,
    count_tables,
    draw_counts,
    lut_level,
    seed_states,
    xorshift32,
)
from tests.backends.helpers import assert_fixed_run_matches_reference

ROOT = Path(__file__).resolve().parents[2]
# (u_max = du_max, K) of the shipped coders: digits (models/ipvae/ipvae_digits.yaml), patches8
CODERS = {"digits": (10.0, 256), "patches8": (4.0, 128)}


def _dense_counts(uni, u_q, fmt):
    """The inverse CDF on the unpacked table: #(entries <= uniform)."""
    _, cdf = count_tables(fmt)
    return (np.asarray(uni)[:, None] >= cdf[lut_level(u_q, fmt)]).sum(axis=1)


@pytest.mark.parametrize("coder", sorted(CODERS))
def test_core_sized_table_fits_a_core_next_to_the_lateral_weights(coder):
    u_max, K = CODERS[coder]
    lateral = K * K  # 8-bit weights, all latents on one core
    core = FixedFormat.core_sized(u_max=u_max, du_max=u_max)
    full = FixedFormat(u_max=u_max, du_max=u_max)
    assert core.lut_bits == 5 and core.count_bits == full.count_bits == 8 and core.frac_bits == full.frac_bits
    bc, bf = count_table_bytes(core), count_table_bytes(full)
    assert bc["packed"] + lateral <= CORE_MEMORY_BYTES, (bc["packed"], lateral)
    # the full table does not fit, unpacked or packed; packing alone is not enough
    assert bf["full"] > CORE_MEMORY_BYTES and bf["packed"] + lateral > CORE_MEMORY_BYTES
    # the sizes are what they claim: 3-byte entries, one row per stored level, levels cut at saturation
    tab = count_table(core)
    assert bc["full"] == bc["full_levels"] * core.count_max * UNIFORM_BITS // 8
    assert bc["packed"] == tab.entries * 3 + tab.levels * bc["row_header_bytes"]
    assert tab.levels <= bc["full_levels"] == round((u_max - core.u_min) * 32) + 1


@pytest.mark.parametrize("fmt", [FixedFormat(), FixedFormat.core_sized(), FixedFormat.core_sized(u_max=4.0),
                                 FixedFormat(lut_bits=4, count_bits=4)], ids=["full", "core", "core-u4", "4-4"])
def test_packed_table_draws_the_same_counts_as_the_full_table(fmt):
    """For every u in range and the extreme and random uniforms, skip + #(window <= uniform)
    equals the unpacked inverse CDF; so does draw_counts on a PRNG stream."""
    u_q = np.arange(fmt.u_min_q, fmt.u_max_q + 1, 3)
    tab = count_table(fmt)
    level = np.minimum(lut_level(u_q, fmt), tab.levels - 1)
    rng = np.random.default_rng(0)
    for uni in (np.zeros(len(u_q), np.int64), np.full(len(u_q), (1 << UNIFORM_BITS) - 1),
                rng.integers(0, 1 << UNIFORM_BITS, len(u_q))):
        packed = tab.skip[level] + (uni[:, None] >= tab.window[level]).sum(axis=1)
        np.testing.assert_array_equal(packed, _dense_counts(uni, u_q, fmt))
    state = seed_states(len(u_q), 1)
    for _ in range(5):
        z, new = draw_counts(u_q, state, fmt)
        uni = (xorshift32(state) >> np.uint32(32 - UNIFORM_BITS)).astype(np.int64)
        np.testing.assert_array_equal(z, _dense_counts(uni, u_q, fmt))
        state = new
    assert z.min() == 0 and z.max() > 0
    if tab.levels < count_table_bytes(fmt)["full_levels"]:  # levels cut at saturation: exercised
        assert z.max() == fmt.count_max


def test_core_sampler_counts_are_poisson():
    """Mean and variance of the core-sized sampler's counts follow exp(u at its level)."""
    fmt = FixedFormat.core_sized()
    n = 40000
    state = seed_states(n, 11)
    for u in (-2.0, 0.3, 2.0):
        u_q = np.full(n, int(fmt.q(u)))
        z, state = draw_counts(u_q, state, fmt)
        lam = math.exp(np.round(u * 32) / 32)
        assert abs(z.mean() - lam) < 4 * math.sqrt(lam / n), (u, z.mean(), lam)
        assert abs(z.var() / lam - 1) < 0.05, (u, z.var(), lam)


def test_fixed_format_sampler_choice():
    from neurodeploy.library.blocks.ipvae.fixed import fixed_format

    p = ipvae_params({"Phi": np.ones((2, 3)), "u0": np.zeros(3), "b": np.zeros(3), "eta": 0.5, "sigma": 1.0})
    assert fixed_format(p, sampler="core").lut_bits == 5 and fixed_format(p, sampler="full").lut_bits == 8
    assert fixed_format(p, lut_bits=6, sampler="core").lut_bits == 6
    with pytest.raises(ValueError, match="sampler"):
        fixed_format(p, sampler="tiny")


@pytest.mark.lava
@pytest.mark.parametrize("connection", ["dense", "sparse"])
def test_lava_fixed_core_sampler_bit_exact_with_reference(arrays, X, connection):
    """The fixed_pt ProcessModel with the core-sized sampler equals the numpy reference."""
    from neurodeploy.backends.lava.blocks.ipvae import run_ipvae_lava

    T = 8
    r = run_ipvae_lava(arrays, X[:3], T, fixed=True, seed=9, batch=3, sampler="core", connection=connection)
    assert r["format"].lut_bits == 5
    assert_fixed_run_matches_reference(arrays, X[:3], r, T)


@pytest.fixture(scope="module")
def short_spec(tmp_path_factory):
    """The shipped digits spec with 16 iterations."""
    d = tmp_path_factory.mktemp("spec")
    shutil.copy(ROOT / "models/weights/ipvae_digits/decoder.npz", d / "decoder.npz")
    text = (ROOT / "models/ipvae/ipvae_digits.yaml").read_text()
    text = text.replace("../weights/ipvae_digits/decoder.npz", "decoder.npz")
    assert "iterations: 1000" in text
    (d / "short.yaml").write_text(text.replace("iterations: 1000", "iterations: 16"))
    return d / "short.yaml"


@pytest.mark.parametrize("sampler", ["core", "full"])
def test_compile_report_sizes_and_measures_the_core_sampler(tmp_path, short_spec, sampler):
    from neurodeploy.backends.lava.blocks.ipvae_compile import compile_ipvae, summary_text
    from neurodeploy.spec import load
    from neurodeploy.core.targets import load_target

    out = tmp_path / sampler
    report, _ = compile_ipvae(load(short_spec), load_target("loihi2-sim"), out, images=16, seed=1,
                              sampler=sampler)
    r = json.loads((out / "compile_report.json").read_text())
    assert r == json.loads(json.dumps(report))
    a = {x["name"]: x for x in r["approximations"]}["core-sized count sampler"]
    assert a["sampler"] == sampler == r["formats"]["rate_table"]["sampler"] == r["measurement"]["sampler"]
    e = a["measured_effect"]
    for key in ("r2", "zeros"):
        assert math.isfinite(e[key]["mean"]) and math.isfinite(e[key]["se"]) and e[key]["se"] >= 0
    assert abs(e["r2"]["mean"]) < 0.05 and abs(e["zeros"]["mean"]) < 0.02, e
    b = a["bytes"]
    assert b["core_packed"] < b["full_packed"] < b["full_unpacked"]
    assert b["lateral_per_core"] == 256 * 256 and b["core_memory"] == 128 * 1024
    assert a["fits_core_with_lateral"] == {"full": False, "core": True}
    rt = r["formats"]["rate_table"]
    assert rt["levels"] == 18 * 2 ** (5 if sampler == "core" else 8) + 1
    assert rt["fits_core_with_lateral"] == (sampler == "core")
    # the deployed packed table draws what the reference draws
    fmt = FixedFormat.core_sized() if sampler == "core" else FixedFormat()
    with np.load(out / "ipvae_params.npz", allow_pickle=False) as zf:
        assert int(zf["lut_bits"]) == fmt.lut_bits
        skip, start, entries = zf["count_table_skip"], zf["count_table_start"], zf["count_table_entries"]
    assert entries.size * 3 + skip.size * count_table_bytes(fmt)["row_header_bytes"] == rt["bytes_packed"]
    u_q = np.arange(fmt.u_min_q, fmt.u_max_q + 1, 7)
    state = seed_states(len(u_q), 2)
    z, _ = draw_counts(u_q, state, fmt)
    uni = (xorshift32(state) >> np.uint32(32 - UNIFORM_BITS)).astype(np.int64)
    lev = np.minimum(lut_level(u_q, fmt), len(skip) - 1)
    got = [int(skip[lv]) + int((entries[start[lv]:start[lv + 1]] <= x).sum()) for lv, x in zip(lev, uni)]
    np.testing.assert_array_equal(got, z)
    assert "core-sized count sampler" in summary_text(r) and f"({sampler} sampler)" in summary_text(r)
