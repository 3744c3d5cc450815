"""The identity operator: the forward model of pure denoising (``y = x + e``)."""

from __future__ import annotations

import tensorflow as tf

from tfinverse.operators.base import LinearOperator, register

__all__ = ["Identity"]


@register("identity")
class Identity(LinearOperator):
    """``A = I``; with a noise model it is the denoising problem (igan, LVR, LIR).

    Args:
      image_shape: ``(height, width, channels)``.
      dtype: ``tf.float32`` or ``tf.float64``.
    """

    def __init__(self, image_shape=(32, 32, 3), dtype=tf.float32, **kwargs):
        super().__init__(image_shape, dtype, **kwargs)

    def _forward(self, x):
        return tf.identity(x)

    def _adjoint(self, y):
        return tf.identity(y)

    def _pinv(self, y):
        return tf.identity(y)
