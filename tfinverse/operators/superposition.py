"""Superposition of images: igan's mixing model ``y = w_1 x_1 + w_2 x_2 (+ ...)``.

Domain layout. The operator acts on all sources at once, stacked on the channel axis
source by source: for ``n`` sources of shape ``(H, W, C)`` the input has
``in_shape = (H, W, n * C)``, channels ``[i * C, (i + 1) * C)`` holding source ``i``, and
the measurement (the mixture) has ``out_shape = (H, W, C)``. :func:`stack_sources` and
:func:`split_sources` convert between a list of images and that layout.

Since ``A A^T = sum_i w_i^2 I``, the adjoint copies ``w_i y`` into slot ``i`` and the
pseudo-inverse is ``A^T y / sum_i w_i^2``. igan's unmixing tasks (MNIST + CIFAR-10,
MNIST + MNIST) add the two images with unit weights, the default here.
"""

from __future__ import annotations

from typing import List, Sequence

import numpy as np
import tensorflow as tf

from tfinverse.operators.base import LinearOperator, register

__all__ = ["Superposition", "stack_sources", "split_sources"]


def stack_sources(sources: Sequence) -> tf.Tensor:
    """Stacks source images ``[batch, H, W, C]`` on the channel axis (the operator's domain).

    Args:
      sources: a non-empty sequence of tensors of one shape and dtype.

    Returns:
      ``[batch, H, W, n * C]``, source ``i`` in channels ``[i * C, (i + 1) * C)``.

    Raises:
      ValueError: for an empty sequence or sources of different shapes or dtypes.
    """
    sources = [tf.convert_to_tensor(s) for s in sources]
    if not sources:
        raise ValueError("stack_sources needs at least one source image")
    first = sources[0]
    if first.shape.rank != 4:
        raise ValueError(f"sources must have shape [batch, H, W, C], got {first.shape}")
    for s in sources[1:]:
        if s.dtype != first.dtype or not s.shape.is_compatible_with(first.shape):
            raise ValueError(
                f"all sources must have the shape {first.shape} and dtype {first.dtype.name} of the first, "
                f"got {s.shape} {s.dtype.name}"
            )
    return tf.concat(sources, axis=-1)


def split_sources(x, n_sources: int = 2) -> List[tf.Tensor]:
    """Splits a stacked batch ``[batch, H, W, n * C]`` back into ``n`` sources ``[batch, H, W, C]``.

    Args:
      x: stacked sources, as made by :func:`stack_sources`.
      n_sources: number of sources ``n``.

    Returns:
      A list of ``n`` tensors.

    Raises:
      ValueError: if ``x`` is not rank 4 or its channels are not a multiple of ``n``.
    """
    x = tf.convert_to_tensor(x)
    if isinstance(n_sources, bool) or int(n_sources) != n_sources or n_sources < 1:
        raise ValueError(f"n_sources must be a positive integer, got {n_sources!r}")
    n_sources = int(n_sources)
    channels = x.shape[-1] if x.shape.rank == 4 else None
    if channels is None or channels % n_sources != 0:
        raise ValueError(
            f"x must have shape [batch, H, W, n_sources * C] with n_sources = {n_sources}, got {x.shape}"
        )
    return tf.split(x, n_sources, axis=-1)


@register("superposition")
class Superposition(LinearOperator):
    """Weighted sum of ``n`` images stacked on the channel axis (see the module docstring).

    Args:
      image_shape: ``(height, width, channels)`` of ONE source, which is also the shape of
        the mixture.
      dtype: ``tf.float32`` or ``tf.float64``.
      weights: one weight per source; default ``(1.0, 1.0)``.
      **kwargs: further :class:`~tfinverse.operators.base.LinearOperator` arguments
        (``seed`` is accepted and ignored).

    Raises:
      ValueError: for empty, non-finite or all-zero weights.
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (32, 32, 3),
        dtype=tf.float32,
        weights: Sequence[float] = (1.0, 1.0),
        **kwargs,
    ):
        super().__init__(image_shape, dtype, **kwargs)
        weights = np.asarray(weights, dtype=np.float64).reshape(-1)
        if weights.size == 0 or not np.all(np.isfinite(weights)) or not np.any(weights):
            raise ValueError(f"weights must be a non-empty sequence of finite numbers, not all zero, got {weights}")
        self.weights = tuple(float(w) for w in weights)
        self.n_sources = len(self.weights)
        height, width, channels = self.image_shape
        self.in_shape = (height, width, self.n_sources * channels)
        self.out_shape = self.image_shape
        self._weights = tf.constant(weights, self.dtype)
        self._gram = float(np.sum(weights**2))

    def split(self, x) -> List[tf.Tensor]:
        """Splits a batch of this operator's domain into its ``n_sources`` images."""
        return split_sources(x, self.n_sources)

    def _forward(self, x):
        height, width, channels = self.image_shape
        per_source = tf.reshape(x, [-1, height, width, self.n_sources, channels])
        return tf.reduce_sum(per_source * self._weights[:, None], axis=3)

    def _adjoint(self, y):
        height, width, channels = self.image_shape
        copies = y[:, :, :, None, :] * self._weights[:, None]
        return tf.reshape(copies, [-1, height, width, self.n_sources * channels])

    def _pinv(self, y):
        return self._adjoint(y) / tf.constant(self._gram, self.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "weights": self.weights}
