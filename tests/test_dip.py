"""Deep Image Prior: the skip network's layout, the fit, early stopping, bad input."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import scipy.stats

from tfinverse.inversion import dip as dip_module
from tfinverse.inversion.dip import (
    ReflectionPadding2D,
    build_skip_network,
    dip,
    dip_input,
    dip_iterations,
    initialise_network,
    split_measurements,
)
from tfinverse.operators.identity import Identity
from tfinverse.operators.inpainting import RandomPixelMask

# Small networks keep the tests fast; the layout tests also build DIP's full size.
SMALL = dict(channels=8, skip_channels=2, levels=2, input_channels=4)
LAYOUT = dict(channels=8, skip_channels=2, levels=3, input_channels=4)


def smooth_images(n=2, size=16):
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    first = 0.5 + 0.4 * np.sin(3 * xx) * np.cos(2 * yy)
    images = [first, first[::-1].T][:n]
    return np.stack(images)[..., None].astype(np.float32)


def reference_parameter_count(levels, channels, skip, in_channels, out_channels, k=3):
    """Weights of DIP's skip network written out level by level (BN counts 4 per channel)."""
    total = 0
    c_in = in_channels
    for level in range(levels):
        c = channels
        total += k * k * c_in * c + c + 4 * c  # stride-2 conv + BN
        total += k * k * c * c + c + 4 * c  # second down conv + BN
        total += c_in * skip + skip + 4 * skip  # 1x1 skip conv + BN
        total += 4 * (skip + c)  # BN of the concatenation
        total += k * k * (skip + c) * c + c + 4 * c  # up conv + BN
        total += c * c + c + 4 * c  # 1x1 up conv + BN
        c_in = c
    return total + channels * out_channels + out_channels


def test_skip_network_has_dips_layout():
    network = build_skip_network((20, 18, 3), **LAYOUT)
    assert network.count_params() == reference_parameter_count(3, 8, 2, 4, 3)
    strided = [l for l in network.layers if isinstance(l, keras.layers.Conv2D) and l.strides == (2, 2)]
    assert len(strided) == 3 and all(l.kernel_size == (3, 3) for l in strided)
    skips = [l for l in network.layers if l.name.endswith("skip_conv")]
    assert [l.filters for l in skips] == [2, 2, 2] and all(l.kernel_size == (1, 1) for l in skips)
    ups = [l for l in network.layers if isinstance(l, keras.layers.UpSampling2D)]
    assert len(ups) == 3 and all(l.interpolation == "bilinear" for l in ups)
    activations = [l for l in network.layers if isinstance(l, keras.layers.LeakyReLU)]
    norms = [l for l in network.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert all(l.negative_slope == pytest.approx(0.2) for l in activations)
    assert all(l.epsilon == pytest.approx(1e-5) for l in norms)
    initialise_network(network, 0)
    out = network(dip_input((20, 18, 3), 0, 4), training=True).numpy()
    assert out.shape == (1, 20, 18, 3)  # odd intermediate sizes are cropped back
    assert out.min() > 0 and out.max() < 1  # sigmoid


def test_full_size_skip_network_matches_the_formula():
    network = build_skip_network((64, 64, 3))
    assert network.input_shape == (None, 64, 64, 32)
    assert network.count_params() == reference_parameter_count(5, 128, 4, 32, 3)


def test_network_too_small_for_its_depth_is_refused():
    with pytest.raises(ValueError, match="too small"):
        build_skip_network((16, 16, 1), levels=4, channels=4)
    build_skip_network((16, 16, 1), levels=3, channels=4)


def test_reflection_padding_matches_numpy():
    x = np.random.default_rng(0).standard_normal((2, 5, 4, 3)).astype(np.float32)
    padded = ReflectionPadding2D(2)(x)
    reference = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
    np.testing.assert_array_equal(np.asarray(padded), reference)


def test_initialisation_follows_pytorchs_default_distribution():
    network = build_skip_network((16, 16, 1), **LAYOUT)
    initialise_network(network, 3)
    conv = network.get_layer("l1_up_conv_conv")
    limit = 1 / np.sqrt(3 * 3 * (2 + 8))
    kernel = conv.kernel.numpy().ravel()
    assert np.abs(kernel).max() <= limit
    assert scipy.stats.kstest(kernel, "uniform", args=(-limit, 2 * limit)).pvalue > 1e-3
    first = [w.copy() for w in network.get_weights()]
    initialise_network(network, 3)
    assert all(np.array_equal(a, b) for a, b in zip(first, network.get_weights()))
    initialise_network(network, 4)
    assert not np.array_equal(conv.kernel.numpy().ravel(), kernel)


def test_input_noise_and_iteration_rule():
    u = dip_input((8, 6, 3), seed=1)
    assert u.shape == (1, 8, 6, 32) and u.dtype == np.float32
    assert u.min() >= 0 and u.max() < 0.1 and u.max() > 0.09
    np.testing.assert_array_equal(u, dip_input((8, 6, 3), seed=1))
    assert dip_iterations(2000, noisy=False) == 2000
    assert dip_iterations(2000, noisy=True) == 500
    assert dip_iterations(3, noisy=True) == 1
    with pytest.raises(ValueError):
        dip_iterations(0, noisy=True)


def test_split_measurements_is_an_exact_disjoint_partition():
    fit, held_out = split_measurements((10, 10, 3), 0.2, seed=0)
    assert held_out.sum() == 60 and fit.sum() == 240
    np.testing.assert_array_equal(fit + held_out, 1.0)
    again, _ = split_measurements((10, 10, 3), 0.2, seed=0)
    np.testing.assert_array_equal(fit, again)
    with pytest.raises(ValueError, match="validation_fraction"):
        split_measurements((10, 10, 3), 1.0, seed=0)


def test_dip_lowers_the_data_fit_objective_for_denoising():
    images = smooth_images(2)
    op = Identity((16, 16, 1))
    result = dip(op, images, iterations=80, seed=0, progress=False, **SMALL)
    assert result.history.shape == (80, 2) and result.x_hat.shape == images.shape
    assert np.all(result.history[-1] < 0.05 * result.history[0])
    # The estimate is the last output, and its objective is its own measurement error.
    own_error = np.mean((result.x_hat - images) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(result.best_objective, own_error, rtol=1e-4)
    assert result.latents is None
    np.testing.assert_array_equal(result.extras["stopped_at"], [80, 80])
    # Different images get different networks: the first losses differ.
    assert result.history[0, 0] != result.history[0, 1]


def test_dip_fits_through_per_example_inpainting_masks():
    images = smooth_images(2)
    op = RandomPixelMask(image_shape=(16, 16, 1), seed=0, batch_size=2)
    y = op(images).numpy()
    result = dip(op, y, iterations=50, seed=1, noise_reg_std=0.0, progress=False, **SMALL)
    assert np.all(result.history[-1] < 0.1 * result.history[0])
    # Image i was fitted through mask i: its objective is its own masked error.
    fitted = np.mean((op(result.x_hat).numpy() - y) ** 2, axis=(1, 2, 3))
    np.testing.assert_allclose(fitted, result.best_objective, rtol=1e-4)
    swapped = np.mean((op(result.x_hat[::-1]).numpy() - y[::-1]) ** 2, axis=(1, 2, 3))
    assert np.all(swapped > 2 * fitted)
    with pytest.raises(ValueError, match="per-example"):
        dip(op, y[:1], iterations=1, progress=False, **SMALL)


def test_early_stopping_stops_when_the_held_out_error_rises():
    # Fitted entries are 1 and held-out entries 0: a smooth network output can only pull the
    # held-out pixels up along with their neighbours, so the held-out error rises from the
    # first steps on while the fitted error falls.
    op = Identity((16, 16, 1))
    fraction, patience = 0.25, 15
    fit, held_out = split_measurements(op.out_shape, fraction, seed=0)
    y = fit[None].astype(np.float32)
    result = dip(
        op, y, iterations=400, validation_fraction=fraction, patience=patience, seed=0, progress=False, **SMALL
    )
    np.testing.assert_array_equal(result.extras["validation_mask"], held_out)
    stopped, best = int(result.extras["stopped_at"][0]), int(result.extras["best_iteration"][0])
    assert stopped < 400 and stopped - 1 - best == patience
    validation = result.extras["validation_history"][:, 0]
    assert np.all(np.isnan(validation[stopped:])) and np.all(np.isnan(result.history[stopped:, 0]))
    assert validation[best] == np.nanmin(validation)
    assert validation[stopped - 1] > validation[best]
    assert result.history[stopped - 1, 0] < result.history[0, 0]
    # The returned estimate is the one of the best held-out error, computed independently.
    residual = (result.x_hat[0] - y[0]) ** 2
    assert np.sum(held_out * residual) / held_out.sum() == pytest.approx(float(validation[best]), rel=1e-4)
    assert np.sum(fit * residual) / fit.sum() == pytest.approx(float(result.best_objective[0]), rel=1e-4)


def test_bad_input_raises_before_the_network_is_built(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("the network was built before the input was checked")

    monkeypatch.setattr(dip_module, "build_skip_network", forbidden)
    op = Identity((16, 16, 1))
    with pytest.raises(ValueError, match=r"\[batch, 16, 16, 1\]"):
        dip(op, np.zeros((1, 16, 16, 3), np.float32), progress=False)
    bad = np.zeros((1, 16, 16, 1), np.float32)
    bad[0, 3, 3, 0] = np.inf
    with pytest.raises(ValueError, match="NaN or Inf"):
        dip(op, bad, progress=False)
    good = np.zeros((1, 16, 16, 1), np.float32)
    with pytest.raises(ValueError, match="learning_rate"):
        dip(op, good, learning_rate=-1.0, progress=False)
    with pytest.raises(ValueError, match="validation_fraction"):
        dip(op, good, validation_fraction=1.5, progress=False)
    with pytest.raises(ValueError, match="seed"):
        dip(op, good, seed=None, progress=False)
