"""Ambient VAE-GAN's networks, learning-rate schedule and forward models (seed 001).

Three Keras functional models in the original's two layouts (``model.py`` / ``ops.py`` of
``hamedhaghighi/Ambient-VAE``; ``ORIGINALS.md`` section 2), configured by
:class:`~tfinverse.tasks.ambient.AmbientConfig` (``PRESETS["celeba"]``: 64x64x3, latent 128;
``PRESETS["mnist"]``: 28x28x1, latent 20):

* encoder ``E: y -> (mu, logvar)``. celeba: conv 64, 128, 256 (BN, ReLU each), flatten,
  FC 1024 (BN, ReLU), FC ``latent`` twice. mnist: conv 16, 32, 64 (BN, ReLU), flatten, the
  two FC heads.
* decoder / generator ``G: z -> x``. celeba: FC ``s*s*256`` (BN, ReLU), deconv 256, 128, 32
  (BN, ReLU), a stride-1 deconv to ``C``, tanh. mnist: FC ``s*s*32`` (BN, ReLU), deconv 16
  (BN, ReLU), deconv to ``C``, sigmoid. ``s`` is the start grid (8 at 64 px, 7 at 28 px).
* discriminator ``D: image -> (feature map, logit)``. celeba: conv 32 (ReLU, no BN), conv 128,
  256 (BN, ReLU), conv 256 whose output before batch norm is the feature map, BN, ReLU,
  flatten, FC 256 (BN, ReLU), FC 1. mnist: conv 16 (ReLU), conv 32 (BN, ReLU), conv 64 (the
  feature map), BN, ReLU, flatten, FC 1.

Every conv / deconv is 3x3, stride 2 (except celeba's last deconv), SAME padding, with bias.
Initialisers as the original: convolution kernels truncated normal (stddev 0.02), deconvolution
and dense kernels normal (stddev 0.02), biases zero; batch norm with scale and offset, momentum
0.9, epsilon 1e-5. Layers carry the original's variable-scope names (``e_c1``, ``gen_deconv2``,
``dis_bn3``, ...), so checkpoint paths are stable. The batch size is never part of a shape.

Batch norm. The original runs every batch norm in training mode, always: each call normalises
by the statistics of its own batch, at test time too, and the moving averages are never used.
The layers here (:class:`AmbientBatchNormalization`) do the same by default
(``batch_statistics=True``): a call with ``training=False`` still normalises by the batch's
statistics and leaves the moving averages alone; ``training=True`` also updates the moving
averages (Keras' training mode). With ``batch_statistics=False`` (at construction, or
:func:`set_batch_statistics` on a built network) inference calls use the moving averages,
ordinary Keras behaviour. Keras averages the biased batch variance; TF1's fused batch norm
averaged the Bessel-corrected one. The original never read its averages, so this is moot
for a faithful port.

Image ranges. tfinverse's boundary is ``[0, 1]``; the networks work in
``config.network_range`` (``[-1, 1]`` for celeba, ``[0, 1]`` for mnist).
:func:`to_network_range` and :func:`from_network_range` are the one place that converts;
:class:`AmbientNetworks` and :class:`AmbientGenerator` apply them for you.

Also here: :class:`AmbientLearningRate`, the original's continuous exponential decay with its
floor, as a Keras schedule; :class:`AmbientMeasurement`, the forward models built by
:func:`tfinverse.tasks.ambient.build_measurement`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Sequence, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

from tfinverse.errors import InputError
from tfinverse.models.generator import KerasGenerator
from tfinverse.models.layers import FusedBatchNormalization
from tfinverse.tasks.ambient import (
    ADD_NOISE_STD,
    BLUR_SIGMA,
    BLUR_SIZE,
    BN_EPSILON,
    BN_MOMENTUM,
    LEARNING_RATE,
    LEARNING_RATE_DECAY_RATE,
    LEARNING_RATE_DECAY_STEPS,
    LEARNING_RATE_FLOOR,
    PRESETS,
    AmbientConfig,
    MeasurementSpec,
    learning_rate_freeze_step,
)

__all__ = [
    "AmbientConfig",
    "PRESETS",
    "AmbientBatchNormalization",
    "to_network_range",
    "from_network_range",
    "build_ambient_encoder",
    "build_ambient_decoder",
    "build_ambient_discriminator",
    "set_batch_statistics",
    "AmbientGenerator",
    "AmbientNetworks",
    "AmbientLearningRate",
    "AmbientMeasurement",
    "make_measurement",
]

_PACKAGE = "tfinverse"
_INIT_STDDEV = 0.02

# layout -> filters of the encoder convs, its hidden FC (None: none), the decoder's start
# channels, its stride-2 deconvs before the output deconv, the discriminator convs, its FC.
_FILTERS = {
    "celeba": dict(encoder=(64, 128, 256), encoder_fc=1024, decoder_start=256, decoder=(256, 128, 32),
                   discriminator=(32, 128, 256, 256), discriminator_fc=256),
    "mnist": dict(encoder=(16, 32, 64), encoder_fc=None, decoder_start=32, decoder=(16,),
                  discriminator=(16, 32, 64), discriminator_fc=None),
}


# ---------------------------------------------------------------- ranges
def _range_of(config_or_layout) -> Tuple[float, float]:
    if isinstance(config_or_layout, AmbientConfig):
        return config_or_layout.network_range
    if config_or_layout in PRESETS:  # a dataset name
        return PRESETS[config_or_layout].config.network_range
    return AmbientConfig(image_size=8, layout=config_or_layout).network_range


def to_network_range(x, config_or_layout) -> tf.Tensor:
    """Maps ``[0, 1]`` images to the networks' range (``2 x - 1`` for celeba, ``x`` for mnist).

    Args:
      x: images in ``[0, 1]``.
      config_or_layout: an :class:`AmbientConfig`, a layout (``"celeba"``, ``"mnist"``) or a
        preset name.

    Returns:
      float tensor, same shape.
    """
    low, high = _range_of(config_or_layout)
    x = tf.convert_to_tensor(x)
    if (low, high) == (0.0, 1.0):
        return x
    return x * tf.cast(high - low, x.dtype) + tf.cast(low, x.dtype)


def from_network_range(x, config_or_layout) -> tf.Tensor:
    """Maps images in the networks' range back to ``[0, 1]`` (the inverse of :func:`to_network_range`; no clipping)."""
    low, high = _range_of(config_or_layout)
    x = tf.convert_to_tensor(x)
    if (low, high) == (0.0, 1.0):
        return x
    return (x - tf.cast(low, x.dtype)) / tf.cast(high - low, x.dtype)


# ---------------------------------------------------------------- batch norm
@keras.saving.register_keras_serializable(package=_PACKAGE)
class AmbientBatchNormalization(FusedBatchNormalization):
    """Batch norm that normalises by the batch's own statistics in inference calls too.

    ``training=True`` (on a trainable layer): Keras training mode, batch statistics and a
    moving-average update. Otherwise, with ``batch_statistics=True`` (the original's
    behaviour): the batch's statistics (biased variance, as in training) and no update;
    with ``batch_statistics=False``: the moving averages (Keras inference mode). 4-D inputs
    use TensorFlow's fused kernel (:class:`~tfinverse.models.layers.FusedBatchNormalization`).

    Args:
      batch_statistics: normalise inference calls by the batch's statistics.
      **kwargs: ``FusedBatchNormalization`` arguments.
    """

    def __init__(self, batch_statistics: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.batch_statistics = bool(batch_statistics)

    def call(self, inputs, training=None, mask=None):
        if (training and self.trainable) or not self.batch_statistics:
            return super().call(inputs, training=training, mask=mask)
        inputs = tf.convert_to_tensor(inputs)
        channels = inputs.shape[-1]
        scale = tf.cast(self.gamma, tf.float32) if self.scale else tf.ones([channels], tf.float32)
        offset = tf.cast(self.beta, tf.float32) if self.center else tf.zeros([channels], tf.float32)
        if len(inputs.shape) == 4:
            outputs, _, _ = tf.compat.v1.nn.fused_batch_norm(
                inputs, scale, offset, epsilon=self.epsilon, data_format="NHWC", is_training=True
            )
        else:
            values = tf.cast(inputs, tf.float32)
            mean, variance = tf.nn.moments(values, axes=list(range(len(inputs.shape) - 1)))
            outputs = tf.nn.batch_normalization(values, mean, variance, offset, scale, self.epsilon)
        return tf.cast(outputs, self.compute_dtype)

    def get_config(self):
        return {**super().get_config(), "batch_statistics": self.batch_statistics}


def set_batch_statistics(model: keras.Model, batch_statistics: bool) -> keras.Model:
    """Sets the inference-mode statistics of every :class:`AmbientBatchNormalization` in ``model``.

    Args:
      model: a network of this module (or any model holding such layers).
      batch_statistics: True: the batch's statistics (the original); False: the moving averages.

    Returns:
      ``model`` (changed in place). Compiled ``tf.function`` s traced before keep the mode
      they were traced with: trace them again.
    """
    stack = list(getattr(model, "layers", ()))
    while stack:
        layer = stack.pop()
        if isinstance(layer, AmbientBatchNormalization):
            layer.batch_statistics = bool(batch_statistics)
        stack.extend(getattr(layer, "layers", ()))  # nested models
    return model


# ---------------------------------------------------------------- layers
class _Layers:
    """Builds the layers of one network with per-layer initialiser seeds drawn from one seed."""

    def __init__(self, seed: Optional[int], batch_statistics: bool):
        self._rng = None if seed is None else np.random.default_rng(int(seed))
        self.batch_statistics = bool(batch_statistics)

    def _seed(self):
        return None if self._rng is None else int(self._rng.integers(0, 2**31 - 1))

    def conv(self, filters: int, name: str):
        return keras.layers.Conv2D(
            filters, 3, strides=2, padding="same", use_bias=True, name=name,
            kernel_initializer=keras.initializers.TruncatedNormal(stddev=_INIT_STDDEV, seed=self._seed()),
            bias_initializer="zeros",
        )

    def deconv(self, filters: int, name: str, strides: int = 2):
        return keras.layers.Conv2DTranspose(
            filters, 3, strides=strides, padding="same", use_bias=True, name=name,
            kernel_initializer=keras.initializers.RandomNormal(stddev=_INIT_STDDEV, seed=self._seed()),
            bias_initializer="zeros",
        )

    def dense(self, units: int, name: str):
        return keras.layers.Dense(
            units, name=name,
            kernel_initializer=keras.initializers.RandomNormal(stddev=_INIT_STDDEV, seed=self._seed()),
            bias_initializer="zeros",
        )

    def bn(self, name: str):
        return AmbientBatchNormalization(
            batch_statistics=self.batch_statistics, momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
            center=True, scale=True, name=name,
        )


def _relu(name: str):
    return keras.layers.ReLU(name=name)


def _check_config(config) -> AmbientConfig:
    if not isinstance(config, AmbientConfig):
        raise TypeError(f"config must be an AmbientConfig (see tfinverse.tasks.ambient.PRESETS), got {type(config).__name__}")
    return config


def build_ambient_encoder(
    config: AmbientConfig, *, batch_statistics: bool = True, seed: Optional[int] = 0, name: str = "ambient_encoder"
) -> keras.Model:
    """The encoder ``E: [n, H, W, C] -> (mu [n, d], logvar [n, d])``, input in the network range.

    Args:
      config: sizes and layout.
      batch_statistics: batch norm's inference mode (see the module docstring).
      seed: seed of the initialisers (None: unseeded).
      name: model name.

    Returns:
      A functional ``keras.Model`` with outputs ``[mu, logvar]``.
    """
    config = _check_config(config)
    spec = _FILTERS[config.layout]
    make = _Layers(seed, batch_statistics)
    inputs = keras.Input(shape=config.image_shape, name="y")
    h = inputs
    for index, filters in enumerate(spec["encoder"], start=1):
        h = make.conv(filters, f"e_c{index}")(h)
        h = make.bn(f"e_bn{index}")(h)
        h = _relu(f"e_relu{index}")(h)
    h = keras.layers.Flatten(name="e_flatten")(h)
    if spec["encoder_fc"]:
        index = len(spec["encoder"]) + 1
        h = make.dense(spec["encoder_fc"], "e_f1")(h)
        h = make.bn(f"e_bn{index}")(h)
        h = _relu(f"e_relu{index}")(h)
    mu = make.dense(config.latent_dim, "e_f2")(h)
    logvar = make.dense(config.latent_dim, "e_f3")(h)
    return keras.Model(inputs, [mu, logvar], name=name)


def build_ambient_decoder(
    config: AmbientConfig, *, batch_statistics: bool = True, seed: Optional[int] = 0, name: str = "ambient_decoder"
) -> keras.Model:
    """The decoder / generator ``G: z [n, d] -> [n, H, W, C]`` in the network range.

    Args:
      config: sizes and layout.
      batch_statistics: batch norm's inference mode (see the module docstring).
      seed: seed of the initialisers (None: unseeded).
      name: model name.

    Returns:
      A functional ``keras.Model`` (tanh output for celeba, sigmoid for mnist).
    """
    config = _check_config(config)
    spec = _FILTERS[config.layout]
    make = _Layers(seed, batch_statistics)
    start, filters = config.decoder_start, spec["decoder_start"]
    inputs = keras.Input(shape=(config.latent_dim,), name="z")
    # As the original: FC, batch norm over the FC units, ReLU, then the reshape.
    h = make.dense(start * start * filters, "gen_fully1")(inputs)
    h = make.bn("gen_bn1")(h)
    h = _relu("gen_relu1")(h)
    h = keras.layers.Reshape((start, start, filters), name="gen_reshape")(h)
    index = 1
    for index, width in enumerate(spec["decoder"], start=2):
        h = make.deconv(width, f"gen_deconv{index}")(h)
        h = make.bn(f"gen_bn{index}")(h)
        h = _relu(f"gen_relu{index}")(h)
    # celeba doubles three times above and ends with a stride-1 deconv; mnist doubles once
    # above and once in its output deconv.
    last_stride = 1 if config.layout == "celeba" else 2
    h = make.deconv(config.channels, f"gen_deconv{index + 1}", strides=last_stride)(h)
    activation = "tanh" if config.layout == "celeba" else "sigmoid"
    outputs = keras.layers.Activation(activation, name=f"gen_{activation}")(h)
    return keras.Model(inputs, outputs, name=name)


def build_ambient_discriminator(
    config: AmbientConfig, *, batch_statistics: bool = True, seed: Optional[int] = 0,
    name: str = "ambient_discriminator",
) -> keras.Model:
    """The discriminator ``D: [n, H, W, C] -> (feature map, logit [n, 1])``, input in the network range.

    The feature map is the output of the last conv before its batch norm (``[n, 4, 4, 256]``
    at 64 px celeba, ``[n, 4, 4, 64]`` at 28 px mnist): ACSG and the feature log-likelihood
    compare it.

    Args:
      config: sizes and layout.
      batch_statistics: batch norm's inference mode (see the module docstring).
      seed: seed of the initialisers (None: unseeded).
      name: model name.

    Returns:
      A functional ``keras.Model`` with outputs ``[features, logit]``.
    """
    config = _check_config(config)
    spec = _FILTERS[config.layout]
    make = _Layers(seed, batch_statistics)
    inputs = keras.Input(shape=config.image_shape, name="image")
    convs = spec["discriminator"]
    h = _relu("dis_relu1")(make.conv(convs[0], "dis_conv1")(inputs))
    for index, filters in enumerate(convs[1:-1], start=2):
        h = make.conv(filters, f"dis_conv{index}")(h)
        h = make.bn(f"dis_bn{index - 1}")(h)
        h = _relu(f"dis_relu{index}")(h)
    features = make.conv(convs[-1], f"dis_conv{len(convs)}")(h)
    h = make.bn(f"dis_bn{len(convs) - 1}")(features)
    h = _relu(f"dis_relu{len(convs)}")(h)
    h = keras.layers.Flatten(name="dis_flatten")(h)
    if spec["discriminator_fc"]:
        h = make.dense(spec["discriminator_fc"], "dis_fully1")(h)
        h = make.bn(f"dis_bn{len(convs)}")(h)
        h = _relu("dis_relu_fully1")(h)
    logit = make.dense(1, "dis_fully2")(h)
    return keras.Model(inputs, [features, logit], name=name)


# ---------------------------------------------------------------- wrappers
class AmbientGenerator(KerasGenerator):
    """The decoder as a :class:`~tfinverse.models.Generator`: ``z ~ N(0, I)`` to ``[0, 1]`` images.

    Inversion methods (ACSG, CSGM) use this interface. Its batch norm follows the decoder's
    layers (batch statistics by default, as the original's test).

    Args:
      decoder: a network of :func:`build_ambient_decoder`.
      config: its configuration (for the output range).
    """

    def __init__(self, decoder: keras.Model, config: AmbientConfig):
        super().__init__(decoder, _check_config(config).latent_dim, "normal",
                         output_range=config.network_range, clip_output=True)
        self.config = config


@dataclasses.dataclass
class AmbientNetworks:
    """The three networks with their configuration, called on ``[0, 1]`` images.

    Build with :meth:`build`. ``encoder``, ``decoder`` and ``discriminator`` are the raw
    Keras models (network range); the methods below convert at the boundary.

    Attributes:
      config: sizes and layout.
      encoder: ``E``.
      decoder: ``G``.
      discriminator: ``D``.
    """

    config: AmbientConfig
    encoder: keras.Model
    decoder: keras.Model
    discriminator: keras.Model

    @classmethod
    def build(cls, config: Union[AmbientConfig, str], *, batch_statistics: bool = True,
              seed: Optional[int] = 0) -> "AmbientNetworks":
        """Builds the three networks.

        Args:
          config: an :class:`AmbientConfig` or a preset name (``"mnist"``, ``"celeba"``,
            ``"lfw_faces"``).
          batch_statistics: batch norm's inference mode (see the module docstring).
          seed: seed of the initialisers; the networks draw from ``seed``, ``seed + 1`` and
            ``seed + 2`` (None: unseeded).

        Returns:
          The networks.
        """
        if isinstance(config, str):
            from tfinverse.tasks.ambient import preset

            config = preset(config).config
        offset = (lambda k: None) if seed is None else (lambda k: int(seed) + k)
        return cls(
            config,
            build_ambient_encoder(config, batch_statistics=batch_statistics, seed=offset(0)),
            build_ambient_decoder(config, batch_statistics=batch_statistics, seed=offset(1)),
            build_ambient_discriminator(config, batch_statistics=batch_statistics, seed=offset(2)),
        )

    def set_batch_statistics(self, batch_statistics: bool) -> None:
        """Sets batch norm's inference mode of all three networks (see the module docstring)."""
        for model in (self.encoder, self.decoder, self.discriminator):
            set_batch_statistics(model, batch_statistics)

    def encode(self, y, training: bool = False) -> Tuple[tf.Tensor, tf.Tensor]:
        """``(mu, logvar)`` of ``[0, 1]`` measurements ``y``."""
        mu, logvar = self.encoder(to_network_range(y, self.config), training=training)
        return mu, logvar

    def decode(self, z, training: bool = False) -> tf.Tensor:
        """``[0, 1]`` images of latents ``z`` (not clipped: tanh and sigmoid are bounded)."""
        return from_network_range(self.decoder(z, training=training), self.config)

    def discriminate(self, x, training: bool = False) -> Tuple[tf.Tensor, tf.Tensor]:
        """``(feature map, logit)`` of ``[0, 1]`` images."""
        features, logit = self.discriminator(to_network_range(x, self.config), training=training)
        return features, logit

    def features(self, x) -> tf.Tensor:
        """The discriminator's feature map of ``[0, 1]`` images (what ACSG matches)."""
        return self.discriminate(x)[0]

    def enhance(self, y, sample: bool = False, seed=None) -> tf.Tensor:
        """The enhancer ``y -> x``: the decoded posterior mean, or a posterior sample.

        Args:
          y: ``[0, 1]`` measurements ``[n, H, W, C]``.
          sample: decode ``mu + exp(logvar / 2) eps`` (the original's test output) instead
            of ``mu`` (deterministic).
          seed: stateless seed of ``eps`` (an int or a ``[2]`` integer tensor), required
            with ``sample``.

        Returns:
          ``[0, 1]`` images.

        Raises:
          ValueError: ``sample`` without a seed.
        """
        mu, logvar = self.encode(y)
        z = mu
        if sample:
            if seed is None:
                raise ValueError("enhance(sample=True) needs an explicit seed")
            from tfinverse.operators.base import stateless_seed

            z = mu + tf.exp(0.5 * logvar) * tf.random.stateless_normal(tf.shape(mu), stateless_seed(seed))
        return self.decode(z)

    def generator(self) -> AmbientGenerator:
        """The decoder as a :class:`~tfinverse.models.Generator` (shares its weights)."""
        return AmbientGenerator(self.decoder, self.config)


# ---------------------------------------------------------------- learning rate
@keras.saving.register_keras_serializable(package=_PACKAGE)
class AmbientLearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """``initial * decay_rate ** (min(step, s*) / decay_steps)``: the original's continuous decay.

    The original (``tf.train.exponential_decay`` without staircase) increments its step only
    while the rate is above ``floor``; ``s*`` is the first step where it is not
    (:func:`tfinverse.tasks.ambient.learning_rate_freeze_step`, 886,891 for the defaults), so the
    rate stays at its value there, within ``2e-6`` (relative) below ``floor``. Computed in
    float64 and returned as float32.

    Args:
      initial: rate at step 0 (3e-4).
      decay_rate: factor per ``decay_steps`` (0.98).
      decay_steps: 1e4.
      floor: 5e-5 (0: no floor).
    """

    def __init__(self, initial: float = LEARNING_RATE, decay_rate: float = LEARNING_RATE_DECAY_RATE,
                 decay_steps: float = LEARNING_RATE_DECAY_STEPS, floor: float = LEARNING_RATE_FLOOR):
        self.initial = float(initial)
        self.decay_rate = float(decay_rate)
        self.decay_steps = float(decay_steps)
        self.floor = float(floor)
        self.freeze_step = learning_rate_freeze_step(self.initial, self.decay_rate, self.decay_steps, self.floor)

    def __call__(self, step):
        step = tf.minimum(tf.cast(step, tf.float64), tf.constant(float(self.freeze_step), tf.float64))
        rate = self.initial * tf.pow(tf.constant(self.decay_rate, tf.float64), step / self.decay_steps)
        return tf.cast(rate, tf.float32)

    def get_config(self):
        return {"initial": self.initial, "decay_rate": self.decay_rate, "decay_steps": self.decay_steps,
                "floor": self.floor}


# ---------------------------------------------------------------- forward models
class AmbientMeasurement:
    """A forward model ``measure(x, seed)``: a linear operator with fresh draws per call, then noise.

    Built by :func:`tfinverse.tasks.ambient.build_measurement`. ``seed`` is a Python int or
    an integer tensor of shape ``[2]`` (no retracing inside ``tf.function``); the operator
    draws from ``fold_in(seed, 0)`` (one draw per example) and the noise from
    ``fold_in(seed, 1)``.

    With a ``zero_level`` ``c`` the linear part acts about ``c``: ``noise(A (x - c) + c)``
    (``c = 0.5`` is the original's CelebA measurement, made on ``[-1, 1]`` images).

    Attributes:
      name: the spec's label.
      operator: the linear part (a :class:`tfinverse.operators.LinearOperator`).
      noise: the noise model or None.
      zero_level: ``c``.
      image_shape: ``(H, W, C)``; measurements have the same shape.
    """

    def __init__(self, name: str, operator, noise=None, zero_level: float = 0.0):
        self.name = name
        self.operator = operator
        self.noise = noise
        self.zero_level = float(zero_level)
        self.image_shape = tuple(operator.in_shape)
        self.out_shape = tuple(operator.out_shape)

    @staticmethod
    def _seeds(seed):
        from tfinverse.operators.base import stateless_seed

        seed = stateless_seed(seed)
        return (tf.random.experimental.stateless_fold_in(seed, 0, alg="philox"),
                tf.random.experimental.stateless_fold_in(seed, 1, alg="philox"))

    def __call__(self, x, seed) -> tf.Tensor:
        """``noise(A_theta x)`` with ``theta`` and the noise drawn from ``seed``; ``x`` in ``[0, 1]``."""
        operator_seed, noise_seed = self._seeds(seed)
        x = tf.cast(x, self.operator.dtype)
        if self.zero_level:
            level = tf.constant(self.zero_level, self.operator.dtype)
            y = self.operator(x - level, seed=operator_seed) + level
        else:
            y = self.operator(x, seed=operator_seed)
        return y if self.noise is None else self.noise(y, noise_seed)

    def linear(self, x, seed) -> tf.Tensor:
        """``A_theta x`` (about ``zero_level``) with the ``theta`` of ``measure(x, seed)``, without the noise.

        The held-out measurement criterion of the trainer compares ``linear(x_hat, s)`` with a
        measurement ``measure(x, s)`` made with the same ``theta``: the noise is the data's, not
        the estimate's.
        """
        operator_seed, _ = self._seeds(seed)
        x = tf.cast(x, self.operator.dtype)
        if self.zero_level:
            level = tf.constant(self.zero_level, self.operator.dtype)
            return self.operator(x - level, seed=operator_seed) + level
        return self.operator(x, seed=operator_seed)

    def mask(self, x, seed) -> tf.Tensor:
        """The mask ``theta`` that ``measure(x, seed)`` multiplies ``x`` by (drop models).

        It is ``A_theta 1``: for a masking operator the mask itself (values ``1/(1-p)`` or 0 for
        ``drop_independent``, 1 or 0 for ``drop_patch``); for the identity, ones.
        """
        operator_seed, _ = self._seeds(seed)
        return self.operator(tf.ones_like(tf.cast(x, self.operator.dtype)), seed=operator_seed)

    def __repr__(self) -> str:
        return (f"AmbientMeasurement({self.name!r}, operator={self.operator!r}, noise={self.noise!r}, "
                f"zero_level={self.zero_level})")


def make_measurement(spec: MeasurementSpec, image_shape: Tuple[int, int, int], noise=None, *,
                     noise_std: Optional[float] = None, zero_level: float = 0.0,
                     where: str = "--measurement") -> AmbientMeasurement:
    """Builds :class:`AmbientMeasurement` from a checked spec; use :func:`tfinverse.tasks.ambient.build_measurement`.

    Raises:
      InputError: what the operator refuses, or an output that is not an image of ``image_shape``.
      UnknownNameError: an unknown operator, parameter or noise model.
    """
    import tfinverse.operators as ops
    from tfinverse.errors import unknown_name
    from tfinverse.tasks.ambient import MEASUREMENTS
    from tfinverse.utils.cli import coerce_parameters, parse_spec

    params = dict(spec.params)
    try:
        if spec.name == "add_noise":
            std = params.get("std", ADD_NOISE_STD if noise_std is None else float(noise_std))
            if params.get("blur", False):
                size = params.get("blur_size", BLUR_SIZE)
                if size > min(image_shape[:2]):
                    raise InputError(f"{where}: blur_size {size} is larger than the image {image_shape[0]}x{image_shape[1]}")
                operator = ops.get("blur_gaussian", image_shape=image_shape, sigma=params.get("blur_sigma", BLUR_SIGMA),
                                   kernel_size=size, boundary="zero")
            else:
                operator = ops.get("identity", image_shape=image_shape)
            noise = ops.get_noise("gaussian", sigma=std) if std > 0 else None
        else:
            if spec.name not in ops.available():
                raise unknown_name("measurement", spec.name, sorted(set(MEASUREMENTS) | set(ops.available())), where=where)
            if spec.name not in MEASUREMENTS:
                params = coerce_parameters(where, params, ops.operator_class(spec.name),
                                           skip=("image_shape", "dtype", "seed", "batch_size"))
            # seed: the fixed draw of construction, never used (every call draws per example).
            operator = ops.get(spec.name, image_shape=image_shape, seed=0, **params)
        if isinstance(noise, str):
            noise_name, noise_params = parse_spec(noise, f"{where} noise")
            if noise_name not in ops.available_noise():
                raise unknown_name("noise model", noise_name, ops.available_noise(), where=where)
            noise_params = coerce_parameters(f"{where} noise {noise_name}", noise_params, ops.noise_class(noise_name))
            noise = ops.get_noise(noise_name, **noise_params)
    except InputError:
        raise
    except (ValueError, TypeError) as error:  # an operator's own check, as one line
        raise InputError(f"{where}: {error}") from None
    if noise is not None and not isinstance(noise, ops.NoiseModel):
        raise InputError(f"{where}: noise must be a NoiseModel, a noise spec text or None, got {type(noise).__name__}")
    if tuple(operator.out_shape) != tuple(image_shape):
        raise InputError(
            f"{where}: the measurement has shape {tuple(operator.out_shape)}, but the Ambient VAE-GAN's encoder and "
            f"discriminator take images of shape {tuple(image_shape)}; choose a measurement that keeps the image shape"
        )
    return AmbientMeasurement(spec.label, operator, noise, zero_level)
