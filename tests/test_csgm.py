"""CSGM with batched restarts: recovery, best-restart bookkeeping, independence of restarts.

References: closed forms for a linear generator ``G(z) = W z + b`` (least squares and ridge
solutions from numpy), numpy masks for the subsampling operator, a numpy re-implementation
of PyTorch's Adam, and runs of single restarts against the batched run.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfinverse.operators as ops
import tfinverse.operators.inpainting  # noqa: F401  (registers the masking operators)
from tfinverse.inversion.csgm import (
    CSGM_PRESETS,
    AdamSlots,
    adam_update,
    csgm,
)
from tfinverse.models import DCGANGenerator, KerasGenerator

from priors_for_tests import SHAPE, linear_generator, mlp_generator  # noqa: E402


def linear_parts(generator):
    kernel, bias = (v.numpy().astype(np.float64) for v in generator.trainable_variables)
    return kernel.T, bias  # W [n, d], b [n]


class ExplodingGenerator(KerasGenerator):
    """Fails if anything tries to generate an image: proves validation runs first."""

    def native(self, z, training=False):
        raise AssertionError("the generator was called before the input was validated")


@pytest.fixture(scope="module")
def mlp():
    return mlp_generator()


@pytest.fixture(scope="module")
def mask_operator():
    return ops.get("random_pixel_mask", image_shape=SHAPE, keep_fraction=0.5, seed=3)


def numpy_fit(x, y, mask=None):
    x = np.asarray(x, np.float64)
    measured = x if mask is None else x * mask
    return ((np.asarray(y, np.float64) - measured) ** 2).reshape(len(x), -1).sum(axis=1)


# ----------------------------------------------------------------------------- recovery
@pytest.mark.parametrize("operator_name", ["identity", "random_pixel_mask"])
def test_recovers_the_latent_of_a_generated_image(mlp, mask_operator, operator_name):
    operator = mask_operator if operator_name == "random_pixel_mask" else ops.get("identity", image_shape=SHAPE)
    z_true = mlp.sample_latent(3, seed=5)
    x_true = mlp(z_true).numpy()
    y = operator(x_true).numpy()
    result = csgm(mlp, operator, y, iterations=200, learning_rate=0.05, restarts=3, seed=0, progress=False)

    start = result.extras["initial_objective"].min(axis=1)
    assert np.all(start > 1e-2)
    # The objective falls by many orders of magnitude and the generated image is recovered.
    assert np.all(result.best_objective < 1e-6 * start)
    np.testing.assert_allclose(result.x_hat, x_true, atol=1e-3)
    np.testing.assert_allclose(result.latents, z_true, atol=1e-2)
    # best_objective is the data fit of the returned latents, recomputed with numpy.
    mask = None if operator_name == "identity" else mask_operator.mask.numpy()
    np.testing.assert_allclose(numpy_fit(mlp(result.latents).numpy(), y, mask), result.best_objective, atol=1e-6)
    assert result.history.shape == (200, 3)
    assert result.latents.shape == (3, 4)
    assert result.x_hat.dtype == np.float32 and result.x_hat.shape == (3,) + SHAPE


def test_least_squares_residual_of_a_linear_generator():
    # With G(z) = W z + b and A = I the CSGM optimum is the least-squares fit: its residual
    # ||(I - P_W)(y - b)||^2 is the best any latent can do.
    generator = linear_generator()
    w, b = linear_parts(generator)
    y = np.random.default_rng(1).uniform(0, 1, (2,) + SHAPE).astype(np.float32)
    targets = y.reshape(2, -1).astype(np.float64) - b
    z_ls, *_ = np.linalg.lstsq(w, targets.T, rcond=None)
    residual = ((targets.T - w @ z_ls) ** 2).sum(axis=0)
    operator = ops.get("identity", image_shape=SHAPE)
    result = csgm(generator, operator, y, iterations=600, learning_rate=0.05, restarts=2, seed=0, progress=False)
    np.testing.assert_allclose(result.best_objective, residual, rtol=1e-4)
    np.testing.assert_allclose(result.latents, z_ls.T, atol=2e-3)


def test_z_prior_weight_gives_the_ridge_solution():
    generator = linear_generator()
    w, b = linear_parts(generator)
    weight = 2.0
    y = np.random.default_rng(2).uniform(0, 1, (2,) + SHAPE).astype(np.float32)
    targets = y.reshape(2, -1).astype(np.float64) - b
    ridge = np.linalg.solve(w.T @ w + weight * np.eye(w.shape[1]), w.T @ targets.T).T
    operator = ops.get("identity", image_shape=SHAPE)
    result = csgm(generator, operator, y, iterations=800, learning_rate=0.02, restarts=1,
                  z_prior_weight=weight, seed=0, progress=False)
    np.testing.assert_allclose(result.extras["final_latents"][:, 0], ridge, atol=2e-3)
    unpenalised = np.linalg.lstsq(w, targets.T, rcond=None)[0].T
    assert np.abs(ridge - unpenalised).max() > 0.05  # the prior term really changed the answer


# ----------------------------------------------------------------------------- bookkeeping
def test_known_best_restart_is_chosen(mlp, mask_operator):
    # Restart 2 of image 0 and restart 0 of image 1 start exactly at the true latent (fit 0,
    # gradient 0, so Adam never moves them); every other restart starts elsewhere.
    z_true = mlp.sample_latent(2, seed=11)
    y = mask_operator(mlp(z_true)).numpy()
    z_init = mlp.sample_latent(2 * 3, seed=12).reshape(2, 3, 4)
    z_init[0, 2] = z_true[0]
    z_init[1, 0] = z_true[1]
    result = csgm(mlp, mask_operator, y, iterations=15, learning_rate=0.05, restarts=3, z_init=z_init,
                  progress=False)
    np.testing.assert_array_equal(result.extras["restart"], [2, 0])
    np.testing.assert_array_equal(result.extras["best_iteration"], [0, 0])
    np.testing.assert_allclose(result.latents, z_true, atol=0)
    assert np.all(result.best_objective < 1e-12)
    # Restarts that started elsewhere did not reach the optimum within 15 steps.
    others = result.extras["restart_best_objective"][[0, 0, 1, 1], [0, 1, 1, 2]]
    assert np.all(others > 1e-4)
    np.testing.assert_array_equal(result.extras["initial_latents"], z_init)


def test_best_along_the_iterations_not_the_last(mlp, mask_operator):
    # Near the optimum a too large step makes the objective bounce; the returned latent must
    # be the best one seen, not the last one.
    y = mask_operator(mlp(mlp.sample_latent(2, seed=9))).numpy()
    result = csgm(mlp, mask_operator, y, iterations=40, learning_rate=0.5, restarts=2, seed=4, progress=False)
    history = result.extras["restart_history"]  # [T, N, K]
    initial = result.extras["initial_objective"]  # [N, K]
    everything = np.concatenate([initial[None], history], axis=0)  # [T + 1, N, K]
    np.testing.assert_allclose(result.best_objective, everything.min(axis=(0, 2)), rtol=1e-6)
    assert np.any(history[-1].min(axis=1) > 1.5 * result.best_objective)  # the last is worse
    rows = np.arange(2)
    picked = everything[result.extras["best_iteration"], rows, result.extras["restart"]]
    np.testing.assert_allclose(picked, result.best_objective, rtol=1e-6)
    np.testing.assert_allclose(result.history, history.min(axis=2))
    refit = numpy_fit(mlp(result.latents).numpy(), y, mask_operator.mask.numpy())
    np.testing.assert_allclose(refit, result.best_objective, rtol=1e-3)


def test_batched_restarts_equal_separate_runs(mlp, mask_operator):
    y = mask_operator(np.random.default_rng(6).uniform(0, 1, (2,) + SHAPE).astype(np.float32)).numpy()
    batched = csgm(mlp, mask_operator, y, iterations=40, learning_rate=0.05, restarts=3, seed=7, progress=False)
    starts = batched.extras["initial_latents"]
    separate = [
        csgm(mlp, mask_operator, y, iterations=40, learning_rate=0.05, restarts=1, z_init=starts[:, k],
             progress=False)
        for k in range(3)
    ]
    for k, single in enumerate(separate):
        restart_history = batched.extras["restart_history"][:, :, k]
        np.testing.assert_allclose(restart_history, single.history, rtol=1e-4, atol=1e-7)
        restart_best = batched.extras["restart_best_objective"][:, k]
        np.testing.assert_allclose(restart_best, single.best_objective, rtol=1e-4)
    singles = np.stack([s.best_objective for s in separate], axis=1)
    np.testing.assert_array_equal(batched.extras["restart"], singles.argmin(axis=1))
    for i, k in enumerate(batched.extras["restart"]):
        np.testing.assert_allclose(batched.latents[i], separate[k].latents[i], atol=1e-5)


def test_seed_reproducible_and_restarts_drawn_from_the_prior(mlp, mask_operator):
    y = mask_operator(np.full((1,) + SHAPE, 0.5, np.float32)).numpy()
    first = csgm(mlp, mask_operator, y, iterations=3, restarts=4, seed=21, progress=False)
    again = csgm(mlp, mask_operator, y, iterations=3, restarts=4, seed=21, progress=False)
    other = csgm(mlp, mask_operator, y, iterations=3, restarts=4, seed=22, progress=False)
    np.testing.assert_array_equal(first.extras["initial_latents"], again.extras["initial_latents"])
    np.testing.assert_array_equal(first.latents, again.latents)
    assert not np.array_equal(first.extras["initial_latents"], other.extras["initial_latents"])
    expected = mlp.sample_latent(4, seed=21).reshape(1, 4, 4)
    np.testing.assert_array_equal(first.extras["initial_latents"], expected)


def test_compiled_xla_and_eager_agree(mlp, mask_operator):
    y = mask_operator(np.random.default_rng(8).uniform(0, 1, (2,) + SHAPE).astype(np.float32)).numpy()
    runs = [
        csgm(mlp, mask_operator, y, iterations=10, learning_rate=0.05, restarts=2, seed=1, progress=False, **kw)
        for kw in ({}, {"jit_compile": True}, {"run_eagerly": True})
    ]
    for other in runs[1:]:
        np.testing.assert_allclose(other.history, runs[0].history, rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(other.latents, runs[0].latents, atol=1e-5)


def test_dcgan_prior_float64_and_per_example_operator():
    generator = DCGANGenerator(16, 1, latent_dim=8, base_filters=4, seed=0)
    shape = (16, 16, 1)
    x = np.random.default_rng(0).uniform(0, 1, (3,) + shape)
    for operator in (
        ops.get("identity", image_shape=shape, dtype=tf.float64),
        ops.get("drop_independent", image_shape=shape, seed=1, p=0.5, batch_size=3),
    ):
        y = operator(x.astype(operator.dtype.as_numpy_dtype)).numpy()
        result = csgm(generator, operator, y, iterations=4, restarts=2, seed=0, progress=False)
        assert result.history.shape == (4, 3) and result.latents.shape == (3, 8)
        assert 0.0 <= result.x_hat.min() and result.x_hat.max() <= 1.0
        mask = operator.mask.numpy() if hasattr(operator, "mask") else None
        refit = numpy_fit(generator(result.latents).numpy(), y, mask)
        np.testing.assert_allclose(refit, result.best_objective, rtol=1e-4)


# ----------------------------------------------------------------------------- Adam
def test_adam_update_matches_pytorch_adam_formula():
    rng = np.random.default_rng(0)
    value = rng.standard_normal(5)
    gradients = rng.standard_normal((6, 5))
    lr, b1, b2, eps = 0.1, 0.9, 0.999, 1e-8
    variable = tf.Variable(value)
    slots = AdamSlots([variable])
    m = v = np.zeros(5)
    expected = value.copy()
    for t, g in enumerate(gradients, start=1):
        slots.apply([variable], [tf.constant(g)], t, lr)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        expected = expected - lr / (1 - b1**t) * m / (np.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-12)
    # With tiny gradients eps matters: the PyTorch placement must still hold.
    tiny = tf.Variable(np.zeros(1))
    m1, v1 = tf.Variable(np.zeros(1)), tf.Variable(np.zeros(1))
    adam_update(tiny, tf.constant([1e-8], tf.float64), m1, v1, 1, 1.0)
    np.testing.assert_allclose(tiny.numpy(), [-1e-8 / (1e-8 + 1e-8)], rtol=1e-9)


def test_presets_follow_the_paper():
    assert CSGM_PRESETS["began"]["iterations"] == 1600 and CSGM_PRESETS["pggan"]["iterations"] == 1800
    assert CSGM_PRESETS["began"]["learning_rate"] == CSGM_PRESETS["pggan"]["learning_rate"] == 0.1


# ----------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def exploding():
    return ExplodingGenerator(mlp_generator().network, 4, "uniform")


@pytest.mark.parametrize(
    "y, kwargs, message",
    [
        (np.zeros((2, 8, 8), np.float32), {}, r"\[batch, 8, 8, 1\]"),
        (np.zeros((2, 4, 4, 1), np.float32), {}, r"\[batch, 8, 8, 1\]"),
        (np.full((2, 8, 8, 1), np.nan, np.float32), {}, "NaN"),
        (np.full((2, 8, 8, 1), np.inf, np.float32), {}, "NaN or Inf"),
        (np.zeros((2, 8, 8, 1), np.float32), {"iterations": 0}, "iterations"),
        (np.zeros((2, 8, 8, 1), np.float32), {"restarts": 0}, "restarts"),
        (np.zeros((2, 8, 8, 1), np.float32), {"learning_rate": -1.0}, "learning_rate"),
        (np.zeros((2, 8, 8, 1), np.float32), {"z_init": np.zeros((2, 3))}, r"\[2, 5, 4\]"),
        (np.zeros((2, 8, 8, 1), np.float32), {"z_init": np.zeros((2, 5, 4)) + np.nan}, "NaN"),
    ],
)
def test_bad_input_raises_before_optimisation(exploding, y, kwargs, message):
    operator = ops.get("identity", image_shape=SHAPE)
    with pytest.raises(ValueError, match=message):
        csgm(exploding, operator, y, progress=False, **kwargs)


def test_mismatched_generator_and_per_example_batch_raise(exploding):
    with pytest.raises(ValueError, match=r"\(16, 16, 1\)"):
        csgm(exploding, ops.get("identity", image_shape=(16, 16, 1)), np.zeros((1, 16, 16, 1), np.float32),
             progress=False)
    per_example = ops.get("drop_independent", image_shape=SHAPE, seed=0, batch_size=3)
    with pytest.raises(ValueError, match="per-example"):
        csgm(exploding, per_example, np.zeros((2,) + SHAPE, np.float32), progress=False)
