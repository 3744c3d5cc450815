"""A small digit classifier whose penultimate layer serves as the feature space of a Frechet distance.

The Frechet Inception Distance compares generated and real images in the feature space of
an ImageNet Inception network. For MNIST-like priors (28x28 or 32x32 grey digits) that
network is both unavailable offline and a poor fit, so tfinverse uses a small CNN trained on
the MNIST-5000 training split instead (:func:`train_digit_classifier`, trained and saved by
``scripts/train_classifier.py`` to ``tfinverse/assets/mnist_classifier.keras``)::

    image [n, S, S, 1] in [0, 1]
      -> conv 3x3 f1, ReLU -> max-pool 2 -> conv 3x3 f2, ReLU -> max-pool 2
      -> conv 3x3 f3, ReLU -> max-pool 2 -> flatten
      -> dense feature_dim, ReLU          ("features": the penultimate layer)
      -> dropout -> dense num_classes     ("logits")

with ``(f1, f2, f3) = (32, 64, 64)`` and ``feature_dim = 128`` by default (about 0.13 M
weights for 28x28 inputs). None of this comes from the reproduced papers, which report no
sample-quality metric for their priors; the sizes are parameters.

:class:`FeatureExtractor` returns the post-ReLU penultimate features (as Inception's pool
features are taken after a ReLU) and :func:`frechet_digit_distance` the Frechet distance
between two image sets in that space. Absolute values depend on the trained classifier;
``scripts/train_classifier.py`` prints reference values (held-out digits vs training digits
is the floor).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from tfinverse.evaluation.frechet import frechet_distance_of

__all__ = [
    "DEFAULT_CLASSIFIER_PATH",
    "FEATURE_LAYER",
    "LOGITS_LAYER",
    "mnist5k_labels",
    "load_labelled_mnist5k",
    "build_digit_classifier",
    "train_digit_classifier",
    "FeatureExtractor",
    "frechet_digit_distance",
]

DEFAULT_CLASSIFIER_PATH = Path(__file__).resolve().parent.parent / "assets" / "mnist_classifier.keras"
"""Where ``scripts/train_classifier.py`` saves the classifier by default (inside the package)."""

FEATURE_LAYER = "features"
"""Name of the penultimate dense layer whose (post-ReLU) output is the feature vector."""

LOGITS_LAYER = "logits"
"""Name of the output layer (class logits, no softmax)."""

_RANGE_TOLERANCE = 1e-3  # pixel values this far outside [0, 1] are accepted as round-off
_LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # ITU-R BT.601, for RGB inputs when adapting


def mnist5k_labels(split: str) -> np.ndarray:
    """Digit labels of an MNIST-5000 split, aligned with ``load_arrays("mnist5k", split)``.

    Args:
      split: ``"train"`` (4000 labels: 400 per class) or ``"test"`` (1000: 100 per class).

    Returns:
      int64 ``[N]`` labels in ``0..9``, in the order of the split's images.

    Raises:
      ValueError: for another split name.
    """
    from tfinverse.data import offline, splits

    labels = offline.mnist5k_arrays()[1]
    return np.asarray(labels[splits.mnist5k_indices(split, labels)], dtype=np.int64)


def load_labelled_mnist5k(split: str, image_size: int = 28) -> Tuple[np.ndarray, np.ndarray]:
    """Images and labels of an MNIST-5000 split.

    Args:
      split: ``"train"`` or ``"test"``.
      image_size: side length (28 native; 32 is resized bilinearly by the data layer).

    Returns:
      ``(images, labels)``: float32 ``[N, S, S, 1]`` in ``[0, 1]`` and int64 ``[N]``.
    """
    from tfinverse import data

    images = data.load_arrays("mnist5k", split=split, image_size=int(image_size), channels=1)
    return np.asarray(images, dtype=np.float32), mnist5k_labels(split)


def _seed_list(seed: int, count: int):
    return [int(s) for s in np.random.default_rng(int(seed)).integers(0, 2**31 - 1, size=count)]


def build_digit_classifier(
    image_size: int = 28,
    channels: int = 1,
    filters: Sequence[int] = (32, 64, 64),
    feature_dim: int = 128,
    num_classes: int = 10,
    dropout_rate: float = 0.25,
    seed: int = 0,
    name: str = "digit_classifier",
) -> keras.Model:
    """Builds the (untrained) digit classifier described in the module docstring.

    Args:
      image_size: input side length ``S`` (28 or 32 for MNIST-like data; at least
        ``2^len(filters)``).
      channels: input channels (1 for grey digits).
      filters: channels of the conv layers, each followed by ReLU and 2x2 max pooling.
      feature_dim: width of the penultimate ("features") layer.
      num_classes: number of classes (10 digits).
      dropout_rate: dropout between features and logits during training (not published
        anywhere; 0.25 is a common choice for small CNNs).
      seed: seed of the weight initialisers and of the dropout mask.
      name: model name.

    Returns:
      A functional ``keras.Model`` ``[n, S, S, C] -> logits [n, num_classes]`` with layers
      named :data:`FEATURE_LAYER` and :data:`LOGITS_LAYER`.

    Raises:
      ValueError: for non-positive sizes, an image too small for the pooling, or a dropout
        rate outside ``[0, 1)``.
    """
    filters = tuple(int(f) for f in filters)
    if not filters or min(filters) <= 0:
        raise ValueError(f"filters must be a non-empty sequence of positive ints, got {filters}")
    if int(image_size) < 2 ** len(filters):
        raise ValueError(
            f"image_size must be at least 2^len(filters) = {2 ** len(filters)}, got {image_size}"
        )
    if int(channels) <= 0 or int(feature_dim) <= 0 or int(num_classes) < 2:
        raise ValueError(
            "channels and feature_dim must be positive and num_classes >= 2, got "
            f"{channels}, {feature_dim}, {num_classes}"
        )
    if not 0.0 <= float(dropout_rate) < 1.0:
        raise ValueError(f"dropout_rate must be in [0, 1), got {dropout_rate}")
    seeds = iter(_seed_list(seed, len(filters) + 3))
    inputs = keras.Input(shape=(int(image_size), int(image_size), int(channels)), name="image")
    x = inputs
    for index, width in enumerate(filters):
        x = keras.layers.Conv2D(
            width,
            3,
            padding="same",
            activation="relu",
            kernel_initializer=keras.initializers.HeNormal(seed=next(seeds)),
            name=f"conv{index}",
        )(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{index}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    features = keras.layers.Dense(
        int(feature_dim),
        activation="relu",
        kernel_initializer=keras.initializers.HeNormal(seed=next(seeds)),
        name=FEATURE_LAYER,
    )(x)
    x = keras.layers.Dropout(float(dropout_rate), seed=next(seeds), name="dropout")(features)
    logits = keras.layers.Dense(
        int(num_classes),
        kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
        name=LOGITS_LAYER,
    )(x)
    return keras.Model(inputs, logits, name=name)


def _check_images(images, name: str = "images", expected: Optional[Tuple[int, int, int]] = None) -> np.ndarray:
    images = np.asarray(images, dtype=np.float32)
    want = "[N, H, W, C]" if expected is None else f"[N, {expected[0]}, {expected[1]}, {expected[2]}]"
    if images.ndim != 4 or (expected is not None and images.shape[1:] != tuple(expected)):
        raise ValueError(f"{name} must have shape {want} (float NHWC in [0, 1]), got {images.shape}")
    if images.size and not np.all(np.isfinite(images)):
        raise ValueError(f"{name} hold NaN or infinite values")
    if images.size and (images.min() < -_RANGE_TOLERANCE or images.max() > 1.0 + _RANGE_TOLERANCE):
        raise ValueError(
            f"{name} must lie in [0, 1], got values in [{images.min():.3g}, {images.max():.3g}]"
        )
    return images


def train_digit_classifier(
    images,
    labels,
    epochs: int = 5,
    seed: int = 0,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    filters: Sequence[int] = (32, 64, 64),
    feature_dim: int = 128,
    dropout_rate: float = 0.25,
    num_classes: int = 10,
) -> keras.Model:
    """Trains :func:`build_digit_classifier` with Adam and cross-entropy.

    A compiled custom loop is used (rather than ``Model.fit``) so that the shuffling order
    comes from ``numpy.random.default_rng(seed)`` and the model stays uncompiled: saved, it
    holds no optimizer state and stays small.

    Args:
      images: float ``[N, S, S, C]`` in ``[0, 1]`` (square).
      labels: integer ``[N]`` in ``0 .. num_classes - 1``.
      epochs: passes over the data.
      seed: seed of the initialisers, dropout and shuffling.
      batch_size: mini-batch size (the last, smaller batch of an epoch is used too).
      learning_rate: Adam step size.
      filters: conv widths (see :func:`build_digit_classifier`).
      feature_dim: width of the feature layer.
      dropout_rate: dropout before the logits.
      num_classes: number of classes.

    Returns:
      The trained, uncompiled ``keras.Model`` (outputs logits).

    Raises:
      ValueError: for images that are not square ``[N, S, S, C]`` in ``[0, 1]``, labels that
        are not ``[N]`` integers in range, or non-positive ``epochs``/``batch_size``.
    """
    images = _check_images(images)
    if images.shape[1] != images.shape[2]:
        raise ValueError(f"images must be square [N, S, S, C], got {images.shape}")
    labels = np.asarray(labels)
    if labels.shape != (images.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be integers of shape [N] = [{images.shape[0]}], got {labels.dtype} {labels.shape}"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= int(num_classes)):
        raise ValueError(f"labels must lie in [0, {int(num_classes) - 1}], got [{labels.min()}, {labels.max()}]")
    if int(epochs) <= 0 or int(batch_size) <= 0:
        raise ValueError(f"epochs and batch_size must be positive, got {epochs} and {batch_size}")

    model = build_digit_classifier(
        images.shape[1], images.shape[3], filters, feature_dim, num_classes, dropout_rate, seed
    )
    optimizer = keras.optimizers.Adam(learning_rate=float(learning_rate))
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)

    @tf.function(reduce_retracing=True)
    def train_step(batch_images, batch_labels):
        with tf.GradientTape() as tape:
            loss = loss_fn(batch_labels, model(batch_images, training=True))
        gradients = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return loss

    rng = np.random.default_rng(int(seed))
    labels = labels.astype(np.int32)
    for _ in range(int(epochs)):
        order = rng.permutation(images.shape[0])
        for start in range(0, len(order), int(batch_size)):
            chosen = order[start : start + int(batch_size)]
            train_step(tf.constant(images[chosen]), tf.constant(labels[chosen]))
    return model


class FeatureExtractor:
    """Penultimate-layer features (and logits) of a digit classifier, for images in ``[0, 1]``.

    Args:
      classifier: a model from :func:`build_digit_classifier` / :func:`train_digit_classifier`
        (any Keras model with a layer named :data:`FEATURE_LAYER` and an output of logits).
      adapt_inputs: accept images of another size or with 3 channels: RGB is converted to
        luma (BT.601 weights) and the size changed with antialiased bilinear resizing before
        the classifier. Off by default, so that a mismatch is an error rather than a silent
        conversion.

    Raises:
      TypeError: if ``classifier`` is not a ``keras.Model``.
      ValueError: if it has no layer named :data:`FEATURE_LAYER`.
    """

    def __init__(self, classifier: keras.Model, adapt_inputs: bool = False):
        if not isinstance(classifier, keras.Model):
            raise TypeError(f"classifier must be a keras.Model, got {type(classifier).__name__}")
        try:
            feature_layer = classifier.get_layer(FEATURE_LAYER)
        except ValueError:
            raise ValueError(
                f"classifier {classifier.name!r} has no layer named {FEATURE_LAYER!r}; build it "
                "with build_digit_classifier"
            ) from None
        self._classifier = classifier
        self._two_heads = keras.Model(classifier.inputs, [feature_layer.output, classifier.outputs[0]])
        self.adapt_inputs = bool(adapt_inputs)

    @classmethod
    def from_file(cls, path: Union[str, Path], adapt_inputs: bool = False) -> "FeatureExtractor":
        """Loads a classifier saved as ``.keras`` (e.g. by ``scripts/train_classifier.py``).

        Args:
          path: the ``.keras`` file.
          adapt_inputs: see the class docstring.

        Returns:
          The extractor.

        Raises:
          FileNotFoundError: if the file does not exist.
        """
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"no classifier file at {path}")
        return cls(keras.models.load_model(path, compile=False), adapt_inputs=adapt_inputs)

    @classmethod
    def default(cls, adapt_inputs: bool = False) -> "FeatureExtractor":
        """The classifier shipped in ``tfinverse/assets/mnist_classifier.keras``.

        Args:
          adapt_inputs: see the class docstring.

        Returns:
          The extractor.

        Raises:
          FileNotFoundError: if the file is missing (it names the script that creates it).
        """
        if not DEFAULT_CLASSIFIER_PATH.is_file():
            raise FileNotFoundError(
                f"no digit classifier at {DEFAULT_CLASSIFIER_PATH}; create it with "
                "`python scripts/train_classifier.py` or pass an extractor explicitly"
            )
        return cls.from_file(DEFAULT_CLASSIFIER_PATH, adapt_inputs=adapt_inputs)

    @property
    def classifier(self) -> keras.Model:
        """The wrapped classifier (outputs logits)."""
        return self._classifier

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        """``(H, W, C)`` the classifier takes."""
        return tuple(int(d) for d in self._classifier.inputs[0].shape[1:])

    @property
    def feature_dim(self) -> int:
        """Length of one feature vector."""
        return int(self._two_heads.outputs[0].shape[-1])

    @property
    def num_classes(self) -> int:
        """Number of logits."""
        return int(self._two_heads.outputs[1].shape[-1])

    def save(self, path: Union[str, Path], overwrite: bool = False) -> Path:
        """Saves the classifier as a ``.keras`` file (no optimizer state).

        Args:
          path: target file, ending in ``.keras``.
          overwrite: replace an existing file.

        Returns:
          The path written.

        Raises:
          ValueError: if the name does not end in ``.keras``.
          FileExistsError: if the file exists and ``overwrite`` is False.
        """
        path = Path(path)
        if path.suffix != ".keras":
            raise ValueError(f"the classifier file must end in .keras, got {path.name}")
        if path.exists() and not overwrite:
            raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._classifier.save(path, overwrite=True)
        return path

    def _prepare(self, images) -> tf.Tensor:
        images = tf.convert_to_tensor(images)
        if images.dtype != tf.float32:
            images = tf.cast(images, tf.float32)
        height, width, channels = self.image_shape
        shape = images.shape
        if shape.rank != 4:
            raise ValueError(
                f"images must have shape [N, {height}, {width}, {channels}] (float NHWC in [0, 1]), "
                f"got {shape}"
            )
        if not self.adapt_inputs:
            if any(d is not None and d != e for d, e in zip(shape[1:], (height, width, channels))):
                raise ValueError(
                    f"images must have shape [N, {height}, {width}, {channels}] (float NHWC in "
                    f"[0, 1]), got {shape}; pass adapt_inputs=True to convert other sizes"
                )
            return images
        if shape[-1] not in (1, 3):
            raise ValueError(f"adapt_inputs handles 1 or 3 channels, got images of shape {shape}")
        if shape[-1] == 3 and channels == 1:
            images = tf.reduce_sum(images * tf.constant(_LUMA_WEIGHTS, tf.float32), -1, keepdims=True)
        elif shape[-1] == 1 and channels == 3:
            images = tf.repeat(images, 3, axis=-1)
        if shape[1] != height or shape[2] != width:
            images = tf.image.resize(images, (height, width), method="bilinear", antialias=True)
        return images

    def __call__(self, images) -> tf.Tensor:
        """Features of one batch, as a tensor; usable inside ``tf.function``.

        Args:
          images: float ``[n, H, W, C]`` in ``[0, 1]`` (the classifier's shape unless
            ``adapt_inputs``).

        Returns:
          float32 ``[n, feature_dim]``.

        Raises:
          ValueError: if the (static) shape does not match.
        """
        return self._two_heads(self._prepare(images), training=False)[0]

    def logits(self, images) -> tf.Tensor:
        """Class logits of one batch, as a tensor (see :meth:`__call__`)."""
        return self._two_heads(self._prepare(images), training=False)[1]

    def _batched(self, images, batch_size: int, head: int) -> np.ndarray:
        if int(batch_size) <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        expected = None if self.adapt_inputs else self.image_shape
        images = _check_images(images, expected=expected)
        width = self.feature_dim if head == 0 else self.num_classes
        if images.shape[0] == 0:
            return np.zeros((0, width), np.float32)
        chunks = []
        for start in range(0, images.shape[0], int(batch_size)):
            batch = self._prepare(images[start : start + int(batch_size)])
            chunks.append(self._two_heads(batch, training=False)[head].numpy())
        return np.concatenate(chunks).astype(np.float32)

    def features(self, images, batch_size: int = 256) -> np.ndarray:
        """Features of any number of images, computed in batches.

        Args:
          images: float ``[N, H, W, C]`` in ``[0, 1]``.
          batch_size: images per forward pass.

        Returns:
          float32 ``[N, feature_dim]`` (non-negative: taken after the ReLU).

        Raises:
          ValueError: for a wrong shape, values outside ``[0, 1]`` or a non-positive batch size.
        """
        return self._batched(images, batch_size, head=0)

    def predict_labels(self, images, batch_size: int = 256) -> np.ndarray:
        """Most likely class of each image.

        Args:
          images: float ``[N, H, W, C]`` in ``[0, 1]``.
          batch_size: images per forward pass.

        Returns:
          int64 ``[N]``.
        """
        return np.argmax(self._batched(images, batch_size, head=1), axis=-1).astype(np.int64)

    def accuracy(self, images, labels, batch_size: int = 256) -> float:
        """Share of images whose predicted class equals the label.

        Args:
          images: float ``[N, H, W, C]`` in ``[0, 1]``.
          labels: integer ``[N]``.
          batch_size: images per forward pass.

        Returns:
          Accuracy in ``[0, 1]``.

        Raises:
          ValueError: if ``labels`` is not ``[N]``.
        """
        labels = np.asarray(labels)
        if labels.shape != (np.shape(images)[0],):
            raise ValueError(f"labels must have shape [N] = [{np.shape(images)[0]}], got {labels.shape}")
        return float(np.mean(self.predict_labels(images, batch_size) == labels))


def frechet_digit_distance(
    images_a,
    images_b,
    extractor: Optional[FeatureExtractor] = None,
    batch_size: int = 256,
    eps: float = 1e-6,
) -> float:
    """Frechet distance between two image sets in a digit classifier's feature space.

    Lower is closer; 0 for identical sets. Compare values only across runs that use the same
    extractor and similar set sizes (the estimate is biased upwards for small sets).

    Args:
      images_a: float ``[N_a, H, W, C]`` in ``[0, 1]``, ``N_a >= 2`` (e.g. generated samples).
      images_b: float ``[N_b, H, W, C]`` in ``[0, 1]``, ``N_b >= 2`` (e.g. held-out test digits).
      extractor: the feature extractor; ``None`` loads :meth:`FeatureExtractor.default`.
      batch_size: images per forward pass.
      eps: see :func:`tfinverse.evaluation.frechet.frechet_distance`.

    Returns:
      The distance as a Python float.

    Raises:
      ValueError: for wrong shapes, values outside ``[0, 1]`` or fewer than 2 images per set.
      FileNotFoundError: if ``extractor`` is None and no default classifier is installed.
    """
    if extractor is None:
        extractor = FeatureExtractor.default()
    features_a = extractor.features(images_a, batch_size)
    features_b = extractor.features(images_b, batch_size)
    return frechet_distance_of(features_a, features_b, eps=eps)
