"""igan's networks: the parameter estimator G and the two discriminators D1 (on x) and D2 (on y).

"Adversarial Training for Solving Inverse Problems" does not regress the clean image ``x``
from the observation ``y``: a network estimates the degradation's parameters ``z`` (the
component to remove), and the clean estimate follows from the known forward model. For the
additive tasks (image unmixing, denoising, CAPTCHA speckle removal, audio source separation,
deraining)::

    Z     = G(Y)                      (denoising: G predicts the clean image F, Z = Y - F)
    X_gen = clip(Y - Z, 0, inf)       the clean estimate (only negatives are clipped, as the
                                      original did: a sum observation may exceed 1)
    Y_gen = X2 + Z                    "random dual mapping": another clean sample plus the
                                      estimated component, which D2 compares with real Y

Estimator G (the original's layout): every convolution has 64 filters, 4x4 kernels, SAME
padding, Glorot-uniform (Xavier) weights, no bias, batch norm (centre on, scale off,
momentum 0.999, epsilon 1e-3) and ReLU. Encoder: 4 blocks of [2 convs stride 1, conv
stride 2] (64 -> 4 px). Decoder: 4 blocks of [2 convs, bilinear x2 resize as TensorFlow 1
did it (``align_corners=False``, no half-pixel centres), plus the encoder output of the
same size]; the last block has no encoder output of full size to add. Task options:
``add_input_mean`` adds the channel mean of ``Y`` after the last decoder block (unmixing,
denoising) and ``extra_convs`` adds 2 convs there (unmixing, CAPTCHA). The output conv
maps to ``channels`` with batch norm and ReLU, then a bicubic resize returns to the image
size (the identity when the network works at the image size, as in every original task).

Discriminators D1 and D2 (same layout): conv 32 stride 2 -> [2 conv 64, conv 64 stride 2]
-> [2 x 128, 128 stride 2] -> [2 x 256, 256 stride 2], all 4x4 SAME without bias, batch
norm (same settings as G) and leaky ReLU 0.2; flatten -> dense 1 (a logit, with bias).

Toy 2-D task (not published; our design): :func:`build_igan_point_estimator` is an MLP that
maps each source point ``y`` to per-point affine parameters ``z = (M, b)`` (6 numbers);
``X_gen = M y + b`` and the dual mapping inverts it, ``Y_gen = M^-1 (X2 - b)``. It starts at
the identity map. Its discriminators are MLPs (:func:`build_igan_point_discriminator`).

:class:`IganEstimator` wraps an estimator network with the task's forward model
(``clean_from``, ``observation_from``); :func:`build_estimator_for_task` builds one from an
:class:`~tfinverse.tasks.igan_tasks.IganTask`; :func:`export_igan_estimator` writes a
SavedModel with the signature ``y -> {"component", "clean"}``, optionally after
:func:`recalibrate_estimator_batch_norm` has re-estimated the batch-norm moving statistics
(momentum 0.999 leaves them near their initial values for a long time; the original never
re-estimated them).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from tfinverse.models.layers import FusedBatchNormalization

__all__ = [
    "IGAN_FILTERS",
    "IGAN_KERNEL_SIZE",
    "IGAN_BN_MOMENTUM",
    "IGAN_BN_EPSILON",
    "IGAN_LEAKY_SLOPE",
    "IGAN_NUM_LEVELS",
    "IGAN_DISCRIMINATOR_FILTERS",
    "IGAN_BN_RECALIBRATION_BATCHES",
    "POINT_PARAMETERS",
    "IGAN_METADATA_FILE",
    "resize_bilinear_tf1",
    "resize_bicubic_tf1",
    "TF1Resize",
    "ChannelMean",
    "build_igan_estimator",
    "build_igan_discriminator",
    "build_igan_point_estimator",
    "build_igan_point_discriminator",
    "clean_from_component",
    "observation_from_component",
    "affine_from_parameters",
    "apply_point_map",
    "invert_point_map",
    "IganEstimator",
    "task_metadata",
    "build_estimator_for_task",
    "build_discriminators_for_task",
    "recalibrate_estimator_batch_norm",
    "export_igan_estimator",
    "load_igan_export",
    "read_igan_metadata",
]

_PACKAGE = "tfinverse.igan"

IGAN_FILTERS = 64
IGAN_KERNEL_SIZE = 4
IGAN_BN_MOMENTUM = 0.999  # TF1 slim batch_norm decay
IGAN_BN_EPSILON = 1e-3
IGAN_LEAKY_SLOPE = 0.2
IGAN_NUM_LEVELS = 4
IGAN_DISCRIMINATOR_FILTERS = (32, 64, 128, 256)

#: Training batches used to re-estimate batch-norm statistics before an export (our addition).
IGAN_BN_RECALIBRATION_BATCHES = 50

#: Number of per-point parameters of the toy map: M (2x2, row-major) then b (2).
POINT_PARAMETERS = 6

#: Name of the JSON file with the task settings written next to an export or checkpoints.
IGAN_METADATA_FILE = "igan.json"

# Floor of |det M| when inverting a toy map, so a degenerate estimate stays finite.
_MIN_ABS_DETERMINANT = 1e-3


# ----------------------------------------------------------------------------- resizing
def _check_size(size) -> Tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        size = (int(size), int(size))
    size = tuple(int(s) for s in size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"size must be a positive int or (height, width), got {size}")
    return size


def resize_bilinear_tf1(images, size) -> tf.Tensor:
    """Bilinear resize exactly as TensorFlow 1's ``tf.image.resize_images`` did.

    TF1 sampled output pixel ``i`` at input coordinate ``i * in / out`` (``align_corners=False``
    and no half-pixel centres), clamping the upper neighbour at the border; TF2's
    ``tf.image.resize`` uses half-pixel centres instead and gives different values.

    Args:
      images: float ``[batch, height, width, channels]``.
      size: output ``(height, width)`` or one int for both.

    Returns:
      float32 ``[batch, size[0], size[1], channels]``.

    Raises:
      ValueError: if ``images`` is not rank 4 or ``size`` is not positive.
    """
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4:
        raise ValueError(f"resize_bilinear_tf1 expects [batch, height, width, channels], got {images.shape}")
    height, width = _check_size(size)
    return tf.raw_ops.ResizeBilinear(
        images=tf.cast(images, tf.float32),
        size=tf.constant([height, width], tf.int32),
        align_corners=False,
        half_pixel_centers=False,
    )


def resize_bicubic_tf1(images, size) -> tf.Tensor:
    """Bicubic resize as TensorFlow 1 did it (no half-pixel centres, Keys kernel a = -0.75).

    Args:
      images: float ``[batch, height, width, channels]``.
      size: output ``(height, width)`` or one int for both.

    Returns:
      float32 ``[batch, size[0], size[1], channels]``; ``images`` unchanged when the size
      already matches (TF1's ``resize_images`` skipped the resize then too).

    Raises:
      ValueError: if ``images`` is not rank 4 or ``size`` is not positive.
    """
    images = tf.convert_to_tensor(images)
    if images.shape.rank != 4:
        raise ValueError(f"resize_bicubic_tf1 expects [batch, height, width, channels], got {images.shape}")
    height, width = _check_size(size)
    images = tf.cast(images, tf.float32)
    if images.shape[1] == height and images.shape[2] == width:
        return images
    return tf.raw_ops.ResizeBicubic(
        images=images, size=tf.constant([height, width], tf.int32), align_corners=False, half_pixel_centers=False
    )


@keras.saving.register_keras_serializable(package=_PACKAGE)
class TF1Resize(keras.layers.Layer):
    """A layer that resizes to a fixed size with TF1 sampling (no half-pixel centres).

    The identity when the input already has the size (as TF1's ``resize_images``).

    Args:
      size: output ``(height, width)`` or one int.
      method: ``"bilinear"`` or ``"bicubic"``.
      **kwargs: forwarded to ``keras.layers.Layer``.

    Raises:
      ValueError: for another method or a bad size.
    """

    def __init__(self, size, method: str = "bilinear", **kwargs):
        super().__init__(**kwargs)
        if method not in ("bilinear", "bicubic"):
            raise ValueError(f"method must be 'bilinear' or 'bicubic', got {method!r}")
        self.size = _check_size(size)
        self.method = method

    def call(self, images):
        if images.shape[1] == self.size[0] and images.shape[2] == self.size[1]:
            return images
        if self.method == "bilinear":
            return resize_bilinear_tf1(images, self.size)
        return resize_bicubic_tf1(images, self.size)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.size[0], self.size[1], input_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update(size=list(self.size), method=self.method)
        return config


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ChannelMean(keras.layers.Layer):
    """Mean over the channel axis, kept as one channel: ``[B, H, W, C] -> [B, H, W, 1]``."""

    def call(self, images):
        return tf.reduce_mean(images, axis=-1, keepdims=True)

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (1,)


# ----------------------------------------------------------------------------- image networks
class _Seeds:
    """Per-layer initialiser seeds drawn from one explicit seed (None: unseeded)."""

    def __init__(self, seed: Optional[int]):
        self._rng = None if seed is None else np.random.default_rng(int(seed))

    def next(self) -> Optional[int]:
        return None if self._rng is None else int(self._rng.integers(0, 2**31 - 1))


def _conv_bn_act(x, filters: int, stride: int, activation, seeds: _Seeds, name: str):
    x = keras.layers.Conv2D(
        filters,
        IGAN_KERNEL_SIZE,
        strides=stride,
        padding="same",
        use_bias=False,  # batch norm's offset replaces the bias, as slim did
        kernel_initializer=keras.initializers.GlorotUniform(seed=seeds.next()),
        name=f"{name}_conv",
    )(x)
    x = FusedBatchNormalization(
        momentum=IGAN_BN_MOMENTUM, epsilon=IGAN_BN_EPSILON, center=True, scale=False, name=f"{name}_bn"
    )(x)
    if activation == "relu":
        return keras.layers.ReLU(name=f"{name}_relu")(x)
    return keras.layers.LeakyReLU(negative_slope=IGAN_LEAKY_SLOPE, name=f"{name}_lrelu")(x)


def _check_image_geometry(image_size: int, channels: int, working_size: int, levels: int) -> None:
    if int(channels) < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    if int(image_size) < 1:
        raise ValueError(f"image_size must be >= 1, got {image_size}")
    if int(working_size) % (2**levels) != 0:
        raise ValueError(
            f"the estimator's working size must be a multiple of {2**levels} (it halves {levels} times), "
            f"got {working_size}"
        )


def build_igan_estimator(
    image_size: int,
    channels: int,
    component_is_residual: bool = False,
    add_input_mean: bool = False,
    extra_convs: bool = False,
    working_size: Optional[int] = None,
    filters: int = IGAN_FILTERS,
    seed: Optional[int] = None,
    name: str = "igan_estimator",
) -> keras.Model:
    """The parameter estimator G as a functional Keras model ``Y -> Z``.

    Args:
      image_size: side of the square observation (and of the output).
      channels: channels of the observation and of the estimated component.
      component_is_residual: the network predicts the clean image ``F`` and ``Z = Y - F``
        (denoising); otherwise ``Z = F``.
      add_input_mean: add the channel mean of ``Y`` after the last decoder block.
      extra_convs: two more convs before the output conv.
      working_size: side at which the network runs (the original's ``G_input_size``,
        always equal to the image size there); ``Y`` is resized to it bilinearly (TF1
        sampling) and the output resized back bicubically. Must be a multiple of 16.
        Default: ``image_size``.
      filters: filters of every conv (64 in the original).
      seed: seed of the weight initialisers (None: unseeded).
      name: model name.

    Returns:
      A ``keras.Model`` mapping float32 ``[B, image_size, image_size, channels]`` to ``Z`` of
      the same shape. ``Z >= 0`` unless ``component_is_residual`` (the output conv ends in
      ReLU).

    Raises:
      ValueError: for a working size that is not a multiple of 16, or bad sizes.
    """
    working_size = int(image_size if working_size is None else working_size)
    _check_image_geometry(image_size, channels, working_size, IGAN_NUM_LEVELS)
    seeds = _Seeds(seed)
    y = keras.Input(shape=(int(image_size), int(image_size), int(channels)), name="y")
    y_work = TF1Resize(working_size, "bilinear", name="input_resize")(y)

    skips = []
    net = y_work
    for level in range(1, IGAN_NUM_LEVELS + 1):
        for i in range(2):
            net = _conv_bn_act(net, filters, 1, "relu", seeds, f"enc{level}_{i + 1}")
        net = _conv_bn_act(net, filters, 2, "relu", seeds, f"enc{level}_down")
        skips.append(net)  # sizes S/2, S/4, S/8, S/16

    for level in range(1, IGAN_NUM_LEVELS + 1):
        for i in range(2):
            net = _conv_bn_act(net, filters, 1, "relu", seeds, f"dec{level}_{i + 1}")
        size = working_size // 2 ** (IGAN_NUM_LEVELS - level)
        net = TF1Resize(size, "bilinear", name=f"dec{level}_up")(net)
        if level < IGAN_NUM_LEVELS:
            net = keras.layers.Add(name=f"dec{level}_skip")([net, skips[IGAN_NUM_LEVELS - 1 - level]])

    if add_input_mean:
        net = keras.layers.Add(name="add_input_mean")([net, ChannelMean(name="input_mean")(y_work)])
    if extra_convs:
        for i in range(2):
            net = _conv_bn_act(net, filters, 1, "relu", seeds, f"extra_{i + 1}")
    f = _conv_bn_act(net, int(channels), 1, "relu", seeds, "output")
    f = TF1Resize(int(image_size), "bicubic", name="output_resize")(f)
    z = keras.layers.Subtract(name="residual")([y, f]) if component_is_residual else f
    return keras.Model(y, z, name=name)


def build_igan_discriminator(
    image_size: int,
    channels: int,
    filters: Sequence[int] = IGAN_DISCRIMINATOR_FILTERS,
    seed: Optional[int] = None,
    name: str = "igan_discriminator",
) -> keras.Model:
    """D1 / D2: a conv discriminator that returns one logit per image.

    Args:
      image_size: side of the square input.
      channels: input channels.
      filters: widths of the first conv and of the three following blocks (32, 64, 128,
        256 in the original).
      seed: seed of the weight initialisers (None: unseeded).
      name: model name.

    Returns:
      A ``keras.Model`` mapping float32 ``[B, image_size, image_size, channels]`` to logits
      ``[B, 1]``.

    Raises:
      ValueError: for bad sizes or a ``filters`` list that is not 4 long.
    """
    if len(filters) != 4:
        raise ValueError(f"filters must list 4 widths (first conv, then 3 blocks), got {list(filters)}")
    if int(image_size) < 1 or int(channels) < 1:
        raise ValueError(f"image_size and channels must be >= 1, got {image_size}, {channels}")
    seeds = _Seeds(seed)
    x = keras.Input(shape=(int(image_size), int(image_size), int(channels)), name="image")
    net = _conv_bn_act(x, int(filters[0]), 2, "leaky", seeds, "block0_down")
    for level, width in enumerate(filters[1:], start=1):
        for i in range(2):
            net = _conv_bn_act(net, int(width), 1, "leaky", seeds, f"block{level}_{i + 1}")
        net = _conv_bn_act(net, int(width), 2, "leaky", seeds, f"block{level}_down")
    net = keras.layers.Flatten(name="flatten")(net)
    logit = keras.layers.Dense(
        1, kernel_initializer=keras.initializers.GlorotUniform(seed=seeds.next()), name="logit"
    )(net)
    return keras.Model(x, logit, name=name)


# ----------------------------------------------------------------------------- toy networks
def build_igan_point_estimator(
    hidden_units: Sequence[int] = (64, 64), seed: Optional[int] = None, name: str = "igan_point_estimator"
) -> keras.Model:
    """The toy 2-D estimator: an MLP ``y [B, 2] -> z [B, 6]`` of per-point affine parameters.

    The toy code was never published: layout, widths and initialisation are our choice. The
    output layer starts at zero weights and the identity map as bias, so training starts
    from ``X_gen = y``. ``z`` holds ``M`` (row-major) then ``b``.

    Args:
      hidden_units: widths of the ReLU hidden layers.
      seed: seed of the weight initialisers (None: unseeded).
      name: model name.

    Returns:
      A ``keras.Model`` mapping float32 ``[B, 2]`` to ``[B, 6]``.
    """
    seeds = _Seeds(seed)
    y = keras.Input(shape=(2,), name="y")
    net = y
    for i, units in enumerate(hidden_units):
        net = keras.layers.Dense(
            int(units),
            activation="relu",
            kernel_initializer=keras.initializers.GlorotUniform(seed=seeds.next()),
            name=f"hidden{i + 1}",
        )(net)
    z = keras.layers.Dense(
        POINT_PARAMETERS,
        kernel_initializer="zeros",
        bias_initializer=keras.initializers.Constant([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]),
        name="affine_parameters",
    )(net)
    return keras.Model(y, z, name=name)


def build_igan_point_discriminator(
    hidden_units: Sequence[int] = (64, 64), seed: Optional[int] = None, name: str = "igan_point_discriminator"
) -> keras.Model:
    """The toy 2-D discriminator (our choice): an MLP with leaky ReLU 0.2, ``[B, 2] -> [B, 1]``.

    Args:
      hidden_units: widths of the hidden layers.
      seed: seed of the weight initialisers (None: unseeded).
      name: model name.

    Returns:
      A ``keras.Model`` returning one logit per point.
    """
    seeds = _Seeds(seed)
    x = keras.Input(shape=(2,), name="points")
    net = x
    for i, units in enumerate(hidden_units):
        net = keras.layers.Dense(
            int(units), kernel_initializer=keras.initializers.GlorotUniform(seed=seeds.next()), name=f"hidden{i + 1}"
        )(net)
        net = keras.layers.LeakyReLU(negative_slope=IGAN_LEAKY_SLOPE, name=f"lrelu{i + 1}")(net)
    logit = keras.layers.Dense(
        1, kernel_initializer=keras.initializers.GlorotUniform(seed=seeds.next()), name="logit"
    )(net)
    return keras.Model(x, logit, name=name)


# ----------------------------------------------------------------------------- forward models
def clean_from_component(y, z) -> tf.Tensor:
    """The clean estimate of the additive tasks: ``clip(Y - Z, 0, inf)``.

    Only negative values are clipped, as in the original: the observation of a sum (unmixing)
    may exceed 1 and so may the estimate.

    Args:
      y: observation ``[B, H, W, C]``.
      z: estimated component, same shape.

    Returns:
      float32 ``X_gen``.
    """
    return tf.maximum(tf.cast(y, tf.float32) - tf.cast(z, tf.float32), 0.0)


def observation_from_component(x, z) -> tf.Tensor:
    """The random dual mapping of the additive tasks: ``Y_gen = X2 + Z``.

    Args:
      x: another clean sample ``[B, H, W, C]``.
      z: estimated component, same shape.

    Returns:
      float32 ``Y_gen``.
    """
    return tf.cast(x, tf.float32) + tf.cast(z, tf.float32)


def affine_from_parameters(z) -> Tuple[tf.Tensor, tf.Tensor]:
    """Splits toy parameters ``[B, 6]`` into ``M [B, 2, 2]`` (row-major) and ``b [B, 2]``.

    Raises:
      ValueError: if ``z`` is not ``[B, 6]``.
    """
    z = tf.cast(tf.convert_to_tensor(z), tf.float32)
    if z.shape.rank != 2 or z.shape[-1] != POINT_PARAMETERS:
        raise ValueError(f"toy affine parameters must have shape [batch, {POINT_PARAMETERS}], got {z.shape}")
    return tf.reshape(z[:, :4], [-1, 2, 2]), z[:, 4:]


def apply_point_map(y, z) -> tf.Tensor:
    """The toy forward map ``X_gen = M y + b`` with per-point ``(M, b)`` from ``z``.

    Args:
      y: points ``[B, 2]``.
      z: parameters ``[B, 6]``.

    Returns:
      float32 ``[B, 2]``.
    """
    matrix, offset = affine_from_parameters(z)
    y = tf.cast(y, tf.float32)
    return tf.einsum("bij,bj->bi", matrix, y) + offset


def invert_point_map(x, z) -> tf.Tensor:
    """The toy dual mapping ``Y_gen = M^-1 (x - b)`` (closed-form 2x2 inverse).

    ``|det M|`` is floored at ``1e-3`` (keeping its sign) so a degenerate estimate gives a
    large but finite point instead of Inf.

    Args:
      x: target points ``[B, 2]``.
      z: parameters ``[B, 6]``.

    Returns:
      float32 ``[B, 2]``.
    """
    matrix, offset = affine_from_parameters(z)
    a, b, c, d = matrix[:, 0, 0], matrix[:, 0, 1], matrix[:, 1, 0], matrix[:, 1, 1]
    det = a * d - b * c
    det = tf.where(det < 0.0, -1.0, 1.0) * tf.maximum(tf.abs(det), _MIN_ABS_DETERMINANT)
    r = tf.cast(x, tf.float32) - offset
    return tf.stack([(d * r[:, 0] - b * r[:, 1]) / det, (a * r[:, 1] - c * r[:, 0]) / det], axis=-1)


class IganEstimator:
    """An estimator network together with its task's forward model.

    ``estimator(y, training)`` returns the component ``Z``; ``clean_from(y, z)`` the clean
    estimate ``X_gen``; ``observation_from(x, z)`` the dual-mapped observation ``Y_gen``.

    Args:
      network: the ``keras.Model`` ``Y -> Z``.
      kind: ``"image"`` (additive forward model) or ``"points"`` (toy affine map).
      metadata: JSON-able task settings stored with checkpoints and exports.

    Raises:
      ValueError: for an unknown ``kind``.
    """

    def __init__(self, network: keras.Model, kind: str = "image", metadata: Optional[Dict[str, Any]] = None):
        if kind not in ("image", "points"):
            raise ValueError(f"kind must be 'image' or 'points', got {kind!r}")
        self.network = network
        self.kind = kind
        self.metadata = dict(metadata or {})

    @property
    def input_shape(self) -> Tuple[int, ...]:
        """Shape of one observation (without the batch axis)."""
        return tuple(int(d) for d in self.network.input_shape[1:])

    @property
    def trainable_variables(self):
        return self.network.trainable_variables

    def check_observation(self, y) -> tf.Tensor:
        """``y`` as float32 after checking its shape.

        Raises:
          ValueError: if ``y`` is not ``[batch, *input_shape]``.
        """
        y = tf.convert_to_tensor(y)
        expected = self.input_shape
        if y.shape.rank != len(expected) + 1 or any(
            have is not None and have != want for have, want in zip(y.shape[1:], expected)
        ):
            raise ValueError(
                f"igan estimator expects observations of shape [batch, {', '.join(map(str, expected))}], "
                f"got {y.shape}"
            )
        return tf.cast(y, tf.float32)

    def __call__(self, y, training: bool = False) -> tf.Tensor:
        return self.network(self.check_observation(y), training=training)

    def clean_from(self, y, z) -> tf.Tensor:
        """``X_gen`` from the observation and the estimated component."""
        if self.kind == "points":
            return apply_point_map(y, z)
        return clean_from_component(y, z)

    def observation_from(self, x, z) -> tf.Tensor:
        """``Y_gen`` (random dual mapping) from a clean sample and an estimated component."""
        if self.kind == "points":
            return invert_point_map(x, z)
        return observation_from_component(x, z)

    def separate(self, y, training: bool = False) -> Tuple[tf.Tensor, tf.Tensor]:
        """``(Z, X_gen)`` for observations ``y`` (inference mode by default)."""
        y = self.check_observation(y)
        z = self.network(y, training=training)
        return z, self.clean_from(y, z)


def _task_field(task, field: str):
    if not hasattr(task, field):
        raise TypeError(f"task must be an IganTask (missing field {field!r}), got {type(task).__name__}")
    return getattr(task, field)


def task_metadata(task) -> Dict[str, Any]:
    """The task fields that fix the networks' shapes, as JSON-able values."""
    fields = ("name", "image_size", "channels", "component_is_residual", "add_input_mean", "extra_convs")
    return {field: _task_field(task, field) for field in fields}


def build_estimator_for_task(task, seed: Optional[int] = None, working_size: Optional[int] = None) -> IganEstimator:
    """The estimator of an :class:`~tfinverse.tasks.igan_tasks.IganTask`.

    Args:
      task: the task (``image_size == 0`` means the toy 2-D points task).
      seed: seed of the weight initialisers.
      working_size: see :func:`build_igan_estimator` (image tasks only).

    Returns:
      An :class:`IganEstimator` whose ``metadata`` holds the task settings.
    """
    metadata = task_metadata(task)
    if int(task.image_size) == 0:
        network = build_igan_point_estimator(seed=seed, name=f"igan_{task.name}_estimator")
        return IganEstimator(network, "points", metadata)
    network = build_igan_estimator(
        task.image_size,
        task.channels,
        component_is_residual=bool(task.component_is_residual),
        add_input_mean=bool(task.add_input_mean),
        extra_convs=bool(task.extra_convs),
        working_size=working_size,
        seed=seed,
        name=f"igan_{task.name}_estimator",
    )
    return IganEstimator(network, "image", metadata)


def build_discriminators_for_task(task, seed: Optional[int] = None) -> Tuple[keras.Model, keras.Model]:
    """``(D1, D2)`` of a task: D1 judges clean images ``x``, D2 observations ``y``.

    Args:
      task: an :class:`~tfinverse.tasks.igan_tasks.IganTask`.
      seed: seed of the initialisers (D2 uses ``seed + 1``).

    Returns:
      Two independent discriminators returning logits ``[B, 1]``.
    """
    seeds = (None, None) if seed is None else (int(seed), int(seed) + 1)
    if int(task.image_size) == 0:
        return tuple(
            build_igan_point_discriminator(seed=s, name=f"igan_d{i}") for i, s in enumerate(seeds, start=1)
        )
    return tuple(
        build_igan_discriminator(task.image_size, task.channels, seed=s, name=f"igan_d{i}")
        for i, s in enumerate(seeds, start=1)
    )


# ----------------------------------------------------------------------------- export
class _EstimatorExport(tf.Module):
    def __init__(self, estimator: IganEstimator):
        super().__init__(name="igan_export")
        self.network = estimator.network
        self._kind = estimator.kind
        spec = tf.TensorSpec([None, *estimator.input_shape], tf.float32, name="y")
        self.serve = tf.function(self._serve, input_signature=[spec])

    def _serve(self, y):
        z = self.network(y, training=False)
        if self._kind == "points":
            clean = apply_point_map(y, z)
        else:
            clean = clean_from_component(y, z)
        return {"component": z, "clean": clean}


def recalibrate_estimator_batch_norm(
    estimator: IganEstimator, batches, num_batches: Optional[int] = IGAN_BN_RECALIBRATION_BATCHES, variance: str = "pooled"
):
    """Re-estimates the estimator's batch-norm moving statistics from training batches.

    igan trains every network in training mode (batch statistics) and its batch norm has
    momentum 0.999, so after a few hundred updates the moving averages are still mostly
    their initial values (0.999^300 = 0.74) and the inference-mode estimator is a different
    function from the trained one. This replaces them by statistics of ``num_batches``
    training-mode passes (:func:`tfinverse.training.batch_norm.recalibrate_batch_norm`). The
    original igan code never did this: it exported the moving averages as they were.

    Args:
      estimator: the :class:`IganEstimator` (its network's moving statistics change).
      batches: training batches: task batch dicts (their ``"y"`` is used) or observation
        tensors ``[batch, *input_shape]``.
      num_batches: passes to make (None: every batch of a finite ``batches``).
      variance: ``"pooled"`` or ``"batch"`` (see the batch-norm module).

    Returns:
      A :class:`~tfinverse.training.batch_norm.BatchNormRecalibration` (0 batches for a network
      without batch norm, e.g. the toy estimator; nothing is read then).
    """
    from tfinverse.training.batch_norm import recalibrate_batch_norm  # avoids a models <-> training cycle

    def observations(batch):
        return estimator.check_observation(batch["y"] if isinstance(batch, Mapping) else batch)

    return recalibrate_batch_norm(estimator.network, batches, num_batches, input_fn=observations, variance=variance)


def export_igan_estimator(
    estimator: IganEstimator,
    path,
    extra_metadata=None,
    overwrite: bool = False,
    recalibration_batches=None,
    num_recalibration_batches: Optional[int] = IGAN_BN_RECALIBRATION_BATCHES,
) -> str:
    """Writes a SavedModel of the estimator in inference mode.

    Signature ``serving_default``: input ``y`` float32 ``[batch, *input_shape]``; outputs
    ``component`` (``Z``) and ``clean`` (``X_gen = clip(Y - Z, 0, inf)``, or ``M y + b`` for
    the toy task). The task settings go to ``<path>/igan.json``. Load with
    :func:`load_igan_export` or ``tf.saved_model.load(path).signatures["serving_default"]``.

    The export uses the batch-norm moving statistics as they are. Give
    ``recalibration_batches`` (training batches) to re-estimate them first with
    :func:`recalibrate_estimator_batch_norm` (the original igan code never did; without it a
    briefly trained estimator behaves differently in inference mode). :func:`tfinverse.
    training.igan.IGAN.finish_training` already does this at the end of training.

    Args:
      estimator: the :class:`IganEstimator`.
      path: the SavedModel folder.
      extra_metadata: more JSON-able entries for ``igan.json`` (e.g. the GAN model).
      overwrite: replace an existing folder.
      recalibration_batches: training batches (dicts with ``"y"`` or observation tensors)
        for batch-norm recalibration before the export; None: none.
      num_recalibration_batches: batches used from them (50).

    Returns:
      ``path`` as a string.

    Raises:
      FileExistsError: if ``path`` exists and ``overwrite`` is False.
    """
    path = os.fspath(path)
    if os.path.exists(path) and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    extra_metadata = dict(extra_metadata or {})
    if recalibration_batches is not None:
        report = recalibrate_estimator_batch_norm(estimator, recalibration_batches, num_recalibration_batches)
        extra_metadata["batch_norm_recalibration_batches"] = report.num_batches
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".igan_export_", dir=parent)
    try:
        module = _EstimatorExport(estimator)
        tf.saved_model.save(module, staging, signatures={"serving_default": module.serve})
        metadata = dict(estimator.metadata, kind=estimator.kind, input_shape=list(estimator.input_shape))
        metadata.update(extra_metadata or {})
        with open(os.path.join(staging, IGAN_METADATA_FILE), "w") as f:
            json.dump(metadata, f, indent=2, sort_keys=True)
        if os.path.exists(path):
            shutil.rmtree(path)
        os.replace(staging, path)
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging, ignore_errors=True)
    return path


def read_igan_metadata(path) -> Optional[Dict[str, Any]]:
    """The ``igan.json`` settings of an export or checkpoint folder (None when absent)."""
    file = os.path.join(os.fspath(path), IGAN_METADATA_FILE)
    if not os.path.isfile(file):
        return None
    with open(file) as f:
        return json.load(f)


def load_igan_export(path):
    """Loads an export of :func:`export_igan_estimator`.

    Args:
      path: the SavedModel folder.

    Returns:
      ``(separate, metadata)``: ``separate(y)`` returns numpy ``(component, clean)``;
      ``metadata`` is the ``igan.json`` content (None for a SavedModel without it).

    Raises:
      FileNotFoundError: if ``path`` holds no SavedModel.
    """
    path = os.fspath(path)
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise FileNotFoundError(f"no SavedModel (saved_model.pb) in {path}")
    loaded = tf.saved_model.load(path)
    serve = loaded.signatures["serving_default"]

    def separate(y):
        outputs = serve(y=tf.convert_to_tensor(np.asarray(y, np.float32)))
        return outputs["component"].numpy(), outputs["clean"].numpy()

    separate.module = loaded  # keeps the variables alive
    return separate, read_igan_metadata(path)
