"""Subsampled Fourier operator against numpy's orthonormal FFT."""

import numpy as np
import pytest
import tensorflow as tf

import tfinverse.operators.fourier as fourier
from tfinverse.operators.base import get


def numpy_measure(x, mask):
    """The documented layout: [batch, K, C, (re, im)], K in row-major order of the grid."""
    spectrum = np.fft.fft2(x, axes=(1, 2), norm="ortho")  # [B, H, W, C]
    sampled = spectrum.reshape(x.shape[0], -1, x.shape[3])[:, np.flatnonzero(mask)]
    return np.stack([sampled.real, sampled.imag], axis=-1)


def numpy_zero_filled_ifft(y, mask, channels):
    spectrum = np.zeros((y.shape[0], mask.size, channels), complex)
    spectrum[:, np.flatnonzero(mask)] = y[..., 0] + 1j * y[..., 1]
    spectrum = spectrum.reshape((y.shape[0],) + mask.shape + (channels,))
    return np.fft.ifft2(spectrum, axes=(1, 2), norm="ortho").real


def symmetric_by_loop(mask):
    h, w = mask.shape
    return all(mask[i, j] == mask[(-i) % h, (-j) % w] for i in range(h) for j in range(w))


def rel(a, b):
    return np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b))


@pytest.mark.parametrize("mask_type", ["variable_density", "uniform"])
@pytest.mark.parametrize("dtype,tol", [(tf.float32, 1e-5), (tf.float64, 1e-12)])
def test_forward_matches_numpy_fft2_ortho(mask_type, dtype, tol):
    A = get("subsampled_fourier", image_shape=(24, 16, 2), seed=0, mask_type=mask_type, dtype=dtype)
    x = A.random_input(3, seed=1).numpy()
    y = A(x)
    assert y.dtype == dtype and A.out_shape == (A.num_frequencies, 2, 2)
    np.testing.assert_allclose(y.numpy(), numpy_measure(x, A.mask), atol=tol * 10, rtol=0)
    assert rel(y.numpy(), numpy_measure(x, A.mask)) < tol


def test_parseval_with_all_ones_mask():
    # Storing Re and Im of every coefficient: ||A x||^2 = sum |X_k|^2 = ||x||^2, A^T A = I.
    A = get("subsampled_fourier", image_shape=(12, 10, 3), mask=np.ones((12, 10)), dtype=tf.float64)
    x = A.random_input(2, seed=2)
    y = A(x)
    np.testing.assert_allclose(
        np.linalg.norm(y.numpy().reshape(2, -1), axis=1), np.linalg.norm(x.numpy().reshape(2, -1), axis=1), rtol=1e-12
    )
    np.testing.assert_allclose(A.adjoint(y).numpy(), x.numpy(), atol=1e-12)
    # A A^T is not the identity: Re/Im of k and -k are redundant, Im at k = 0 is always 0.
    assert np.allclose(y.numpy()[:, 0, :, 1], 0.0)


@pytest.mark.parametrize("mask_type,extra", [("variable_density", 3), ("uniform", 1)])
@pytest.mark.parametrize("height,width", [(32, 32), (24, 16), (15, 9), (64, 48)])
@pytest.mark.parametrize("ratio", [0.1, 0.3, 0.5, 0.9])
def test_generated_masks_reach_the_ratio_and_are_conjugate_symmetric(mask_type, extra, height, width, ratio):
    A = get("subsampled_fourier", image_shape=(height, width, 1), seed=3, ratio=ratio, mask_type=mask_type)
    target = round(ratio * height * width)
    assert target <= A.num_frequencies <= target + extra
    assert A.sampling_ratio == pytest.approx(A.num_frequencies / (height * width))
    assert A.mask.sum() == A.num_frequencies
    assert symmetric_by_loop(A.mask) and A.symmetric


def test_variable_density_is_dense_at_low_frequencies():
    A = get("subsampled_fourier", image_shape=(128, 128, 1), seed=4, ratio=0.3)
    shifted = A.mask_image()
    assert shifted.dtype == np.float32 and set(np.unique(shifted)) == {0.0, 1.0}
    np.testing.assert_array_equal(shifted, np.fft.fftshift(A.mask.astype(np.float32)))
    assert A.mask[0, 0] and shifted[64, 64] == 1.0  # zero frequency, shown in the centre
    centre = shifted[48:80, 48:80].mean()
    outside = (shifted.sum() - shifted[48:80, 48:80].sum()) / (128 * 128 - 32 * 32)
    assert centre > 0.6 and outside < 0.3 * centre
    # The uniform mask has no such concentration.
    U = get("subsampled_fourier", image_shape=(128, 128, 1), seed=4, ratio=0.3, mask_type="uniform")
    assert abs(U.mask_image()[48:80, 48:80].mean() - 0.3) < 0.06


@pytest.mark.parametrize("mask_type", ["variable_density", "uniform"])
def test_pinv_is_the_zero_filled_ifft_for_symmetric_masks(mask_type):
    A = get("subsampled_fourier", image_shape=(16, 24, 2), seed=5, mask_type=mask_type, dtype=tf.float64)
    y = A(A.random_input(2, seed=6)).numpy()
    expected = numpy_zero_filled_ifft(y, A.mask, 2)
    np.testing.assert_allclose(A.pinv(y).numpy(), expected, atol=1e-12)
    np.testing.assert_allclose(fourier.zero_filled_ifft(A, y).numpy(), expected, atol=1e-12)
    # For a symmetric mask A^T A is an orthogonal projector, so the pseudo-inverse is A^T.
    x = A.random_input(2, seed=7)
    projected = A.adjoint(A(x))
    np.testing.assert_allclose(A.adjoint(A(projected)).numpy(), projected.numpy(), atol=1e-12)
    # ... and it matches numpy's pseudo-inverse of the dense matrix (any y, not only the range).
    B = get("subsampled_fourier", image_shape=(6, 8, 1), seed=5, mask_type=mask_type, dtype=tf.float64)
    matrix = B(np.eye(48).reshape(48, 6, 8, 1)).numpy().reshape(48, -1).T
    y_any = B.random_measurement(2, seed=8).numpy()
    np.testing.assert_allclose(
        B.pinv(y_any).numpy().reshape(2, -1), y_any.reshape(2, -1) @ np.linalg.pinv(matrix).T, atol=1e-10
    )


def test_explicit_non_symmetric_mask_uses_conjugate_gradients():
    mask = np.random.default_rng(9).random((8, 8)) < 0.4
    assert not symmetric_by_loop(mask) and not fourier.is_conjugate_symmetric(mask)
    A = get("subsampled_fourier", image_shape=(8, 8, 1), mask=mask, dtype=tf.float64)
    assert not A.symmetric and not A.random  # an explicit mask draws nothing, needs no seed
    y = A(A.random_input(2, seed=10)).numpy()
    matrix = A(np.eye(64).reshape(64, 8, 8, 1)).numpy().reshape(64, -1).T
    expected = y.reshape(2, -1) @ np.linalg.pinv(matrix).T
    np.testing.assert_allclose(A.pinv(y).numpy().reshape(2, -1), expected, atol=1e-8)
    # The zero-filled IFFT is then only the adjoint, not the pseudo-inverse.
    assert rel(fourier.zero_filled_ifft(A, y).numpy().reshape(2, -1), expected) > 1e-2
    np.testing.assert_array_equal(A.resample(1).mask, mask)


def test_adjoint_and_gradients_in_float32():
    A = get("subsampled_fourier", image_shape=(32, 32, 3), seed=11, ratio=0.5)
    x = tf.Variable(A.random_input(2, seed=12))
    y = A.random_measurement(2, seed=13)
    lhs = float(tf.reduce_sum(tf.cast(A(x), tf.float64) * tf.cast(y, tf.float64)))
    rhs = float(tf.reduce_sum(tf.cast(x, tf.float64) * tf.cast(A.adjoint(y), tf.float64)))
    assert abs(lhs - rhs) <= 1e-5 * np.linalg.norm(A(x)) * np.linalg.norm(y)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(A(x) - y))
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), 2 * A.adjoint(A(x) - y).numpy(), atol=1e-4)


def test_seeds_and_bad_arguments():
    masks = [get("subsampled_fourier", image_shape=(32, 32, 1), seed=s).mask for s in (0, 0, 1)]
    np.testing.assert_array_equal(masks[0], masks[1])
    assert not np.array_equal(masks[0], masks[2])
    with pytest.raises(ValueError, match="seed"):
        get("subsampled_fourier", image_shape=(32, 32, 1))
    with pytest.raises(ValueError, match=r"\(8, 8\)"):
        get("subsampled_fourier", image_shape=(8, 8, 1), mask=np.ones((8, 9)))
    with pytest.raises(ValueError, match="no frequency"):
        get("subsampled_fourier", image_shape=(8, 8, 1), mask=np.zeros((8, 8)))
    with pytest.raises(ValueError, match="mask_type"):
        get("subsampled_fourier", image_shape=(8, 8, 1), seed=0, mask_type="radial")
    for ratio in (0.0, 1.5):
        with pytest.raises(ValueError, match="ratio"):
            get("subsampled_fourier", image_shape=(8, 8, 1), seed=0, ratio=ratio)
    with pytest.raises(ValueError, match=r"\[batch, 4, 1, 2\]"):
        A = get("subsampled_fourier", image_shape=(8, 8, 1), mask=_four_ones())
        A.pinv(np.zeros((1, 5, 1, 2), np.float32))


def _four_ones():
    mask = np.zeros((8, 8))
    mask[0, 0] = mask[0, 4] = mask[4, 0] = mask[4, 4] = 1  # self-conjugate frequencies
    return mask
