"""The one interface every generative prior implements, and an adapter for Keras models.

A :class:`Generator` maps latent vectors ``z`` of shape ``[n, latent_dim]`` to float32 NHWC
images in ``[0, 1]``. Each network has its own native output range (``tanh`` ``[-1, 1]`` for
DCGAN, an unbounded range trained on ``[-1, 1]`` data for BEGAN and PGGAN); the wrapper maps
``output_range`` affinely onto ``[0, 1]`` and, unless ``clip_output=False``, clips, so
callers never see the native range. :meth:`Generator.native` gives the unmapped output for
code that must work in the network's own range (e.g. to reproduce an original's loss).

Inversion methods (CSGM, IAGAN, LVR) only rely on this interface::

    g = DCGANGenerator(resolution=64, channels=3)
    z = g.sample_latent(8, seed=0)          # numpy, float32 [8, 100], U[-1, 1]
    x = g(z)                                # tf.Tensor [8, 64, 64, 3] in [0, 1]
    g_ia = g.copy()                         # own variables: fine-tune g_ia.trainable_variables

Latents are drawn with :meth:`Generator.sample_latent`: a Python int (or a
``numpy.random.Generator``) draws with numpy once, outside compiled code; a ``[2]`` integer
tensor draws with ``tf.random.stateless_*`` and works inside ``tf.function``.
"""

from __future__ import annotations

import abc
import copy as copy_module
from typing import List, Tuple, Union

import keras
import numpy as np
import tensorflow as tf

__all__ = [
    "LATENT_DISTRIBUTIONS",
    "Generator",
    "KerasGenerator",
    "sample_latent",
]

LATENT_DISTRIBUTIONS = ("uniform", "normal")

SeedLike = Union[int, np.random.Generator, tf.Tensor, tf.Variable]


def _check_distribution(latent_distribution: str) -> str:
    if latent_distribution not in LATENT_DISTRIBUTIONS:
        raise ValueError(
            f"latent_distribution must be one of {LATENT_DISTRIBUTIONS}, got {latent_distribution!r}"
        )
    return latent_distribution


def sample_latent(n: int, latent_dim: int, latent_distribution: str, seed: SeedLike):
    """Draws ``n`` latent vectors from ``U[-1, 1]^d`` or ``N(0, I_d)``.

    Args:
      n: number of vectors (a Python int; a scalar integer tensor is accepted with a tensor seed).
      latent_dim: dimension ``d``.
      latent_distribution: ``"uniform"`` (on ``[-1, 1]``) or ``"normal"`` (standard).
      seed: a Python int or ``numpy.random.Generator`` (numpy draw, returns ``np.ndarray``), or
        an integer tensor of shape ``[2]`` (``tf.random.stateless_*`` draw, returns
        ``tf.Tensor``; usable inside ``tf.function``).

    Returns:
      float32 array or tensor of shape ``[n, latent_dim]``.

    Raises:
      ValueError: for an unknown distribution, a negative ``n``, a non-positive ``latent_dim``
        or a tensor seed whose shape is not ``[2]``.
      TypeError: if ``seed`` is ``None`` or of another type (seeds must be explicit).
    """
    _check_distribution(latent_distribution)
    if int(latent_dim) <= 0:
        raise ValueError(f"latent_dim must be positive, got {latent_dim}")
    if isinstance(seed, (tf.Tensor, tf.Variable)):
        seed = tf.convert_to_tensor(seed)
        if seed.shape.rank != 1 or (seed.shape[0] is not None and seed.shape[0] != 2):
            raise ValueError(f"a tensor seed must have shape [2], got {seed.shape}")
        if not seed.dtype.is_integer:
            raise ValueError(f"a tensor seed must be integer, got {seed.dtype}")
        shape = tf.stack([tf.cast(n, tf.int32), tf.constant(int(latent_dim), tf.int32)])
        if latent_distribution == "uniform":
            return tf.random.stateless_uniform(shape, seed, minval=-1.0, maxval=1.0, dtype=tf.float32)
        return tf.random.stateless_normal(shape, seed, dtype=tf.float32)
    numpy_seed = isinstance(seed, (int, np.integer, np.random.Generator)) and not isinstance(seed, bool)
    if not numpy_seed:
        raise TypeError(
            "seed must be an int, a numpy.random.Generator or an integer tensor of shape [2], "
            f"got {type(seed).__name__}"
        )
    if int(n) < 0:
        raise ValueError(f"n must be non-negative, got {n}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(int(seed))
    size = (int(n), int(latent_dim))
    if latent_distribution == "uniform":
        draw = rng.uniform(-1.0, 1.0, size=size)
    else:
        draw = rng.standard_normal(size=size)
    return draw.astype(np.float32)


class Generator(abc.ABC):
    """Abstract generative prior ``z -> x``, images float32 NHWC in ``[0, 1]``.

    Subclasses implement :meth:`native` (the network in its own output range),
    :attr:`trainable_variables`, :attr:`variables` and :meth:`copy`, and pass the latent
    and output description to ``__init__``; the mapping to ``[0, 1]``, input validation and
    latent sampling are shared.

    Args:
      latent_dim: dimension of ``z``.
      latent_distribution: ``"uniform"`` (``U[-1, 1]``) or ``"normal"`` (``N(0, I)``): the
        prior the network was trained with, used by :meth:`sample_latent`.
      output_range: ``(low, high)`` of the network's native output; mapped onto ``[0, 1]``.
      clip_output: clip the mapped output to ``[0, 1]``. Needed for unbounded networks
        (BEGAN, PGGAN) to honour the ``[0, 1]`` contract; note that clipped pixels pass no
        gradient, so inversion code that must match an original's unclipped loss can set it
        to ``False`` (or work with :meth:`native`).

    Raises:
      ValueError: for an unknown distribution, a non-positive ``latent_dim`` or an empty
        ``output_range``.
    """

    def __init__(
        self,
        latent_dim: int,
        latent_distribution: str,
        output_range: Tuple[float, float] = (-1.0, 1.0),
        clip_output: bool = True,
    ):
        if int(latent_dim) <= 0:
            raise ValueError(f"latent_dim must be positive, got {latent_dim}")
        low, high = (float(v) for v in output_range)
        if not high > low:
            raise ValueError(f"output_range must be (low, high) with high > low, got {output_range}")
        self._latent_dim = int(latent_dim)
        self._latent_distribution = _check_distribution(latent_distribution)
        self._output_range = (low, high)
        self.clip_output = bool(clip_output)

    # ----------------------------------------------------------------- description
    @property
    def latent_dim(self) -> int:
        """Dimension of the latent vector ``z``."""
        return self._latent_dim

    @property
    def latent_distribution(self) -> str:
        """``"uniform"`` (on ``[-1, 1]``) or ``"normal"`` (standard Gaussian)."""
        return self._latent_distribution

    @property
    def output_range(self) -> Tuple[float, float]:
        """``(low, high)`` of the network's native output, mapped onto ``[0, 1]``."""
        return self._output_range

    @property
    @abc.abstractmethod
    def output_shape(self) -> Tuple[int, int, int]:
        """``(H, W, C)`` of one generated image."""

    # ----------------------------------------------------------------- weights
    @property
    @abc.abstractmethod
    def trainable_variables(self) -> List[tf.Variable]:
        """The generator weights that image-adaptive methods (IAGAN) fine-tune."""

    @property
    @abc.abstractmethod
    def variables(self) -> List[tf.Variable]:
        """All variables, trainable or not (e.g. batch-norm moving statistics)."""

    @abc.abstractmethod
    def copy(self) -> "Generator":
        """An independent deep copy with its own variables (same values)."""

    # ----------------------------------------------------------------- computation
    @abc.abstractmethod
    def native(self, z: tf.Tensor, training: bool = False) -> tf.Tensor:
        """The network output in its native range, ``[n, H, W, C]`` float32.

        Args:
          z: validated float32 latents ``[n, latent_dim]``.
          training: Keras training flag (batch-norm uses batch statistics and updates its
            moving averages when True).

        Returns:
          The raw network output.
        """

    def sample_latent(self, n: int, seed: SeedLike):
        """Draws ``n`` latents from this generator's prior; see :func:`sample_latent`.

        Args:
          n: number of latent vectors.
          seed: int or ``numpy.random.Generator`` (numpy draw) or ``[2]`` integer tensor
            (stateless TF draw, works in ``tf.function``).

        Returns:
          float32 ``[n, latent_dim]`` (``np.ndarray`` or ``tf.Tensor`` by seed type).
        """
        return sample_latent(n, self.latent_dim, self.latent_distribution, seed)

    def validate_latent(self, z) -> tf.Tensor:
        """Converts ``z`` to a float32 tensor and checks its shape ``[n, latent_dim]``.

        Args:
          z: array-like or tensor.

        Returns:
          float32 tensor.

        Raises:
          ValueError: if the (static) shape is not ``[n, latent_dim]``.
        """
        z = tf.convert_to_tensor(z)
        if z.dtype != tf.float32:
            z = tf.cast(z, tf.float32)
        if z.shape.rank is not None and (
            z.shape.rank != 2 or (z.shape[-1] is not None and z.shape[-1] != self.latent_dim)
        ):
            raise ValueError(
                f"z must have shape [n, {self.latent_dim}] (n latent vectors of dimension "
                f"{self.latent_dim}), got {z.shape}"
            )
        return z

    def to_unit_range(self, x_native: tf.Tensor) -> tf.Tensor:
        """Maps native-range images to ``[0, 1]`` (clipped when ``clip_output``)."""
        low, high = self.output_range
        x = (tf.cast(x_native, tf.float32) - low) / (high - low)
        if self.clip_output:
            x = tf.clip_by_value(x, 0.0, 1.0)
        return x

    def from_unit_range(self, x_unit: tf.Tensor) -> tf.Tensor:
        """Maps ``[0, 1]`` images to the network's native range (inverse of :meth:`to_unit_range`)."""
        low, high = self.output_range
        return tf.cast(x_unit, tf.float32) * (high - low) + low

    def __call__(self, z, training: bool = False) -> tf.Tensor:
        """Generates images.

        Args:
          z: latents ``[n, latent_dim]`` (array-like or tensor).
          training: Keras training flag, passed to the network (see :meth:`native`).

        Returns:
          float32 tensor ``[n, H, W, C]`` in ``[0, 1]``.

        Raises:
          ValueError: if ``z`` does not have shape ``[n, latent_dim]``.
        """
        return self.to_unit_range(self.native(self.validate_latent(z), training=training))

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(latent_dim={self.latent_dim}, "
            f"latent_distribution={self.latent_distribution!r}, output_shape={self.output_shape})"
        )


class KerasGenerator(Generator):
    """Adapts any Keras model ``z [n, latent_dim] -> image [n, H, W, C]`` to :class:`Generator`.

    Args:
      network: the Keras model (built, or buildable from ``(None, latent_dim)``).
      latent_dim: dimension of ``z``.
      latent_distribution: ``"uniform"`` or ``"normal"``.
      output_range: ``(low, high)`` of the network's native output (``(-1, 1)`` for tanh).
      clip_output: clip the mapped output to ``[0, 1]`` (see :class:`Generator`).

    Raises:
      TypeError: if ``network`` is not a ``keras.Model``.
      ValueError: if the network's output is not a rank-4 image batch.
    """

    def __init__(
        self,
        network: keras.Model,
        latent_dim: int,
        latent_distribution: str,
        output_range: Tuple[float, float] = (-1.0, 1.0),
        clip_output: bool = True,
    ):
        super().__init__(latent_dim, latent_distribution, output_range, clip_output)
        if not isinstance(network, keras.Model):
            raise TypeError(f"network must be a keras.Model, got {type(network).__name__}")
        if not network.built:
            network.build((None, int(latent_dim)))
        self._network = network
        self._output_shape = self._infer_output_shape()

    def _infer_output_shape(self) -> Tuple[int, int, int]:
        try:
            shape = tuple(self._network.compute_output_shape((None, self.latent_dim)))
        except Exception:  # subclassed models without compute_output_shape: run one sample
            shape = tuple(self._network(tf.zeros([1, self.latent_dim]), training=False).shape)
        if len(shape) != 4 or any(d is None for d in shape[1:]):
            raise ValueError(f"the network must output images [n, H, W, C], got shape {shape}")
        return tuple(int(d) for d in shape[1:])

    @property
    def network(self) -> keras.Model:
        """The wrapped Keras model (native output range)."""
        return self._network

    @property
    def output_shape(self) -> Tuple[int, int, int]:
        return self._output_shape

    @property
    def input_signature(self) -> List[tf.TensorSpec]:
        """``[TensorSpec([None, latent_dim], float32)]``, e.g. for ``network.export(path,
        input_signature=g.input_signature)`` (subclassed networks that were never called
        need it)."""
        return [tf.TensorSpec([None, self.latent_dim], tf.float32, name="z")]

    @property
    def trainable_variables(self) -> List[tf.Variable]:
        return list(self._network.trainable_variables)

    @property
    def variables(self) -> List[tf.Variable]:
        return list(self._network.variables)

    def native(self, z, training: bool = False) -> tf.Tensor:
        return tf.cast(self._network(z, training=training), tf.float32)

    def _clone_network(self) -> keras.Model:
        """A new, built network of the same architecture (weights not yet copied)."""
        try:
            clone = keras.models.clone_model(self._network)
        except Exception as error:
            raise NotImplementedError(
                f"{type(self._network).__name__} cannot be cloned by keras.models.clone_model "
                "(it needs get_config/from_config); subclass KerasGenerator and override "
                "_clone_network"
            ) from error
        if not clone.built:
            clone.build((None, self.latent_dim))
        return clone

    def copy(self) -> "KerasGenerator":
        """An independent deep copy: a cloned network holding copies of all weights.

        Returns:
          A generator of the same class and settings whose variables are new objects; changing
          them (e.g. by IAGAN fine-tuning) leaves this generator unchanged.
        """
        clone = self._clone_network()
        source = self._network.get_weights()
        if len(clone.weights) != len(source):
            raise RuntimeError(
                f"cloned network has {len(clone.weights)} weights, the original {len(source)}"
            )
        clone.set_weights([np.array(w, copy=True) for w in source])
        duplicate = copy_module.copy(self)
        duplicate._network = clone
        return duplicate

