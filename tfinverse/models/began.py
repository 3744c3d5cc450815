"""BEGAN (Berthelot et al. 2017): decoder generator, auto-encoder discriminator, equilibrium control.

Generator / decoder: ``z (h = 64, U[-1, 1]) -> dense 8*8*n -> repeat [conv3x3 n, ELU,
conv3x3 n, ELU, nearest up-sampling x2] -> conv3x3 to C`` (no up-sampling after the last
repeat, no output activation). 128x128 output takes 5 repeats, 64 takes 4, 32 takes 3.

Discriminator: an auto-encoder ``D(x) = decoder(encoder(x))``. Encoder: ``conv3x3 n, ELU,
then per repeat i (filters (i+1) n): [conv3x3, ELU, conv3x3, ELU] and, except after the last
repeat, a stride-2 conv3x3 to (i+2) n filters (sub-sampling) with ELU; flatten -> dense h``
(the embedding, no activation). Decoder: same architecture as the generator.

Native output range: BEGAN is trained on images scaled to ``[-1, 1]`` and has no output
non-linearity, so the :class:`BEGANGenerator` maps ``[-1, 1]`` to ``[0, 1]`` and clips.

Equilibrium control (pure functions in :mod:`tfinverse.losses.began`, re-exported here)::

    L_real = |x - D(x)|,  L_fake = |G(z) - D(G(z))|          (mean absolute error, eta = 1)
    L_D = L_real - k_t L_fake,  L_G = L_fake
    k_{t+1} = clip(k_t + lambda_k (gamma L_real - L_fake), 0, 1)
    M_global = L_real + |gamma L_real - L_fake|

The paper does not say how the pixel-wise L1 is reduced; the mean over pixels and batch is
used (``reduction="mean"``), the sum is available. Weight initialisation is not published
either: Keras's Glorot-uniform default is used.
"""

from __future__ import annotations

from typing import Dict, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from tfinverse.losses.began import (
    BEGAN_GAMMA,
    BEGAN_LAMBDA_K,
    began_autoencoder_loss,
    began_convergence_measure,
    began_losses,
    began_update_k,
)
from tfinverse.models.generator import KerasGenerator

__all__ = [
    "BEGAN_GAMMA",
    "BEGAN_LAMBDA_K",
    "began_num_repeats",
    "build_began_decoder",
    "build_began_encoder",
    "build_began_discriminator",
    "BEGANGenerator",
    "autoencoder_loss",
    "began_losses",
    "update_k",
    "convergence_measure",
    "BEGANState",
]

_BASE_SIZE = 8


def began_num_repeats(resolution: int) -> int:
    """Number of conv repeats for a resolution: ``log2(resolution / 8) + 1``.

    Args:
      resolution: 8 * 2^k (32, 64, 128, ...).

    Returns:
      The repeat count (5 for 128).

    Raises:
      ValueError: if ``resolution`` is not 8 times a power of two.
    """
    resolution = int(resolution)
    size, repeats = resolution, 1
    while size > _BASE_SIZE and size % 2 == 0:
        size //= 2
        repeats += 1
    if size != _BASE_SIZE:
        raise ValueError(f"BEGAN resolution must be 8 * 2^k (32, 64, 128, ...), got {resolution}")
    return repeats


def _seeds(seed: Optional[int], count: int):
    if seed is None:
        return iter([None] * count)
    return iter(int(s) for s in np.random.default_rng(int(seed)).integers(0, 2**31 - 1, size=count))


def _conv(filters: int, seeds, name: str, strides: int = 1, activation: Optional[str] = "elu"):
    return keras.layers.Conv2D(
        filters,
        3,
        strides=strides,
        padding="same",
        activation=activation,
        kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
        name=name,
    )


def build_began_decoder(
    resolution: int = 128,
    channels: int = 3,
    input_dim: int = 64,
    num_filters: int = 64,
    seed: Optional[int] = 0,
    name: str = "began_decoder",
) -> keras.Sequential:
    """Builds the BEGAN decoder (= generator) ``[n, input_dim] -> [n, R, R, C]``.

    Args:
      resolution: output size ``R`` (8 * 2^k).
      channels: output channels.
      input_dim: latent / embedding dimension (``z`` for G, ``h`` for D's decoder; 64).
      num_filters: ``n`` (64).
      seed: initialiser seed (``None``: Keras's global RNG).
      name: model name.

    Returns:
      A built ``keras.Sequential``; output unbounded (trained on ``[-1, 1]`` images).

    Raises:
      ValueError: for an unsupported resolution or non-positive sizes.
    """
    repeats = began_num_repeats(resolution)
    if int(input_dim) <= 0 or int(num_filters) <= 0 or int(channels) <= 0:
        raise ValueError(
            "input_dim, num_filters and channels must be positive, got "
            f"{input_dim}, {num_filters}, {channels}"
        )
    n = int(num_filters)
    seeds = _seeds(seed, 2 * repeats + 2)
    model_layers = [
        keras.Input(shape=(int(input_dim),), name="code"),
        keras.layers.Dense(
            _BASE_SIZE * _BASE_SIZE * n,
            kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
            name="project",
        ),
        keras.layers.Reshape((_BASE_SIZE, _BASE_SIZE, n), name="reshape"),
    ]
    for index in range(repeats):
        model_layers += [_conv(n, seeds, f"conv{index}_a"), _conv(n, seeds, f"conv{index}_b")]
        if index < repeats - 1:
            model_layers.append(
                keras.layers.UpSampling2D(2, interpolation="nearest", name=f"up{index}")
            )
    model_layers.append(_conv(int(channels), seeds, "to_image", activation=None))
    return keras.Sequential(model_layers, name=name)


def build_began_encoder(
    resolution: int = 128,
    channels: int = 3,
    embedding_dim: int = 64,
    num_filters: int = 64,
    seed: Optional[int] = 0,
    name: str = "began_encoder",
) -> keras.Sequential:
    """Builds the BEGAN encoder ``[n, R, R, C] -> [n, embedding_dim]``.

    Args:
      resolution: input size ``R`` (8 * 2^k).
      channels: input channels.
      embedding_dim: ``h`` (64).
      num_filters: ``n``; repeat ``i`` has ``(i + 1) n`` filters.
      seed: initialiser seed.
      name: model name.

    Returns:
      A built ``keras.Sequential``.

    Raises:
      ValueError: for an unsupported resolution or non-positive sizes.
    """
    repeats = began_num_repeats(resolution)
    if int(embedding_dim) <= 0 or int(num_filters) <= 0 or int(channels) <= 0:
        raise ValueError(
            f"embedding_dim, num_filters and channels must be positive, got {embedding_dim}, "
            f"{num_filters}, {channels}"
        )
    n = int(num_filters)
    seeds = _seeds(seed, 3 * repeats + 2)
    model_layers = [
        keras.Input(shape=(int(resolution), int(resolution), int(channels)), name="image"),
        _conv(n, seeds, "from_image"),
    ]
    for index in range(repeats):
        filters = n * (index + 1)
        model_layers += [
            _conv(filters, seeds, f"conv{index}_a"),
            _conv(filters, seeds, f"conv{index}_b"),
        ]
        if index < repeats - 1:
            model_layers.append(_conv(n * (index + 2), seeds, f"down{index}", strides=2))
    model_layers += [
        keras.layers.Flatten(name="flatten"),
        keras.layers.Dense(
            int(embedding_dim),
            kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds)),
            name="embedding",
        ),
    ]
    return keras.Sequential(model_layers, name=name)


def build_began_discriminator(
    resolution: int = 128,
    channels: int = 3,
    embedding_dim: int = 64,
    num_filters: int = 64,
    seed: Optional[int] = 0,
    name: str = "began_discriminator",
) -> keras.Model:
    """Builds the BEGAN auto-encoder discriminator ``x -> D(x)`` (a reconstruction of ``x``).

    Args:
      resolution: image size ``R`` (8 * 2^k).
      channels: image channels.
      embedding_dim: bottleneck ``h`` (64).
      num_filters: ``n`` (64).
      seed: initialiser seed (encoder and decoder get different derived seeds).
      name: model name.

    Returns:
      A functional ``keras.Model`` with sub-models ``get_layer("began_encoder")`` and
      ``get_layer("began_decoder")``.
    """
    encoder_seed, decoder_seed = (None, None) if seed is None else (int(seed) * 2 + 1, int(seed) * 2 + 2)
    encoder = build_began_encoder(resolution, channels, embedding_dim, num_filters, encoder_seed)
    decoder = build_began_decoder(resolution, channels, embedding_dim, num_filters, decoder_seed)
    image = keras.Input(shape=(int(resolution), int(resolution), int(channels)), name="image")
    return keras.Model(image, decoder(encoder(image)), name=name)


class BEGANGenerator(KerasGenerator):
    """BEGAN prior behind the :class:`~tfinverse.models.generator.Generator` interface.

    Native range: unbounded, trained on ``[-1, 1]``; mapped by ``(x + 1) / 2`` and clipped to
    ``[0, 1]`` (``clip_output``). Latents: ``U[-1, 1]^64``.

    Args:
      resolution: 128 (the IAGAN setup), or 32, 64, ....
      channels: image channels.
      latent_dim: ``z`` dimension (64).
      num_filters: ``n`` (64).
      seed: initialiser seed.
      clip_output: clip the mapped output to ``[0, 1]``.
      network: an existing decoder network to wrap instead of building one.
    """

    def __init__(
        self,
        resolution: int = 128,
        channels: int = 3,
        latent_dim: int = 64,
        num_filters: int = 64,
        seed: Optional[int] = 0,
        clip_output: bool = True,
        network: Optional[keras.Model] = None,
    ):
        if network is None:
            network = build_began_decoder(
                resolution, channels, latent_dim, num_filters, seed, name="began_generator"
            )
        super().__init__(
            network, latent_dim, "uniform", output_range=(-1.0, 1.0), clip_output=clip_output
        )


# ----------------------------------------------------------------- equilibrium control
# Defined once in tfinverse.losses.began; the short names stay for existing callers.
autoencoder_loss = began_autoencoder_loss
update_k = began_update_k
convergence_measure = began_convergence_measure


class BEGANState:
    """The control variable ``k_t`` of BEGAN training, kept in a ``tf.Variable``.

    Args:
      gamma: diversity ratio (0.5).
      lambda_k: proportional gain (1e-3).
      k_initial: ``k_0`` (0, as in the paper).

    Raises:
      ValueError: for ``gamma`` outside ``(0, 1]``, negative ``lambda_k`` or ``k_initial``
        outside ``[0, 1]``.
    """

    def __init__(
        self, gamma: float = BEGAN_GAMMA, lambda_k: float = BEGAN_LAMBDA_K, k_initial: float = 0.0
    ):
        if not 0.0 < gamma <= 1.0:
            raise ValueError(f"gamma must be in (0, 1], got {gamma}")
        if lambda_k < 0:
            raise ValueError(f"lambda_k must be non-negative, got {lambda_k}")
        if not 0.0 <= k_initial <= 1.0:
            raise ValueError(f"k_initial must be in [0, 1], got {k_initial}")
        self.gamma = float(gamma)
        self.lambda_k = float(lambda_k)
        self.k = tf.Variable(float(k_initial), trainable=False, dtype=tf.float32, name="began_k")

    def losses(
        self, real_images, real_reconstructions, fake_images, fake_reconstructions
    ) -> Dict[str, tf.Tensor]:
        """:func:`began_losses` with the current ``k``."""
        return began_losses(
            real_images, real_reconstructions, fake_images, fake_reconstructions, self.k
        )

    def update(self, loss_real, loss_fake) -> Tuple[tf.Tensor, tf.Tensor]:
        """Advances ``k`` by :func:`update_k` and measures convergence.

        Args:
          loss_real: ``L_real`` of the step.
          loss_fake: ``L_fake`` of the step.

        Returns:
          ``(k_{t+1}, M_global)``.
        """
        loss_real, loss_fake = tf.stop_gradient(loss_real), tf.stop_gradient(loss_fake)
        new_k = update_k(self.k, loss_real, loss_fake, self.gamma, self.lambda_k)
        self.k.assign(new_k)
        return tf.identity(self.k), convergence_measure(loss_real, loss_fake, self.gamma)
