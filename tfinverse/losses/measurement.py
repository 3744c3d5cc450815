"""Measurement losses: the data fit ``||A x - y||^2`` and igan's paired (supervised) L1 term."""

from __future__ import annotations

from typing import Callable

import tensorflow as tf

__all__ = [
    "PAIRED_LOSS_WEIGHT",
    "data_fit_loss",
    "measurement_loss",
    "paired_loss",
]

#: igan's weight of the paired loss (1000 in the original).
PAIRED_LOSS_WEIGHT = 1000.0

_DATA_FIT_REDUCTIONS = ("sum", "mean", "per_example_sum", "per_example_mean")


def _squared_magnitude(residual: tf.Tensor) -> tf.Tensor:
    # |r|^2, also for complex measurements (tf.square of a complex number is r^2, not |r|^2).
    if residual.dtype.is_complex:
        return tf.square(tf.math.real(residual)) + tf.square(tf.math.imag(residual))
    return tf.square(residual)


def data_fit_loss(predicted, measurements, reduction: str = "sum") -> tf.Tensor:
    """The data fit ``||A x - y||^2`` from predicted measurements ``A x`` and measurements ``y``.

    Args:
      predicted: ``A x``, ``[batch, ...]`` (real or complex).
      measurements: ``y``, same shape.
      reduction: ``"sum"`` (the squared norm of the whole batch's residual), ``"mean"`` (its
        mean over all elements), ``"per_example_sum"`` (``[batch]``: each example's
        ``||A x_i - y_i||^2``) or ``"per_example_mean"`` (``[batch]``: the mean over each
        example's elements).

    Returns:
      float32 scalar, or ``[batch]`` for the per-example reductions.

    Raises:
      ValueError: for an unknown reduction.
    """
    if reduction not in _DATA_FIT_REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, _DATA_FIT_REDUCTIONS))}, got {reduction!r}")
    predicted = tf.convert_to_tensor(predicted)
    measurements = tf.cast(measurements, predicted.dtype)
    squared = tf.cast(_squared_magnitude(predicted - measurements), tf.float32)
    if reduction == "sum":
        return tf.reduce_sum(squared)
    if reduction == "mean":
        return tf.reduce_mean(squared)
    axes = list(range(1, squared.shape.rank))
    if reduction == "per_example_sum":
        return tf.reduce_sum(squared, axis=axes)
    return tf.reduce_mean(squared, axis=axes)


def measurement_loss(operator: Callable, x, measurements, reduction: str = "sum") -> tf.Tensor:
    """``||A x - y||^2`` with the forward operator applied here: ``data_fit_loss(A(x), y)``.

    Args:
      operator: callable ``A`` (e.g. a :mod:`tfinverse.operators` operator); ``x`` is cast to
        its ``dtype`` when it has one.
      x: the estimate ``[batch, ...]``.
      measurements: ``y``.
      reduction: see :func:`data_fit_loss`.

    Returns:
      float32 scalar, or ``[batch]``.
    """
    dtype = getattr(operator, "dtype", None)
    x = tf.convert_to_tensor(x)
    if dtype is not None:
        x = tf.cast(x, dtype)
    return data_fit_loss(operator(x), measurements, reduction)


def paired_loss(x_gen, x1, y, weight: float = PAIRED_LOSS_WEIGHT, min_over_permutations: bool = False) -> tf.Tensor:
    """igan's optional supervised term ``weight * mean|X_gen - X1|``.

    With ``min_over_permutations`` (MNIST + MNIST unmixing, where either digit may be called
    the clean one) it is ``min(weight mean|X_gen - X1|, weight mean|X_gen - (Y - X1)|)``, the
    minimum taken once over the batch means, as in the original.

    Args:
      x_gen: the clean estimate.
      x1: the clean image paired with ``y``.
      y: the observation (used for the other permutation).
      weight: the factor (1000 in the original).
      min_over_permutations: take the smaller of the two assignments.

    Returns:
      float32 scalar.
    """
    x_gen = tf.cast(x_gen, tf.float32)
    x1 = tf.cast(x1, tf.float32)
    loss = weight * tf.reduce_mean(tf.abs(x_gen - x1))
    if min_over_permutations:
        other = weight * tf.reduce_mean(tf.abs(x_gen - (tf.cast(y, tf.float32) - x1)))
        loss = tf.minimum(loss, other)
    return loss
