"""Optimizers the originals used that Keras does not have as they were.

* :class:`TF1RMSprop`: TF1's ``RMSPropOptimizer`` (igan, Ambient VAE-GAN).
"""

from __future__ import annotations

import keras
import tensorflow as tf

__all__ = ["TF1RMSprop"]


class TF1RMSprop(keras.optimizers.RMSprop):
    """RMSProp as ``tf.compat.v1.train.RMSPropOptimizer`` ran it: the mean-square accumulator
    starts at one, not zero (decay 0.9, no momentum; give ``epsilon=1e-10`` for TF1's default).
    The update is otherwise Keras's, which is TF1's: ``v -= lr g / sqrt(ms + eps)``."""

    def build(self, var_list):
        if self.built:
            return
        super().build(var_list)
        for velocity in self._velocities:
            velocity.assign(tf.ones(velocity.shape, velocity.dtype))
