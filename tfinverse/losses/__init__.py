"""Every loss of tfinverse, defined once.

=================  ==========================================================================
module             contents
=================  ==========================================================================
``adversarial``    cross-entropy GAN losses from logits (minimax / non-saturating, label
                   values), LSGAN, Wasserstein critic / generator, weight clipping, WGAN-GP
                   gradient penalty, PGGAN's drift term and critic loss
``began``          BEGAN's auto-encoder L1, D / G losses with ``k_t``, ``k`` update,
                   convergence measure
``vae``            KL of a diagonal Gaussian to N(0, I), Gaussian (negative) log-likelihood
``features``       feature matching, perceptual loss with an optional backbone
``measurement``    data fit ``||A x - y||^2``, igan's paired L1 loss
=================  ==========================================================================

The trainers and models (:mod:`tfinverse.models.pggan`, :mod:`tfinverse.models.began`,
:mod:`tfinverse.training.igan`, :mod:`tfinverse.training.dcgan_trainer`) call these; their
older names remain as aliases.
"""

from tfinverse.losses.adversarial import (
    clip_weights,
    cross_entropy_discriminator_loss,
    drift_penalty,
    gradient_penalty,
    least_squares_discriminator_loss,
    least_squares_generator_loss,
    minimax_generator_loss,
    non_saturating_generator_loss,
    sigmoid_cross_entropy,
    wasserstein_critic_loss,
    wasserstein_generator_loss,
    wgan_gp_critic_loss,
)
from tfinverse.losses.began import (
    BEGAN_GAMMA,
    BEGAN_LAMBDA_K,
    began_autoencoder_loss,
    began_convergence_measure,
    began_losses,
    began_update_k,
)
from tfinverse.losses.features import BackboneMissingError, PerceptualLoss, feature_matching_loss, perceptual_loss
from tfinverse.losses.measurement import PAIRED_LOSS_WEIGHT, data_fit_loss, measurement_loss, paired_loss
from tfinverse.losses.vae import gaussian_kl_divergence, gaussian_log_likelihood, gaussian_negative_log_likelihood

__all__ = [
    # adversarial
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
    # BEGAN
    "BEGAN_GAMMA",
    "BEGAN_LAMBDA_K",
    "began_autoencoder_loss",
    "began_losses",
    "began_update_k",
    "began_convergence_measure",
    # VAE
    "gaussian_kl_divergence",
    "gaussian_log_likelihood",
    "gaussian_negative_log_likelihood",
    # features
    "feature_matching_loss",
    "PerceptualLoss",
    "perceptual_loss",
    "BackboneMissingError",
    # measurement
    "PAIRED_LOSS_WEIGHT",
    "data_fit_loss",
    "measurement_loss",
    "paired_loss",
]
