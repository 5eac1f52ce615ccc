"""The ipvae block from the command line (issue 6): ``neurodeploy eval`` on every backend at a
reduced size (16 held-out images, T = 16), ``run`` on a block spec, the Loihi 2 compile report,
and the exit codes of unsupported targets.

R^2 floors, measured first (mean per-image R^2 of x_hat = Phi z, 16 held-out images, T = 16,
seeds 0..3): digits torch 0.81-0.84, brian2 0.81-0.84, lava 0.79-0.82, loihi2-sim 0.78-0.84;
patches8 0.75-0.79 on every backend. A reconstruction of zeros scores -0.63 on these digits and
0.0 on the patches; the prior state (T = 1) -0.45 and 0.02. The floors (0.65 digits, 0.6
patches) sit well below the measured values and far above a broken run.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from neurodeploy.app.cli import main

ROOT = Path(__file__).resolve().parents[2]
DIGITS = "models/ipvae/ipvae_digits.yaml"
PATCHES = "models/ipvae/ipvae_patches8.yaml"
FLOOR = {"digits": 0.65, "patches8": 0.6}


def _json(capsys):
    return json.loads(capsys.readouterr().out)


def _eval(capsys, tmp_path, spec, target, *extra):
    out = tmp_path / f"eval_{target}"
    rc = main(["eval", spec, "-t", target, "-o", str(out), "--images", "16", "--iterations", "16",
               "--json", *extra])
    return rc, _json(capsys), out


@pytest.mark.parametrize("target", ["torch", "brian2", "lava", "loihi2-sim"])
def test_eval_digits_every_backend(capsys, tmp_path, target):
    rc, res, out = _eval(capsys, tmp_path, DIGITS, target)
    assert rc == 0 and res["ok"]
    m = json.loads((out / "metrics.json").read_text())
    assert (out / "reconstructions.png").stat().st_size > 1000
    assert m["target"] == target and m["images"]["count"] == 16
    assert {"torch": "torch", "brian2": "brian2", "lava": "floating_pt", "loihi2-sim": "fixed_pt"}[target] in m["runner"]
    assert m["images"]["indices"] == list(range(1500, 1516)) and m["images"]["held_out"]
    (row,) = m["results"]
    assert row["T"] == 16 and len(row["r2_images"]) == 16
    assert row["r2"] >= FLOOR["digits"], row
    assert row["r2_pooled"] >= FLOOR["digits"], row
    assert 0.8 <= row["zeros"] < 0.99, row  # sparse, but not silent
    assert abs(np.mean(row["r2_images"]) - row["r2"]) < 1e-9
    assert (row["du_norm"] is not None) == (target == "torch")


def test_eval_patches_fixed_point(capsys, tmp_path):
    rc, res, out = _eval(capsys, tmp_path, PATCHES, "loihi2-sim")
    assert rc == 0
    (row,) = res["results"]
    assert res["images"]["indices"][0] == 16000
    assert row["r2"] >= FLOOR["patches8"], row
    assert 0.5 <= row["zeros"] < 0.99, row


def test_eval_improves_with_iterations(capsys, tmp_path):
    """torch records several T in one pass; inference must improve from T = 1 to T = 16."""
    out = tmp_path / "sweep"
    rc = main(["eval", DIGITS, "-t", "torch", "-o", str(out), "--images", "32", "--iterations", "16", "1",
               "--seed", "3", "--json", "--torch-device", "cpu"])
    assert rc == 0
    rows = _json(capsys)["results"]
    assert [r["T"] for r in rows] == [1, 16]
    assert rows[0]["r2"] < 0.0 < FLOOR["digits"] <= rows[1]["r2"]
    assert rows[1]["zeros"] < rows[0]["zeros"]


def test_run_on_block_spec_evaluates(capsys, tmp_path):
    """`neurodeploy run` on a block spec = eval on the spec's own samples and iterations."""
    out = tmp_path / "run"
    rc = main(["run", DIGITS, "-t", "torch", "-o", str(out), "--json"])
    assert rc == 0
    res = _json(capsys)
    assert res["images"]["selection"] == "spec samples" and res["iterations"] == [1000]
    assert res["results"][0]["r2"] >= FLOOR["digits"]
    assert (out / "metrics.json").exists()


@pytest.fixture(scope="module")
def short_spec(tmp_path_factory):
    """The shipped digits spec with 16 iterations (compile measures at the block's iterations)."""
    d = tmp_path_factory.mktemp("spec")
    shutil.copy(ROOT / "models/weights/ipvae_digits/decoder.npz", d / "decoder.npz")
    text = (ROOT / DIGITS).read_text().replace("../weights/ipvae_digits/decoder.npz", "decoder.npz")
    assert "iterations: 1000" in text
    (d / "short.yaml").write_text(text.replace("iterations: 1000", "iterations: 16"))
    return d / "short.yaml"


def test_compile_report_loihi2(capsys, tmp_path, short_spec):
    out = tmp_path / "loihi"
    rc = main(["compile", str(short_spec), "-t", "loihi2-sim", "-o", str(out), "--json"])
    assert rc == 0
    res = _json(capsys)
    r = json.loads((out / "compile_report.json").read_text())
    assert r == json.loads(json.dumps(res["report"]))
    assert {p.name for p in out.iterdir()} >= {"compile_report.json", "ipvae_params.npz", "ir.json", "manifest.json"}
    K = 256
    res_ = r["resources"]
    assert res_["neurons"] == K and res_["cores"] == 1 and res_["latents_per_core"] == K
    assert res_["synapse_memory_bits"] == K * K * 8 and res_["lateral_synapses"] == K * K
    assert res_["images_in_parallel"] == 120
    c = r["synaptic_operations"]
    assert c["T"] == 16 and c["images"] == 64
    assert 0 < c["graded_spikes_per_inference"] < 16 * K
    assert c["synops_per_inference"] == pytest.approx(c["graded_spikes_per_inference"] * K)
    assert c["synops_per_inference_unary"] >= c["synops_per_inference"]
    f = r["formats"]
    assert f["u"]["q_format"] == "Q.10" and f["payload"]["bits"] == 8 and f["weights"]["bits"] == 8
    assert f["rate_table"]["levels"] == 18 * 2 ** 5 + 1  # the core-sized sampler: u rounded to 2^-5
    names = [a["name"] for a in r["approximations"]]
    assert "8-bit lateral weights" in names and "total: fixed point vs float" in names and "on-core PRNG" in names
    m = r["measurement"]
    assert m["images"]["count"] == 64 and m["images"]["held_out"]
    assert m["float"]["r2"] >= FLOOR["digits"] and m["fixed"]["r2"] >= FLOOR["digits"]
    tot = m["fixed_vs_float"]
    assert abs(tot["r2"]["mean"]) < 0.05 and abs(tot["zeros"]["mean"]) < 0.02, tot
    with np.load(out / "ipvae_params.npz", allow_pickle=False) as z:
        q, s = z["lateral_mantissa"], int(z["lateral_exponent"])
        assert q.dtype == np.int8 and q.shape == (K, K) and np.abs(q).max() <= 127
        assert s == f["weights"]["exponent"]
        assert np.all(np.diag(q) < 0)  # self-inhibition kept (-W has a negative diagonal)


def test_compile_printed_summary(capsys, tmp_path, short_spec):
    rc = main(["compile", str(short_spec), "-t", "loihi2-sim", "-o", str(tmp_path / "c")])
    assert rc == 0
    text = capsys.readouterr().out
    for word in ("cores 1", "KiB", "synaptic ops per inference", "Q.10", "xorshift32", "total: fixed point vs float"):
        assert word in text


def test_resources_respect_target_limits():
    from neurodeploy.backends.lava.blocks.ipvae_compile import resources
    from neurodeploy.core.errors import CompileError
    from neurodeploy.core.targets import load_target

    t = load_target("loihi2-sim")
    r = resources(1024, 64, t, 8)  # 1024 x 8 bit = 8192 bits per latent: 128 latents per core
    assert r["latents_per_core"] == 128 and r["cores"] == 8 and r["latents_per_core_bound"] == "synapse memory"
    with pytest.raises(CompileError):
        resources(8192, 64, t, 8)  # fan-in above the 4096 axons of a core


def test_loihi2_torch_equals_loihi2_sim_bit_for_bit(capsys, tmp_path):
    """The torch integer model, chunked and seeded like the Lava runs, gives the same counts:
    every per-image R^2 and zero fraction equal (60 images: two chunks of 50 and 10)."""
    rows = {}
    for target in ("loihi2-sim", "loihi2-torch"):
        out = tmp_path / target
        rc = main(["eval", DIGITS, "-t", target, "-o", str(out), "--images", "60", "--iterations", "12",
                   "--json", "--torch-device", "cpu"])
        assert rc == 0
        m = json.loads(capsys.readouterr().out)
        rows[target] = m["results"][0]
        assert ("torch fixed point" in m["runner"]) == (target == "loihi2-torch")
    a, b = rows["loihi2-sim"], rows["loihi2-torch"]
    assert a["r2_images"] == b["r2_images"] and a["zeros_images"] == b["zeros_images"]
    assert b["r2"] >= FLOOR["digits"] and 0.8 <= b["zeros"] < 0.99


@pytest.mark.parametrize("cmd,target,needle", [
    ("eval", "loihi2", "hardware"),
    ("compile", "lava", "fixed-point Loihi 2"),
    ("compile", "torch", "fixed-point Loihi 2"),
])
def test_unsupported_target_exits_3(capsys, tmp_path, cmd, target, needle):
    rc = main([cmd, DIGITS, "-t", target, "-o", str(tmp_path / "x")])
    assert rc == 3
    err = capsys.readouterr().err
    assert needle in err and "Traceback" not in err
    assert not (tmp_path / "x" / "metrics.json").exists()


def test_bad_arguments_exit_2(capsys, tmp_path):
    assert main(["eval", DIGITS, "-t", "torch", "-o", str(tmp_path / "a"), "--images", "0"]) == 2
    assert "held-out" in capsys.readouterr().err
    assert main(["eval", "models/single_lif.yaml", "-t", "torch", "-o", str(tmp_path / "b")]) == 2
    assert "no coder block" in capsys.readouterr().err


def test_eval_help_states_the_image_selection(capsys):
    with pytest.raises(SystemExit) as e:
        main(["eval", "--help"])
    assert e.value.code == 0
    out = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    assert "example:" in out and "held-out split" in out and "spec's own samples" in out


def test_deploy_compiles_then_evaluates_on_the_target(capsys, tmp_path, short_spec):
    out = tmp_path / "dep"
    rc = main(["deploy", str(short_spec), "-t", "loihi2-sim", "-o", str(out)])
    assert rc == 0, capsys.readouterr().err
    assert {p.name for p in out.iterdir()} >= {"compile_report.json", "manifest.json", "metrics.json"}
    m = json.loads((out / "metrics.json").read_text())
    assert m["results"][0]["r2"] > 0.65  # the stated digits floor
    # hardware: the artifact is written, then exit 3 (no Loihi 2 here)
    rc = main(["deploy", str(short_spec), "-t", "loihi2", "-o", str(tmp_path / "hw")])
    assert rc == 3 and (tmp_path / "hw" / "compile_report.json").exists()
    assert not (tmp_path / "hw" / "metrics.json").exists()


# --- the predictive-coding form (form: predictive_coding) ------------------------------------

def _with_form(spec: Path, form: str, name: str) -> Path:
    text = spec.read_text()
    assert "clamp: soft\n" in text and "form:" not in text
    out = spec.parent / name
    out.write_text(text.replace("clamp: soft\n", f"clamp: soft\n  form: {form}\n"))
    return out


@pytest.fixture(scope="module")
def pc_spec(short_spec):
    return _with_form(short_spec, "predictive_coding", "short_pc.yaml")


@pytest.mark.parametrize("target", ["lava", "loihi2-sim"])
def test_eval_predictive_coding_on_lava(capsys, tmp_path, pc_spec, target):
    """The PC network (M error units + K latents) runs on Lava and clears the same floor."""
    rc, res, out = _eval(capsys, tmp_path, str(pc_spec), target)
    assert rc == 0 and res["ok"]
    m = json.loads((out / "metrics.json").read_text())
    assert m["form"] == "predictive_coding" and m["form_computed"] == "predictive_coding"
    assert "predictive-coding" in m["runner"]
    assert {"lava": "floating_pt", "loihi2-sim": "fixed_pt"}[target] in m["runner"]
    (row,) = m["results"]
    assert row["T"] == 16 and len(row["r2_images"]) == 16
    assert row["r2"] >= FLOOR["digits"], row
    assert row["r2_pooled"] >= FLOOR["digits"], row
    assert 0.8 <= row["zeros"] < 0.99, row


def test_eval_predictive_coding_on_loihi2_torch_exits_3(capsys, tmp_path, pc_spec):
    rc = main(["eval", str(pc_spec), "-t", "loihi2-torch", "-o", str(tmp_path / "x"), "--images", "2"])
    assert rc == 3 and "loihi2-sim" in capsys.readouterr().err


def test_eval_predictive_coding_torch_and_brian2(capsys, tmp_path, pc_spec):
    """torch runs its (lateral) module and says so; brian2 runs its PC network (error units):
    with the same seed it draws the same counts as the lateral Brian2 network, so the metrics
    are identical."""
    rc, res, out = _eval(capsys, tmp_path, str(pc_spec), "torch", "--torch-device", "cpu")
    assert rc == 0
    m = json.loads((out / "metrics.json").read_text())
    assert m["form"] == "predictive_coding" and m["form_computed"] == "lateral (identical algorithm)"
    assert m["results"][0]["r2"] >= FLOOR["digits"]
    lateral = pc_spec.parent / "short_lateral.yaml"
    lateral.write_text(pc_spec.read_text().replace("form: predictive_coding", "form: lateral"))
    rows = {}
    for spec in (pc_spec, lateral):
        rc, res, out = _eval(capsys, tmp_path / spec.stem, str(spec), "brian2")
        assert rc == 0
        m = json.loads((out / "metrics.json").read_text())
        rows[spec.stem] = m["results"][0]
        assert m["form_computed"] == {pc_spec.stem: "predictive_coding", lateral.stem: "lateral"}[spec.stem]
    pc, lat = rows[pc_spec.stem], rows[lateral.stem]
    assert pc["r2"] >= FLOOR["digits"] and 0.8 <= pc["zeros"] < 0.99
    assert pc["r2_images"] == pytest.approx(lat["r2_images"], abs=1e-9)
    assert pc["zeros_images"] == lat["zeros_images"]


def test_compile_report_predictive_coding(capsys, tmp_path, pc_spec):
    out = tmp_path / "pc"
    rc = main(["compile", str(pc_spec), "-t", "loihi2-sim", "-o", str(out), "--json"])
    assert rc == 0
    r = json.loads((out / "compile_report.json").read_text())
    assert r == json.loads(json.dumps(_json(capsys)["report"]))
    K, M, T = 256, 64, 16
    assert r["form"] == "predictive_coding"
    res = r["resources"]
    assert res["neurons"] == M + K and res["synapses"] == 2 * M * K
    assert res["decoder_synapses"] == res["encoder_synapses"] == M * K
    assert res["synapse_memory_bits"] == 2 * M * K * 8 and res["lateral_form_for_comparison"]["synapses"] == K * K
    assert res["time_steps_per_iteration"] == 2 and res["time_steps"] == 2 * T + 1
    f = r["formats"]
    assert f["decoder_weights"]["bits"] == f["encoder_weights"]["bits"] == 8
    assert f["error_payload"]["bits"] == 16 and f["error_payload"]["signed"] and f["count_payload"]["bits"] == 8
    c = r["synaptic_operations"]
    assert c["images"] == 64 and c["T"] == T
    assert 0 < c["latent_messages_per_inference"] < T * K and 0 < c["error_messages_per_inference"] <= T * M
    assert c["synops_per_inference"] == pytest.approx(c["synaptic_events_latents_to_errors"]
                                                      + c["synaptic_events_errors_to_latents"])
    m = r["measurement"]
    assert m["float"]["r2"] >= FLOOR["digits"] and m["fixed"]["r2"] >= FLOOR["digits"]
    tot = m["fixed_vs_float"]
    assert abs(tot["r2"]["mean"]) < 0.05 and abs(tot["zeros"]["mean"]) < 0.02, tot
    with np.load(out / "ipvae_params.npz", allow_pickle=False) as z:
        assert z["decoder_mantissa"].shape == (M, K) and z["encoder_mantissa"].shape == (K, M)
        assert z["decoder_mantissa"].dtype == np.int8
    rc = main(["compile", str(pc_spec), "-t", "loihi2-sim", "-o", str(tmp_path / "pc2")])
    assert rc == 0
    text = capsys.readouterr().out
    assert "predictive coding" in text and f"2MK = {2 * M * K}" in text


def test_compile_pc_measurement_is_the_lava_fixed_model(pc_spec):
    """The compile report's fixed-point PC run equals run_ipvae_pc_lava(fixed=True) bit for bit."""
    from neurodeploy.library.blocks.ipvae.reference import ipvae_params
    from neurodeploy.library.blocks.ipvae.fixed import fixed_format
    from neurodeploy.backends.lava.blocks.ipvae.pc import run_ipvae_pc_lava
    from neurodeploy.library.blocks.ipvae.pc_fixed import pc_fixed_constants
    from neurodeploy.backends.lava.blocks.ipvae_compile import _pc_fixed_run
    from neurodeploy.library.blocks.coder import block_images, find_coder
    from neurodeploy.spec import load

    net = load(pc_spec)
    block = find_coder(net, "ipvae")
    arrays = dict(block.arrays)
    X, _ = block_images(net, block, 3)
    p = ipvae_params(arrays)
    fmt = fixed_format(p)
    r = _pc_fixed_run(p, X, 5, 7, fmt, pc_fixed_constants(p, fmt))
    lava = run_ipvae_pc_lava(arrays, X, 5, seed=7, batch=3, fixed=True)
    assert np.array_equal(r["z"], lava["z"]) and np.array_equal(r["u"], lava["u"])
    assert np.array_equal(r["zbar"], lava["zbar"])


def test_unknown_form_is_a_spec_error(capsys, short_spec, tmp_path):
    bad = _with_form(short_spec, "sideways", "bad_form.yaml")
    rc = main(["eval", str(bad), "-t", "lava", "-o", str(tmp_path / "x"), "--images", "2"])
    err = capsys.readouterr().err
    assert rc not in (0, 3) and "form" in err and "sideways" in err and "predictive_coding" in err
    assert not (tmp_path / "x" / "metrics.json").exists()
