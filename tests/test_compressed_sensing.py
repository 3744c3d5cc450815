"""Gaussian compressed sensing: the matrix draw, its products and the closed-form pinv."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import stats

import tfinverse.operators.compressed_sensing as cs
from tfinverse.operators.base import get


def test_entries_are_iid_normal_with_variance_one_over_m():
    A = get("compressed_sensing", image_shape=(32, 32, 3), seed=0, dtype=tf.float64)
    m, n = A.matrix.shape
    assert (m, n) == (307, 3072) and A.out_shape == (307,)  # default ratio 0.1
    entries = A.matrix.numpy().ravel()
    count = entries.size
    # Mean and variance within 5 standard errors of N(0, 1/m).
    assert abs(entries.mean()) < 5 * np.sqrt(1.0 / m / count)
    assert abs(entries.var() * m - 1.0) < 5 * np.sqrt(2.0 / count)
    assert stats.kstest(entries * np.sqrt(m), "norm").pvalue > 1e-3
    # Independent rows: their correlations are O(1/sqrt(n)).
    corr = np.corrcoef(A.matrix.numpy()[:50])
    assert np.abs(corr[~np.eye(50, dtype=bool)]).max() < 6 / np.sqrt(n)


def test_measurement_count_from_m_or_ratio():
    assert get("compressed_sensing", image_shape=(16, 16, 1), seed=0, m=40).out_shape == (40,)
    assert get("compressed_sensing", image_shape=(16, 16, 1), seed=0, ratio=0.25).m == 64
    assert get("compressed_sensing", image_shape=(16, 16, 1), seed=0, ratio=1e-6).m == 1
    with pytest.raises(ValueError, match="either m or ratio"):
        get("compressed_sensing", image_shape=(16, 16, 1), seed=0, m=10, ratio=0.1)
    for bad in (0, -3, 2.5):
        with pytest.raises(ValueError, match="m must be"):
            get("compressed_sensing", image_shape=(16, 16, 1), seed=0, m=bad)
    with pytest.raises(ValueError, match="ratio"):
        get("compressed_sensing", image_shape=(16, 16, 1), seed=0, ratio=0.0)
    with pytest.raises(ValueError, match="seed"):
        get("compressed_sensing", image_shape=(16, 16, 1))


def test_forward_and_adjoint_are_matrix_products_on_the_row_major_flattening():
    A = get("compressed_sensing", image_shape=(6, 5, 3), seed=1, m=30, dtype=tf.float64)
    matrix = A.matrix.numpy()
    x = A.random_input(2, seed=2).numpy()
    y = A.random_measurement(2, seed=3).numpy()
    np.testing.assert_allclose(A(x).numpy(), x.reshape(2, -1) @ matrix.T, rtol=1e-12)
    np.testing.assert_allclose(A.adjoint(y).numpy(), (y @ matrix).reshape(x.shape), rtol=1e-12)
    # Normalised so that E ||A x||^2 = ||x||^2: the average of ||A e_j||^2 over columns is 1.
    assert np.mean(np.sum(matrix**2, axis=0)) == pytest.approx(1.0, abs=0.15)


@pytest.mark.parametrize("m", [20, 64, 100])  # m < n, m = n and m > n for n = 64
def test_pinv_matches_numpy_pinv(m):
    A = get("compressed_sensing", image_shape=(8, 8, 1), seed=4, m=m, dtype=tf.float64)
    y = A.random_measurement(3, seed=5).numpy() if m <= 64 else A(A.random_input(3, seed=5)).numpy()
    expected = y @ np.linalg.pinv(A.matrix.numpy()).T
    np.testing.assert_allclose(A.pinv(y).numpy().reshape(3, -1), expected, rtol=1e-9, atol=1e-11)


def test_pinv_float32_first_called_inside_tf_function():
    A = get("compressed_sensing", image_shape=(16, 16, 1), seed=6, ratio=0.5)
    y = A(A.random_input(4, seed=7))
    traced = tf.function(A.pinv)(y)  # the Cholesky factor is built while tracing
    eager = A.pinv(y)
    np.testing.assert_allclose(traced.numpy(), eager.numpy(), rtol=1e-5, atol=1e-6)
    expected = y.numpy().astype(np.float64) @ np.linalg.pinv(A.matrix.numpy().astype(np.float64)).T
    np.testing.assert_allclose(eager.numpy().reshape(4, -1), expected, rtol=1e-3, atol=1e-4)
    assert np.linalg.norm(A(eager) - y) / np.linalg.norm(y) < 1e-4


def test_pinv_falls_back_to_conjugate_gradients_when_the_gram_factor_is_too_big():
    # A 48 x 64 float32 matrix takes 12,288 bytes; its float64 Gram factor 18,432.
    A = get("compressed_sensing", image_shape=(8, 8, 1), seed=8, m=48, max_matrix_bytes=15_000)
    y = A(A.random_input(2, seed=9))
    x_dag = A.pinv(y)
    assert A._gram_cholesky() is None
    expected = y.numpy().astype(np.float64) @ np.linalg.pinv(A.matrix.numpy().astype(np.float64)).T
    np.testing.assert_allclose(x_dag.numpy().reshape(2, -1), expected, rtol=1e-3, atol=1e-4)


def test_matrix_too_big_raises_with_its_size_in_gb_and_the_image_size():
    # The paper's 128 x 128 x 3 image at m/n = 0.5: checked before anything is drawn.
    with pytest.raises(ValueError) as error:
        get("compressed_sensing", image_shape=(128, 128, 3), seed=0, ratio=0.5)
    message = str(error.value)
    for part in ("24576 x 49152", "float32", "4.8 GB", "128x128x3", "max_matrix_bytes", "m = 10922"):
        assert part in message, message
    with pytest.raises(ValueError, match="0.0 GB for a 8x8x1 image"):
        get("compressed_sensing", image_shape=(8, 8, 1), seed=0, m=10, max_matrix_bytes=1000)
    assert cs.DEFAULT_MAX_MATRIX_BYTES == 2 * 1024**3


def test_seeded_draws_are_reproducible_across_dtypes_and_resample_changes_them():
    a32 = get("compressed_sensing", image_shape=(8, 8, 2), seed=11)
    a64 = get("compressed_sensing", image_shape=(8, 8, 2), seed=11, dtype=tf.float64)
    np.testing.assert_allclose(a32.matrix.numpy(), a64.matrix.numpy(), rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(a32.matrix.numpy(), get("compressed_sensing", image_shape=(8, 8, 2), seed=11).matrix.numpy())
    b = a32.resample(12)
    assert b.m == a32.m and not np.allclose(b.matrix.numpy(), a32.matrix.numpy())
    np.testing.assert_array_equal(b.matrix.numpy(), get("compressed_sensing", image_shape=(8, 8, 2), seed=12).matrix.numpy())
