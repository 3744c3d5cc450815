"""Bicubic super-resolution and decimation operators against independent references."""

import cv2
import numpy as np
import pytest
import tensorflow as tf
from numpy.lib.stride_tricks import sliding_window_view

import tfinverse.operators.super_resolution as sr
from tfinverse.operators.base import LinearOperator, get


def keys_reference(t, a):
    """Keys (1981) cubic convolution kernel written out piece by piece."""
    t = abs(float(t))
    if t <= 1:
        return (a + 2) * t**3 - (a + 3) * t**2 + 1
    if t < 2:
        return a * t**3 - 5 * a * t**2 + 8 * a * t - 4 * a
    return 0.0


def reference_kernel(s, a=-0.5):
    taps = 4 * s + s % 2
    # Taps centred on zero: half-integer positions for even s, integers for odd s.
    centre = (taps - 1) / 2
    weights = np.array([keys_reference((t - centre) / s, a) for t in range(taps)])
    kernel = np.outer(weights, weights)
    return kernel / kernel.sum()


def reference_downscale(x, s, a=-0.5):
    """Zero-pad by (taps - s) / 2, correlate with the kernel, keep every s-th output."""
    kernel = reference_kernel(s, a)
    pad = (kernel.shape[0] - s) // 2
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    windows = sliding_window_view(padded, kernel.shape, axis=(1, 2))[:, ::s, ::s]
    return np.einsum("bijcuv,uv->bijc", windows, kernel)


def dense_matrix(apply, in_shape):
    """Matrix of a linear map by applying it to every basis vector (float64)."""
    n = int(np.prod(in_shape))
    basis = np.eye(n).reshape((n,) + tuple(in_shape))
    columns = np.asarray(apply(basis)).reshape(n, -1)
    return columns.T


def rel(a, b):
    return np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b))


def test_keys_cubic_closed_form_values():
    t = np.array([0.0, 0.5, 1.0, 1.5, 2.0, 2.5, -0.5])
    np.testing.assert_allclose(sr.keys_cubic(t, -0.5), [1.0, 0.5625, 0.0, -0.0625, 0.0, 0.0, 0.5625])
    np.testing.assert_allclose(sr.keys_cubic(t, -0.75), [keys_reference(v, -0.75) for v in t])


@pytest.mark.parametrize("s", [2, 3, 4, 5, 8, 16])
def test_kernel_matches_keys_formula_and_sums_to_one(s):
    kernel = sr.bicubic_kernel(s)
    assert kernel.shape == (4 * s + s % 2,) * 2
    np.testing.assert_allclose(kernel, reference_kernel(s), rtol=1e-12, atol=1e-15)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1])


@pytest.mark.parametrize("s,shape", [(2, (12, 10, 2)), (3, (12, 9, 1)), (4, (16, 24, 3))])
def test_forward_matches_zero_padded_strided_correlation(s, shape):
    A = get("super_resolution", image_shape=shape, factor=s, dtype=tf.float64)
    x = np.random.default_rng(0).random((2,) + shape)
    y = A(x).numpy()
    assert y.shape == (2, shape[0] // s, shape[1] // s, shape[2])
    np.testing.assert_allclose(y, reference_downscale(x, s), rtol=1e-10, atol=1e-12)


def test_constant_image_keeps_its_value_away_from_the_border():
    s, size = 4, 64
    A = get("super_resolution", image_shape=(size, size, 1), factor=s)
    y = A(np.full((1, size, size, 1), 0.7, np.float32)).numpy()[0, :, :, 0]
    pad = (4 * s - s) // 2
    # Outputs whose kernel support lies inside the image.
    inner = [i for i in range(size // s) if i * s - pad >= 0 and i * s - pad + 4 * s <= size]
    np.testing.assert_allclose(y[np.ix_(inner, inner)], 0.7, rtol=1e-6)
    # The zero padding changes the first row of outputs (as in the original).
    assert abs(y[0, 5] - 0.7) > 1e-3


@pytest.mark.parametrize("s", [2, 4, 8])
def test_adjoint_identity_float64(s):
    A = get("super_resolution", image_shape=(24, 16, 2), factor=s, dtype=tf.float64)
    x = A.random_input(3, seed=1)
    y = A.random_measurement(3, seed=2)
    lhs = float(tf.reduce_sum(A(x) * y))
    rhs = float(tf.reduce_sum(x * A.adjoint(y)))
    assert abs(lhs - rhs) <= 1e-12 * np.linalg.norm(A(x)) * np.linalg.norm(y)


def test_adjoint_and_pinv_match_dense_matrix():
    shape, s = (12, 8, 1), 2
    A = get("super_resolution", image_shape=shape, factor=s, dtype=tf.float64)
    matrix = dense_matrix(lambda b: reference_downscale(b, s), shape)
    y = A.random_measurement(2, seed=3).numpy()
    flat_y = y.reshape(2, -1)
    np.testing.assert_allclose(A.adjoint(y).numpy().reshape(2, -1), flat_y @ matrix, atol=1e-12)
    np.testing.assert_allclose(
        A.pinv(y).numpy().reshape(2, -1), flat_y @ np.linalg.pinv(matrix).T, rtol=1e-8, atol=1e-10
    )


@pytest.mark.parametrize("s", [2, 3, 4, 8])
def test_pinv_reproduces_measurements_and_agrees_with_conjugate_gradients(s):
    A = get("super_resolution", image_shape=(48, 24, 3), factor=s)
    y = A(A.random_input(2, seed=4))
    x_dag = A.pinv(y)
    assert rel(A(x_dag), y) < 1e-4
    x_cg = LinearOperator._pinv(A, y)  # the generic CG pseudo-inverse on A A^T
    assert rel(x_dag, x_cg) < 1e-3


def test_bicubic_upsample_matches_opencv_inter_cubic():
    # OpenCV's INTER_CUBIC is PyTorch's bicubic: a = -0.75, edge samples repeated.
    image = np.random.default_rng(5).random((7, 9, 3)).astype(np.float32)
    for factor in (2, 4):
        ours = sr.bicubic_upsample(image[None], factor).numpy()[0]
        theirs = cv2.resize(image, (9 * factor, 7 * factor), interpolation=cv2.INTER_CUBIC)
        np.testing.assert_allclose(ours, theirs, atol=2e-6)


def test_bicubic_upsample_with_keys_half_matches_tf_resize_inside():
    image = np.random.default_rng(6).random((1, 12, 12, 1))
    ours = sr.bicubic_upsample(image, 4, a=-0.5).numpy()[0, 8:-8, 8:-8]
    theirs = tf.image.resize(image, (48, 48), method="bicubic").numpy()[0, 8:-8, 8:-8]
    np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_operator_bicubic_upsample_is_an_approximate_inverse():
    A = get("super_resolution", image_shape=(32, 32, 3), factor=4)
    # A smooth image: the bicubic A-dagger nearly reproduces its measurements.
    rows, cols = np.meshgrid(np.linspace(0, 1, 32), np.linspace(0, 1, 32), indexing="ij")
    smooth = np.stack([np.sin(2 * rows + c) * np.cos(3 * cols) for c in range(3)], -1)[None].astype(np.float32)
    y = A(smooth)
    up = A.bicubic_upsample(y)
    assert up.shape == (1, 32, 32, 3)
    inner = (slice(None), slice(2, -2), slice(2, -2))
    assert rel(A(up).numpy()[inner], y.numpy()[inner]) < 0.05
    # ... but unlike the exact pinv it does not reproduce the measurements of a rough image.
    y_noise = A(A.random_input(1, seed=11))
    assert rel(A(A.bicubic_upsample(y_noise)), y_noise) > 0.1
    with pytest.raises(ValueError, match=r"\[batch, 8, 8, 3\]"):
        A.bicubic_upsample(np.zeros((1, 16, 16, 3), np.float32))


def test_float64_and_gradients():
    A = get("super_resolution", image_shape=(16, 16, 1), factor=4, dtype=tf.float64)
    x = tf.Variable(A.random_input(2, seed=7))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(A(x) ** 2)
    grad = tape.gradient(loss, x)
    assert grad.dtype == tf.float64
    np.testing.assert_allclose(grad.numpy(), 2 * A.adjoint(A(x)).numpy(), rtol=1e-10, atol=1e-12)


def test_bad_factor_and_size_raise():
    with pytest.raises(ValueError, match="divisible"):
        get("super_resolution", image_shape=(30, 32, 3), factor=4)
    for factor in (1, 17, 2.5):
        with pytest.raises(ValueError, match="factor"):
            get("super_resolution", image_shape=(32, 32, 3), factor=factor)
    with pytest.raises(ValueError, match="divisible"):
        get("decimate", image_shape=(9, 8, 1), factor=2)
    with pytest.raises(ValueError, match="offset"):
        get("decimate", image_shape=(8, 8, 1), factor=2, offset=2)


@pytest.mark.parametrize("factor,offset", [(2, 0), (2, 1), (3, 2), (4, 1)])
def test_decimate_selects_pixels_and_its_pinv_inserts_zeros(factor, offset):
    shape = (12, 24, 2)
    A = get("decimate", image_shape=shape, factor=factor, offset=offset, dtype=tf.float64)
    x = A.random_input(2, seed=8).numpy()
    np.testing.assert_array_equal(A(x).numpy(), x[:, offset::factor, offset::factor])
    y = A.random_measurement(2, seed=9).numpy()
    expected = np.zeros((2,) + shape)
    expected[:, offset::factor, offset::factor] = y
    np.testing.assert_array_equal(A.adjoint(y).numpy(), expected)
    np.testing.assert_array_equal(A.pinv(y).numpy(), expected)
    np.testing.assert_array_equal(A(A.pinv(y)).numpy(), y)  # A A^T = I


def test_config_rebuilds_the_operator():
    A = get("super_resolution", image_shape=(16, 16, 2), factor=8, kernel_a=-0.75)
    B = A.resample(3)
    assert (B.factor, B.kernel_a, B.out_shape) == (8, -0.75, (2, 2, 2))
    x = A.random_input(1, seed=10)
    np.testing.assert_array_equal(A(x).numpy(), B(x).numpy())
    np.testing.assert_allclose(sr.bicubic_kernel(8, -0.75), reference_kernel(8, -0.75), atol=1e-15)
