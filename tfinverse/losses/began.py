"""BEGAN's equilibrium losses (Berthelot et al. 2017): auto-encoder L1, ``k_t`` control, convergence.

The discriminator is an auto-encoder; its reconstruction error is the "energy"::

    L(v)     = |v - D(v)|                          (L1, eta = 1)
    L_real   = L(x),  L_fake = L(G(z))
    L_D      = L_real - k_t L_fake,   L_G = L_fake
    k_{t+1}  = clip(k_t + lambda_k (gamma L_real - L_fake), 0, 1)
    M_global = L_real + |gamma L_real - L_fake|

The paper does not say how the pixel-wise L1 is reduced; the mean over pixels and batch is
the default (``reduction="mean"``), the sum is available.
"""

from __future__ import annotations

from typing import Dict

import tensorflow as tf

from tfinverse.losses._reduction import as_float32

__all__ = [
    "BEGAN_GAMMA",
    "BEGAN_LAMBDA_K",
    "began_autoencoder_loss",
    "began_losses",
    "began_update_k",
    "began_convergence_measure",
]

#: Diversity ratio ``gamma = E[L_fake] / E[L_real]`` targeted by the control (0.5).
BEGAN_GAMMA = 0.5
#: Proportional gain ``lambda_k`` of the ``k_t`` update (1e-3).
BEGAN_LAMBDA_K = 1e-3


def began_autoencoder_loss(images, reconstructions, reduction: str = "mean") -> tf.Tensor:
    """BEGAN's auto-encoder loss ``|v - D(v)|`` (L1, eta = 1).

    Args:
      images: ``v``, ``[n, H, W, C]``.
      reconstructions: ``D(v)``, same shape.
      reduction: ``"mean"`` (over all elements) or ``"sum"``.

    Returns:
      float32 scalar.

    Raises:
      ValueError: for different static shapes or an unknown reduction.
    """
    images = as_float32(images)
    reconstructions = as_float32(reconstructions)
    if images.shape.is_fully_defined() and reconstructions.shape.is_fully_defined():
        if images.shape != reconstructions.shape:
            raise ValueError(
                f"images and reconstructions must have the same shape, got {images.shape} and "
                f"{reconstructions.shape}"
            )
    absolute = tf.abs(images - reconstructions)
    if reduction == "mean":
        return tf.reduce_mean(absolute)
    if reduction == "sum":
        return tf.reduce_sum(absolute)
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def began_losses(
    real_images,
    real_reconstructions,
    fake_images,
    fake_reconstructions,
    k_t,
    reduction: str = "mean",
) -> Dict[str, tf.Tensor]:
    """The BEGAN losses of one step.

    Args:
      real_images: ``x``.
      real_reconstructions: ``D(x)``.
      fake_images: ``G(z)``.
      fake_reconstructions: ``D(G(z))``.
      k_t: current control variable ``k_t`` (float or scalar tensor / variable).
      reduction: see :func:`began_autoencoder_loss`.

    Returns:
      Dict of float32 scalars ``loss_real`` (``L_real``), ``loss_fake`` (``L_fake``),
      ``discriminator_loss`` (``L_real - k_t L_fake``) and ``generator_loss`` (``L_fake``).
    """
    loss_real = began_autoencoder_loss(real_images, real_reconstructions, reduction)
    loss_fake = began_autoencoder_loss(fake_images, fake_reconstructions, reduction)
    k_t = tf.cast(k_t, tf.float32)
    return {
        "loss_real": loss_real,
        "loss_fake": loss_fake,
        "discriminator_loss": loss_real - k_t * loss_fake,
        "generator_loss": loss_fake,
    }


def began_update_k(
    k_t, loss_real, loss_fake, gamma: float = BEGAN_GAMMA, lambda_k: float = BEGAN_LAMBDA_K
) -> tf.Tensor:
    """Proportional control ``k_{t+1} = clip(k_t + lambda_k (gamma L_real - L_fake), 0, 1)``.

    ``k_t`` grows while the generator's samples are reconstructed too well (``L_fake <
    gamma L_real``), which makes D push harder on them.

    Args:
      k_t: current ``k``.
      loss_real: ``L_real``.
      loss_fake: ``L_fake`` (pass values without gradients; the update is not trained).
      gamma: diversity ratio (0.5).
      lambda_k: proportional gain (1e-3).

    Returns:
      float32 scalar ``k_{t+1}``.
    """
    k_t, loss_real, loss_fake = (tf.cast(v, tf.float32) for v in (k_t, loss_real, loss_fake))
    return tf.clip_by_value(k_t + lambda_k * (gamma * loss_real - loss_fake), 0.0, 1.0)


def began_convergence_measure(loss_real, loss_fake, gamma: float = BEGAN_GAMMA) -> tf.Tensor:
    """BEGAN's global convergence measure ``M_global = L_real + |gamma L_real - L_fake|``.

    Args:
      loss_real: ``L_real``.
      loss_fake: ``L_fake``.
      gamma: diversity ratio.

    Returns:
      float32 scalar (lower is better).
    """
    loss_real, loss_fake = tf.cast(loss_real, tf.float32), tf.cast(loss_fake, tf.float32)
    return loss_real + tf.abs(gamma * loss_real - loss_fake)
