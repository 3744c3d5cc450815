"""Blur operators against scipy.ndimage and explicit matrices, both boundaries."""

import numpy as np
import pytest
import scipy.ndimage
import scipy.signal
import tensorflow as tf

import tfinverse.operators.blur  # noqa: F401  (registers the operators)
from tfinverse.operators.base import get
from tfinverse.operators.blur import Blur, gaussian_kernel, uniform_kernel

SCIPY_MODE = {"circular": "wrap", "zero": "constant"}
BOUNDARIES = ["circular", "zero"]
# A non-symmetric, even-sized, non-separable kernel exercises the centre convention.
ODD_KERNEL = np.array([[0.1, 0.5, -0.2], [0.3, 1.0, 0.05], [0.0, 0.25, 0.4], [0.2, -0.1, 0.3]])


def _scipy_blur(images, kernel, boundary):
    out = np.empty_like(images)
    for b in range(images.shape[0]):
        for c in range(images.shape[3]):
            out[b, :, :, c] = scipy.ndimage.convolve(images[b, :, :, c], kernel, mode=SCIPY_MODE[boundary])
    return out


def _scipy_matrix(kernel, height, width, boundary):
    """The blur of one channel as an explicit (HW x HW) matrix, from scipy impulse responses."""
    columns = []
    for index in range(height * width):
        impulse = np.zeros(height * width)
        impulse[index] = 1.0
        response = scipy.ndimage.convolve(impulse.reshape(height, width), kernel, mode=SCIPY_MODE[boundary])
        columns.append(response.ravel())
    return np.stack(columns, axis=1)


def _operators(shape, boundary, dtype=tf.float32):
    return [
        get("blur_uniform", image_shape=shape, boundary=boundary, dtype=dtype),
        get("blur_uniform", image_shape=shape, boundary=boundary, dtype=dtype, kernel_size=(4, 3)),
        get("blur_gaussian", image_shape=shape, boundary=boundary, dtype=dtype, sigma=1.3),
        Blur(shape, dtype, kernel=ODD_KERNEL, boundary=boundary),
    ]


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_forward_matches_scipy_convolve(boundary, dtype):
    shape = (24, 16, 2)
    images = np.random.default_rng(0).uniform(size=(2,) + shape)
    tolerance = 1e-5 if dtype == tf.float32 else 1e-12
    for operator in _operators(shape, boundary, dtype):
        got = operator(images.astype(dtype.as_numpy_dtype)).numpy()
        np.testing.assert_allclose(got, _scipy_blur(images, operator.kernel, boundary), atol=tolerance)


def test_iagan_default_is_a_9x9_box():
    operator = get("blur_uniform", image_shape=(64, 64, 3))
    np.testing.assert_array_equal(operator.kernel, np.full((9, 9), 1 / 81))
    assert operator.boundary == "circular"


def test_kernels_against_independent_constructions():
    window = scipy.signal.windows.gaussian(7, std=1.3)
    np.testing.assert_allclose(gaussian_kernel(1.3, 7), np.outer(window, window) / np.outer(window, window).sum())
    np.testing.assert_allclose(uniform_kernel((2, 5)), np.ones((2, 5)) / 10)
    # Default Gaussian support is +-3 sigma, shrunk to the largest odd size that fits.
    assert get("blur_gaussian", image_shape=(32, 32, 1), sigma=1.0).kernel.shape == (7, 7)
    assert get("blur_gaussian", image_shape=(16, 10, 1), sigma=2.0).kernel.shape == (9, 9)
    assert get("blur_uniform", image_shape=(8, 6, 1)).kernel.shape == (5, 5)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_adjoint_identity_and_matrix_transpose(boundary):
    shape = (7, 6, 2)
    for operator in _operators(shape, boundary, tf.float64):
        x, y = operator.random_input(3, 1), operator.random_measurement(3, 2)
        lhs = tf.reduce_sum(operator(x) * y).numpy()
        rhs = tf.reduce_sum(x * operator.adjoint(y)).numpy()
        np.testing.assert_allclose(lhs, rhs, rtol=1e-10)
        matrix = _scipy_matrix(operator.kernel, 7, 6, boundary)
        channel = y.numpy()[0, :, :, 1]
        np.testing.assert_allclose(
            operator.adjoint(y).numpy()[0, :, :, 1].ravel(), matrix.T @ channel.ravel(), atol=1e-12
        )


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_adjoint_identity_float32(boundary):
    for operator in _operators((32, 32, 3), boundary):
        x, y = operator.random_input(2, 3), operator.random_measurement(2, 4)
        lhs = tf.reduce_sum(operator(x) * y)
        rhs = tf.reduce_sum(x * operator.adjoint(y))
        assert abs(float(lhs - rhs)) <= 1e-4 * abs(float(lhs))


@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("name, params", [("blur_uniform", {"kernel_size": 3}), ("blur_gaussian", {"sigma": 0.8})])
def test_pinv_equals_truncated_numpy_pinv(boundary, name, params):
    height, width = 8, 7
    operator = get(name, image_shape=(height, width, 1), boundary=boundary, dtype=tf.float64, **params)
    matrix = _scipy_matrix(operator.kernel, height, width, boundary)
    reference = np.linalg.pinv(matrix, rcond=operator.pinv_rtol)
    y = operator.random_measurement(2, 0).numpy()
    got = operator.pinv(y).numpy().reshape(2, -1)
    np.testing.assert_allclose(got, y.reshape(2, -1) @ reference.T, atol=1e-8)


def test_circular_pinv_threshold_drops_weak_frequencies():
    # A 2-tap average on an even grid zeroes the Nyquist frequency; pinv must not invert it.
    operator = Blur((8, 8, 1), tf.float64, kernel=[[0.5, 0.5]])
    columns = np.tile([1.0, -1.0], 4)[None, :].repeat(8, axis=0)  # alternating along width
    np.testing.assert_allclose(operator(columns[None, :, :, None]).numpy(), 0.0, atol=1e-12)
    np.testing.assert_allclose(operator.pinv(columns[None, :, :, None]).numpy(), 0.0, atol=1e-12)
    # A 2-tap average passes the mean unchanged, so pinv reproduces a constant image.
    constant = np.full((1, 8, 8, 1), 0.7)
    np.testing.assert_allclose(operator.pinv(constant).numpy(), constant, atol=1e-12)


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_pinv_of_a_blurred_image_reproduces_it(boundary):
    rows, cols = np.mgrid[0:32, 0:32] / 32.0
    image = np.stack([np.sin(3 * rows) * np.cos(2 * cols), rows * cols, (rows > 0.5) * 1.0], axis=-1)
    image = image[None].astype(np.float32)
    for operator in _operators((32, 32, 3), boundary):
        blurred = operator(image)
        again = operator(operator.pinv(blurred))
        error = float(tf.norm(again - blurred) / tf.norm(blurred))
        assert error < 1e-3, (operator.kernel.shape, error)
        if boundary == "circular" or operator.separable:
            # Back-projection of a wrong estimate lands exactly on the measurement.
            corrected = operator.back_project(tf.zeros_like(image), blurred)
            assert float(tf.norm(operator(corrected) - blurred) / tf.norm(blurred)) < 1e-3


def test_separability_detection():
    assert get("blur_gaussian", image_shape=(16, 16, 1), boundary="zero").separable
    assert get("blur_uniform", image_shape=(16, 16, 1), boundary="zero").separable
    assert not Blur((16, 16, 1), kernel=ODD_KERNEL, boundary="zero").separable


@pytest.mark.parametrize("boundary", BOUNDARIES)
def test_works_inside_tf_function_with_unknown_batch(boundary):
    operator = get("blur_gaussian", image_shape=(16, 16, 2), boundary=boundary)

    @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 2], tf.float32)])
    def round_trip(batch):
        return operator.adjoint(operator(batch)), operator.pinv(operator(batch))

    x = operator.random_input(3, 0)
    normal, restored = round_trip(x)
    np.testing.assert_allclose(normal.numpy(), operator.adjoint(operator(x)).numpy(), atol=1e-5)
    np.testing.assert_allclose(restored.numpy(), operator.pinv(operator(x)).numpy(), atol=1e-4)


def test_gradient_is_the_adjoint():
    operator = get("blur_uniform", image_shape=(16, 16, 1), kernel_size=5)
    x = tf.Variable(operator.random_input(2, 0))
    weights = operator.random_measurement(2, 1)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(operator(x) * weights)
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), operator.adjoint(weights).numpy(), atol=1e-5)


def test_config_round_trip():
    operator = get("blur_gaussian", image_shape=(24, 16, 2), sigma=1.5, boundary="zero", pinv_rtol=1e-3)
    rebuilt = operator.resample(0)
    np.testing.assert_array_equal(rebuilt.kernel, operator.kernel)
    assert (rebuilt.boundary, rebuilt.pinv_rtol, rebuilt.sigma) == ("zero", 1e-3, 1.5)
    general = Blur((16, 16, 1), kernel=ODD_KERNEL)
    np.testing.assert_array_equal(general.resample(1).kernel, ODD_KERNEL)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="boundary"):
        get("blur_uniform", image_shape=(16, 16, 1), boundary="reflect")
    with pytest.raises(ValueError, match="exceed"):
        get("blur_uniform", image_shape=(16, 16, 1), kernel_size=17)
    with pytest.raises(ValueError, match="kernel_size"):
        get("blur_uniform", image_shape=(16, 16, 1), kernel_size=0)
    with pytest.raises(ValueError, match="sigma"):
        get("blur_gaussian", image_shape=(16, 16, 1), sigma=0.0)
    with pytest.raises(ValueError, match="2-D"):
        Blur((16, 16, 1), kernel=np.ones((3, 3, 3)))
    with pytest.raises(ValueError, match="kernel"):
        Blur((16, 16, 1))
    with pytest.raises(ValueError, match="pinv_rtol"):
        Blur((16, 16, 1), kernel=np.ones((3, 3)), pinv_rtol=-1.0)
    operator = get("blur_uniform", image_shape=(16, 16, 1))
    with pytest.raises(ValueError, match=r"\[batch, 16, 16, 1\]"):
        operator(np.zeros((2, 16, 15, 1), np.float32))
    with pytest.raises(ValueError, match=r"\[batch, 16, 16, 1\]"):
        operator.pinv(np.zeros((16, 16, 1), np.float32))
    with pytest.raises(ValueError, match="float32"):
        operator.adjoint(np.zeros((1, 16, 16, 1), np.float64))
