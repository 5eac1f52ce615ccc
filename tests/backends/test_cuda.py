"""The torch fallback and the iP-VAE training on CUDA, against the CPU (skipped without a GPU;
run on a GPU machine: ``pytest tests/backends/test_cuda.py``).

Stated agreement: float64 runs spike for spike with traces within 1e-9; ``loihi2-torch``
(integers) bit for bit; a batch of trials on the GPU equals the same batch on the CPU."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import neurodeploy as nd  # noqa: E402
from neurodeploy.backends.torch.simulator import TorchOptions, run  # noqa: E402
from neurodeploy.core.targets import load_target  # noqa: E402

from ..conftest import rel  # noqa: E402
from .helpers import shorten, with_all_spike_probes  # noqa: E402

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")

MODELS = ["models/ei_network.yaml", "models/cuba_chain.yaml", "models/single_lif.yaml"]


def _both(net, target, **kw):
    t = load_target(target)
    cpu = run(net, t, TorchOptions(device="cpu", progress=False, **kw))
    gpu = run(net, t, TorchOptions(device="cuda", progress=False, **kw))
    assert len(cpu) == len(gpu)
    return cpu, gpu


def _assert_same(cpu, gpu, atol):
    for c, g in zip(cpu, gpu):
        for k in c.counts:
            np.testing.assert_array_equal(g.counts[k], c.counts[k], err_msg=k)
            np.testing.assert_array_equal(g.spikes[k].i, c.spikes[k].i, err_msg=k)
            np.testing.assert_array_equal(g.spikes[k].steps(g.dt), c.spikes[k].steps(c.dt), err_msg=k)
        for k, tr in c.traces.items():
            np.testing.assert_allclose(g.traces[k].values, tr.values, rtol=0, atol=atol, err_msg=k)
    assert sum(int(x.sum()) for c in cpu for x in c.counts.values()) > 0


@pytest.mark.parametrize("model", MODELS)
def test_float64_on_cuda_equals_cpu_spike_for_spike(model):
    net = with_all_spike_probes(shorten(nd.load(rel(model)), 1000))
    _assert_same(*_both(net, "torch", dtype="float64"), atol=1e-9)


@pytest.mark.parametrize("model", MODELS)
def test_loihi2_torch_on_cuda_is_bit_exact_with_cpu(model):
    net = with_all_spike_probes(shorten(nd.load(rel(model)), 1000))
    _assert_same(*_both(net, "loihi2-torch"), atol=0)


def test_batched_trials_on_cuda_equal_cpu():
    net = shorten(nd.load(rel("models/ei_network.yaml")), 500)
    _assert_same(*_both(net, "torch", dtype="float64", trial_seeds=(1, 2, 3, 4)), atol=1e-9)


def test_ipvae_training_runs_on_cuda(tmp_path):
    from neurodeploy.core.data import train_test
    from neurodeploy.learn.train import TrainConfig, train

    X, _ = train_test("digits")
    cfg = TrainConfig(dataset="digits", latent=32, epochs=2, batch=50, T_train=4, checkpoint_every=1)
    model, history = train(cfg, tmp_path, progress=False, device=torch.device("cuda"), X_train=X[:200])
    assert next(model.parameters()).device.type == "cuda"
    assert all(np.isfinite(h["loss"]) for h in history) and history[-1]["loss"] < history[0]["loss"]
    assert (tmp_path / "checkpoint.pt").exists()
