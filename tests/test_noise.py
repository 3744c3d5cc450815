"""Noise models: statistics against closed forms, seeding, tf.function, errors."""

import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

import tfinverse.operators.blur  # noqa: F401  (registers blur_uniform)
from tfinverse.operators.base import get
from tfinverse.operators.noise import (
    GaussianNoise,
    NoiseModel,
    PoissonNoise,
    SpeckleNoise,
    available_noise,
    get_noise,
    measure,
)

SHAPE = (8, 64, 64, 3)
N = int(np.prod(SHAPE))
# Tolerances are this many standard errors of the estimate.
Z = 5.0


def _constant(value, dtype=tf.float32):
    return tf.fill(SHAPE, tf.constant(value, dtype))


def test_registry_lists_the_three_models():
    assert {"gaussian", "poisson", "speckle"} <= set(available_noise())
    assert isinstance(get_noise("gaussian", sigma=0.2), GaussianNoise)
    assert isinstance(get_noise("poisson"), PoissonNoise)
    assert isinstance(get_noise("speckle"), SpeckleNoise)
    with pytest.raises(KeyError, match="gaussian"):
        get_noise("salt_and_pepper")


@pytest.mark.parametrize("sigma", [1.0, 10 / 255, 0.1])
def test_gaussian_mean_std_and_normality(sigma):
    y = _constant(0.5)
    noise = (GaussianNoise(sigma)(y, seed=3) - y).numpy().astype(np.float64).ravel()
    assert abs(noise.mean()) < Z * sigma / np.sqrt(N)
    assert abs(noise.std() / sigma - 1.0) < Z / np.sqrt(2 * N)
    assert scipy.stats.kstest(noise[:20000] / sigma, "norm").pvalue > 1e-3


def test_gaussian_zero_sigma_is_identity():
    y = tf.random.stateless_uniform((2, 5, 5, 1), (1, 2))
    np.testing.assert_array_equal(GaussianNoise(0.0)(y, 4).numpy(), y.numpy())


def test_gaussian_clip_equals_clipping_the_unclipped_draw():
    y = _constant(0.9)
    clipped = GaussianNoise(0.3, clip=True)(y, seed=11).numpy()
    reference = np.clip(GaussianNoise(0.3)(y, seed=11).numpy(), 0.0, 1.0)
    np.testing.assert_array_equal(clipped, reference)
    assert clipped.max() == 1.0 and (clipped == 1.0).mean() > 0.3  # P(N > 1/3) ~ 0.37


@pytest.mark.parametrize("value, peak", [(0.2, 10.0), (0.7, 256.0), (0.05, 30.0)])
def test_poisson_mean_variance_and_lattice(value, peak):
    y = _constant(value, tf.float64)
    out = PoissonNoise(peak)(y, seed=5).numpy().ravel()
    rate = value * peak
    # Poisson(rate) / peak: mean value, variance value / peak.
    assert abs(out.mean() - value) < Z * np.sqrt(value / peak / N)
    # Std of the sample variance of Poisson counts: sqrt((rate + 2 rate^2) / N) / peak^2.
    assert abs(out.var() - value / peak) < Z * np.sqrt((rate + 2 * rate**2) / N) / peak**2
    counts = out * peak
    np.testing.assert_allclose(counts, np.round(counts), atol=1e-9)


def test_poisson_clips_negative_rates_to_zero():
    y = tf.constant(np.full((2, 4, 4, 1), -0.3), tf.float32)
    np.testing.assert_array_equal(PoissonNoise(50.0)(y, 1).numpy(), 0.0)


def test_poisson_counts_follow_the_poisson_law():
    rate, peak = 3.0, 10.0
    counts = (PoissonNoise(peak)(_constant(rate / peak, tf.float64), seed=9).numpy() * peak).round().astype(int)
    observed = np.bincount(counts.ravel(), minlength=13)[:12]
    expected = scipy.stats.poisson.pmf(np.arange(12), rate) * counts.size
    # Chi-square over the well-populated bins.
    stat = np.sum((observed - expected) ** 2 / expected)
    assert scipy.stats.chi2.sf(stat, df=11) > 1e-3


def test_speckle_is_multiplicative_gaussian():
    sigma = 0.1
    y = _constant(0.6, tf.float64)
    factor = ((SpeckleNoise(sigma)(y, 8) - y) / y).numpy().ravel()
    assert abs(factor.mean()) < Z * sigma / np.sqrt(N)
    assert abs(factor.std() / sigma - 1.0) < Z / np.sqrt(2 * N)
    zeros = tf.zeros((1, 6, 6, 3))
    np.testing.assert_array_equal(SpeckleNoise(0.5)(zeros, 8).numpy(), 0.0)


@pytest.mark.parametrize("name", ["gaussian", "poisson", "speckle"])
def test_seeding_is_reproducible_and_distinct(name):
    model = get_noise(name)
    y = _constant(0.4)
    a = model(y, 21).numpy()
    np.testing.assert_array_equal(a, model(y, 21).numpy())
    assert np.mean(a != model(y, 22).numpy()) > 0.5
    # A Python int n is the stateless seed [n, 0].
    np.testing.assert_array_equal(a, model(y, tf.constant([21, 0], tf.int32)).numpy())


@pytest.mark.parametrize("name", ["gaussian", "poisson", "speckle"])
def test_inside_tf_function_matches_eager(name):
    model = get_noise(name)
    y = _constant(0.4)

    @tf.function(input_signature=[tf.TensorSpec([None, 64, 64, 3], tf.float32), tf.TensorSpec([2], tf.int64)])
    def noisy(batch, seed):
        return model(batch, seed)

    seed = tf.constant([7, 3], tf.int64)
    # Same draw; graph-mode arithmetic may differ from eager in the last bit (fused ops).
    np.testing.assert_allclose(noisy(y, seed).numpy(), model(y, seed).numpy(), rtol=1e-6, atol=1e-7)
    assert not np.array_equal(noisy(y, seed).numpy(), noisy(y, seed + 1).numpy())


def test_gaussian_noise_passes_gradients():
    y = tf.Variable(_constant(0.3)[:1])
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(GaussianNoise(0.2)(y, 1))
    np.testing.assert_allclose(tape.gradient(loss, y).numpy(), 1.0)


@pytest.mark.parametrize("name", ["gaussian", "poisson", "speckle"])
def test_config_rebuilds_the_same_model(name):
    model = get_noise(name, clip=True)
    rebuilt = get_noise(name, **model.get_config())
    y = _constant(0.5)[:1]
    np.testing.assert_array_equal(model(y, 2).numpy(), rebuilt(y, 2).numpy())


@pytest.mark.parametrize("seed", [1.5, True, None, tf.constant([1, 2, 3]), tf.constant([1.0, 2.0]), "7"])
def test_bad_seed_raises(seed):
    with pytest.raises(ValueError, match="seed"):
        GaussianNoise(0.1)(tf.zeros((1, 2, 2, 1)), seed)


def test_bad_parameters_and_inputs_raise():
    with pytest.raises(ValueError, match="sigma"):
        GaussianNoise(-0.1)
    with pytest.raises(ValueError, match="sigma"):
        SpeckleNoise(float("nan"))
    with pytest.raises(ValueError, match="peak"):
        PoissonNoise(0.0)
    with pytest.raises(ValueError, match="float"):
        GaussianNoise(0.1)(tf.zeros((1, 2, 2, 1), tf.int32), 0)


def test_measure_composes_operator_and_noise():
    operator = get("blur_uniform", image_shape=(16, 16, 1), kernel_size=3)
    x = operator.random_input(2, seed=0)
    np.testing.assert_array_equal(measure(operator, x).numpy(), operator(x).numpy())
    noise = GaussianNoise(10 / 255)
    expected = noise(operator(x), 4).numpy()
    np.testing.assert_array_equal(measure(operator, x, noise, seed=4).numpy(), expected)
    np.testing.assert_array_equal(
        measure(operator, x, "speckle", seed=4).numpy(), SpeckleNoise()(operator(x), 4).numpy()
    )
    with pytest.raises(ValueError, match="seed"):
        measure(operator, x, noise)
    with pytest.raises(ValueError, match="NoiseModel"):
        measure(operator, x, 0.1, seed=1)


def test_base_class_is_abstract():
    with pytest.raises(NotImplementedError):
        NoiseModel()(tf.zeros((1, 2, 2, 1)), 0)
