"""Step timing of the inversion loops, and the PyTorch twin of the DCGAN used by the
side-by-side benchmark (checked against the Keras generator's own outputs)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import tfinverse.inversion.csgm as csgm_module
import tfinverse.inversion.iagan as iagan_module
import tfinverse.operators as ops
from tfinverse.inversion.csgm import csgm
from tfinverse.inversion.iagan import iagan
from tfinverse.utils.timing import StepClock, install_step_clock

from priors_for_tests import SHAPE, mlp_generator  # noqa: E402

HAVE_TORCH = importlib.util.find_spec("torch") is not None


@pytest.fixture
def clock(monkeypatch):
    # monkeypatch restores the real progress bars after the test.
    monkeypatch.setattr(csgm_module, "progress_bar", csgm_module.progress_bar)
    monkeypatch.setattr(iagan_module, "progress_bar", iagan_module.progress_bar)
    return install_step_clock()


def test_step_clock_records_one_stamp_per_iteration(clock):
    generator = mlp_generator()
    operator = ops.get("identity", image_shape=SHAPE)
    y = np.random.default_rng(0).uniform(0, 1, (2,) + SHAPE).astype(np.float32)
    csgm(generator, operator, y, iterations=7, restarts=1, seed=0)
    assert len(clock.stamps) == 7
    iagan(generator, operator, y, iterations=5, batched=True, reuse_solver=False)
    assert len(clock.stamps) == 5
    median, first = clock.gaps()
    assert 0 < median and 0 < first
    assert np.all(np.diff([clock.start] + clock.stamps) >= 0)


def test_step_clock_needs_two_steps():
    clock = StepClock()
    clock(total=1)
    clock.update()
    with pytest.raises(ValueError, match="fewer than two"):
        clock.gaps()


@pytest.mark.skipif(not HAVE_TORCH, reason='needs PyTorch (the bench extra): pip install -e ".[bench]"')
def test_torch_twin_computes_the_same_generator():
    import torch

    from tfinverse.models import DCGANGenerator

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_vs_torch.py"
    spec = importlib.util.spec_from_file_location("bench_vs_torch", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    generator = DCGANGenerator(32, 3, latent_dim=16, base_filters=8, seed=0)
    rng = np.random.default_rng(1)
    # Batch-norm statistics and affine parameters away from their initial 0 and 1.
    changed = 0
    for variable in generator.network.variables:
        name = variable.path
        if "moving_mean" in name or "beta" in name:
            variable.assign(rng.uniform(-0.02, 0.02, variable.shape).astype(np.float32))
            changed += 1
        elif "moving_variance" in name or "gamma" in name:
            variable.assign(rng.uniform(0.5, 2.0, variable.shape).astype(np.float32))
            changed += 1
    assert changed == 4 * 4  # four batch norms, four vectors each
    twin = bench.torch_twin(generator, torch)
    assert bench.check_twin(generator, twin, torch) < 1e-5
    # The check can fail: a twin off by one pixel (PyTorch's symmetric padding uncropped) differs.
    shifted = bench.torch_twin(generator, torch)
    for block in shifted.blocks:
        block.crop = lambda x: x[:, :, 1:, 1:]
    assert bench.check_twin(generator, shifted, torch) > 1e-2
