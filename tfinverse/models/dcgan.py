"""DCGAN generator and discriminator as used by LVR ("Correction by Projection").

Generator (CelebA 64x64x3): ``z ~ U[-1, 1]^100 -> dense 4*4*512 -> BN, ReLU -> 5x5 stride-2
transposed convs to 256, 128, 64 channels (BN, ReLU) -> 5x5 stride-2 transposed conv to C ->
tanh``. Discriminator: ``5x5 stride-2 conv 64 (leaky 0.2, no BN) -> 128, 256, 512 (BN, leaky
0.2) -> flatten -> dense 1`` (a logit). Batch norm has epsilon ``1e-5`` and momentum ``0.9``;
weights start from ``N(0, 0.02)`` (truncated for the discriminator's convs), biases at zero.

Other resolutions: the generator doubles its grid ``S`` times where ``S`` is the number of
factors 2 in the resolution, at most 4, and starts from a ``resolution / 2^S`` grid. Its
channel ladder is the last ``S`` entries of ``8f, 4f, 2f, f`` (``f = base_filters``). So 64
is exactly the original (4x4 -> 64), 32 starts at 2x2x512 (as the original code's
``ceil(size / 16)`` grid does), and 28 (MNIST) starts at 7x7x128 with two up-samplings
(7 -> 14 -> 28); ``num_upsamplings`` overrides ``S``. The discriminator always has four
stride-2 convs (SAME padding rounds odd sizes up: 28 -> 14 -> 7 -> 4 -> 2).

Batch-statistics mode: the LVR inversion runs the generator's batch norm on the statistics
of the current batch of latent guesses. ``DCGANGenerator(..., batch_statistics=True)`` (or
``g(z, batch_statistics=True)``) does that without updating the moving averages, so the
prior itself is left unchanged; ``g(z, training=True)`` is ordinary Keras training mode
(batch statistics and moving-average updates) for GAN training.
"""

from __future__ import annotations

from typing import Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from tfinverse.models.generator import KerasGenerator
from tfinverse.models.layers import FusedBatchNormalization

__all__ = [
    "DCGAN_BN_EPSILON",
    "DCGAN_BN_MOMENTUM",
    "dcgan_generator_layout",
    "build_dcgan_generator",
    "build_dcgan_discriminator",
    "forward_with_batch_statistics",
    "DCGANGenerator",
]

DCGAN_BN_EPSILON = 1e-5
DCGAN_BN_MOMENTUM = 0.9
_INIT_STDDEV = 0.02
_MAX_UPSAMPLINGS = 4


def _layer_seeds(seed: Optional[int], count: int):
    """Independent per-layer initialiser seeds drawn from one explicit seed."""
    if seed is None:
        return [None] * count
    return [int(s) for s in np.random.default_rng(int(seed)).integers(0, 2**31 - 1, size=count)]


def _check_image_args(resolution: int, channels: int) -> None:
    if int(resolution) < 2:
        raise ValueError(f"resolution must be >= 2, got {resolution}")
    if int(channels) < 1:
        raise ValueError(f"channels must be >= 1 (1 grey, 3 RGB), got {channels}")


def dcgan_generator_layout(
    resolution: int, base_filters: int = 64, num_upsamplings: Optional[int] = None
) -> Tuple[int, Tuple[int, ...]]:
    """Start grid and channel ladder of the DCGAN generator for a resolution.

    Args:
      resolution: output height = width (e.g. 28, 32, 64).
      base_filters: channels before the last transposed conv (64 in the original).
      num_upsamplings: number of stride-2 transposed convs ``S``; default: the number of
        factors 2 in ``resolution``, at most 4.

    Returns:
      ``(start_size, channels)``: the dense layer's grid size and the ``S`` channel counts of
      the dense grid and of the hidden transposed convs (the last conv maps to the image
      channels), e.g. ``(4, (512, 256, 128, 64))`` for 64.

    Raises:
      ValueError: if ``resolution`` is not divisible by ``2^S`` or ``S < 1``.
    """
    resolution = int(resolution)
    if num_upsamplings is None:
        num_upsamplings, size = 0, resolution
        while size % 2 == 0 and num_upsamplings < _MAX_UPSAMPLINGS:
            size //= 2
            num_upsamplings += 1
    num_upsamplings = int(num_upsamplings)
    if num_upsamplings < 1 or resolution % (2**num_upsamplings):
        raise ValueError(
            f"resolution {resolution} must be divisible by 2^num_upsamplings with "
            f"num_upsamplings >= 1, got num_upsamplings={num_upsamplings}"
        )
    ladder = tuple(int(base_filters) * 2 ** (num_upsamplings - 1 - i) for i in range(num_upsamplings))
    return resolution // 2**num_upsamplings, ladder


def build_dcgan_generator(
    resolution: int = 64,
    channels: int = 3,
    latent_dim: int = 100,
    base_filters: int = 64,
    num_upsamplings: Optional[int] = None,
    seed: Optional[int] = 0,
    name: str = "dcgan_generator",
) -> keras.Sequential:
    """Builds the DCGAN generator ``z [n, latent_dim] -> tanh image [n, R, R, C]``.

    Args:
      resolution: output size ``R`` (28, 32, 64, ...; see the module docstring).
      channels: output channels (1 grey, 3 RGB).
      latent_dim: dimension of ``z`` (100 in LVR).
      base_filters: channel count before the output layer (64; the ladder is 8x, 4x, 2x, 1x).
      num_upsamplings: override the number of stride-2 transposed convs.
      seed: seed of the ``N(0, 0.02)`` initialisers (``None``: Keras's global RNG).
      name: model name.

    Returns:
      A built ``keras.Sequential`` whose layers form a chain (dense, reshape, then
      [BN, ReLU, transposed conv] blocks, tanh).

    Raises:
      ValueError: for invalid sizes.
    """
    _check_image_args(resolution, channels)
    if int(latent_dim) <= 0:
        raise ValueError(f"latent_dim must be positive, got {latent_dim}")
    start, ladder = dcgan_generator_layout(resolution, base_filters, num_upsamplings)
    seeds = iter(_layer_seeds(seed, len(ladder) + 1))

    def normal():
        return keras.initializers.RandomNormal(0.0, _INIT_STDDEV, seed=next(seeds))

    def batch_norm(index):
        return FusedBatchNormalization(
            momentum=DCGAN_BN_MOMENTUM, epsilon=DCGAN_BN_EPSILON, name=f"bn{index}"
        )

    model_layers = [
        keras.Input(shape=(int(latent_dim),), name="z"),
        keras.layers.Dense(start * start * ladder[0], kernel_initializer=normal(), name="project"),
        keras.layers.Reshape((start, start, ladder[0]), name="reshape"),
        batch_norm(0),
        keras.layers.ReLU(name="relu0"),
    ]
    for index, filters in enumerate(ladder[1:], start=1):
        model_layers += [
            keras.layers.Conv2DTranspose(
                filters, 5, strides=2, padding="same", kernel_initializer=normal(), name=f"deconv{index}"
            ),
            batch_norm(index),
            keras.layers.ReLU(name=f"relu{index}"),
        ]
    model_layers += [
        keras.layers.Conv2DTranspose(
            int(channels), 5, strides=2, padding="same", kernel_initializer=normal(), name="deconv_out"
        ),
        keras.layers.Activation("tanh", name="tanh"),
    ]
    return keras.Sequential(model_layers, name=name)


def build_dcgan_discriminator(
    resolution: int = 64,
    channels: int = 3,
    base_filters: int = 64,
    seed: Optional[int] = 0,
    name: str = "dcgan_discriminator",
) -> keras.Sequential:
    """Builds the DCGAN discriminator ``image [n, R, R, C] -> logit [n, 1]``.

    Four 5x5 stride-2 SAME convs with ``f, 2f, 4f, 8f`` filters (``f = base_filters``); the
    first is followed by leaky ReLU (0.2) only, the others by BN and leaky ReLU; then flatten
    and a dense layer to one logit. Expects inputs in the generator's tanh range ``[-1, 1]``.

    Args:
      resolution: input size ``R``.
      channels: input channels.
      base_filters: filters of the first conv (64).
      seed: seed of the initialisers (``None``: Keras's global RNG).
      name: model name.

    Returns:
      A built ``keras.Sequential``.

    Raises:
      ValueError: for invalid sizes.
    """
    _check_image_args(resolution, channels)
    seeds = iter(_layer_seeds(seed, 5))
    model_layers = [keras.Input(shape=(int(resolution), int(resolution), int(channels)), name="image")]
    for index in range(4):
        model_layers.append(
            keras.layers.Conv2D(
                int(base_filters) * 2**index,
                5,
                strides=2,
                padding="same",
                kernel_initializer=keras.initializers.TruncatedNormal(
                    0.0, _INIT_STDDEV, seed=next(seeds)
                ),
                name=f"conv{index}",
            )
        )
        if index > 0:
            model_layers.append(
                FusedBatchNormalization(
                    momentum=DCGAN_BN_MOMENTUM, epsilon=DCGAN_BN_EPSILON, name=f"bn{index}"
                )
            )
        model_layers.append(keras.layers.LeakyReLU(negative_slope=0.2, name=f"lrelu{index}"))
    model_layers += [
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(
            1,
            kernel_initializer=keras.initializers.RandomNormal(0.0, _INIT_STDDEV, seed=next(seeds)),
            name="logit",
        ),
    ]
    return keras.Sequential(model_layers, name=name)


def forward_with_batch_statistics(network: keras.Sequential, inputs: tf.Tensor) -> tf.Tensor:
    """Runs a chain model with every batch norm normalising by the current batch's statistics.

    Unlike ``network(inputs, training=True)`` this leaves the moving averages untouched. The
    variance is the biased (population) one, as Keras and TF1 batch norm use in training.

    Args:
      network: a ``keras.Sequential`` (or any model whose ``layers`` form a chain).
      inputs: the network input.

    Returns:
      The network output.
    """
    outputs = inputs
    for layer in network.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            axes = list(range(len(outputs.shape) - 1))
            mean, variance = tf.nn.moments(outputs, axes=axes)
            outputs = tf.nn.batch_normalization(
                outputs,
                mean,
                variance,
                offset=layer.beta,
                scale=layer.gamma,
                variance_epsilon=layer.epsilon,
            )
        else:
            outputs = layer(outputs, training=False)
    return outputs


class DCGANGenerator(KerasGenerator):
    """DCGAN prior behind the :class:`~tfinverse.models.generator.Generator` interface.

    Native range: ``tanh``, ``[-1, 1]``, mapped to ``[0, 1]`` by ``(x + 1) / 2``. Latents:
    ``U[-1, 1]^latent_dim``.

    Args:
      resolution: output size (28, 32, 64, ...).
      channels: 1 (grey) or 3 (RGB).
      latent_dim: dimension of ``z`` (100).
      base_filters: see :func:`build_dcgan_generator`.
      num_upsamplings: see :func:`build_dcgan_generator`.
      seed: initialiser seed.
      batch_statistics: default batch-norm mode of inference calls: ``False`` uses the moving
        averages; ``True`` uses the statistics of the batch of latents (LVR inversion), without
        updating the moving averages.
      network: an existing generator network to wrap instead of building one (its output
        must be the tanh image).
    """

    def __init__(
        self,
        resolution: int = 64,
        channels: int = 3,
        latent_dim: int = 100,
        base_filters: int = 64,
        num_upsamplings: Optional[int] = None,
        seed: Optional[int] = 0,
        batch_statistics: bool = False,
        network: Optional[keras.Model] = None,
    ):
        if network is None:
            network = build_dcgan_generator(
                resolution, channels, latent_dim, base_filters, num_upsamplings, seed
            )
        super().__init__(network, latent_dim, "uniform", output_range=(-1.0, 1.0), clip_output=True)
        self.batch_statistics = bool(batch_statistics)

    def native(self, z, training: bool = False, batch_statistics: Optional[bool] = None) -> tf.Tensor:
        """Raw tanh output.

        Args:
          z: latents ``[n, latent_dim]``.
          training: Keras training mode (batch statistics and moving-average updates).
          batch_statistics: with ``training=False``, normalise with the batch's own statistics
            without updating the moving averages; ``None`` uses ``self.batch_statistics``.
            Decided when traced inside ``tf.function`` (a Python bool).

        Returns:
          ``[n, R, R, C]`` in ``[-1, 1]``.
        """
        use_batch = self.batch_statistics if batch_statistics is None else bool(batch_statistics)
        if use_batch and not training:
            return tf.cast(forward_with_batch_statistics(self.network, z), tf.float32)
        return tf.cast(self.network(z, training=training), tf.float32)

    def __call__(self, z, training: bool = False, batch_statistics: Optional[bool] = None) -> tf.Tensor:
        """Generates images in ``[0, 1]``.

        Args:
          z: latents ``[n, latent_dim]``.
          training: Keras training mode.
          batch_statistics: see :meth:`native`.

        Returns:
          float32 ``[n, R, R, C]`` in ``[0, 1]``.

        Raises:
          ValueError: if ``z`` does not have shape ``[n, latent_dim]``.
        """
        z = self.validate_latent(z)
        return self.to_unit_range(self.native(z, training=training, batch_statistics=batch_statistics))

