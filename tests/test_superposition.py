"""Superposition (igan's mixing model) against numpy and its explicit matrix."""

import numpy as np
import pytest
import tensorflow as tf

import tfinverse.operators.superposition  # noqa: F401  (registers the operator)
from tfinverse.operators.base import get
from tfinverse.operators.superposition import Superposition, split_sources, stack_sources


def _sources(n, shape, seed=0, dtype=np.float32):
    rng = np.random.default_rng(seed)
    return [rng.uniform(size=(2,) + shape).astype(dtype) for _ in range(n)]


def test_default_is_the_unit_weight_sum_of_two_images():
    operator = get("superposition", image_shape=(32, 32, 3), seed=0)
    assert operator.in_shape == (32, 32, 6) and operator.out_shape == (32, 32, 3)
    mnist_like, cifar_like = _sources(2, (32, 32, 3))
    mixture = operator(stack_sources([mnist_like, cifar_like])).numpy()
    np.testing.assert_allclose(mixture, mnist_like + cifar_like, rtol=1e-6)


@pytest.mark.parametrize("weights", [(0.3, 1.7), (1.0, -0.5, 2.0), (0.8,)])
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_forward_adjoint_pinv_against_numpy(weights, dtype):
    shape = (6, 5, 2)
    operator = Superposition(shape, dtype, weights=weights)
    sources = _sources(len(weights), shape, dtype=dtype.as_numpy_dtype)
    x = stack_sources(sources)
    np.testing.assert_allclose(operator(x).numpy(), sum(w * s for w, s in zip(weights, sources)), rtol=1e-6)
    y = np.random.default_rng(1).standard_normal((2,) + shape).astype(dtype.as_numpy_dtype)
    adjoint = operator.adjoint(y).numpy()
    np.testing.assert_allclose(adjoint, np.concatenate([w * y for w in weights], axis=-1), rtol=1e-6)
    # Explicit matrix: per pixel, the C x nC block [w_1 I, ..., w_n I].
    matrix = np.kron(np.eye(shape[0] * shape[1]), np.kron(np.asarray(weights)[None, :], np.eye(shape[2])))
    np.testing.assert_allclose(
        operator(x).numpy().reshape(2, -1), x.numpy().reshape(2, -1) @ matrix.T, rtol=1e-5, atol=1e-6
    )
    reference = y.reshape(2, -1) @ np.linalg.pinv(matrix).T
    np.testing.assert_allclose(operator.pinv(y).numpy().reshape(2, -1), reference, rtol=1e-5, atol=1e-6)


def test_stack_and_split_are_inverse():
    sources = _sources(3, (8, 4, 2))
    stacked = stack_sources(sources)
    assert stacked.shape == (2, 8, 4, 6)
    np.testing.assert_array_equal(stacked.numpy()[..., 2:4], sources[1])  # source i in channels [iC, (i+1)C)
    for original, recovered in zip(sources, split_sources(stacked, 3)):
        np.testing.assert_array_equal(recovered.numpy(), original)
    operator = Superposition((8, 4, 2), weights=(1.0, 2.0, 3.0))
    assert [s.shape for s in operator.split(stacked)] == [(2, 8, 4, 2)] * 3


def test_back_projection_fits_the_mixture():
    operator = get("superposition", image_shape=(16, 16, 1), weights=(1.0, 0.5))
    first, second = _sources(2, (16, 16, 1), seed=3)
    mixture = operator(stack_sources([first, second]))
    estimate = stack_sources([second, first])  # wrong assignment
    corrected = operator.back_project(estimate, mixture)
    np.testing.assert_allclose(operator(corrected).numpy(), mixture.numpy(), rtol=1e-5, atol=1e-6)
    # The correction lies in the row space: it is w * r / |w|^2 for the residual r.
    residual = mixture.numpy() - operator(estimate).numpy()
    expected = estimate.numpy() + np.concatenate([residual, 0.5 * residual], axis=-1) / 1.25
    np.testing.assert_allclose(corrected.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_inside_tf_function_and_gradients():
    operator = get("superposition", image_shape=(16, 16, 3), weights=(2.0, -1.0))

    @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 6], tf.float32)])
    def mix(batch):
        return operator(batch)

    x = operator.random_input(4, 0)
    np.testing.assert_allclose(mix(x).numpy(), operator(x).numpy(), rtol=1e-6)
    variable = tf.Variable(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(operator(variable))
    gradient = tape.gradient(loss, variable).numpy()
    np.testing.assert_array_equal(gradient[..., :3], 2.0)
    np.testing.assert_array_equal(gradient[..., 3:], -1.0)


def test_config_round_trip():
    operator = get("superposition", image_shape=(24, 16, 2), weights=(0.25, 0.75, 1.0))
    rebuilt = operator.resample(5)
    assert rebuilt.weights == (0.25, 0.75, 1.0) and rebuilt.in_shape == (24, 16, 6)


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="weights"):
        Superposition((8, 8, 1), weights=())
    with pytest.raises(ValueError, match="weights"):
        Superposition((8, 8, 1), weights=(0.0, 0.0))
    with pytest.raises(ValueError, match="weights"):
        Superposition((8, 8, 1), weights=(1.0, float("inf")))
    with pytest.raises(ValueError, match="at least one"):
        stack_sources([])
    with pytest.raises(ValueError, match="shape"):
        stack_sources([np.zeros((1, 8, 8, 1), np.float32), np.zeros((1, 8, 8, 3), np.float32)])
    with pytest.raises(ValueError, match=r"n_sources \* C"):
        split_sources(np.zeros((1, 8, 8, 5), np.float32), 2)
    operator = Superposition((8, 8, 1))
    with pytest.raises(ValueError, match=r"\[batch, 8, 8, 2\]"):
        operator(np.zeros((1, 8, 8, 1), np.float32))
    with pytest.raises(ValueError, match=r"\[batch, 8, 8, 1\]"):
        operator.adjoint(np.zeros((1, 8, 8, 2), np.float32))
