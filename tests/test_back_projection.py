"""Back-projection x + A^+ (y - A x): hard compliance, untouched null space, approximate A^+.

References: dense matrices of the operators (the Gaussian matrix itself, or the operator
probed with the standard basis) with numpy's pseudo-inverse and null-space projector;
OpenCV's bicubic resize for the paper's approximate super-resolution inverse.
"""

import cv2
import numpy as np
import pytest
import tensorflow as tf

import tfinverse.operators as ops
import tfinverse.operators.compressed_sensing  # noqa: F401  (registers the families used)
import tfinverse.operators.fourier  # noqa: F401
import tfinverse.operators.inpainting  # noqa: F401
import tfinverse.operators.super_resolution  # noqa: F401
from tfinverse.inversion.back_projection import (
    approximate_pinv,
    back_project,
    back_project_result,
    has_approximate_pinv,
)
from tfinverse.inversion.base import InversionResult


def dense_matrix(operator):
    """The operator's matrix, probed column by column with the standard basis (float64)."""
    n = int(np.prod(operator.in_shape))
    basis = np.eye(n).reshape((n,) + tuple(operator.in_shape))
    columns = operator(tf.constant(basis, operator.dtype)).numpy().reshape(n, -1)
    return columns.T  # [m, n]


def check_projection(operator, matrix, x_hat, y, x_bp):
    """A x_bp = y, x_bp - x_hat in the row space, and the numpy closed form of eq. (10)."""
    batch = len(x_hat)
    flat_hat = x_hat.reshape(batch, -1).astype(np.float64)
    flat_bp = np.asarray(x_bp, np.float64).reshape(batch, -1)
    flat_y = np.asarray(y, np.float64).reshape(batch, -1)
    pinv = np.linalg.pinv(matrix)
    null_projector = np.eye(matrix.shape[1]) - pinv @ matrix
    np.testing.assert_allclose(flat_bp @ matrix.T, flat_y, atol=1e-6)
    np.testing.assert_allclose(flat_bp @ null_projector.T, flat_hat @ null_projector.T, atol=1e-6)
    expected = flat_hat + (flat_y - flat_hat @ matrix.T) @ pinv.T
    np.testing.assert_allclose(flat_bp, expected, atol=1e-6)


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(0)


@pytest.mark.parametrize(
    "name, params, shape",
    [
        ("compressed_sensing", {"ratio": 0.3, "seed": 1}, (6, 6, 2)),
        ("super_resolution", {"factor": 2}, (8, 8, 2)),
        ("random_pixel_mask", {"keep_fraction": 0.4, "seed": 2}, (6, 6, 2)),
        ("drop_independent", {"p": 0.5, "seed": 3}, (6, 6, 2)),
        ("subsampled_fourier", {"ratio": 0.4, "seed": 4}, (8, 8, 1)),
    ],
)
def test_exact_back_projection_is_the_closed_form(name, params, shape):
    operator = ops.get(name, image_shape=shape, dtype=tf.float64, **params)
    rng = np.random.default_rng(5)
    x_true = rng.uniform(0, 1, (3,) + shape)
    x_hat = rng.uniform(0, 1, (3,) + shape)
    y = operator(x_true).numpy()
    x_bp = back_project(operator, x_hat, y).numpy()
    check_projection(operator, dense_matrix(operator), x_hat, y, x_bp)
    # Back-projecting twice changes nothing (x_bp is already on the affine set).
    np.testing.assert_allclose(back_project(operator, x_bp, y).numpy(), x_bp, atol=1e-9)


def test_mask_back_projection_keeps_unobserved_pixels(rng):
    operator = ops.get("random_pixel_mask", image_shape=(8, 8, 3), keep_fraction=0.3, seed=7)
    x_true = rng.uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
    x_hat = rng.uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
    x_bp = back_project(operator, x_hat, operator(x_true).numpy()).numpy()
    kept = np.broadcast_to(operator.mask.numpy() != 0, x_bp.shape)
    np.testing.assert_allclose(x_bp[kept], x_true[kept], atol=1e-6)
    np.testing.assert_array_equal(x_bp[~kept], x_hat[~kept])


def test_approximate_super_resolution_is_bicubic_upsampling(rng):
    operator = ops.get("super_resolution", image_shape=(16, 16, 3), factor=4)
    x_true = rng.uniform(0, 1, (2, 16, 16, 3)).astype(np.float32)
    x_hat = rng.uniform(0, 1, (2, 16, 16, 3)).astype(np.float32)
    y = operator(x_true).numpy()
    x_bp = back_project(operator, x_hat, y, approximate=True).numpy()
    residual = y - operator(x_hat).numpy()
    upsampled = np.stack([cv2.resize(r, (16, 16), interpolation=cv2.INTER_CUBIC) for r in residual])
    np.testing.assert_allclose(x_bp, x_hat + upsampled, atol=1e-5)
    # Only approximately consistent with y, unlike the exact back-projection.
    exact = back_project(operator, x_hat, y).numpy()
    assert np.abs(operator(exact).numpy() - y).max() < 1e-4
    assert np.abs(operator(x_bp).numpy() - y).max() > 1e-3


def test_approximate_fourier_equals_exact_for_symmetric_masks(rng):
    operator = ops.get("subsampled_fourier", image_shape=(8, 8, 2), ratio=0.3, seed=1)
    x_true = rng.uniform(0, 1, (2, 8, 8, 2)).astype(np.float32)
    x_hat = rng.uniform(0, 1, (2, 8, 8, 2)).astype(np.float32)
    y = operator(x_true).numpy()
    approximate = back_project(operator, x_hat, y, approximate=True).numpy()
    np.testing.assert_allclose(approximate, back_project(operator, x_hat, y).numpy(), atol=1e-5)
    # The zero-filled inverse FFT of the residual, with numpy's orthonormal FFT.
    residual = np.fft.fft2(x_true - x_hat, axes=(1, 2), norm="ortho") * operator.mask[None, :, :, None]
    zero_filled = np.real(np.fft.ifft2(residual, axes=(1, 2), norm="ortho"))
    np.testing.assert_allclose(approximate, x_hat + zero_filled, atol=1e-5)


@pytest.mark.parametrize(
    "name, params",
    [("identity", {}), ("compressed_sensing", {"m": 5, "seed": 0}), ("random_pixel_mask", {"seed": 0})],
)
def test_approximate_without_one_raises(name, params):
    operator = ops.get(name, image_shape=(4, 4, 1), **params)
    assert not has_approximate_pinv(operator)
    y = operator(np.zeros((1, 4, 4, 1), np.float32)).numpy()
    with pytest.raises(ValueError, match="approximate=False"):
        back_project(operator, np.zeros((1, 4, 4, 1), np.float32), y, approximate=True)
    with pytest.raises(ValueError, match=name):
        approximate_pinv(operator)


def test_works_inside_tf_function(rng):
    operator = ops.get("compressed_sensing", image_shape=(4, 4, 1), m=6, seed=2)
    x_hat = tf.constant(rng.uniform(0, 1, (2, 4, 4, 1)), tf.float32)
    y = operator(tf.constant(rng.uniform(0, 1, (2, 4, 4, 1)), tf.float32))
    compiled = tf.function(lambda a, b: back_project(operator, a, b))
    np.testing.assert_allclose(compiled(x_hat, y).numpy(), back_project(operator, x_hat, y).numpy(), atol=1e-6)


def test_back_project_result_gives_the_bp_variant(rng):
    operator = ops.get("compressed_sensing", image_shape=(4, 4, 1), m=6, seed=2, dtype=tf.float64)
    x_true = rng.uniform(0, 1, (2, 4, 4, 1))
    y = operator(x_true).numpy()
    x_hat = rng.uniform(0, 1, (2, 4, 4, 1)).astype(np.float32)
    before = ((y - operator(x_hat.astype(np.float64)).numpy()) ** 2).sum(axis=1)
    result = InversionResult(x_hat=x_hat, history=np.zeros((3, 2), np.float32), best_objective=before,
                             latents=np.ones((2, 5), np.float32), seconds=1.0, extras={"restart": [0, 1]})
    bp = back_project_result(operator, result, y)
    assert np.all(bp.best_objective < 1e-10)
    np.testing.assert_allclose(bp.x_hat, back_project(operator, x_hat, y).numpy(), atol=1e-6)
    assert bp.x_hat.dtype == np.float32
    assert bp.extras["back_projection"] == "exact" and bp.extras["restart"] == [0, 1]
    np.testing.assert_array_equal(bp.extras["objective_before_back_projection"], before)
    np.testing.assert_array_equal(bp.latents, result.latents)
    assert bp.seconds >= 1.0
    np.testing.assert_array_equal(result.x_hat, x_hat)  # the input result is not changed
    assert "back_projection" not in result.extras


@pytest.mark.parametrize(
    "x_hat, y, message",
    [
        (np.zeros((2, 4, 4, 1), np.float32), np.zeros((2, 4, 4), np.float32), r"\[batch, 4, 4, 1\]"),
        (np.zeros((2, 4, 4, 1), np.float32), np.full((2, 4, 4, 1), np.nan, np.float32), "NaN"),
        (np.zeros((2, 4, 4), np.float32), np.zeros((2, 4, 4, 1), np.float32), r"\[2, 4, 4, 1\]"),
        (np.zeros((3, 4, 4, 1), np.float32), np.zeros((2, 4, 4, 1), np.float32), r"\[2, 4, 4, 1\]"),
        (np.zeros((2, 4, 4, 1), np.int32), np.zeros((2, 4, 4, 1), np.float32), "float"),
    ],
)
def test_bad_input_raises(x_hat, y, message):
    operator = ops.get("identity", image_shape=(4, 4, 1))
    with pytest.raises(ValueError, match=message):
        back_project(operator, x_hat, y)
