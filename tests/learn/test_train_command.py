"""``neurodeploy train``: training-file validation and an end-to-end run; bundled data sets."""

from __future__ import annotations

import numpy as np

from neurodeploy.app import cli


def _run(args, capsys):
    rc = cli.main(args)
    out, err = capsys.readouterr()
    return rc, out, err


def test_bad_training_file_reports_every_problem_located(tmp_path, capsys):
    spec = tmp_path / "t.yaml"
    spec.write_text("neurodeploy-train: 1\nname: t\ndataset: digitz\nlatent: -3\n"
                    "train: {epochs: 2, lr: 0.01, betta: 4}\ninference: {clamp: medium}\n")
    rc, _, err = _run(["train", str(spec), "--no-progress"], capsys)
    assert rc == 1 and "Traceback" not in err
    assert "t.yaml:3:10" in err and "'digitz'" in err and "did you mean 'digits'" in err.lower()
    assert "t.yaml:4" in err and "latent" in err
    assert "unknown key 'betta'" in err and "beta" in err
    assert "'medium'" in err and "inference.clamp" in err


def test_missing_keys_and_version(tmp_path, capsys):
    spec = tmp_path / "t.yaml"
    spec.write_text("neurodeploy-train: 2\nname: t\n")
    rc, _, err = _run(["train", str(spec)], capsys)
    assert rc == 1 and "version 2" in err and "missing required key 'dataset'" in err and "'latent'" in err


def test_shipped_training_files_are_valid():
    from pathlib import Path

    from neurodeploy.learn.run import read_train_spec

    files = sorted(Path("models/train").glob("*.yaml"))
    assert files
    for f in files:
        cfg, deploy = read_train_spec(f)
        assert cfg.dataset in ("digits", "patches8", "patches16") and deploy["iterations"] >= cfg.T_train


def test_train_end_to_end_writes_artifacts(tmp_path, capsys):
    import torch

    from neurodeploy.learn.train import load_checkpoint
    from neurodeploy.spec import load

    spec = tmp_path / "t.yaml"
    spec.write_text("neurodeploy-train: 1\nname: tiny\ndataset: digits\nlatent: 16\n"
                    "train: {epochs: 1, batch: 300, T_train: 4, beta: 4}\n"
                    "eval: {T: [1, 4, 20], samples: 40}\ndeploy: {iterations: 20}\n")
    threads = torch.get_num_threads()
    try:
        rc, out, err = _run(["train", str(spec), "-o", str(tmp_path / "o"), "--no-progress", "--no-plots",
                             "--threads", "1"], capsys)
    finally:
        torch.set_num_threads(threads)
    assert rc == 0, err
    o = tmp_path / "o"
    for f in ("checkpoint.pt", "decoder.npz", "decoder.onnx", "ipvae_rate.onnx", "tiny.yaml", "metrics.json"):
        assert (o / f).is_file(), f
    import json

    m = json.loads((o / "metrics.json").read_text())
    assert [r["T"] for r in m["ipvae"]] == [1, 4, 20] and m["onnx_rate_max_rel_err"] < 1e-5
    net = load(o / "tiny.yaml")  # the ready-to-deploy spec checks
    assert net.blocks[0].kind == "ipvae" and net.blocks[0].params["latent"] == 16
    assert load_checkpoint(o / "checkpoint.pt")["model"]["Phi"].shape == (64, 16)
    with np.load(o / "decoder.npz", allow_pickle=False) as z:
        assert z["Phi"].shape == (64, 16) and float(z["eta"]) > 0


def test_digits_dataset_unchanged_and_split():
    from sklearn.datasets import load_digits

    from neurodeploy.core.data.arrays import _load_dataset, train_test

    x = _load_dataset("digits", None)
    np.testing.assert_array_equal(x, load_digits().data / 16.0)
    tr, te = train_test("digits")
    assert tr.shape == (1500, 64) and te.shape == (297, 64)


def test_patches_are_deterministic_whitened_and_normalised():
    from neurodeploy.core.data import DATASETS, train_test
    from neurodeploy.core.data.patches import load_patches

    a = load_patches("patches8")
    assert a.shape == (DATASETS["patches8"][1], 64)
    np.testing.assert_array_equal(a, load_patches("patches8"))
    np.testing.assert_allclose(a.mean(1), 0, atol=1e-9)
    np.testing.assert_allclose(a.std(1), 1, atol=1e-9)
    tr, te = train_test("patches8")
    assert tr.shape == (16000, 64) and te.shape == (2000, 64)
    # whitening lowers the correlation of horizontally neighbouring pixels well below the photos'
    from neurodeploy.core.data.patches import _grey, whiten

    def neighbour_corr(img):
        return np.corrcoef(img[..., :-1].ravel(), img[..., 1:].ravel())[0, 1]

    raw = _grey("camera")
    assert neighbour_corr(raw) > 0.9
    assert neighbour_corr(whiten(raw)) < 0.6
    assert neighbour_corr(tr.reshape(-1, 8, 8)) < 0.6


def test_dataset_usable_from_a_spec(tmp_path):
    from neurodeploy.spec import load

    spec = tmp_path / "p.yaml"
    spec.write_text("neurodeploy: 1\nname: p\nsimulation: {dt: 1 ms, steps: 10}\n"
                    "stimuli:\n  - {name: x, kind: array, encoding: value, data: {dataset: patches8, samples: [16000, 16001]}}\n"
                    f"blocks:\n  - {{name: c, kind: ipvae, input: x, latent: 1, decoder: {{inline: {[[0.5]] * 64}}}}}\n")
    net = load(spec)
    assert net.stimuli[0].data.shape == (2, 64)


def test_shipped_digits_coder_reconstructs_held_out_digits():
    """Regression guard for models/weights/ipvae_digits (numbers in docs/ipvae.md): on 100
    held-out digits after 64 iterations the counts reconstruct with R^2 > 0.7 and most counts are
    zero; the numpy reference gives the same statistics as torch."""
    import torch

    from neurodeploy.core.data import train_test
    from neurodeploy.library.blocks.ipvae.reference import ipvae_step
    from neurodeploy.library.blocks.coder import r2_per_image
    from neurodeploy.learn.train import evaluate_ipvae

    with np.load("models/weights/ipvae_digits/decoder.npz", allow_pickle=False) as z:
        a = {k: z[k] for k in z.files}
    _, X = train_test("digits")
    X = X[:100]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        rows = evaluate_ipvae(a, X, Ts=(64,), device=torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)
    assert rows[0]["r2"] > 0.7 and rows[0]["zeros"] > 0.7 and rows[0]["u_max"] <= float(a["u_max"])
    rng = np.random.default_rng(0)
    u = np.repeat(a["u0"][None], len(X), 0)
    zc = rng.poisson(np.exp(u)).astype(float)
    for _ in range(64):
        u, zc, _ = ipvae_step(u, zc, X, a["Phi"], a["b"], float(a["eta"]), a["sigma"], u_max=float(a["u_max"]),
                              du_max=float(a["du_max"]), rng=rng)
    r2_np = float(np.mean(r2_per_image(X, zc @ a["Phi"].T)))
    assert abs(r2_np - rows[0]["r2"]) < 0.05 and abs(np.mean(zc == 0) - rows[0]["zeros"]) < 0.03
