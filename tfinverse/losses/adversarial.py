"""Adversarial losses: cross-entropy GANs, least squares, Wasserstein, WGAN-GP and PGGAN's drift.

Every function takes the discriminator's raw outputs (logits for the cross-entropy losses,
unbounded scores for the others), casts them to float32 and returns a float32 scalar: a mean
over all elements (so ``[n, 1]`` and ``[n]`` scores give the same value). Conventions::

    CE(l, t)  = mean[ -t log sigmoid(l) - (1 - t) log(1 - sigmoid(l)) ]     (from logits)

    cross-entropy D:     CE(D(x), real_label) + CE(D(G(z)), fake_label)
    minimax G:           -CE(D(G(z)), fake_label)     (saturating; Goodfellow et al. 2014)
    non-saturating G:    CE(D(G(z)), target)
    least squares D:     w [ mean (D(x) - a)^2 + mean (D(G(z)) - b)^2 ]     (LSGAN; w = 1/2)
    least squares G:     w mean (D(G(z)) - c)^2
    Wasserstein critic:  mean D(G(z)) - mean D(x)         Wasserstein G: -mean D(G(z))
    WGAN-GP penalty:     mean (||grad D(x_hat)||_2 - t)^2 / t^2,  x_hat = x + u (G(z) - x)
    PGGAN drift:         mean D(x)^2

Label values other than 1 / 0 are one-sided label smoothing (Ambient VAE-GAN uses real 0.75,
fake 0 and a generator target of 0.375). BEGAN's equilibrium losses are in
:mod:`tfinverse.losses.began`.
"""

from __future__ import annotations

from typing import Iterable, Optional

import tensorflow as tf

from tfinverse.losses._reduction import as_float32

__all__ = [
    "sigmoid_cross_entropy",
    "cross_entropy_discriminator_loss",
    "minimax_generator_loss",
    "non_saturating_generator_loss",
    "least_squares_discriminator_loss",
    "least_squares_generator_loss",
    "wasserstein_critic_loss",
    "wasserstein_generator_loss",
    "clip_weights",
    "gradient_penalty",
    "drift_penalty",
    "wgan_gp_critic_loss",
]


# ----------------------------------------------------------------------------- cross-entropy
def sigmoid_cross_entropy(logits, label: float) -> tf.Tensor:
    """Mean sigmoid cross-entropy of logits against one constant label.

    Args:
      logits: discriminator outputs before the sigmoid, any shape.
      label: the target probability for every element (1 real, 0 fake, or a smoothed value).

    Returns:
      float32 scalar ``mean(-label log sigmoid(l) - (1 - label) log(1 - sigmoid(l)))``.
    """
    logits = tf.cast(logits, tf.float32)
    # TF's fused op is the numerically stable form max(l, 0) - l t + log(1 + exp(-|l|)).
    labels = tf.fill(tf.shape(logits), label)
    return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits))


def cross_entropy_discriminator_loss(
    real_logits, fake_logits, real_label: float = 1.0, fake_label: float = 0.0
) -> tf.Tensor:
    """The GAN discriminator loss ``CE(D(x), real_label) + CE(D(G(z)), fake_label)``.

    The same for the minimax and the non-saturating game (they differ only in G's loss).

    Args:
      real_logits: ``D(x)``, any shape.
      fake_logits: ``D(G(z))``, any shape.
      real_label: target of real samples (1; 0.75 in Ambient VAE-GAN).
      fake_label: target of generated samples (0).

    Returns:
      float32 scalar (each term is a mean over its own elements).
    """
    return sigmoid_cross_entropy(real_logits, real_label) + sigmoid_cross_entropy(fake_logits, fake_label)


def minimax_generator_loss(fake_logits, fake_label: float = 0.0) -> tf.Tensor:
    """The saturating generator loss of the original minimax game, ``-CE(D(G(z)), fake_label)``.

    With ``fake_label = 0`` this is ``mean log(1 - sigmoid(D(G(z))))``, whose gradient
    vanishes when D confidently rejects the samples (hence "saturating").

    Args:
      fake_logits: ``D(G(z))``.
      fake_label: the discriminator's target for fakes that G pushes away from (0).

    Returns:
      float32 scalar to minimise.
    """
    return -sigmoid_cross_entropy(fake_logits, fake_label)


def non_saturating_generator_loss(fake_logits, target: float = 1.0) -> tf.Tensor:
    """The non-saturating generator loss ``CE(D(G(z)), target)``.

    Args:
      fake_logits: ``D(G(z))``.
      target: the label G wants its samples to get (1; 0.375 in Ambient VAE-GAN).

    Returns:
      float32 scalar.
    """
    return sigmoid_cross_entropy(fake_logits, target)


# ----------------------------------------------------------------------------- least squares
def least_squares_discriminator_loss(
    real_scores, fake_scores, real_target: float = 1.0, fake_target: float = 0.0, weight: float = 0.5
) -> tf.Tensor:
    """LSGAN discriminator loss ``weight [mean (D(x) - a)^2 + mean (D(G(z)) - b)^2]``.

    Args:
      real_scores: ``D(x)`` (no sigmoid).
      fake_scores: ``D(G(z))``.
      real_target: ``a`` (1).
      fake_target: ``b`` (0).
      weight: the factor (1/2, as in Mao et al. 2017 and igan).

    Returns:
      float32 scalar.
    """
    real = tf.cast(real_scores, tf.float32)
    fake = tf.cast(fake_scores, tf.float32)
    return weight * (tf.reduce_mean(tf.square(real - real_target)) + tf.reduce_mean(tf.square(fake - fake_target)))


def least_squares_generator_loss(fake_scores, target: float = 1.0, weight: float = 0.5) -> tf.Tensor:
    """LSGAN generator loss ``weight mean (D(G(z)) - c)^2``.

    Args:
      fake_scores: ``D(G(z))``.
      target: ``c`` (1).
      weight: the factor (1/2).

    Returns:
      float32 scalar.
    """
    fake = tf.cast(fake_scores, tf.float32)
    return weight * tf.reduce_mean(tf.square(fake - target))


# ----------------------------------------------------------------------------- Wasserstein
def wasserstein_critic_loss(real_scores, fake_scores) -> tf.Tensor:
    """WGAN critic loss ``mean D(G(z)) - mean D(x)`` (no penalty, no clipping).

    Its negative estimates the Wasserstein-1 distance when the critic is 1-Lipschitz.

    Args:
      real_scores: ``D(x)``.
      fake_scores: ``D(G(z))``.

    Returns:
      float32 scalar.
    """
    fake_mean = tf.reduce_mean(tf.cast(fake_scores, tf.float32))
    return fake_mean - tf.reduce_mean(tf.cast(real_scores, tf.float32))


def wasserstein_generator_loss(fake_scores) -> tf.Tensor:
    """WGAN generator loss ``-mean D(G(z))``.

    Args:
      fake_scores: ``D(G(z))``.

    Returns:
      float32 scalar.
    """
    return -tf.reduce_mean(tf.cast(fake_scores, tf.float32))


def clip_weights(variables: Iterable[tf.Variable], clip_value: float = 0.01) -> None:
    """Clips every variable to ``[-clip_value, clip_value]`` in place (WGAN's crude Lipschitz bound).

    Call it after every critic update (Arjovsky et al. 2017 use 0.01).

    Args:
      variables: the critic's trainable variables.
      clip_value: the bound ``c > 0``.

    Raises:
      ValueError: if ``clip_value <= 0``.
    """
    if not clip_value > 0:
        raise ValueError(f"clip_value must be positive, got {clip_value}")
    for variable in variables:
        variable.assign(tf.clip_by_value(variable, -clip_value, clip_value))


def gradient_penalty(
    critic,
    real_images,
    fake_images,
    seed=None,
    interpolation_weights: Optional[tf.Tensor] = None,
    target: float = 1.0,
) -> tf.Tensor:
    """WGAN-GP penalty ``mean (||grad D(x_hat)||_2 - target)^2 / target^2`` (Gulrajani et al. 2017).

    ``x_hat = real + u (fake - real)`` with one ``u ~ U[0, 1]`` per sample; the gradient norm
    is taken per sample over all its other axes. Dividing by ``target^2`` is PGGAN's
    normalisation (the same as the paper's for ``target = 1``).

    Args:
      critic: callable ``samples -> scores [n, 1]`` (or ``[n]``); the critic must treat the rows
        independently (no batch norm), so the gradient of the summed scores is per sample.
      real_images: ``[n, ...]`` (rank 2 or more).
      fake_images: same shape.
      seed: integer tensor/sequence of shape ``[2]`` for the stateless draw of ``u``.
      interpolation_weights: explicit ``u`` of shape ``[n]`` (overrides ``seed``).
      target: target gradient norm (1).

    Returns:
      float32 scalar, differentiable w.r.t. the critic's weights.

    Raises:
      ValueError: if neither ``seed`` nor ``interpolation_weights`` is given, or the sample
        shapes differ.
    """
    real_images = as_float32(real_images)
    fake_images = as_float32(fake_images)
    if real_images.shape.is_fully_defined() and fake_images.shape.is_fully_defined():
        if real_images.shape != fake_images.shape:
            raise ValueError(
                "real and fake images must have the same shape, got "
                f"{real_images.shape} and {fake_images.shape}"
            )
    rank = real_images.shape.rank
    if rank is None or rank < 2:
        raise ValueError(f"gradient_penalty needs [batch, ...] samples of known rank >= 2, got {real_images.shape}")
    batch = tf.shape(real_images)[0]
    if interpolation_weights is None:
        if seed is None:
            raise ValueError("gradient_penalty needs a seed (shape [2]) or interpolation_weights")
        weights = tf.random.stateless_uniform([batch], tf.convert_to_tensor(seed), dtype=tf.float32)
    else:
        weights = tf.reshape(tf.cast(interpolation_weights, tf.float32), [-1])
    weights = tf.reshape(weights, [-1] + [1] * (rank - 1))
    interpolates = real_images + weights * (fake_images - real_images)
    with tf.GradientTape() as tape:
        tape.watch(interpolates)
        total_score = tf.reduce_sum(critic(interpolates))  # rows are independent samples
    gradients = tape.gradient(total_score, interpolates)
    # The 1e-12 keeps the norm's gradient finite where the critic is locally flat.
    norms = tf.sqrt(tf.reduce_sum(tf.square(gradients), axis=list(range(1, rank))) + 1e-12)
    return tf.reduce_mean(tf.square(norms - target)) / (target * target)


def drift_penalty(real_scores) -> tf.Tensor:
    """PGGAN's drift term ``mean D(x)^2`` that keeps critic scores near zero (Karras et al. 2018).

    Args:
      real_scores: ``D(x)``.

    Returns:
      float32 scalar.
    """
    return tf.reduce_mean(tf.square(tf.cast(real_scores, tf.float32)))


def wgan_gp_critic_loss(
    real_scores, fake_scores, penalty, gp_weight: float = 10.0, drift_weight: float = 1e-3
) -> tf.Tensor:
    """PGGAN's critic loss ``mean D(G(z)) - mean D(x) + gp_weight GP + drift_weight mean D(x)^2``.

    Args:
      real_scores: ``D(x)``.
      fake_scores: ``D(G(z))``.
      penalty: :func:`gradient_penalty`.
      gp_weight: ``lambda`` (10).
      drift_weight: ``epsilon_drift`` (1e-3; 0 gives plain WGAN-GP).

    Returns:
      float32 scalar.
    """
    return (
        wasserstein_critic_loss(real_scores, fake_scores)
        + gp_weight * tf.cast(penalty, tf.float32)
        + drift_weight * drift_penalty(real_scores)
    )
