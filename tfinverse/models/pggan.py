"""PGGAN (Karras et al. 2018): progressive generator and critic, WGAN-GP losses, original layout.

Generator, as a chain of "PixelNorm before every conv" blocks (the layout of the Lasagne /
PyTorch port used by IAGAN, which equals the official "PixelNorm after every activation"
ordering because per-pixel normalisation commutes with nearest up-sampling)::

    z [n, 512] -> [1, 1, 512]
    level 0 (4x4):   PN, conv 4x4 with zero padding 3 (a dense layer on the 1x1 latent), lrelu
                     PN, conv 3x3, lrelu
    level l (4*2^l): PN, nearest up x2, conv 3x3, lrelu;  PN, conv 3x3, lrelu
    toRGB_l:         PN, conv 1x1 to C (gain 1, no activation, no tanh)

Every conv uses equalized learning rate (``N(0, 1)`` kernels scaled at run time by the He
constant, :class:`~tfinverse.models.layers.EqualizedConv2D`), leaky ReLU slope 0.2 and
PixelNorm epsilon ``1e-8``. Channels per level follow ``min(fmap_base / 2^(l+1), fmap_max)``:
with the defaults ``fmap_base=8192, fmap_max=512`` that is 512 x4 -> 256 -> 128 -> 64 -> 32
-> 16 for 4 ... 1024. Lower ``fmap_base``/``fmap_max`` for small test or toy models.

Progressive growing: the networks hold every level up to ``resolution``; ``level`` (a Python
int, 0 = 4x4) picks the current output resolution and ``alpha`` (a non-trainable
``tf.Variable`` in ``[0, 1]``) fades the new level in::

    G: out = lerp(upsample(toRGB_{l-1}(h_{l-1})), toRGB_l(h_l), alpha)
    D: h   = lerp(fromRGB_{l-1}(avgpool(x)), block_l(fromRGB_l(x)), alpha)

``alpha`` can change between steps of a compiled training step; ``level`` is read when a
``tf.function`` is traced, so a training loop re-traces (builds a new ``tf.function``) when
it grows the network.

Critic: per level fromRGB (1x1 conv, lrelu); block l: conv3x3 to nf(l), lrelu, conv3x3 to
nf(l-1), lrelu, 2x2 average pooling; 4x4 head: minibatch stddev (group 4), conv3x3, lrelu,
dense to ``min(fmap_base, fmap_max)``, lrelu, dense 1 (gain 1). Losses: WGAN-GP (lambda 10,
target norm 1) with drift term ``1e-3 E[D(x)^2]``.

Original layout (``original_layout=True`` or :meth:`PGGANGenerator.from_original_layout`):
the same chain but each conv is bias-free followed by WScale, i.e. a *trainable* scalar
scale and a per-channel bias, with only the final toRGB (named ``output``). Its PyTorch
``state_dict`` (keys ``features.{i}.conv.weight`` OIHW, ``features.{i}.wscale.scale`` [1],
``features.{i}.wscale.b`` [out], ``output.conv.weight``, ``output.wscale.scale``,
``output.wscale.b``) loads with :meth:`PGGANGenerator.load_original_state_dict`. Native
output: unbounded, trained on ``[-1, 1]`` images (no tanh); the wrapper maps ``[-1, 1]`` to
``[0, 1]`` and clips (``clip_output``).
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, List, Optional, Tuple

import keras
import numpy as np
import tensorflow as tf

from tfinverse.losses.adversarial import (
    drift_penalty,
    gradient_penalty,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
    wgan_gp_critic_loss,
)
from tfinverse.models.generator import KerasGenerator
from tfinverse.models.layers import EqualizedConv2D, EqualizedDense, MinibatchStdDev, PixelNorm

__all__ = [
    "PGGAN_LEAKY_SLOPE",
    "pggan_num_levels",
    "pggan_num_filters",
    "upsample_nearest",
    "downsample_average",
    "PGGANConvBlock",
    "PGGANGeneratorNetwork",
    "PGGANDiscriminatorNetwork",
    "PGGANGenerator",
    "wgan_generator_loss",
    "wgan_discriminator_loss",
    "drift_penalty",
    "gradient_penalty",
    "wgan_gp_discriminator_loss",
]

PGGAN_LEAKY_SLOPE = 0.2
_PACKAGE = "tfinverse"


def pggan_num_levels(resolution: int) -> int:
    """Number of resolution levels ``4, 8, ..., resolution``.

    Args:
      resolution: a power of two, 4 ... 1024.

    Returns:
      ``log2(resolution) - 1`` (9 for 1024).

    Raises:
      ValueError: if ``resolution`` is not a power of two in ``[4, 1024]``.
    """
    resolution = int(resolution)
    if resolution < 4 or resolution > 1024 or resolution & (resolution - 1):
        raise ValueError(f"PGGAN resolution must be a power of two in [4, 1024], got {resolution}")
    return int(round(math.log2(resolution))) - 1


def pggan_num_filters(level: int, fmap_base: int = 8192, fmap_max: int = 512) -> int:
    """Feature maps at a level: ``min(fmap_base / 2^(level + 1), fmap_max)``, at least 1.

    ``level = -1`` gives ``min(fmap_base, fmap_max)`` (the critic's dense layer).

    Args:
      level: resolution level (0 = 4x4).
      fmap_base: feature-map budget (8192 in the original).
      fmap_max: cap (512).

    Returns:
      Channel count.
    """
    return max(1, min(int(fmap_base / 2.0 ** (level + 1)), int(fmap_max)))


def upsample_nearest(images: tf.Tensor, factor: int = 2) -> tf.Tensor:
    """Nearest-neighbour up-sampling of NHWC images by an integer factor."""
    return tf.repeat(tf.repeat(images, factor, axis=1), factor, axis=2)


def downsample_average(images: tf.Tensor, factor: int = 2) -> tf.Tensor:
    """``factor x factor`` average pooling of NHWC images."""
    return tf.nn.avg_pool2d(images, factor, factor, "VALID")


def _leaky(x):
    return tf.nn.leaky_relu(x, PGGAN_LEAKY_SLOPE)


def _seed_stream(seed: Optional[int]) -> Iterable[Optional[int]]:
    rng = None if seed is None else np.random.default_rng(int(seed))
    while True:
        yield None if rng is None else int(rng.integers(0, 2**31 - 1))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PGGANConvBlock(keras.layers.Layer):
    """``[PixelNorm] -> [nearest up x2] -> equalized conv -> [leaky ReLU 0.2]``.

    Args:
      filters: output channels.
      kernel_size: square kernel.
      padding: explicit zero padding (int) or ``"same"``/``"valid"``.
      upsample: nearest x2 up-sampling after the normalisation.
      pixel_norm: apply PixelNorm (epsilon ``1e-8``) first.
      activation: apply leaky ReLU 0.2 last.
      gain: He gain of the conv (``sqrt(2)``; 1 for toRGB).
      trainable_scale: WScale layout (trainable scalar scale); see ``EqualizedConv2D``.
      seed: kernel initialiser seed.
      **kwargs: forwarded to :class:`keras.layers.Layer`.
    """

    def __init__(
        self,
        filters: int,
        kernel_size: int,
        padding=1,
        upsample: bool = False,
        pixel_norm: bool = True,
        activation: bool = True,
        gain: float = math.sqrt(2.0),
        trainable_scale: bool = False,
        seed: Optional[int] = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.padding = padding
        self.upsample = bool(upsample)
        self.pixel_norm = bool(pixel_norm)
        self.activation = bool(activation)
        self.gain = float(gain)
        self.trainable_scale = bool(trainable_scale)
        self.seed = seed
        self.norm = PixelNorm(1e-8, name="norm")
        self.conv = EqualizedConv2D(
            self.filters,
            self.kernel_size,
            padding=padding,
            gain=self.gain,
            use_bias=True,
            trainable_scale=self.trainable_scale,
            seed=seed,
            name="conv",
        )

    def _conv_input_shape(self, input_shape):
        if not self.upsample:
            return tuple(input_shape)
        height, width = (None if d is None else 2 * d for d in input_shape[1:3])
        return (input_shape[0], height, width, input_shape[3])

    def build(self, input_shape):
        self.conv.build(self._conv_input_shape(input_shape))

    def call(self, inputs):
        x = self.norm(inputs) if self.pixel_norm else inputs
        if self.upsample:
            x = upsample_nearest(x)
        x = self.conv(x)
        return _leaky(x) if self.activation else x

    def compute_output_shape(self, input_shape):
        return self.conv.compute_output_shape(self._conv_input_shape(input_shape))

    def get_config(self):
        return {
            **super().get_config(),
            "filters": self.filters,
            "kernel_size": self.kernel_size,
            "padding": self.padding,
            "upsample": self.upsample,
            "pixel_norm": self.pixel_norm,
            "activation": self.activation,
            "gain": self.gain,
            "trainable_scale": self.trainable_scale,
            "seed": self.seed,
        }


class _ProgressiveMixin:
    """``level``/``alpha`` handling shared by the progressive generator and critic."""

    def _init_progress(self, level: Optional[int], alpha: float) -> None:
        self._level = self.num_levels - 1 if level is None else self._check_level(level)
        self.alpha = self.add_weight(
            name="alpha",
            shape=(),
            initializer=keras.initializers.Constant(float(alpha)),
            trainable=False,
        )

    def _check_level(self, level: int) -> int:
        level = int(level)
        if not 0 <= level < self.num_levels:
            raise ValueError(f"level must be in [0, {self.num_levels - 1}], got {level}")
        if not self.progressive and level != self.num_levels - 1:
            raise ValueError("this network has no per-level RGB layers; only the top level is available")
        return level

    @property
    def level(self) -> int:
        """Current resolution level (0 = 4x4); read at trace time inside ``tf.function``."""
        return self._level

    @level.setter
    def level(self, value: int) -> None:
        self._level = self._check_level(value)

    @property
    def current_resolution(self) -> int:
        """Output (generator) or input (critic) resolution at the current level."""
        return 4 * 2**self._level

    def set_alpha(self, value) -> None:
        """Sets the fade-in weight (0: previous level only, 1: new level only).

        Raises:
          ValueError: for a Python number outside ``[0, 1]``.
        """
        if isinstance(value, (int, float)) and not 0.0 <= float(value) <= 1.0:
            raise ValueError(f"alpha must be in [0, 1], got {value}")
        self.alpha.assign(tf.cast(value, tf.float32))


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PGGANGeneratorNetwork(_ProgressiveMixin, keras.Model):
    """PGGAN generator network ``z [n, latent_dim] -> image [n, 4*2^level, 4*2^level, C]``.

    Args:
      resolution: maximum resolution (power of two, 4 ... 1024).
      latent_dim: ``z`` dimension (512).
      channels: output channels (3).
      fmap_base: feature-map budget (8192).
      fmap_max: channel cap (512).
      original_layout: build the IAGAN/PyTorch-port layout (trainable WScale, only the final
        toRGB, no progressive growing) instead of the progressive equalized-lr network.
      level: initial level (default: the top one).
      alpha: initial fade-in weight (1).
      seed: kernel initialiser seed (``None``: Keras's global RNG).
      **kwargs: forwarded to :class:`keras.Model`.

    Raises:
      ValueError: for an invalid resolution, latent dimension or level.
    """

    def __init__(
        self,
        resolution: int = 1024,
        latent_dim: int = 512,
        channels: int = 3,
        fmap_base: int = 8192,
        fmap_max: int = 512,
        original_layout: bool = False,
        level: Optional[int] = None,
        alpha: float = 1.0,
        seed: Optional[int] = 0,
        **kwargs,
    ):
        kwargs.setdefault("name", "pggan_generator")
        super().__init__(**kwargs)
        if int(latent_dim) <= 0 or int(channels) <= 0:
            raise ValueError(f"latent_dim and channels must be positive, got {latent_dim}, {channels}")
        self.resolution = int(resolution)
        self.num_levels = pggan_num_levels(resolution)
        self.latent_dim = int(latent_dim)
        self.channels = int(channels)
        self.fmap_base = int(fmap_base)
        self.fmap_max = int(fmap_max)
        self.original_layout = bool(original_layout)
        self.progressive = not self.original_layout
        self.seed = seed
        seeds = iter(_seed_stream(seed))
        wscale = self.original_layout
        blocks = []
        for lvl in range(self.num_levels):
            filters = pggan_num_filters(lvl, fmap_base, fmap_max)
            if lvl == 0:
                # a 4x4 conv with padding 3 on the 1x1 latent is a dense layer to 4x4
                first = PGGANConvBlock(
                    filters, 4, padding=3, trainable_scale=wscale, seed=next(seeds), name="features_0"
                )
            else:
                first = PGGANConvBlock(
                    filters, 3, padding=1, upsample=True, trainable_scale=wscale, seed=next(seeds),
                    name=f"features_{2 * lvl}",
                )
            second = PGGANConvBlock(
                filters,
                3,
                padding=1,
                trainable_scale=wscale,
                seed=next(seeds),
                name=f"features_{2 * lvl + 1}",
            )
            blocks += [first, second]
        self.features = blocks
        rgb_levels = [self.num_levels - 1] if self.original_layout else list(range(self.num_levels))
        self.to_rgb = [
            PGGANConvBlock(
                self.channels, 1, padding=0, activation=False, gain=1.0, trainable_scale=wscale,
                seed=next(seeds), name="output" if self.original_layout else f"to_rgb_{lvl}",
            )
            for lvl in rgb_levels
        ]
        self._init_progress(level, alpha)
        self.build((None, self.latent_dim))

    def build(self, input_shape):
        shape = (None, 1, 1, self.latent_dim)
        for lvl in range(self.num_levels):
            for block in self.features[2 * lvl : 2 * lvl + 2]:
                block.build(shape)
                shape = block.compute_output_shape(shape)
            if self.progressive:
                self.to_rgb[lvl].build(shape)
        if not self.progressive:
            self.to_rgb[0].build(shape)

    def rgb_layer(self, level: int) -> PGGANConvBlock:
        """The toRGB block of a level (``output`` in the original layout)."""
        return self.to_rgb[level] if self.progressive else self.to_rgb[0]

    def call(self, z, training=None):
        level = self._level
        x = tf.reshape(tf.cast(z, tf.float32), [-1, 1, 1, self.latent_dim])
        previous = None
        for index, block in enumerate(self.features[: 2 * level + 2]):
            x = block(x)
            if index == 2 * level - 1:
                previous = x
        images = self.rgb_layer(level)(x)
        if self.progressive and level > 0:
            low = upsample_nearest(self.rgb_layer(level - 1)(previous))
            images = low + self.alpha * (images - low)
        return images

    def compute_output_shape(self, input_shape):
        size = self.current_resolution
        return (input_shape[0], size, size, self.channels)

    def active_trainable_variables(self) -> List[tf.Variable]:
        """Trainable variables that influence the output at the current level."""
        level = self._level
        used = list(self.features[: 2 * level + 2]) + [self.rgb_layer(level)]
        if self.progressive and level > 0:
            used.append(self.rgb_layer(level - 1))
        return [v for layer in used for v in layer.trainable_variables]

    # ------------------------------------------------------------ original state_dict
    def original_state_dict_spec(self) -> Dict[str, Tuple[int, ...]]:
        """Keys and PyTorch shapes of the original generator's ``state_dict``.

        Returns:
          ``{key: shape}``, e.g. ``"features.0.conv.weight": (512, 512, 4, 4)`` (OIHW),
          ``"features.0.wscale.scale": (1,)``, ``"features.0.wscale.b": (512,)``.
        """
        spec: Dict[str, Tuple[int, ...]] = {}
        named = [(f"features.{i}", block) for i, block in enumerate(self.features)]
        named.append(("output", self.to_rgb[-1]))
        for prefix, block in named:
            k, _, c_in, c_out = (int(d) for d in block.conv.kernel.shape)
            spec[f"{prefix}.conv.weight"] = (c_out, c_in, k, k)
            spec[f"{prefix}.wscale.scale"] = (1,)
            spec[f"{prefix}.wscale.b"] = (c_out,)
        return spec

    def load_original_state_dict(self, state: Dict[str, np.ndarray]) -> None:
        """Loads the PyTorch ``state_dict`` of the original PGGAN generator.

        Conv kernels are converted OIHW -> HWIO (the original's kernels are stored ready for
        cross-correlation, which is what ``tf.nn.conv2d`` computes, so no flip is needed).
        Nothing is assigned unless every key and shape checks out.

        Args:
          state: mapping from the original ``nn.Module`` parameter names to arrays (numpy
            arrays; objects with ``.detach().cpu().numpy()`` or ``.numpy()`` are converted).

        Raises:
          ValueError: if the network was not built with ``original_layout=True``, keys are
            missing or unexpected, or a shape does not match.
        """
        if not self.original_layout:
            raise ValueError(
                "load_original_state_dict needs the original layout; build the generator with "
                "PGGANGenerator.from_original_layout(...) or original_layout=True"
            )
        spec = self.original_state_dict_spec()
        missing = sorted(set(spec) - set(state))
        unexpected = sorted(set(state) - set(spec))
        if missing or unexpected:
            raise ValueError(
                f"state_dict does not match the PGGAN generator layout: missing keys {missing[:8]}"
                f"{' ...' if len(missing) > 8 else ''}, unexpected keys {unexpected[:8]}"
                f"{' ...' if len(unexpected) > 8 else ''}"
            )
        arrays = {}
        for key, expected in spec.items():
            array = _to_numpy(state[key]).astype(np.float32)
            if key.endswith(".wscale.scale") and array.size == 1:
                array = array.reshape(1)
            if tuple(array.shape) != tuple(expected):
                raise ValueError(
                    f"state_dict[{key!r}] must have shape {expected}, got {tuple(array.shape)}"
                )
            arrays[key] = array
        named = [(f"features.{i}", block) for i, block in enumerate(self.features)]
        named.append(("output", self.to_rgb[-1]))
        for prefix, block in named:
            block.conv.kernel.assign(np.transpose(arrays[f"{prefix}.conv.weight"], (2, 3, 1, 0)))
            block.conv.scale.assign(arrays[f"{prefix}.wscale.scale"])
            block.conv.bias.assign(arrays[f"{prefix}.wscale.b"])

    def get_config(self):
        return {
            "name": self.name,
            "resolution": self.resolution,
            "latent_dim": self.latent_dim,
            "channels": self.channels,
            "fmap_base": self.fmap_base,
            "fmap_max": self.fmap_max,
            "original_layout": self.original_layout,
            "level": self._level,
            "alpha": float(self.alpha.numpy()),
            "seed": self.seed,
        }


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    elif hasattr(value, "numpy") and not isinstance(value, np.ndarray):
        value = value.numpy()
    return np.asarray(value)


@keras.saving.register_keras_serializable(package=_PACKAGE)
class PGGANDiscriminatorNetwork(_ProgressiveMixin, keras.Model):
    """PGGAN critic ``image [n, 4*2^level, 4*2^level, C] -> score [n, 1]`` (WGAN, unbounded).

    Args:
      resolution: maximum resolution (power of two, 4 ... 1024).
      channels: input channels.
      fmap_base: feature-map budget (8192).
      fmap_max: channel cap (512).
      mbstd_group_size: minibatch-stddev group size (4); the batch must be divisible by
        ``min(group, batch)``.
      level: initial level (default: the top one).
      alpha: initial fade-in weight (1).
      seed: initialiser seed.
      **kwargs: forwarded to :class:`keras.Model`.
    """

    def __init__(
        self,
        resolution: int = 1024,
        channels: int = 3,
        fmap_base: int = 8192,
        fmap_max: int = 512,
        mbstd_group_size: int = 4,
        level: Optional[int] = None,
        alpha: float = 1.0,
        seed: Optional[int] = 0,
        **kwargs,
    ):
        kwargs.setdefault("name", "pggan_discriminator")
        super().__init__(**kwargs)
        self.resolution = int(resolution)
        self.num_levels = pggan_num_levels(resolution)
        self.channels = int(channels)
        self.fmap_base = int(fmap_base)
        self.fmap_max = int(fmap_max)
        self.mbstd_group_size = int(mbstd_group_size)
        self.progressive = True
        self.seed = seed
        seeds = iter(_seed_stream(seed))

        def nf(level):
            return pggan_num_filters(level, fmap_base, fmap_max)

        self.from_rgb = [
            EqualizedConv2D(nf(lvl), 1, padding=0, seed=next(seeds), name=f"from_rgb_{lvl}")
            for lvl in range(self.num_levels)
        ]
        # blocks[l] for l >= 1: conv to nf(l), conv to nf(l - 1), then 2x2 average pooling
        self.block_convs = [
            [
                EqualizedConv2D(nf(lvl), 3, padding=1, seed=next(seeds), name=f"block_{lvl}_conv0"),
                EqualizedConv2D(nf(lvl - 1), 3, padding=1, seed=next(seeds), name=f"block_{lvl}_conv1"),
            ]
            for lvl in range(1, self.num_levels)
        ]
        self.minibatch_stddev = MinibatchStdDev(self.mbstd_group_size, name="minibatch_stddev")
        self.head_conv = EqualizedConv2D(nf(0), 3, padding=1, seed=next(seeds), name="head_conv")
        self.head_dense = EqualizedDense(nf(-1), seed=next(seeds), name="head_dense")
        self.head_score = EqualizedDense(1, gain=1.0, seed=next(seeds), name="head_score")
        self._init_progress(level, alpha)
        self.build((None, self.resolution, self.resolution, self.channels))

    def build(self, input_shape):
        def nf(level):
            return pggan_num_filters(level, self.fmap_base, self.fmap_max)

        for lvl in range(self.num_levels):
            size = 4 * 2**lvl
            self.from_rgb[lvl].build((None, size, size, self.channels))
            if lvl > 0:
                conv0, conv1 = self.block_convs[lvl - 1]
                conv0.build((None, size, size, nf(lvl)))
                conv1.build((None, size, size, nf(lvl)))
        self.head_conv.build((None, 4, 4, nf(0) + 1))
        self.head_dense.build((None, 16 * nf(0)))
        self.head_score.build((None, nf(-1)))

    def _block(self, level: int, h):
        conv0, conv1 = self.block_convs[level - 1]
        return downsample_average(_leaky(conv1(_leaky(conv0(h)))))

    def call(self, images, training=None):
        level = self._level
        images = tf.cast(images, tf.float32)
        size = self.current_resolution
        expected = (size, size, self.channels)
        if images.shape.rank != 4 or any(
            d is not None and d != e for d, e in zip(images.shape[1:], expected)
        ):
            raise ValueError(
                f"the critic at level {level} expects images [n, {size}, {size}, {self.channels}], "
                f"got {images.shape}"
            )
        h = _leaky(self.from_rgb[level](images))
        if level > 0:
            h = self._block(level, h)
            low = _leaky(self.from_rgb[level - 1](downsample_average(images)))
            h = low + self.alpha * (h - low)
        for lvl in range(level - 1, 0, -1):
            h = self._block(lvl, h)
        h = self.minibatch_stddev(h)
        h = _leaky(self.head_conv(h))
        h = tf.reshape(h, [-1, 16 * h.shape[-1]])
        h = _leaky(self.head_dense(h))
        return self.head_score(h)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 1)

    def get_config(self):
        return {
            "name": self.name,
            "resolution": self.resolution,
            "channels": self.channels,
            "fmap_base": self.fmap_base,
            "fmap_max": self.fmap_max,
            "mbstd_group_size": self.mbstd_group_size,
            "level": self._level,
            "alpha": float(self.alpha.numpy()),
            "seed": self.seed,
        }


class PGGANGenerator(KerasGenerator):
    """PGGAN prior behind the :class:`~tfinverse.models.generator.Generator` interface.

    Native range: unbounded (no tanh), trained on ``[-1, 1]`` images; mapped by
    ``(x + 1) / 2`` and clipped to ``[0, 1]`` unless ``clip_output=False``. Latents:
    ``N(0, I_512)``. ``output_shape`` follows the current ``level``.

    Args:
      resolution: maximum resolution (1024 for CelebA-HQ).
      latent_dim: ``z`` dimension (512).
      channels: image channels (3).
      fmap_base: feature-map budget (8192).
      fmap_max: channel cap (512).
      original_layout: build the IAGAN/PyTorch-port layout (see :meth:`from_original_layout`).
      seed: initialiser seed.
      clip_output: clip the mapped output to ``[0, 1]``.
      network: an existing :class:`PGGANGeneratorNetwork` to wrap instead of building one
        (the architecture arguments are then ignored).

    Raises:
      TypeError: if ``network`` is not a :class:`PGGANGeneratorNetwork`.
    """

    def __init__(
        self,
        resolution: int = 1024,
        latent_dim: int = 512,
        channels: int = 3,
        fmap_base: int = 8192,
        fmap_max: int = 512,
        original_layout: bool = False,
        seed: Optional[int] = 0,
        clip_output: bool = True,
        network: Optional[PGGANGeneratorNetwork] = None,
    ):
        if network is None:
            network = PGGANGeneratorNetwork(
                resolution, latent_dim, channels, fmap_base, fmap_max, original_layout, seed=seed
            )
        elif not isinstance(network, PGGANGeneratorNetwork):
            raise TypeError(f"network must be a PGGANGeneratorNetwork, got {type(network).__name__}")
        super().__init__(
            network, network.latent_dim, "normal", output_range=(-1.0, 1.0), clip_output=clip_output
        )

    @classmethod
    def from_original_layout(
        cls,
        resolution: int = 1024,
        latent_dim: int = 512,
        channels: int = 3,
        fmap_base: int = 8192,
        fmap_max: int = 512,
        seed: Optional[int] = 0,
        clip_output: bool = True,
    ) -> "PGGANGenerator":
        """Builds the exact layout of the PyTorch PGGAN generator used by IAGAN.

        With the defaults that is the CelebA-HQ 1024x1024 network: 18 ``features`` blocks
        (PixelNorm, [nearest x2], bias-free conv, WScale with trainable scalar scale and
        per-channel bias, leaky 0.2; the first a 4x4 conv with padding 3 on the 1x1 latent)
        and an ``output`` block (PixelNorm, 1x1 conv to 3 channels, WScale, no activation).
        Load converted weights with :meth:`load_original_state_dict`.

        Args:
          resolution: output resolution (1024).
          latent_dim: ``z`` dimension (512).
          channels: output channels (3).
          fmap_base: feature-map budget (8192 gives 512 x4 -> 256 -> ... -> 16).
          fmap_max: channel cap (512).
          seed: initialiser seed (weights are meant to be overwritten by a state dict).
          clip_output: clip the mapped output to ``[0, 1]``.

        Returns:
          The generator.
        """
        return cls(resolution, latent_dim, channels, fmap_base, fmap_max, True, seed, clip_output)

    @property
    def network(self) -> PGGANGeneratorNetwork:
        """The wrapped :class:`PGGANGeneratorNetwork` (native output range)."""
        return self._network

    @property
    def output_shape(self) -> Tuple[int, int, int]:
        size = self._network.current_resolution
        return (size, size, self._network.channels)

    @property
    def level(self) -> int:
        """Current resolution level of the network (0 = 4x4)."""
        return self._network.level

    @level.setter
    def level(self, value: int) -> None:
        self._network.level = value

    @property
    def alpha(self) -> tf.Variable:
        """Fade-in weight variable of the network."""
        return self._network.alpha

    def set_alpha(self, value) -> None:
        """Sets the fade-in weight (see :meth:`PGGANGeneratorNetwork.set_alpha`)."""
        self._network.set_alpha(value)

    @property
    def trainable_variables(self) -> List[tf.Variable]:
        """Trainable variables that affect the output at the current level.

        toRGB layers of unused lower levels are left out so optimisers never see ``None``
        gradients; ``network.trainable_variables`` lists them all.
        """
        return self._network.active_trainable_variables()

    def original_state_dict_spec(self) -> Dict[str, Tuple[int, ...]]:
        """See :meth:`PGGANGeneratorNetwork.original_state_dict_spec`."""
        return self._network.original_state_dict_spec()

    def load_original_state_dict(self, state: Dict[str, np.ndarray]) -> None:
        """See :meth:`PGGANGeneratorNetwork.load_original_state_dict`."""
        self._network.load_original_state_dict(state)

    def _clone_network(self) -> PGGANGeneratorNetwork:
        return PGGANGeneratorNetwork.from_config(self._network.get_config())


# ----------------------------------------------------------------- WGAN-GP losses
# Defined once in tfinverse.losses.adversarial; the PGGAN names stay for existing callers.
wgan_generator_loss = wasserstein_generator_loss
wgan_discriminator_loss = wasserstein_critic_loss
wgan_gp_discriminator_loss = wgan_gp_critic_loss
