"""FusedBatchNormalization against keras.layers.BatchNormalization, the reference it replaces."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfinverse.models.layers import FusedBatchNormalization


def pair(**kwargs):
    """A Keras BN and a fused BN with the same (non-trivial) weights."""
    reference, fused = keras.layers.BatchNormalization(**kwargs), FusedBatchNormalization(**kwargs)
    shape = (2, 6, 5, 4)
    reference.build(shape)
    fused.build(shape)
    rng = np.random.default_rng(0)
    for layer in (reference, fused):
        for variable, value in zip(layer.weights, [rng.uniform(0.5, 1.5, 4), rng.normal(size=4),
                                                   rng.normal(size=4), rng.uniform(0.5, 2.0, 4)]):
            variable.assign(value.astype(np.float32))
        rng = np.random.default_rng(0)  # the same values for both layers
    return reference, fused


@pytest.mark.parametrize("center, scale", [(True, True), (False, False), (True, False)])
def test_training_and_inference_outputs_and_moving_statistics_match_keras(center, scale):
    reference, fused = pair(momentum=0.9, epsilon=1e-3, center=center, scale=scale)
    rng = np.random.default_rng(1)
    for step in range(4):
        x = tf.constant(rng.normal(2.0, 3.0, (3, 6, 5, 4)).astype(np.float32))
        np.testing.assert_allclose(fused(x, training=True), reference(x, training=True), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fused.moving_mean, reference.moving_mean, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fused.moving_variance, reference.moving_variance, rtol=1e-5)
    x = tf.constant(rng.normal(size=(2, 6, 5, 4)).astype(np.float32))
    np.testing.assert_allclose(fused(x, training=False), reference(x, training=False), rtol=1e-5, atol=1e-5)


def test_moving_variance_is_the_biased_batch_variance_unless_asked():
    x = np.random.default_rng(2).normal(size=(2, 3, 3, 2)).astype(np.float32)
    biased = x.var(axis=(0, 1, 2))
    for unbiased, expected in ((False, biased), (True, biased * 18 / 17)):
        layer = FusedBatchNormalization(momentum=0.0, unbiased_moving_variance=unbiased)
        layer(tf.constant(x), training=True)
        np.testing.assert_allclose(layer.moving_variance, expected, rtol=1e-5)
        np.testing.assert_allclose(layer.moving_mean, x.mean(axis=(0, 1, 2)), rtol=1e-5, atol=1e-6)


def test_gradients_match_keras():
    reference, fused = pair()
    x = tf.constant(np.random.default_rng(3).normal(size=(2, 6, 5, 4)).astype(np.float32))
    weights = tf.constant(np.random.default_rng(4).normal(size=(2, 6, 5, 4)).astype(np.float32))
    gradients = []
    for layer in (reference, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=True) * weights)
        gradients.append(tape.gradient(loss, [x, layer.gamma, layer.beta]))
    for got, expected in zip(gradients[1], gradients[0]):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)


def test_bfloat16_policy_stays_close_to_float32_and_keeps_float32_variables():
    x = tf.constant(np.random.default_rng(5).normal(size=(4, 8, 8, 4)).astype(np.float32))
    expected = keras.layers.BatchNormalization()(x, training=True)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        layer = FusedBatchNormalization()
        out = layer(tf.cast(x, tf.bfloat16), training=True)
    finally:
        keras.mixed_precision.set_global_policy(previous)
    assert out.dtype == tf.bfloat16 and layer.moving_mean.dtype == "float32"
    np.testing.assert_allclose(tf.cast(out, tf.float32), expected, atol=0.05)  # bfloat16 has 8 mantissa bits


def test_other_ranks_fall_back_to_keras_and_the_layer_serialises():
    reference, fused = keras.layers.BatchNormalization(), FusedBatchNormalization()
    x = tf.constant(np.random.default_rng(6).normal(size=(5, 3)).astype(np.float32))
    np.testing.assert_allclose(fused(x, training=True), reference(x, training=True), rtol=1e-5, atol=1e-6)
    clone = FusedBatchNormalization.from_config(FusedBatchNormalization(unbiased_moving_variance=True,
                                                                        momentum=0.5).get_config())
    assert clone.unbiased_moving_variance and clone.momentum == 0.5
    model = keras.Sequential([keras.Input((4, 4, 2)), FusedBatchNormalization()])
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert isinstance(restored.layers[0], FusedBatchNormalization)
