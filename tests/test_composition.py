"""Composition of operators: chained forward, reversed adjoints, CG pseudo-inverse."""

import numpy as np
import pytest
import tensorflow as tf
from scipy import ndimage

import tfinverse.operators.blur  # noqa: F401  (registers blur_gaussian)
import tfinverse.operators.compressed_sensing  # noqa: F401
import tfinverse.operators.fourier  # noqa: F401
import tfinverse.operators.super_resolution  # noqa: F401
from tfinverse.operators.base import get
from tfinverse.operators.composition import Composition, NamedComposition, part_seed


def dense_matrix(op):
    """Matrix of a float64 operator, by applying it to every basis image."""
    n = int(np.prod(op.in_shape))
    basis = np.eye(n).reshape((n,) + tuple(op.in_shape))
    return op(basis).numpy().reshape(n, -1).T


def rel(a, b):
    return np.linalg.norm(np.asarray(a) - np.asarray(b)) / np.linalg.norm(np.asarray(b))


@pytest.mark.parametrize("last", ["subsampled_fourier", "compressed_sensing"])
def test_chain_of_own_operators_equals_the_product_of_dense_matrices(last):
    sr = get("super_resolution", image_shape=(16, 8, 2), factor=2, dtype=tf.float64)
    dec = get("decimate", image_shape=(8, 4, 2), factor=2, offset=1, dtype=tf.float64)
    end = get(last, image_shape=(4, 2, 2), seed=1, ratio=0.5, dtype=tf.float64)
    A = Composition([sr, dec, end])
    assert A.in_shape == (16, 8, 2) and A.out_shape == end.out_shape
    matrix = dense_matrix(end) @ dense_matrix(dec) @ dense_matrix(sr)
    x = A.random_input(3, seed=2).numpy()
    y = A.random_measurement(3, seed=3).numpy()
    np.testing.assert_allclose(A(x).numpy().reshape(3, -1), x.reshape(3, -1) @ matrix.T, atol=1e-12)
    np.testing.assert_allclose(A.adjoint(y).numpy().reshape(3, -1), y.reshape(3, -1) @ matrix, atol=1e-12)
    y_range = A(x).numpy()
    expected = y_range.reshape(3, -1) @ np.linalg.pinv(matrix).T
    assert rel(A.pinv(y_range).numpy().reshape(3, -1), expected) < 1e-5


def test_default_is_gaussian_blur_then_decimation_by_two():
    A = get("composition", image_shape=(24, 16, 2), dtype=tf.float64)
    assert [op.name for op in A.operators] == ["blur_gaussian", "decimate"]
    assert A.operators[1].factor == 2 and A.out_shape == (12, 8, 2)
    # Independent reference: circular Gaussian blur (the blur's default boundary), every
    # second pixel.
    blur = A.operators[0]
    sigma, size = blur.sigma, blur.kernel_size[0]
    offsets = np.arange(size) - size // 2
    kernel = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * sigma**2))
    kernel /= kernel.sum()
    x = A.random_input(2, seed=4).numpy()
    blurred = np.stack(
        [[ndimage.convolve(x[b, :, :, c], kernel, mode="wrap") for c in range(2)] for b in range(2)]
    ).transpose(0, 2, 3, 1)
    np.testing.assert_allclose(A(x).numpy(), blurred[:, ::2, ::2], atol=1e-12)


def test_composite_adjoint_is_the_reversed_product_of_the_parts_adjoints():
    A = get("composition", image_shape=(32, 32, 3))
    blur = get("blur_gaussian", image_shape=(32, 32, 3))
    dec = get("decimate", image_shape=(32, 32, 3), factor=2)
    y = A.random_measurement(2, seed=5)
    np.testing.assert_allclose(A.adjoint(y).numpy(), blur.adjoint(dec.adjoint(y)).numpy(), atol=1e-6)
    x = A.random_input(2, seed=6)
    lhs = float(tf.reduce_sum(tf.cast(A(x), tf.float64) * tf.cast(y, tf.float64)))
    rhs = float(tf.reduce_sum(tf.cast(x, tf.float64) * tf.cast(A.adjoint(y), tf.float64)))
    assert abs(lhs - rhs) <= 1e-5 * np.linalg.norm(A(x)) * np.linalg.norm(y)


def test_pinv_by_conjugate_gradients_reproduces_measurements():
    A = get("composition", image_shape=(32, 32, 3))
    y = A(A.random_input(2, seed=7))
    x_dag = tf.function(A.pinv)(y)
    assert rel(A(x_dag).numpy(), y.numpy()) < 1e-4
    # The product of the parts' pseudo-inverses is a different (not minimum-norm) solution.
    naive = A.operators[0].pinv(A.operators[1].pinv(y))
    assert np.linalg.norm(x_dag) < np.linalg.norm(naive)


def test_steps_by_name_with_random_parts_and_derived_seeds():
    steps = [("super_resolution", {"factor": 2}), ("compressed_sensing", {"m": 20})]
    A = get("composition", image_shape=(8, 8, 1), steps=steps, seed=5)
    assert A.random and A.out_shape == (20,)
    cs = A.operators[1]
    assert cs.seed == part_seed(5, 1)
    np.testing.assert_array_equal(
        cs.matrix.numpy(), get("compressed_sensing", image_shape=(4, 4, 1), m=20, seed=part_seed(5, 1)).matrix.numpy()
    )
    same = get("composition", image_shape=(8, 8, 1), steps=steps, seed=5)
    np.testing.assert_array_equal(same.operators[1].matrix.numpy(), cs.matrix.numpy())
    other = A.resample(6)
    assert isinstance(other, NamedComposition) and other.seed == 6
    assert not np.allclose(other.operators[1].matrix.numpy(), cs.matrix.numpy())
    # A general Composition resamples its random parts with the same derived seeds.
    general = Composition(A.operators).resample(6)
    np.testing.assert_array_equal(general.operators[1].matrix.numpy(), other.operators[1].matrix.numpy())
    with pytest.raises(ValueError, match="seed"):
        get("composition", image_shape=(8, 8, 1), steps=steps)
    assert len({part_seed(0, i) for i in range(10)} | {part_seed(1, i) for i in range(10)}) == 20


def test_invalid_chains_raise():
    sr = get("super_resolution", image_shape=(16, 16, 1), factor=2)
    with pytest.raises(ValueError, match=r"takes shape \(16, 16, 1\).*outputs shape \(8, 8, 1\)"):
        Composition([sr, sr])
    with pytest.raises(ValueError, match="dtype"):
        Composition([sr, get("decimate", image_shape=(8, 8, 1), dtype=tf.float64)])
    with pytest.raises(ValueError, match="at least one"):
        Composition([])
    with pytest.raises(ValueError, match="LinearOperator"):
        Composition([sr, "decimate"])
    with pytest.raises(ValueError, match="needs an image input"):
        get("composition", image_shape=(8, 8, 1), seed=0, steps=[("compressed_sensing", {"m": 5}), "decimate"])
    with pytest.raises(ValueError, match="image_shape"):
        get("composition", image_shape=(8, 8, 1), steps=[("decimate", {"image_shape": (8, 8, 1)})])
    with pytest.raises(ValueError, match="steps"):
        get("composition", image_shape=(8, 8, 1), steps="decimate")
    with pytest.raises(KeyError, match="no_such"):
        get("composition", image_shape=(8, 8, 1), steps=["no_such"])
    with pytest.raises(ValueError, match=r"composition: measurement y must have shape \[batch, 4, 4, 1\]"):
        Composition([sr, get("decimate", image_shape=(8, 8, 1))]).adjoint(np.zeros((1, 8, 8, 1), np.float32))
