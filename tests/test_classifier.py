"""Digit classifier features: learning, feature layout, Frechet ordering, saving, bad input."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfinverse.evaluation.classifier import (
    DEFAULT_CLASSIFIER_PATH,
    FEATURE_LAYER,
    LOGITS_LAYER,
    FeatureExtractor,
    build_digit_classifier,
    frechet_digit_distance,
    load_labelled_mnist5k,
    mnist5k_labels,
    train_digit_classifier,
)

TINY = dict(filters=(8, 16, 16), feature_dim=32, batch_size=32, learning_rate=3e-3)


@pytest.fixture(scope="module")
def digits():
    train_images, train_labels = load_labelled_mnist5k("train")
    test_images, test_labels = load_labelled_mnist5k("test")
    return train_images, train_labels, test_images, test_labels


@pytest.fixture(scope="module")
def tiny_extractor(digits):
    train_images, train_labels, _, _ = digits
    # every other training digit (2000, 200 per class), one epoch: about a second
    model = train_digit_classifier(train_images[::2], train_labels[::2], epochs=1, seed=0, **TINY)
    return FeatureExtractor(model)


def test_mnist5k_labels_follow_the_per_class_split(digits):
    train_labels, test_labels = mnist5k_labels("train"), mnist5k_labels("test")
    assert np.array_equal(np.bincount(train_labels), np.full(10, 400))
    assert np.array_equal(np.bincount(test_labels), np.full(10, 100))
    # the bundled digits are sorted by class, so each split is too
    assert np.all(np.diff(train_labels) >= 0) and np.all(np.diff(test_labels) >= 0)
    assert digits[0].shape == (4000, 28, 28, 1) and digits[2].shape == (1000, 28, 28, 1)
    assert digits[0].dtype == np.float32 and 0.0 <= digits[0].min() and digits[0].max() <= 1.0


def test_tiny_classifier_beats_chance_on_held_out_digits(tiny_extractor, digits):
    _, _, test_images, test_labels = digits
    accuracy = tiny_extractor.accuracy(test_images, test_labels)
    assert accuracy > 0.5  # chance is 0.1
    logits = tiny_extractor.classifier(test_images[:300], training=False).numpy()
    assert np.mean(np.argmax(logits, -1) == test_labels[:300]) == pytest.approx(
        np.mean(tiny_extractor.predict_labels(test_images[:300]) == test_labels[:300])
    )


def test_features_are_the_penultimate_relu_layer(tiny_extractor, digits):
    images = digits[2][::50]
    features = tiny_extractor.features(images, batch_size=7)  # several batches, one partial
    assert features.shape == (20, 32) == (len(images), tiny_extractor.feature_dim)
    assert features.dtype == np.float32 and features.min() >= 0.0
    # the logits are an affine map of these features (dropout is off at inference)
    kernel, bias = tiny_extractor.classifier.get_layer(LOGITS_LAYER).get_weights()
    logits = tiny_extractor.classifier(images, training=False).numpy()
    np.testing.assert_allclose(features @ kernel + bias, logits, rtol=1e-4, atol=1e-4)
    assert tiny_extractor.classifier.get_layer(FEATURE_LAYER).units == 32


def test_features_in_tf_function_equal_eager(tiny_extractor, digits):
    images = tf.constant(digits[2][:16])
    compiled = tf.function(lambda x: tiny_extractor(x))
    np.testing.assert_allclose(compiled(images).numpy(), tiny_extractor(images).numpy(), atol=1e-5)


def test_frechet_of_test_vs_train_is_below_noise_vs_train(tiny_extractor, digits):
    train_images, _, test_images, _ = digits
    noise = np.random.default_rng(0).uniform(size=test_images.shape).astype(np.float32)
    real = frechet_digit_distance(test_images, train_images, tiny_extractor)
    fake = frechet_digit_distance(noise, train_images, tiny_extractor)
    assert 0.0 < real < fake
    assert fake > 10 * real


def test_frechet_digit_distance_is_zero_for_a_set_with_itself_and_symmetric(tiny_extractor, digits):
    a, b = digits[2][:300], digits[0][:300]
    assert frechet_digit_distance(a, a, tiny_extractor) == pytest.approx(0.0, abs=1e-6)
    assert frechet_digit_distance(a, b, tiny_extractor) == pytest.approx(
        frechet_digit_distance(b, a, tiny_extractor), rel=1e-6
    )


def test_save_and_load_round_trip(tiny_extractor, digits, tmp_path):
    path = tiny_extractor.save(tmp_path / "classifier.keras")
    loaded = FeatureExtractor.from_file(path)
    images = digits[2][:32]
    np.testing.assert_allclose(loaded.features(images), tiny_extractor.features(images), atol=1e-6)
    assert loaded.image_shape == (28, 28, 1)
    with pytest.raises(FileExistsError, match="overwrite"):
        tiny_extractor.save(path)
    with pytest.raises(ValueError, match=".keras"):
        tiny_extractor.save(tmp_path / "classifier.h5")
    with pytest.raises(FileNotFoundError):
        FeatureExtractor.from_file(tmp_path / "missing.keras")


def test_adapted_inputs_accept_rgb_and_other_sizes(tiny_extractor, digits):
    grey = digits[2][:12]
    adapting = FeatureExtractor(tiny_extractor.classifier, adapt_inputs=True)
    rgb = np.repeat(grey, 3, axis=-1)  # luma weights sum to one: grey is recovered exactly
    np.testing.assert_allclose(adapting.features(rgb), tiny_extractor.features(grey), atol=1e-5)
    padded = np.pad(rgb, ((0, 0), (2, 2), (2, 2), (0, 0)))
    assert adapting.features(padded).shape == (12, 32)
    with pytest.raises(ValueError, match=r"\[N, 28, 28, 1\]"):
        tiny_extractor.features(padded)


def test_bad_input_raises_clear_errors(tiny_extractor, digits):
    images = digits[2][:4]
    with pytest.raises(ValueError, match=r"\[N, 28, 28, 1\]"):
        tiny_extractor.features(images[..., 0])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        tiny_extractor.features(images * 2.0 - 1.0)
    with pytest.raises(ValueError, match=r"\[N, 28, 28, 1\]"):
        tiny_extractor(tf.zeros([2, 32, 32, 1]))
    with pytest.raises(ValueError, match=r"shape \[N\] = \[4\]"):
        train_digit_classifier(images, np.zeros(3, np.int64), epochs=1)
    with pytest.raises(ValueError, match=r"\[0, 9\]"):
        train_digit_classifier(images, np.array([0, 1, 2, 10]), epochs=1)
    with pytest.raises(ValueError, match="image_size"):
        build_digit_classifier(image_size=4, filters=(8, 8, 8))
    with pytest.raises(ValueError, match="no layer named"):
        FeatureExtractor(keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)]))


@pytest.mark.skipif(not DEFAULT_CLASSIFIER_PATH.is_file(), reason="run scripts/train_classifier.py first")
def test_shipped_classifier_is_accurate_and_separates_digits_from_noise(digits):
    train_images, _, test_images, test_labels = digits
    extractor = FeatureExtractor.default()
    assert extractor.image_shape == (28, 28, 1) and extractor.feature_dim == 128
    assert extractor.accuracy(test_images, test_labels) > 0.95
    noise = np.random.default_rng(1).uniform(size=(1000, 28, 28, 1)).astype(np.float32)
    floor = frechet_digit_distance(train_images[::4], test_images)  # default extractor
    assert floor < 0.1 * frechet_digit_distance(noise, test_images, extractor)
