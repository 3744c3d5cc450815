"""Masking operators: mask statistics, patch geometry, closed forms vs numpy, errors."""

import numpy as np
import pytest
import tensorflow as tf

import tfinverse.operators.inpainting  # noqa: F401  (registers the operators)
from tfinverse.operators.base import get

NAMES = ["drop_independent", "drop_patch", "keep_patch", "random_pixel_mask"]
Z = 5.0  # tolerances in standard errors


def _dense_matrix(operator):
    """The operator as an explicit matrix, built column by column from unit images."""
    size = int(np.prod(operator.in_shape))
    basis = np.eye(size).reshape((size,) + operator.in_shape).astype(operator.dtype.as_numpy_dtype)
    return operator(basis).numpy().reshape(size, -1).T


@pytest.mark.parametrize("per_channel", [True, False])
def test_drop_independent_fraction_matches_p(per_channel):
    p, shape, masks = 0.3, (64, 64, 3), 4
    operator = get("drop_independent", image_shape=shape, seed=1, p=p, rescale=False,
                   per_channel=per_channel, batch_size=masks)
    mask = operator.mask.numpy()
    assert mask.shape == (masks,) + shape
    assert set(np.unique(mask)) <= {0.0, 1.0}
    if not per_channel:
        # Whole pixels are dropped: all channels agree.
        np.testing.assert_array_equal(mask, np.repeat(mask[..., :1], 3, axis=-1))
    draws = mask.size if per_channel else mask[..., 0].size
    dropped = 1.0 - mask.mean()
    assert abs(dropped - p) < Z * np.sqrt(p * (1 - p) / draws)


def test_drop_independent_rescale_preserves_the_mean():
    p, shape, masks = 0.9, (64, 64, 3), 8
    operator = get("drop_independent", image_shape=shape, seed=2, p=p, batch_size=masks)
    mask = operator.mask.numpy()
    kept = mask[mask != 0]
    np.testing.assert_allclose(kept, 1.0 / (1.0 - p), rtol=1e-6)
    image = np.random.default_rng(0).uniform(size=(masks,) + shape).astype(np.float32)
    measured = operator(image).numpy()
    # E[m] = 1 entrywise, Var[m] = p / (1 - p): E[mean(m * x)] = mean(x).
    std_error = np.sqrt(p / (1 - p) * np.mean(image**2) / image.size)
    assert abs(measured.mean() - image.mean()) < Z * std_error


def test_drop_patch_geometry():
    shape, k, masks = (16, 20, 2), 6, 400
    operator = get("drop_patch", image_shape=shape, seed=3, patch_size=k, batch_size=masks)
    mask = operator.mask.numpy()
    corners = []
    for m in mask:
        zero_rows, zero_cols = np.nonzero(m[..., 0] == 0)
        assert zero_rows.size == k * k  # one k x k square, wholly inside the image
        top, left = zero_rows.min(), zero_cols.min()
        assert zero_rows.max() - top == k - 1 and zero_cols.max() - left == k - 1
        np.testing.assert_array_equal(m[..., 1], m[..., 0])  # same patch in every channel
        corners.append((top, left))
    corners = np.array(corners)
    # Corners are uniform over [0, h - k) x [0, w - k): every value occurs, none beyond.
    assert set(corners[:, 0]) == set(range(shape[0] - k))
    assert set(corners[:, 1]) == set(range(shape[1] - k))


def test_keep_patch_is_the_complement_of_drop_patch():
    drop = get("drop_patch", image_shape=(32, 32, 3), seed=9, batch_size=5)
    keep = get("keep_patch", image_shape=(32, 32, 3), seed=9, batch_size=5)
    np.testing.assert_array_equal(keep.mask.numpy(), 1.0 - drop.mask.numpy())
    assert keep.patch_size == 16  # default: half the image side
    assert np.all(keep.mask.numpy().reshape(5, -1).sum(axis=1) == 16 * 16 * 3)


def test_default_patch_size_uses_the_shorter_side():
    assert get("drop_patch", image_shape=(24, 16, 2), seed=0).patch_size == 8


@pytest.mark.parametrize("fraction, shape", [(0.25, (16, 16, 3)), (0.5, (24, 16, 2)), (1.0, (8, 8, 1))])
def test_random_pixel_mask_keeps_the_exact_fraction(fraction, shape):
    operator = get("random_pixel_mask", image_shape=shape, seed=4, keep_fraction=fraction, batch_size=3)
    mask = operator.mask.numpy()
    assert set(np.unique(mask)) <= {0.0, 1.0}
    np.testing.assert_array_equal(mask, np.repeat(mask[..., :1], shape[2], axis=-1))
    per_example = mask[..., 0].reshape(3, -1).sum(axis=1)
    np.testing.assert_array_equal(per_example, round(fraction * shape[0] * shape[1]))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("dtype", [tf.float32, tf.float64])
def test_closed_forms_against_numpy(name, dtype):
    operator = get(name, image_shape=(6, 5, 2), seed=7, dtype=dtype)
    mask = operator.mask.numpy()
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 6, 5, 2)).astype(dtype.as_numpy_dtype)
    y = rng.standard_normal((3, 6, 5, 2)).astype(dtype.as_numpy_dtype)
    np.testing.assert_allclose(operator(x).numpy(), x * mask, rtol=1e-6)
    np.testing.assert_allclose(operator.adjoint(y).numpy(), y * mask, rtol=1e-6)
    reference = np.where(mask != 0, y / np.where(mask != 0, mask, 1.0), 0.0)
    np.testing.assert_allclose(operator.pinv(y).numpy(), reference, rtol=1e-6)
    # The same against the Moore-Penrose inverse of the explicit matrix.
    matrix = _dense_matrix(operator)
    np.testing.assert_allclose(matrix, np.diag(mask.ravel()), rtol=1e-6)
    dense_pinv = np.linalg.pinv(matrix.astype(np.float64))
    np.testing.assert_allclose(
        operator.pinv(y).numpy().reshape(3, -1), y.reshape(3, -1) @ dense_pinv.T, rtol=1e-5, atol=1e-6
    )


@pytest.mark.parametrize("name", NAMES)
def test_adjoint_identity_and_projection(name):
    operator = get(name, image_shape=(16, 16, 3), seed=0)
    x, y = operator.random_input(2, 1), operator.random_measurement(2, 2)
    lhs = tf.reduce_sum(operator(x) * y)
    rhs = tf.reduce_sum(x * operator.adjoint(y))
    np.testing.assert_allclose(lhs.numpy(), rhs.numpy(), rtol=1e-5)
    measured = operator(x)
    np.testing.assert_allclose(operator(operator.pinv(measured)).numpy(), measured.numpy(), rtol=1e-5, atol=1e-6)


def test_per_example_masks_apply_to_matching_examples():
    operator = get("drop_patch", image_shape=(16, 16, 1), seed=5, batch_size=3)
    x = np.ones((3, 16, 16, 1), np.float32)
    np.testing.assert_array_equal(operator(x).numpy(), operator.mask.numpy())
    with pytest.raises(ValueError, match=r"\[3, 16, 16, 1\]"):
        operator(np.ones((2, 16, 16, 1), np.float32))
    with pytest.raises(ValueError, match=r"\[3, 16, 16, 1\]"):
        operator.pinv(np.ones((1, 16, 16, 1), np.float32))

    @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 1], tf.float32)])
    def forward(batch):
        return operator(batch)

    np.testing.assert_array_equal(forward(x).numpy(), operator.mask.numpy())
    with pytest.raises(tf.errors.InvalidArgumentError, match="exactly 3"):
        forward(np.ones((2, 16, 16, 1), np.float32))


def test_shared_mask_inside_tf_function_with_any_batch():
    operator = get("random_pixel_mask", image_shape=(16, 16, 3), seed=6)

    @tf.function(input_signature=[tf.TensorSpec([None, 16, 16, 3], tf.float32)])
    def restore(batch):
        return operator.pinv(operator(batch))

    for batch in (1, 4):
        x = operator.random_input(batch, 0)
        np.testing.assert_allclose(restore(x).numpy(), x.numpy() * operator.mask.numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_seeds_and_resample(name):
    first = get(name, image_shape=(32, 32, 3), seed=11)
    np.testing.assert_array_equal(first.mask.numpy(), get(name, image_shape=(32, 32, 3), seed=11).mask.numpy())
    other = first.resample(12)
    assert not np.array_equal(first.mask.numpy(), other.mask.numpy())
    np.testing.assert_array_equal(other.mask.numpy(), get(name, image_shape=(32, 32, 3), seed=12).mask.numpy())
    assert other.get_config() == {**first.get_config(), "seed": 12}


def test_gradient_is_the_mask():
    operator = get("drop_independent", image_shape=(8, 8, 3), seed=0, p=0.5)
    x = tf.Variable(tf.zeros((2, 8, 8, 3)))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(operator(x))
    np.testing.assert_allclose(tape.gradient(loss, x).numpy(), np.broadcast_to(operator.mask.numpy(), (2, 8, 8, 3)))


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="seed"):
        get("drop_patch", image_shape=(16, 16, 1))
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        get("drop_independent", image_shape=(16, 16, 1), seed=0, p=1.0)
    with pytest.raises(ValueError, match="patch_size"):
        get("drop_patch", image_shape=(16, 16, 1), seed=0, patch_size=16)
    with pytest.raises(ValueError, match="patch_size"):
        get("keep_patch", image_shape=(16, 16, 1), seed=0, patch_size=2.5)
    with pytest.raises(ValueError, match="keep_fraction"):
        get("random_pixel_mask", image_shape=(16, 16, 1), seed=0, keep_fraction=0.0)
    with pytest.raises(ValueError, match="batch_size"):
        get("drop_patch", image_shape=(16, 16, 1), seed=0, batch_size=0)
    operator = get("drop_patch", image_shape=(16, 16, 1), seed=0)
    with pytest.raises(ValueError, match=r"\[batch, 16, 16, 1\]"):
        operator(np.zeros((2, 16, 16, 3), np.float32))
    with pytest.raises(ValueError, match=r"\[batch, 16, 16, 1\]"):
        operator(np.zeros((16, 16, 1), np.float32))
    with pytest.raises(ValueError, match="float32"):
        operator(np.zeros((1, 16, 16, 1), np.float64))
