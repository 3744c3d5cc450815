"""LIR's networks ("Learning Invariant Representation for Unsupervised Image Restoration").

NHWC Keras ports of the PyTorch networks of Wenchao-Du/LIR-for-Unsupervised-IR (built on
UNIT), as ``/work/shared/reference/ORIGINALS.md`` section 3 lists them. Domain A is noisy,
domain B clean. A *conv block* is reflect pad -> conv with bias -> norm -> activation.

* :func:`build_content_encoder` (E): c7s1-64, c4s2-128, c4s2-256 (BN, ReLU), then 4
  ResBlocks(256): ``[H, W, C] -> [H/4, W/4, 256]``.
* :func:`build_noise_encoder` (S): the same three convs, then a plain 1x1 conv to 256: a
  SPATIAL code ``[H/4, W/4, 256]`` (the original's pooling line is commented out).
* :func:`build_content_decoder` (C, ``dec_cont``): 4 ResBlocks (BN), 2x [nearest up x2, c5,
  :class:`LIRLayerNorm`, ReLU] 256 -> 128 -> 64, c7 to C, tanh. :func:`build_recs_decoder`
  (R, ``dec_recs``): the same on the 512-channel concatenation (content + noise code),
  512 -> 256 -> 128 -> C.
* :func:`build_image_discriminator`: multi-scale LSGAN patch discriminator, per scale
  c4s2 64 -> 128 -> 256 -> 512, LeakyReLU 0.2, no norm, 1x1 conv to 1; the scales are made by
  :class:`AvgPoolExcludePad` (3x3, stride 2, padding 1, PyTorch's ``count_include_pad=False``).
* :func:`build_content_discriminator`: 4x [reflect pad 1, c3s2 256, LeakyReLU 0.01], global
  average pool, 1x1 conv: ``[H/4, W/4, 256] -> [1, 1, 1]``.
* :func:`build_lir_networks`: the eight networks of one LIR model in a :class:`LIRNetworks`
  (``restore(x) = C_b(E_a(x))``).
* :class:`BackgroundModule` / :func:`background_loss`: the frozen Gaussian blurs of the
  "background" self-supervised term.
* :func:`build_vgg19_conv4_1`, :func:`caffe_preprocess`, :func:`instance_normalize`,
  :func:`lir_perceptual_loss`: the perceptual term's VGG19 (weights from a user file only).

Initialisation: Kaiming-normal (fan_in, gain sqrt(2), untruncated) for the generators'
convs, ``N(0, 0.02)`` for the discriminators' convs, zero biases; BatchNorm gamma 1 and beta
0; the LayerNorm's gamma ``U(0, 1)``. BatchNorm uses PyTorch's settings (eps 1e-5, running
averages with momentum 0.1, i.e. Keras momentum 0.9, of the unbiased batch variance).

Any input size that is a multiple of 4 works for the generators (the restorer is fully
convolutional); the 3-scale discriminator needs at least 32 px so that its coarsest scale
still has 2 px left for its last reflect pad (64 px crops, as trained, give 4x4, 2x2 and
1x1 patch outputs); the content discriminator's four reflect-padded stride-2 convs need
codes of at least 9 px, i.e. training crops of at least 36 px.
"""

from __future__ import annotations

import itertools
import os
import warnings
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf

from tfinverse.errors import InputError, MissingPathError
from tfinverse.models.layers import FusedBatchNormalization

__all__ = [
    "CODE_CHANNELS",
    "BN_EPSILON",
    "BN_MOMENTUM",
    "DISCRIMINATOR_CONFIGS",
    "BACKGROUND_KERNEL_SIZES",
    "BACKGROUND_SIGMA",
    "BACKGROUND_WEIGHTS",
    "CAFFE_BGR_MEANS",
    "VGG_FEATURE_LAYER",
    "ReflectionPad2D",
    "LIRLayerNorm",
    "AvgPoolExcludePad",
    "InstanceNormalization",
    "kaiming_normal",
    "discriminator_normal",
    "build_content_encoder",
    "build_noise_encoder",
    "build_content_decoder",
    "build_recs_decoder",
    "build_image_discriminator",
    "build_content_discriminator",
    "scale_outputs",
    "LIRNetworks",
    "build_lir_networks",
    "gaussian_kernel",
    "BackgroundModule",
    "background_loss",
    "caffe_preprocess",
    "instance_normalize",
    "build_vgg19_conv4_1",
    "load_vgg19_weights",
    "VGGFeatures",
    "lir_perceptual_loss",
    "VGG_UNAVAILABLE_MESSAGE",
]

_PACKAGE = "tfinverse"

CODE_CHANNELS = 256
"""Channels of the content code and of the noise code (both ``[H/4, W/4, 256]``)."""

BN_EPSILON = 1e-5
"""PyTorch's BatchNorm2d epsilon."""
BN_MOMENTUM = 0.9
"""Keras momentum equal to PyTorch's BatchNorm2d momentum 0.1."""

DISCRIMINATOR_CONFIGS: Dict[str, Dict[str, int]] = {
    "noise2clear": {"num_scales": 3, "width": 64, "num_layers": 4},
    "noise2self": {"num_scales": 1, "width": 256, "num_layers": 4},
}
"""Image-discriminator settings of the two configs. noise2self's layer count is not stated
in ORIGINALS.md; the noise2clear count (4) is used."""


# ----------------------------------------------------------------------------- initialisers


def kaiming_normal(seed: Optional[int] = None) -> keras.initializers.Initializer:
    """PyTorch's ``kaiming_normal_(a=0, mode='fan_in')``: ``N(0, 2 / fan_in)``, untruncated.

    (Keras' ``HeNormal`` draws from a truncated normal; the original's draw is not truncated.)
    """
    return keras.initializers.VarianceScaling(2.0, "fan_in", "untruncated_normal", seed=seed)


def discriminator_normal(seed: Optional[int] = None) -> keras.initializers.Initializer:
    """UNIT's ``'gaussian'`` init of the discriminators: ``N(0, 0.02)``."""
    return keras.initializers.RandomNormal(0.0, 0.02, seed=seed)


class _Seeds:
    """Distinct, reproducible initialiser seeds for successive layers (None stays None)."""

    def __init__(self, seed: Optional[int]):
        self._counter = None if seed is None else itertools.count(int(seed) * 1000)

    def next(self) -> Optional[int]:
        return None if self._counter is None else next(self._counter)


# ----------------------------------------------------------------------------- layers


@keras.saving.register_keras_serializable(package=_PACKAGE)
class ReflectionPad2D(keras.layers.Layer):
    """Reflect padding of ``padding`` pixels on every side (PyTorch's ``ReflectionPad2d``).

    The border pixel is not repeated (``[a, b, c] -> [b, a, b, c, b]`` for 1 pixel), as
    ``tf.pad(mode="REFLECT")`` and ``numpy.pad(mode="reflect")``.

    Args:
      padding: pixels added on each side (needs ``padding < H`` and ``< W``).
      **kwargs: forwarded to :class:`keras.layers.Layer`.
    """

    def __init__(self, padding: int, **kwargs):
        super().__init__(**kwargs)
        if int(padding) < 0:
            raise ValueError(f"padding must be >= 0, got {padding}")
        self.padding = int(padding)

    def call(self, inputs):
        p = self.padding
        if p == 0:
            return inputs
        return tf.pad(inputs, [[0, 0], [p, p], [p, p], [0, 0]], mode="REFLECT")

    def compute_output_shape(self, input_shape):
        def grow(n):
            return None if n is None else n + 2 * self.padding

        return (input_shape[0], grow(input_shape[1]), grow(input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class LIRLayerNorm(keras.layers.Layer):
    """The original's own LayerNorm (UNIT's), which Keras' ``LayerNormalization`` is not.

    Per sample, over all of ``H * W * C``: ``y = (x - mean) / (std + eps) * gamma + beta``
    with the UNBIASED standard deviation (divisor ``n - 1``), ``eps`` added to the std (not
    to the variance), and per-channel ``gamma ~ U(0, 1)``, ``beta = 0``. Computed in float32
    under mixed precision.

    Args:
      epsilon: added to the standard deviation.
      affine: learn ``gamma`` and ``beta``.
      seed: seed of the ``U(0, 1)`` gamma initialiser.
      **kwargs: forwarded to :class:`keras.layers.Layer`.
    """

    def __init__(self, epsilon: float = 1e-5, affine: bool = True, seed: Optional[int] = None, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)
        self.affine = bool(affine)
        self.seed = seed

    def build(self, input_shape):
        channels = int(input_shape[-1])
        if self.affine:
            self.gamma = self.add_weight(
                name="gamma", shape=(channels,),
                initializer=keras.initializers.RandomUniform(0.0, 1.0, seed=self.seed), trainable=True,
            )
            self.beta = self.add_weight(name="beta", shape=(channels,), initializer="zeros", trainable=True)

    def call(self, inputs):
        x = tf.cast(inputs, tf.float32)
        axes = list(range(1, len(x.shape)))
        mean = tf.reduce_mean(x, axis=axes, keepdims=True)
        count = tf.cast(tf.reduce_prod(tf.shape(x)[1:]), tf.float32)
        squares = tf.reduce_sum(tf.square(x - mean), axis=axes, keepdims=True)
        std = tf.sqrt(squares / tf.maximum(count - 1.0, 1.0))
        y = (x - mean) / (std + self.epsilon)
        if self.affine:
            y = y * tf.cast(self.gamma, tf.float32) + tf.cast(self.beta, tf.float32)
        return tf.cast(y, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon, "affine": self.affine, "seed": self.seed}


@keras.saving.register_keras_serializable(package=_PACKAGE)
class AvgPoolExcludePad(keras.layers.Layer):
    """Average pooling whose zero padding does not count in the average.

    PyTorch's ``AvgPool2d(pool_size, stride, padding, count_include_pad=False)``: pad
    explicitly (symmetric ``padding`` pixels), sum each window and divide by the number of
    real pixels in it (a pooled mask of ones). TensorFlow's own ``"SAME"`` pooling also
    excludes the padding but pads asymmetrically for even inputs, which shifts the grid.

    Args:
      pool_size: window side (3 in LIR).
      strides: step (2 in LIR).
      padding: pixels of zero padding on each side (1 in LIR).
      **kwargs: forwarded to :class:`keras.layers.Layer`.
    """

    def __init__(self, pool_size: int = 3, strides: int = 2, padding: int = 1, **kwargs):
        super().__init__(**kwargs)
        self.pool_size, self.strides, self.padding = int(pool_size), int(strides), int(padding)

    def call(self, inputs):
        p, k, s = self.padding, self.pool_size, self.strides
        paddings = [[0, 0], [p, p], [p, p], [0, 0]]
        x = tf.pad(inputs, paddings)
        mask = tf.pad(tf.ones_like(inputs[:1, :, :, :1]), paddings)
        pooled = tf.nn.avg_pool2d(x, k, s, "VALID")
        share = tf.nn.avg_pool2d(mask, k, s, "VALID")  # fraction of real pixels per window
        return pooled / share

    def compute_output_shape(self, input_shape):
        def out(n):
            return None if n is None else (n + 2 * self.padding - self.pool_size) // self.strides + 1

        return (input_shape[0], out(input_shape[1]), out(input_shape[2]), input_shape[3])

    def get_config(self):
        return {**super().get_config(), "pool_size": self.pool_size, "strides": self.strides,
                "padding": self.padding}


def instance_normalize(features, epsilon: float = 1e-5):
    """Instance normalisation without affine parameters (PyTorch ``InstanceNorm2d`` defaults).

    Per sample and channel over ``H, W``, biased variance: ``(x - mean) / sqrt(var + eps)``.

    Args:
      features: ``[N, H, W, C]``.
      epsilon: added to the variance.

    Returns:
      float32 tensor of the same shape.
    """
    x = tf.cast(features, tf.float32)
    mean, variance = tf.nn.moments(x, axes=[1, 2], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + epsilon)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class InstanceNormalization(keras.layers.Layer):
    """Layer form of :func:`instance_normalize` (no affine parameters)."""

    def __init__(self, epsilon: float = 1e-5, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        return instance_normalize(inputs, self.epsilon)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "epsilon": self.epsilon}


# ----------------------------------------------------------------------------- blocks


def _conv_block(x, filters, kernel_size, strides, padding, norm, activation, name, init, seeds):
    """reflect pad -> conv (bias) -> norm -> activation, layers named ``name/...``."""
    if padding:
        x = ReflectionPad2D(padding, name=f"{name}_pad")(x)
    x = keras.layers.Conv2D(
        filters, kernel_size, strides=strides, padding="valid", use_bias=True,
        kernel_initializer=init(seeds.next()), bias_initializer="zeros", name=f"{name}_conv",
    )(x)
    if norm == "bn":
        x = FusedBatchNormalization(momentum=BN_MOMENTUM, epsilon=BN_EPSILON, unbiased_moving_variance=True,
                                    name=f"{name}_bn")(x)
    elif norm == "ln":
        x = LIRLayerNorm(seed=seeds.next(), name=f"{name}_ln")(x)
    elif norm is not None:
        raise ValueError(f"unknown norm {norm!r}")
    if activation == "relu":
        x = keras.layers.ReLU(name=f"{name}_relu")(x)
    elif activation == "tanh":
        x = keras.layers.Activation("tanh", name=f"{name}_tanh")(x)
    elif isinstance(activation, float):
        x = keras.layers.LeakyReLU(negative_slope=activation, name=f"{name}_lrelu")(x)
    elif activation is not None:
        raise ValueError(f"unknown activation {activation!r}")
    return x


def _res_blocks(x, count, name, seeds):
    """``count`` ResBlocks: [c3 BN ReLU, c3 BN] + identity, no activation after the add."""
    channels = int(x.shape[-1])
    for i in range(count):
        block = f"{name}_res{i}"
        y = _conv_block(x, channels, 3, 1, 1, "bn", "relu", f"{block}_a", kaiming_normal, seeds)
        y = _conv_block(y, channels, 3, 1, 1, "bn", None, f"{block}_b", kaiming_normal, seeds)
        x = keras.layers.Add(name=f"{block}_add")([x, y])
    return x


def _downsampling_stem(x, name, width, seeds):
    """c7s1-64, c4s2-128, c4s2-256, each BN ReLU."""
    x = _conv_block(x, width, 7, 1, 3, "bn", "relu", f"{name}_c7s1", kaiming_normal, seeds)
    for i in range(2):
        width *= 2
        x = _conv_block(x, width, 4, 2, 1, "bn", "relu", f"{name}_down{i}", kaiming_normal, seeds)
    return x


def _check_channels(channels: int) -> int:
    if int(channels) < 1:
        raise ValueError(f"channels must be >= 1, got {channels}")
    return int(channels)


def build_content_encoder(channels: int = 3, width: int = 64, num_res: int = 4, name: str = "enc_cont",
                          seed: Optional[int] = None) -> keras.Model:
    """The content encoder E: ``[N, H, W, channels] -> [N, H/4, W/4, 4 * width]``.

    Args:
      channels: image channels (3 photos, 1 CT).
      width: channels of the first conv (64); the code has ``4 * width`` (256).
      num_res: ResBlocks after the down-sampling convs (4).
      name: model name and prefix of every layer name.
      seed: initialiser seed (None: random).

    Returns:
      A functional ``keras.Model`` taking any ``H, W`` that are multiples of 4.
    """
    seeds = _Seeds(seed)
    inputs = keras.Input((None, None, _check_channels(channels)), name=f"{name}_input")
    x = _downsampling_stem(inputs, name, width, seeds)
    x = _res_blocks(x, num_res, name, seeds)
    return keras.Model(inputs, x, name=name)


def build_noise_encoder(channels: int = 3, width: int = 64, code_channels: int = CODE_CHANNELS,
                        name: str = "enc_noise", seed: Optional[int] = None) -> keras.Model:
    """The noise ("style") encoder S: ``[N, H, W, channels] -> [N, H/4, W/4, 256]``, SPATIAL.

    The stem of :func:`build_content_encoder`, then a plain 1x1 conv (bias, no norm, no
    activation) to ``code_channels``.

    Args:
      channels: image channels.
      width: channels of the first conv.
      code_channels: channels of the noise code (256).
      name: model name and layer prefix.
      seed: initialiser seed.

    Returns:
      A functional ``keras.Model``.
    """
    seeds = _Seeds(seed)
    inputs = keras.Input((None, None, _check_channels(channels)), name=f"{name}_input")
    x = _downsampling_stem(inputs, name, width, seeds)
    x = keras.layers.Conv2D(code_channels, 1, use_bias=True, kernel_initializer=kaiming_normal(seeds.next()),
                            bias_initializer="zeros", name=f"{name}_code_conv")(x)
    return keras.Model(inputs, x, name=name)


def _build_decoder(input_channels, channels, num_res, name, seed):
    seeds = _Seeds(seed)
    inputs = keras.Input((None, None, int(input_channels)), name=f"{name}_input")
    x = _res_blocks(inputs, num_res, name, seeds)
    width = int(input_channels)
    for i in range(2):
        width //= 2
        x = keras.layers.UpSampling2D(2, interpolation="nearest", name=f"{name}_up{i}_upsample")(x)
        x = _conv_block(x, width, 5, 1, 2, "ln", "relu", f"{name}_up{i}", kaiming_normal, seeds)
    x = _conv_block(x, _check_channels(channels), 7, 1, 3, None, "tanh", f"{name}_out", kaiming_normal, seeds)
    return keras.Model(inputs, x, name=name)


def build_content_decoder(channels: int = 3, input_channels: int = CODE_CHANNELS, num_res: int = 4,
                          name: str = "dec_cont", seed: Optional[int] = None) -> keras.Model:
    """``dec_cont`` (C): content code ``[N, H/4, W/4, 256] -> [N, H, W, channels]`` in (-1, 1).

    4 ResBlocks (BN), 2x [nearest up x2, c5, :class:`LIRLayerNorm`, ReLU] 256 -> 128 -> 64,
    c7 to ``channels``, tanh (the trainer clips restored images to [0, 1]).

    Args:
      channels: image channels.
      input_channels: code channels (256).
      num_res: ResBlocks.
      name: model name and layer prefix.
      seed: initialiser seed.

    Returns:
      A functional ``keras.Model``.
    """
    return _build_decoder(input_channels, channels, num_res, name, seed)


def build_recs_decoder(channels: int = 3, input_channels: int = 2 * CODE_CHANNELS, num_res: int = 4,
                       name: str = "dec_recs", seed: Optional[int] = None) -> keras.Model:
    """``dec_recs`` (R): ``concat(content, noise code) [N, H/4, W/4, 512] -> [N, H, W, channels]``.

    As :func:`build_content_decoder` on 512 channels: 512 -> 256 -> 128 -> ``channels``.

    Args:
      channels: image channels.
      input_channels: 512 (256 content + 256 noise code).
      num_res: ResBlocks.
      name: model name and layer prefix.
      seed: initialiser seed.

    Returns:
      A functional ``keras.Model``.
    """
    return _build_decoder(input_channels, channels, num_res, name, seed)


def build_image_discriminator(channels: int = 3, num_scales: int = 3, width: int = 64, num_layers: int = 4,
                              name: str = "dis", seed: Optional[int] = None) -> keras.Model:
    """Multi-scale LSGAN image discriminator (UNIT's ``MsImageDis``).

    Per scale: ``num_layers`` conv blocks [reflect pad 1, c4s2, LeakyReLU 0.2, no norm],
    ``width`` doubling after the first (64 -> 128 -> 256 -> 512), then a 1x1 conv to one
    channel. Scale ``k + 1`` sees the input pooled by :class:`AvgPoolExcludePad`.

    Args:
      channels: image channels.
      num_scales: number of scales (3 noise2clear, 1 noise2self).
      width: channels of the first conv (64 noise2clear, 256 noise2self).
      num_layers: conv blocks per scale (4).
      name: model name and layer prefix (layers ``{name}_s{scale}_...``).
      seed: initialiser seed.

    Returns:
      A ``keras.Model`` returning a list of ``num_scales`` maps ``[N, H / 2^(L+k), W / 2^(L+k), 1]``
      (4x4, 2x2, 1x1 for a 64 px input), finest first. Keras returns a single-scale model's
      one map as a tensor, not a list: :func:`scale_outputs` makes a list of either.
    """
    seeds = _Seeds(seed)
    inputs = keras.Input((None, None, _check_channels(channels)), name=f"{name}_input")
    outputs = []
    x = inputs
    for scale in range(int(num_scales)):
        y, filters = x, int(width)
        for layer in range(int(num_layers)):
            y = _conv_block(y, filters, 4, 2, 1, None, 0.2, f"{name}_s{scale}_l{layer}", discriminator_normal, seeds)
            filters *= 2
        y = keras.layers.Conv2D(1, 1, kernel_initializer=discriminator_normal(seeds.next()),
                                bias_initializer="zeros", name=f"{name}_s{scale}_out")(y)
        outputs.append(y)
        if scale + 1 < num_scales:
            x = AvgPoolExcludePad(3, 2, 1, name=f"{name}_downsample{scale}")(x)
    return keras.Model(inputs, outputs, name=name)


def scale_outputs(outputs) -> list:
    """The per-scale outputs of an image discriminator as a list (one scale included)."""
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


def build_content_discriminator(input_channels: int = CODE_CHANNELS, width: int = 256, num_layers: int = 4,
                                name: str = "dis_content", seed: Optional[int] = None) -> keras.Model:
    """The content discriminator on codes: ``[N, h, w, 256] -> [N, 1, 1, 1]``.

    ``num_layers`` x [reflect pad 1, c3s2 ``width``, LeakyReLU 0.01], global average pool,
    1x1 conv (bias). Initialised ``N(0, 0.02)`` like the image discriminators.

    Args:
      input_channels: code channels (256).
      width: conv channels (256).
      num_layers: conv blocks (4).
      name: model name and layer prefix.
      seed: initialiser seed.

    Returns:
      A functional ``keras.Model``.
    """
    seeds = _Seeds(seed)
    inputs = keras.Input((None, None, int(input_channels)), name=f"{name}_input")
    x = inputs
    for layer in range(int(num_layers)):
        x = _conv_block(x, int(width), 3, 2, 1, None, 0.01, f"{name}_l{layer}", discriminator_normal, seeds)
    x = keras.layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_pool")(x)
    x = keras.layers.Conv2D(1, 1, kernel_initializer=discriminator_normal(seeds.next()),
                            bias_initializer="zeros", name=f"{name}_out")(x)
    return keras.Model(inputs, x, name=name)


@dataclass
class LIRNetworks:
    """The networks of one LIR model (A = noisy, B = clean).

    Attributes:
      enc_cont_a: E_a, content encoder of noisy images.
      enc_noise_a: S_a, noise encoder of noisy images.
      dec_recs_a: R_a, noisy-domain decoder of ``concat(content, noise code)``.
      enc_cont_b: E_b, content encoder of clean images.
      dec_cont_b: C_b, clean-domain decoder of a content code.
      dis_a: multi-scale discriminator of noisy images.
      dis_b: multi-scale discriminator of clean images.
      dis_content: discriminator of content codes (noisy -> 0, clean -> 1).
    """

    enc_cont_a: keras.Model
    enc_noise_a: keras.Model
    dec_recs_a: keras.Model
    enc_cont_b: keras.Model
    dec_cont_b: keras.Model
    dis_a: keras.Model
    dis_b: keras.Model
    dis_content: keras.Model

    @property
    def generators(self) -> List[keras.Model]:
        """E_a, S_a, R_a, E_b, C_b (one optimiser in the original)."""
        return [self.enc_cont_a, self.enc_noise_a, self.dec_recs_a, self.enc_cont_b, self.dec_cont_b]

    @property
    def image_discriminators(self) -> List[keras.Model]:
        """dis_a, dis_b."""
        return [self.dis_a, self.dis_b]

    def restore(self, noisy, training: bool = False):
        """The restorer ``C_b(E_a(x))`` (test mode: BN running statistics, no code noise).

        Args:
          noisy: ``[N, H, W, C]`` with ``H, W`` multiples of 4.
          training: batch statistics instead of running ones.

        Returns:
          ``[N, H, W, C]`` in (-1, 1), unclipped (clip to [0, 1] for images).
        """
        return self.dec_cont_b(self.enc_cont_a(noisy, training=training), training=training)


def build_lir_networks(channels: int = 3, config: str = "noise2clear", seed: Optional[int] = 0,
                       width: int = 64, dis_width: Optional[int] = None, num_res: int = 4) -> LIRNetworks:
    """All eight networks of an LIR model, named ``enc_cont_a``, ``dec_cont_b``, ... .

    Args:
      channels: image channels (3 photos, 1 CT).
      config: ``"noise2clear"`` (3-scale, width-64 image discriminators) or ``"noise2self"``
        (1 scale, width 256).
      seed: base initialiser seed (each network gets its own); None draws randomly.
      width: channels of the generators' first conv (64, the original's); the codes have
        ``4 * width`` channels (256) and the content discriminator is ``4 * width`` wide.
        Smaller widths are tfinverse's, to train on a CPU in minutes (the cost scales as
        ``width ** 2``).
      dis_width: first-layer width of the image discriminators (default: the config's).
      num_res: ResBlocks in each encoder and decoder (4).

    Returns:
      A :class:`LIRNetworks`.

    Raises:
      InputError: for an unknown config.
    """
    if config not in DISCRIMINATOR_CONFIGS:
        raise InputError(f"unknown LIR config {config!r}; valid: {', '.join(sorted(DISCRIMINATOR_CONFIGS))}")
    dis = dict(DISCRIMINATOR_CONFIGS[config])
    if dis_width is not None:
        dis["width"] = int(dis_width)
    width, num_res = int(width), int(num_res)
    if width < 1 or num_res < 0:
        raise InputError(f"width must be >= 1 and num_res >= 0, got {width} and {num_res}")
    code = 4 * width

    def sub(i):
        return None if seed is None else int(seed) * 16 + i

    return LIRNetworks(
        enc_cont_a=build_content_encoder(channels, width, num_res, name="enc_cont_a", seed=sub(0)),
        enc_noise_a=build_noise_encoder(channels, width, code, name="enc_noise_a", seed=sub(1)),
        dec_recs_a=build_recs_decoder(channels, 2 * code, num_res, name="dec_recs_a", seed=sub(2)),
        enc_cont_b=build_content_encoder(channels, width, num_res, name="enc_cont_b", seed=sub(3)),
        dec_cont_b=build_content_decoder(channels, code, num_res, name="dec_cont_b", seed=sub(4)),
        dis_a=build_image_discriminator(channels, name="dis_a", seed=sub(5), **dis),
        dis_b=build_image_discriminator(channels, name="dis_b", seed=sub(6), **dis),
        dis_content=build_content_discriminator(code, code, name="dis_content", seed=sub(7)),
    )


# ----------------------------------------------------------------------------- background module

BACKGROUND_KERNEL_SIZES = (5, 9, 15)
"""Sides of the three Gaussian blurs of the background module."""
BACKGROUND_SIGMA = 25.0
"""Their common sigma (so wide for these kernels that they are nearly box filters)."""
BACKGROUND_WEIGHTS = (0.25, 0.5, 1.0)
"""Weight of each blur's L1 term."""


def gaussian_kernel(size: int, sigma: float) -> np.ndarray:
    """A normalised 2-D Gaussian ``size x size`` kernel centred on ``size // 2``.

    The outer product of the normalised 1-D Gaussian (the original's exact construction was
    not checked; for an odd size any normalised, centred, separable construction is this one).

    Args:
      size: odd side.
      sigma: standard deviation in pixels.

    Returns:
      float32 ``[size, size]`` summing to 1.
    """
    if int(size) < 1 or int(size) % 2 == 0:
        raise ValueError(f"size must be a positive odd integer, got {size}")
    offsets = np.arange(int(size), dtype=np.float64) - int(size) // 2
    g = np.exp(-(offsets ** 2) / (2.0 * float(sigma) ** 2))
    g /= g.sum()
    return np.outer(g, g).astype(np.float32)


class BackgroundModule:
    """Frozen depthwise Gaussian blurs (reflect padding) comparing low frequencies.

    ``loss(x_ab, x_a, x_ba, x_b) = sum_k w_k [L1(B_k(x_ab), B_k(x_a)) + L1(B_k(x_ba), B_k(x_b))]``
    with L1 the mean absolute difference: the translated images must keep the background
    (low-pass content) of their sources. No trainable weights.

    Args:
      kernel_sizes: blur sides (5, 9, 15).
      sigma: Gaussian sigma (25).
      weights: one weight per blur (0.25, 0.5, 1).
    """

    def __init__(self, kernel_sizes: Sequence[int] = BACKGROUND_KERNEL_SIZES, sigma: float = BACKGROUND_SIGMA,
                 weights: Sequence[float] = BACKGROUND_WEIGHTS):
        if len(kernel_sizes) != len(weights):
            raise ValueError("kernel_sizes and weights must have the same length")
        self.kernel_sizes = tuple(int(k) for k in kernel_sizes)
        self.sigma = float(sigma)
        self.weights = tuple(float(w) for w in weights)
        self._kernels = [gaussian_kernel(k, self.sigma) for k in self.kernel_sizes]

    def blur(self, images, index: int):
        """Blur ``index`` (0, 1, 2) of a batch ``[N, H, W, C]``, same size (reflect padding)."""
        images = tf.convert_to_tensor(images)
        kernel = self._kernels[index]
        pad = kernel.shape[0] // 2
        channels = images.shape[-1]
        x = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]], mode="REFLECT")
        depthwise = tf.constant(np.repeat(kernel[:, :, None, None], channels, axis=2), dtype=images.dtype)
        return tf.nn.depthwise_conv2d(x, depthwise, [1, 1, 1, 1], "VALID")

    def __call__(self, x_ab, x_a, x_ba, x_b):
        """The weighted background loss (float32 scalar)."""
        total = tf.constant(0.0, tf.float32)
        for i, weight in enumerate(self.weights):
            for fake, real in ((x_ab, x_a), (x_ba, x_b)):
                diff = tf.cast(self.blur(fake, i), tf.float32) - tf.cast(self.blur(real, i), tf.float32)
                total = total + weight * tf.reduce_mean(tf.abs(diff))
        return total


def background_loss(x_ab, x_a, x_ba, x_b) -> tf.Tensor:
    """:class:`BackgroundModule` with the original's settings, as a function."""
    return BackgroundModule()(x_ab, x_a, x_ba, x_b)


# ----------------------------------------------------------------------------- VGG perceptual term

CAFFE_BGR_MEANS = (103.939, 116.779, 123.68)
"""ImageNet channel means subtracted by the Caffe preprocessing, in BGR order."""

VGG_FEATURE_LAYER = "block4_conv1"
"""Keras name of VGG19's conv4_1, the feature layer (taken BEFORE its ReLU)."""

VGG_UNAVAILABLE_MESSAGE = (
    "perceptual (VGG) term off: no VGG19 weights given (ImageNet weights cannot be downloaded here; "
    "pass a VGG19 weights file, e.g. --vgg-weights vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5)"
)
"""The one line a caller prints when the perceptual term is off."""

# The convs VGG19 runs up to conv4_1.
_VGG_CONVS = ("block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1", "block3_conv2",
              "block3_conv3", "block3_conv4", "block4_conv1")


def caffe_preprocess(images, value_range=(0.0, 1.0)):
    """Caffe VGG preprocessing: RGB in ``value_range`` -> BGR in [0, 255] minus the means.

    Grey images (one channel) are replicated to three channels first.

    Args:
      images: ``[N, H, W, 1 or 3]`` RGB.
      value_range: range of the inputs, mapped to [0, 255] ((0, 1) for LIR's images).

    Returns:
      float32 ``[N, H, W, 3]`` BGR.
    """
    x = tf.cast(images, tf.float32)
    if x.shape[-1] == 1:
        x = tf.repeat(x, 3, axis=-1)
    low, high = float(value_range[0]), float(value_range[1])
    x = (x - low) * (255.0 / (high - low))
    x = x[..., ::-1]
    return x - tf.constant(CAFFE_BGR_MEANS, tf.float32)


def load_vgg19_weights(model: keras.Model, path: str) -> None:
    """Loads a user-supplied VGG19 weights file into ``keras.applications.VGG19(include_top=False)``.

    Accepted: Keras' ``vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5`` (legacy HDF5), the
    full file with the top (loaded by layer name), or ``.weights.h5`` / ``.keras`` files saved
    from a Keras VGG19.

    Args:
      model: a Keras VGG19 without top.
      path: the weights file.

    Raises:
      MissingPathError: no such file.
      InputError: (one line) the file is not VGG19 weights (another architecture, unreadable).
    """
    path = os.path.expanduser(str(path))
    if not os.path.isfile(path):
        raise MissingPathError(f"VGG19 weights file {path} does not exist")
    if not path.endswith((".h5", ".hdf5", ".keras")):
        raise InputError(f"VGG19 weights file {path}: expected a .h5, .weights.h5 or .keras file")
    # Zeroed kernels show afterwards which layers the file did not fill (Keras may skip
    # unmatched layers with a warning only).
    attempts = [{}]
    if path.endswith((".h5", ".hdf5")) and not path.endswith(".weights.h5"):
        attempts.append({"by_name": True})  # a full VGG19 file (with the top) loads by name
    first_error = None
    for kwargs in attempts:
        for name in _VGG_CONVS:
            layer = model.get_layer(name)
            layer.set_weights([np.zeros_like(w) for w in layer.get_weights()])
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model.load_weights(path, **kwargs)
        except Exception as error:  # Keras raises ValueError, KeyError, OSError... by file kind
            first_error = first_error or error
            continue
        missing = [n for n in _VGG_CONVS if not np.any(model.get_layer(n).get_weights()[0])]
        if not missing:
            return
        first_error = first_error or f"no weights for {', '.join(missing)}"
    reason = " ".join(str(first_error).split())[:200]
    raise InputError(f"{path} is not a VGG19 weights file ({reason})")


def build_vgg19_conv4_1(weights_path: Optional[str] = None) -> keras.Model:
    """VGG19 up to conv4_1 BEFORE its ReLU: Caffe-preprocessed BGR -> ``[N, H/8, W/8, 512]``.

    Built from ``keras.applications.VGG19(weights=None, include_top=False)`` (nothing is
    downloaded); the last layer is a copy of ``block4_conv1`` with a linear activation.

    Args:
      weights_path: a VGG19 weights file (see :func:`load_vgg19_weights`); None leaves the
        random initialisation (for shapes and tests only: the perceptual term needs weights).

    Returns:
      A frozen (``trainable = False``) functional model named ``vgg19_conv4_1``.

    Raises:
      InputError: the weights file is not VGG19's.
    """
    vgg = keras.applications.VGG19(weights=None, include_top=False, input_shape=(None, None, 3))
    if weights_path is not None:
        load_vgg19_weights(vgg, weights_path)
    inputs = keras.Input((None, None, 3), name="vgg_input_bgr")
    x = inputs
    for layer in vgg.layers[1:]:
        if layer.name == VGG_FEATURE_LAYER:
            break
        x = layer(x)
    source = vgg.get_layer(VGG_FEATURE_LAYER)
    # conv4_1 without its ReLU: the same kernel, a linear activation.
    conv = keras.layers.Conv2D(source.filters, source.kernel_size, padding="same", activation=None,
                               name=VGG_FEATURE_LAYER)
    x = conv(x)
    conv.set_weights(source.get_weights())
    model = keras.Model(inputs, x, name="vgg19_conv4_1")
    model.trainable = False
    return model


class VGGFeatures:
    """``images in [0, 1] -> instance_normalize(conv4_1_pre_relu(caffe_preprocess(images)))``.

    Args:
      model: the model of :func:`build_vgg19_conv4_1`.
    """

    def __init__(self, model: keras.Model):
        self.model = model

    def __call__(self, images):
        return instance_normalize(self.model(caffe_preprocess(images), training=False))


def lir_perceptual_loss(weights_path: Optional[str] = None):
    """LIR's perceptual term as a :class:`tfinverse.losses.features.PerceptualLoss`.

    MSE of instance-normalised VGG19 conv4_1 (pre-ReLU) features of Caffe-preprocessed
    images in [0, 1]. Without ``weights_path`` the loss has no backbone
    (``available == False``; print :data:`VGG_UNAVAILABLE_MESSAGE` and leave the term off).

    Args:
      weights_path: a VGG19 weights file or None.

    Returns:
      The loss; call it as ``loss(images, references)``.

    Raises:
      InputError: the weights file is not VGG19's.
    """
    from tfinverse.losses.features import PerceptualLoss

    if weights_path is None:
        return PerceptualLoss(None)
    return PerceptualLoss(VGGFeatures(build_vgg19_conv4_1(weights_path)))

