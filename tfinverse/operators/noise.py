"""Noise models: the ``e`` of ``y = A x + e``, kept apart from the linear part ``A``.

A noise model maps a clean measurement to a noisy one, ``y_noisy = noise(y, seed)``. It is
independent of the operator, so any noise composes with any operator::

    from tfinverse.operators import get
    from tfinverse.operators.noise import get_noise, measure

    A = get("blur_uniform", image_shape=(64, 64, 3))
    y = measure(A, x, get_noise("gaussian", sigma=10 / 255), seed=7)

Noise is drawn with ``tf.random.stateless_*`` from an explicit seed, so the same seed gives
the same noise eagerly and inside ``tf.function``. All levels are in image units, for images
in ``[0, 1]``.

Per-step noise in a compiled step: pass the seed as an integer tensor of shape ``[2]``
(``noise(y, seed=s)``); a ``tf.function`` taking ``s`` as an argument traces once for all
seed values (a Python int seed is a constant of the trace instead, one trace per value).
Every entry, and so every example, gets its own draw. Under a ``tf.distribute`` strategy
(inside ``strategy.run``) a replica draws the noise of the global batch (its local batch
times the number of replicas, assumed evenly split, zero-padded around its own examples) and
keeps its own rows, so replicas never share noise and a step on two replicas adds the noise
of the same step on one device.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import tensorflow as tf

from tfinverse.operators.base import replica_slot, stateless_seed
from tfinverse.utils.registry import Registry

__all__ = [
    "NoiseModel",
    "GaussianNoise",
    "PoissonNoise",
    "SpeckleNoise",
    "register_noise",
    "available_noise",
    "get_noise",
    "noise_class",
    "measure",
]

_NOISE_REGISTRY = Registry("noise model")


def register_noise(name: str) -> Callable[[type], type]:
    """Class decorator that adds a :class:`NoiseModel` subclass to the noise registry.

    Args:
      name: registry name, lower case with underscores (``"gaussian"``).

    Returns:
      The decorator; it sets ``cls.name`` and returns the class unchanged otherwise.

    Raises:
      ValueError: if ``name`` is already registered to another class.
    """
    return _NOISE_REGISTRY.register(name)


def available_noise() -> tuple:
    """Names of all registered noise models, sorted."""
    return _NOISE_REGISTRY.names()


def get_noise(name: str, **params) -> "NoiseModel":
    """Builds a registered noise model by name.

    Args:
      name: one of :func:`available_noise`.
      **params: constructor arguments, e.g. ``sigma=0.1``.

    Returns:
      The noise model.

    Raises:
      KeyError: for an unknown name (the message lists the known ones).
    """
    return _NOISE_REGISTRY.build(name, **params)


def noise_class(name: str) -> type:
    """The noise model class registered under ``name``.

    Raises:
      UnknownNameError: (a ``KeyError``) for an unknown name, listing the known ones.
    """
    return _NOISE_REGISTRY.get_class(name)


# Kept under its old name for callers of this module.
_as_seed = stateless_seed


def _check_level(value: float, what: str) -> float:
    value = float(value)
    if not np.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a finite number >= 0, got {value}")
    return value


class NoiseModel:
    """Base class of noise models ``y -> y + e``.

    Subclasses implement :meth:`_apply` and extend :meth:`get_config`.

    Args:
      clip: if True, the noisy measurement is clipped to ``[0, 1]`` (the valid image range).
    """

    name: str = "noise"

    def __init__(self, clip: bool = False):
        self.clip = bool(clip)

    def __call__(self, y, seed) -> tf.Tensor:
        """Draws noise for the batch ``y`` and returns the noisy measurement.

        Args:
          y: clean measurement, a float tensor of any shape (float32 or float64).
          seed: a Python int, or an integer tensor of shape ``[2]`` (or a scalar), as taken by
            ``tf.random.stateless_*``. Same seed, same noise. A tensor seed can change from
            call to call of a ``tf.function`` without retracing it.

        Returns:
          The noisy measurement, same shape and dtype as ``y``.

        Raises:
          ValueError: if ``y`` is not floating point or the seed is malformed.
        """
        y = tf.convert_to_tensor(y)
        if y.dtype not in (tf.float16, tf.bfloat16, tf.float32, tf.float64):
            raise ValueError(f"{self.name} noise: y must be a float tensor, got dtype {y.dtype.name}")
        noisy = self._apply_for_replica(y, stateless_seed(seed))
        if self.clip:
            noisy = tf.clip_by_value(noisy, tf.constant(0, y.dtype), tf.constant(1, y.dtype))
        return noisy

    def get_config(self) -> dict:
        """Constructor arguments that rebuild this model with :func:`get_noise`."""
        return {"clip": self.clip}

    def _apply_for_replica(self, y: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        """:meth:`_apply`, on this replica's rows of the global batch under a strategy."""
        replica_id, num_replicas = replica_slot()
        rank = y.shape.rank
        if num_replicas == 1 or not rank:
            return self._apply(y, seed)
        # Noise is drawn entry by entry, so zero rows for the other replicas' examples give
        # this replica's rows of the global draw (and keep Poisson rates valid).
        local = tf.shape(y)[0]
        start = tf.cast(replica_id, tf.int32) * local
        padding = [[start, (num_replicas - 1) * local - start]] + [[0, 0]] * (rank - 1)
        return self._apply(tf.pad(y, padding), seed)[start : start + local]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"

    def _apply(self, y: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError


@register_noise("gaussian")
class GaussianNoise(NoiseModel):
    """Additive white Gaussian noise, ``y + sigma * N(0, 1)``.

    ``sigma`` is a standard deviation in units of a ``[0, 1]`` image. Settings of the
    reproduced systems: igan's MNIST denoising uses ``sigma = 1.0`` (input PSNR below
    0.01 dB); IAGAN's noisy experiments use ``10 / 255``; Ambient VAE-GAN's add-noise model
    uses 0.2 on images in ``[-1, 1]``, which is ``0.1`` on ``[0, 1]``; LIR uses ``50 / 255``
    with clipping.

    Args:
      sigma: noise standard deviation, ``>= 0``.
      clip: clip the result to ``[0, 1]``.

    Raises:
      ValueError: for a negative or non-finite ``sigma``.
    """

    def __init__(self, sigma: float = 0.1, clip: bool = False):
        super().__init__(clip=clip)
        self.sigma = _check_level(sigma, "sigma")

    def _apply(self, y, seed):
        noise = tf.random.stateless_normal(tf.shape(y), seed, dtype=y.dtype)
        return y + tf.constant(self.sigma, y.dtype) * noise

    def get_config(self) -> dict:
        return {"sigma": self.sigma, **super().get_config()}


@register_noise("poisson")
class PoissonNoise(NoiseModel):
    """Shot noise: ``Poisson(peak * y) / peak``.

    Negative entries are clipped to zero first (a Poisson rate cannot be negative). The
    result has mean ``y`` and variance ``y / peak``, so a larger ``peak`` (photon count of a
    white pixel) means less noise. LIR draws Poisson noise with scikit-image's
    ``random_noise(mode="poisson")``, which picks the peak from the data: the number of
    distinct levels rounded up to a power of two, i.e. 256 for a typical 8-bit photograph.
    Here the peak is an explicit parameter (default 256) so the noise level does not depend
    on the image content; set ``clip=True`` to also reproduce scikit-image's default clipping.

    Args:
      peak: intensity scale, ``> 0``.
      clip: clip the result to ``[0, 1]``.

    Raises:
      ValueError: for a non-positive or non-finite ``peak``.
    """

    def __init__(self, peak: float = 256.0, clip: bool = False):
        super().__init__(clip=clip)
        peak = float(peak)
        if not np.isfinite(peak) or peak <= 0:
            raise ValueError(f"peak must be a finite number > 0, got {peak}")
        self.peak = peak

    def _apply(self, y, seed):
        peak = tf.constant(self.peak, y.dtype)
        rate = peak * tf.maximum(y, tf.zeros_like(y))
        counts = tf.random.stateless_poisson(tf.shape(y), seed, lam=rate, dtype=y.dtype)
        return counts / peak

    def get_config(self) -> dict:
        return {"peak": self.peak, **super().get_config()}


@register_noise("speckle")
class SpeckleNoise(NoiseModel):
    """Multiplicative noise, ``y + y * N(0, sigma^2)``, as scikit-image's ``"speckle"`` mode.

    The default ``sigma = 0.1`` matches scikit-image's default variance of 0.01.

    Args:
      sigma: standard deviation of the multiplicative factor, ``>= 0``.
      clip: clip the result to ``[0, 1]``.

    Raises:
      ValueError: for a negative or non-finite ``sigma``.
    """

    def __init__(self, sigma: float = 0.1, clip: bool = False):
        super().__init__(clip=clip)
        self.sigma = _check_level(sigma, "sigma")

    def _apply(self, y, seed):
        factor = tf.random.stateless_normal(tf.shape(y), seed, dtype=y.dtype)
        return y + y * (tf.constant(self.sigma, y.dtype) * factor)

    def get_config(self) -> dict:
        return {"sigma": self.sigma, **super().get_config()}


def measure(operator, x, noise=None, seed=None) -> tf.Tensor:
    """Simulates a measurement ``y = noise(A x)``.

    Args:
      operator: a :class:`~tfinverse.operators.base.LinearOperator` (or any callable on
        ``x``).
      x: clean batch in the operator's domain.
      noise: a :class:`NoiseModel`, the name of a registered one (built with its default
        parameters), or None for a noiseless measurement.
      seed: noise seed (Python int or integer tensor of shape ``[2]``); required when
        ``noise`` is given.

    Returns:
      The (noisy) measurement.

    Raises:
      ValueError: if ``noise`` is given without a ``seed``, or is neither a model nor a name.
    """
    y = operator(x)
    if noise is None:
        return y
    if isinstance(noise, str):
        noise = get_noise(noise)
    if not isinstance(noise, NoiseModel):
        raise ValueError(f"noise must be a NoiseModel, a registered name or None, got {type(noise).__name__}")
    if seed is None:
        raise ValueError("measure: a noisy measurement needs an explicit seed=")
    return noise(y, seed)
