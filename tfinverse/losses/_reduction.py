"""The ``reduction`` argument shared by the per-example losses (private helper)."""

from __future__ import annotations

import tensorflow as tf

REDUCTIONS = ("mean", "sum", "none")


def as_float32(values) -> tf.Tensor:
    """``values`` as a float32 tensor; 16-bit activations of mixed precision are widened first.

    Losses are computed in float32 whatever the compute dtype (``tf.convert_to_tensor`` with a
    dtype refuses a bfloat16 tensor instead of casting it).
    """
    return tf.cast(tf.convert_to_tensor(values), tf.float32)


def check_reduction(reduction: str) -> str:
    """Returns ``reduction`` after checking it is one of :data:`REDUCTIONS`.

    Raises:
      ValueError: for another value.
    """
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}, got {reduction!r}")
    return reduction


def reduce_examples(per_example: tf.Tensor, reduction: str) -> tf.Tensor:
    """Reduces a ``[batch]`` vector of per-example values.

    Args:
      per_example: float ``[batch]``.
      reduction: ``"mean"`` over the batch, ``"sum"`` over the batch, or ``"none"``
        (the vector itself).

    Returns:
      A scalar, or ``per_example`` for ``"none"``.
    """
    check_reduction(reduction)
    if reduction == "mean":
        return tf.reduce_mean(per_example)
    if reduction == "sum":
        return tf.reduce_sum(per_example)
    return per_example


def sum_over_example_axes(values: tf.Tensor) -> tf.Tensor:
    """Sums every axis but the first (the batch axis): ``[batch, ...] -> [batch]``."""
    rank = values.shape.rank
    if rank is None:
        return tf.reduce_sum(tf.reshape(values, [tf.shape(values)[0], -1]), axis=1)
    if rank < 1:
        raise ValueError("per-example losses need a batch axis; got a scalar")
    if rank == 1:
        return values
    return tf.reduce_sum(values, axis=list(range(1, rank)))
