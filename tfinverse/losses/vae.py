"""VAE losses: the KL term of a diagonal Gaussian posterior and a Gaussian reconstruction likelihood.

Shapes and reductions (both functions): the first axis is the batch; a per-example value is
the SUM over every other axis (latent dimensions, or pixels and channels), because the KL
divergence and the log-likelihood of independent coordinates add up; ``reduction`` then takes
the ``"mean"`` over the batch (the default: an unbiased estimate of the expectation over the
data, independent of the batch size), the ``"sum"`` over it, or ``"none"`` (a ``[batch]``
vector). Computations are in float32.
"""

from __future__ import annotations

import math

import tensorflow as tf

from tfinverse.losses._reduction import check_reduction, reduce_examples, sum_over_example_axes

__all__ = [
    "gaussian_kl_divergence",
    "gaussian_log_likelihood",
    "gaussian_negative_log_likelihood",
]

_LOG_2PI = math.log(2.0 * math.pi)


def gaussian_kl_divergence(mean, log_variance, reduction: str = "mean") -> tf.Tensor:
    """``KL(N(mean, diag exp(log_variance)) || N(0, I))`` of each example, reduced over the batch.

    Closed form per example: ``0.5 sum_j (exp(lv_j) + mean_j^2 - 1 - lv_j)``, summed over the
    latent dimensions (every axis but the first).

    Args:
      mean: posterior means ``[batch, latent...]``.
      log_variance: posterior log-variances, same shape (the log keeps the variance positive
        without a constraint).
      reduction: ``"mean"`` over the batch (default), ``"sum"`` or ``"none"`` (``[batch]``).

    Returns:
      float32 scalar, or ``[batch]`` for ``reduction="none"``.

    Raises:
      ValueError: for an unknown reduction or different static shapes.
    """
    check_reduction(reduction)
    mean = tf.cast(mean, tf.float32)
    log_variance = tf.cast(log_variance, tf.float32)
    if mean.shape.is_fully_defined() and log_variance.shape.is_fully_defined() and mean.shape != log_variance.shape:
        raise ValueError(f"mean and log_variance must have the same shape, got {mean.shape} and {log_variance.shape}")
    per_coordinate = 0.5 * (tf.exp(log_variance) + tf.square(mean) - 1.0 - log_variance)
    return reduce_examples(sum_over_example_axes(per_coordinate), reduction)


def gaussian_log_likelihood(
    x,
    mean,
    variance=None,
    log_variance=None,
    reduction: str = "mean",
    include_constant: bool = True,
) -> tf.Tensor:
    """``log N(x; mean, variance)`` with independent coordinates, summed per example.

    Per coordinate: ``-0.5 (log 2 pi + log sigma^2 + (x - mu)^2 / sigma^2)``. With a fixed
    ``variance`` this is, up to constants, ``-||x - mu||^2 / (2 sigma^2)``: a VAE decoder with
    a fixed pixel variance is trained by a scaled squared error.

    Args:
      x: data ``[batch, ...]``.
      mean: the decoder's means, same shape.
      variance: ``sigma^2``: a positive float or a tensor broadcastable to ``x`` (the pixel-wise
        variance). Give this or ``log_variance``; neither means 1.
      log_variance: ``log sigma^2`` as a tensor broadcastable to ``x`` (e.g. a decoder output).
      reduction: ``"mean"`` over the batch (default), ``"sum"`` or ``"none"`` (``[batch]``).
      include_constant: include ``-0.5 log 2 pi`` per coordinate (drop it when only gradients
        matter).

    Returns:
      float32 scalar, or ``[batch]`` for ``reduction="none"``.

    Raises:
      ValueError: if both ``variance`` and ``log_variance`` are given, a float ``variance``
        is not positive, or the reduction is unknown.
    """
    check_reduction(reduction)
    if variance is not None and log_variance is not None:
        raise ValueError("give variance or log_variance, not both")
    x = tf.cast(x, tf.float32)
    mean = tf.cast(mean, tf.float32)
    if log_variance is None:
        if variance is None:
            variance = 1.0
        if isinstance(variance, (int, float)) and not variance > 0:
            raise ValueError(f"variance must be positive, got {variance}")
        variance = tf.cast(variance, tf.float32)
        log_variance = tf.math.log(variance)
        inverse_variance = 1.0 / variance
    else:
        log_variance = tf.cast(log_variance, tf.float32)
        inverse_variance = tf.exp(-log_variance)
    per_coordinate = -0.5 * (log_variance + tf.square(x - mean) * inverse_variance)
    if include_constant:
        per_coordinate = per_coordinate - 0.5 * _LOG_2PI
    # Broadcast first so a scalar variance still counts once per coordinate.
    per_coordinate = tf.broadcast_to(per_coordinate, tf.broadcast_dynamic_shape(tf.shape(per_coordinate), tf.shape(x)))
    per_coordinate = tf.ensure_shape(per_coordinate, x.shape) if x.shape.rank is not None else per_coordinate
    return reduce_examples(sum_over_example_axes(per_coordinate), reduction)


def gaussian_negative_log_likelihood(
    x,
    mean,
    variance=None,
    log_variance=None,
    reduction: str = "mean",
    include_constant: bool = True,
) -> tf.Tensor:
    """``-log N(x; mean, variance)``: the VAE reconstruction loss; see :func:`gaussian_log_likelihood`.

    Args:
      x: data ``[batch, ...]``.
      mean: the decoder's means.
      variance: fixed or pixel-wise ``sigma^2`` (default 1).
      log_variance: ``log sigma^2`` instead of ``variance``.
      reduction: ``"mean"``, ``"sum"`` or ``"none"``.
      include_constant: include ``0.5 log 2 pi`` per coordinate.

    Returns:
      float32 scalar, or ``[batch]`` for ``reduction="none"``.
    """
    return -gaussian_log_likelihood(x, mean, variance, log_variance, reduction, include_constant)
