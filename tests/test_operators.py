"""Properties every registered linear operator must have, parametrised over the registry.

A new operator is covered as soon as it registers: the dot-product adjoint identity,
``A A^+ A = A`` on the range, gradients, ``tf.function`` with a batch, seeded draws, and
input validation.
"""

import numpy as np
import pytest
import tensorflow as tf

import tfinverse.operators as ops

SHAPES = [(32, 32, 3), (16, 16, 1), (24, 16, 2)]
CASES = [(name, shape) for name in ops.available() for shape in SHAPES]
IDS = [f"{name}-{'x'.join(map(str, shape))}" for name, shape in CASES]


def build(name, shape, seed=0, dtype=tf.float32):
    return ops.get(name, image_shape=shape, seed=seed, dtype=dtype)


def rel(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    return np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-30)


def test_registry_lists_the_operator_families():
    names = set(ops.available())
    expected = {
        "identity",
        "drop_independent",
        "drop_patch",
        "keep_patch",
        "random_pixel_mask",
        "blur_uniform",
        "blur_gaussian",
        "super_resolution",
        "compressed_sensing",
        "subsampled_fourier",
        "superposition",
        "composition",
    }
    assert expected <= names, f"missing: {expected - names}"


def test_unknown_name_lists_known_ones():
    with pytest.raises(KeyError, match="identity"):
        ops.get("no_such_operator")


def test_unknown_parameter_lists_the_valid_ones():
    with pytest.raises(KeyError, match=r"unknown parameter 'bogus'.*valid: .*factor"):
        ops.get("super_resolution", image_shape=(16, 16, 1), bogus=3)


@pytest.mark.parametrize("name", ops.available())
def test_pinv_and_back_projection_refuse_nan_and_inf(name):
    A = build(name, (16, 16, 1))
    y = A.random_measurement(2, seed=1).numpy()
    x = A.random_input(2, seed=2).numpy()
    bad_y, bad_x = y.copy(), x.copy()
    bad_y.flat[3] = np.nan
    bad_x.flat[5] = np.inf
    with pytest.raises(ValueError, match="measurement y contains 1 NaN or Inf"):
        A.pinv(bad_y)
    with pytest.raises(ValueError, match="measurement y contains 1 NaN or Inf"):
        A.back_project(x, bad_y)
    with pytest.raises(ValueError, match="estimate x_hat contains 1 NaN or Inf"):
        A.back_project(bad_x, y)
    # Inside tf.function the same check runs with the graph.
    compiled = tf.function(A.pinv)
    with pytest.raises(tf.errors.InvalidArgumentError, match="NaN or Inf"):
        compiled(tf.constant(bad_y))
    np.testing.assert_allclose(compiled(tf.constant(y)).numpy(), A.pinv(y).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name,shape", CASES, ids=IDS)
def test_adjoint_dot_product(name, shape):
    A = build(name, shape)
    x = A.random_input(3, seed=1)
    y = A.random_measurement(3, seed=2)
    lhs = tf.reduce_sum(tf.cast(A(x), tf.float64) * tf.cast(y, tf.float64))
    rhs = tf.reduce_sum(tf.cast(x, tf.float64) * tf.cast(A.adjoint(y), tf.float64))
    scale = float(np.linalg.norm(A(x)) * np.linalg.norm(y))
    assert abs(float(lhs - rhs)) / scale <= 1e-4


@pytest.mark.parametrize("name", ops.available())
def test_adjoint_dot_product_float64(name):
    A = build(name, (16, 16, 1), dtype=tf.float64)
    x = A.random_input(2, seed=1)
    y = A.random_measurement(2, seed=2)
    lhs = float(tf.reduce_sum(A(x) * y))
    rhs = float(tf.reduce_sum(x * A.adjoint(y)))
    assert A(x).dtype == tf.float64
    assert abs(lhs - rhs) / (np.linalg.norm(A(x)) * np.linalg.norm(y)) <= 1e-10


@pytest.mark.parametrize("name,shape", CASES, ids=IDS)
def test_pinv_reproduces_measurements_on_the_range(name, shape):
    A = build(name, shape)
    y = A(A.random_input(2, seed=3))
    assert rel(A(A.pinv(y)), y) < 1e-3


@pytest.mark.parametrize("name", ops.available())
def test_pinv_is_minimum_norm(name):
    """A^+ y lies in the row space (so A^+ A fixes it) and is no longer than any other
    solution of A x = y (here: the x that produced y)."""
    A = build(name, (16, 16, 1))
    x = A.random_input(2, seed=4)
    y = A(x)
    x_dag = A.pinv(y)
    assert np.linalg.norm(x_dag) <= np.linalg.norm(x) * (1 + 1e-3)
    assert rel(A.pinv(A(x_dag)), x_dag) < 1e-3


@pytest.mark.parametrize("name", ops.available())
def test_back_projection_matches_measurements(name):
    A = build(name, (16, 16, 1))
    x = A.random_input(2, seed=5)
    y = A(x)
    x_hat = A.random_input(2, seed=6)
    assert rel(A(A.back_project(x_hat, y)), y) < 1e-3


@pytest.mark.parametrize("name", ops.available())
def test_gradients_reach_the_input(name):
    A = build(name, (16, 16, 1))
    x = tf.Variable(A.random_input(2, seed=7))
    y = A.random_measurement(2, seed=8)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(A(x) - y))
    grad = tape.gradient(loss, x)
    assert grad is not None
    # d/dx ||Ax - y||^2 = 2 A^T (Ax - y): an independent check of the gradient's value.
    expected = 2.0 * A.adjoint(A(x) - y)
    assert rel(grad, expected) < 1e-4


@pytest.mark.parametrize("name", ops.available())
def test_works_in_tf_function_with_a_batch(name):
    A = build(name, (16, 16, 1))

    @tf.function
    def round_trip(x):
        y = A(x)
        return y, A.adjoint(y), A.pinv(y)

    x = A.random_input(4, seed=9)
    y, xa, xd = round_trip(x)
    assert y.shape[0] == 4 and xa.shape == x.shape and xd.shape == x.shape
    np.testing.assert_allclose(y.numpy(), A(x).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(xa.numpy(), A.adjoint(y).numpy(), rtol=1e-4, atol=1e-4)
    # Batch elements are independent: the batched result equals per-example results.
    for i in range(4):
        np.testing.assert_allclose(A(x[i : i + 1]).numpy()[0], y.numpy()[i], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ops.available())
def test_same_seed_same_draw(name):
    x = build(name, (16, 16, 1)).random_input(2, seed=10)
    y1 = build(name, (16, 16, 1), seed=42)(x)
    y2 = build(name, (16, 16, 1), seed=42)(x)
    np.testing.assert_array_equal(y1.numpy(), y2.numpy())
    A = build(name, (16, 16, 1), seed=42)
    if A.random:
        y3 = build(name, (16, 16, 1), seed=43)(x)
        assert not np.array_equal(y1.numpy(), y3.numpy())
        np.testing.assert_array_equal(A.resample(43)(x).numpy(), y3.numpy())
        with pytest.raises(ValueError, match="seed"):
            ops.get(name, image_shape=(16, 16, 1))


@pytest.mark.parametrize("name", ops.available())
def test_bad_input_raises_value_error_naming_the_shape(name):
    A = build(name, (16, 16, 1))
    expected_in = "[batch, " + ", ".join(map(str, A.in_shape)) + "]"
    good = A.random_input(1, seed=0).numpy()
    with pytest.raises(ValueError, match=expected_in.replace("[", r"\[").replace("]", r"\]")):
        A(good[0])  # missing batch axis
    with pytest.raises(ValueError, match="shape"):
        A(np.zeros((1, 15, 16, A.in_shape[-1]), np.float32))
    with pytest.raises(ValueError, match="float32"):
        A(good.astype(np.float64))
    with pytest.raises(ValueError, match="float32"):
        A((good * 255).astype(np.uint8))
    with pytest.raises(ValueError, match="shape"):
        A.adjoint(np.zeros((1, 3, 3, 3), np.float32))
    with pytest.raises(ValueError, match="shape"):
        A.pinv(np.zeros((1,) + tuple(s + 1 for s in A.out_shape), np.float32))


@pytest.mark.parametrize("name", ops.available())
def test_norm_by_power_iteration_bounds_the_gain(name):
    A = build(name, (16, 16, 1))
    norm = A.norm(n_iter=60)
    x = A.random_input(4, seed=11)
    for i in range(4):
        gain = np.linalg.norm(A(x[i : i + 1])) / np.linalg.norm(x[i])
        assert gain <= norm * (1 + 1e-3)


def test_conjugate_gradient_solves_a_spd_system():
    rng = np.random.default_rng(0)
    m = rng.standard_normal((2, 6, 6))
    spd = m @ np.transpose(m, (0, 2, 1)) + 6 * np.eye(6)
    b = rng.standard_normal((2, 6))
    mats = tf.constant(spd)

    u = ops.conjugate_gradient(lambda v: tf.linalg.matvec(mats, v), tf.constant(b), tol=1e-12, max_iter=50)
    np.testing.assert_allclose(u.numpy(), np.linalg.solve(spd, b[..., None])[..., 0], rtol=1e-8)
