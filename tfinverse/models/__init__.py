"""The networks of the five systems: the generative priors behind one interface (DCGAN for
LVR, BEGAN and PGGAN for IAGAN), igan's estimator and discriminators, Ambient VAE-GAN's
encoder, decoder and discriminator, and LIR's encoders, decoders and discriminators
(``tfinverse.models.lir``).

Every prior is a :class:`Generator`: ``g(z)`` maps ``[n, latent_dim]`` latents to float32
NHWC images in ``[0, 1]``; ``g.sample_latent(n, seed)`` draws from its prior;
``g.trainable_variables`` are its weights; ``g.copy()`` is an independent deep copy.
"""

from tfinverse.models.ambient import (
    AmbientBatchNormalization,
    AmbientConfig,
    AmbientGenerator,
    AmbientLearningRate,
    AmbientNetworks,
    build_ambient_decoder,
    build_ambient_discriminator,
    build_ambient_encoder,
    from_network_range,
    set_batch_statistics,
    to_network_range,
)
from tfinverse.models.began import (
    BEGAN_GAMMA,
    BEGAN_LAMBDA_K,
    BEGANGenerator,
    BEGANState,
    autoencoder_loss,
    began_losses,
    began_num_repeats,
    build_began_decoder,
    build_began_discriminator,
    build_began_encoder,
    convergence_measure,
    update_k,
)
from tfinverse.models.dcgan import (
    DCGAN_BN_EPSILON,
    DCGAN_BN_MOMENTUM,
    DCGANGenerator,
    build_dcgan_discriminator,
    build_dcgan_generator,
    dcgan_generator_layout,
    forward_with_batch_statistics,
)
from tfinverse.models.generator import LATENT_DISTRIBUTIONS, Generator, KerasGenerator, sample_latent
from tfinverse.models.igan import (
    IganEstimator,
    build_discriminators_for_task,
    build_estimator_for_task,
    build_igan_discriminator,
    build_igan_estimator,
    export_igan_estimator,
    load_igan_export,
    read_igan_metadata,
)
from tfinverse.models.layers import (
    EqualizedConv2D,
    EqualizedDense,
    FusedBatchNormalization,
    MinibatchStdDev,
    PixelNorm,
    he_constant,
)
from tfinverse.models.pggan import (
    PGGAN_LEAKY_SLOPE,
    PGGANConvBlock,
    PGGANDiscriminatorNetwork,
    PGGANGenerator,
    PGGANGeneratorNetwork,
    downsample_average,
    drift_penalty,
    gradient_penalty,
    pggan_num_filters,
    pggan_num_levels,
    upsample_nearest,
    wgan_discriminator_loss,
    wgan_generator_loss,
    wgan_gp_discriminator_loss,
)

__all__ = [
    # igan
    "IganEstimator",
    "build_igan_estimator",
    "build_igan_discriminator",
    "build_estimator_for_task",
    "build_discriminators_for_task",
    "export_igan_estimator",
    "load_igan_export",
    "read_igan_metadata",
    "FusedBatchNormalization",
    # interface
    "Generator",
    "KerasGenerator",
    "LATENT_DISTRIBUTIONS",
    "sample_latent",
    # shared layers
    "PixelNorm",
    "EqualizedConv2D",
    "EqualizedDense",
    "MinibatchStdDev",
    "he_constant",
    # DCGAN
    "DCGANGenerator",
    "build_dcgan_generator",
    "build_dcgan_discriminator",
    "dcgan_generator_layout",
    "forward_with_batch_statistics",
    "DCGAN_BN_EPSILON",
    "DCGAN_BN_MOMENTUM",
    # BEGAN
    "BEGANGenerator",
    "BEGANState",
    "build_began_decoder",
    "build_began_encoder",
    "build_began_discriminator",
    "began_num_repeats",
    "autoencoder_loss",
    "began_losses",
    "update_k",
    "convergence_measure",
    "BEGAN_GAMMA",
    "BEGAN_LAMBDA_K",
    # PGGAN
    "PGGANGenerator",
    "PGGANGeneratorNetwork",
    "PGGANDiscriminatorNetwork",
    "PGGANConvBlock",
    "pggan_num_levels",
    "pggan_num_filters",
    "upsample_nearest",
    "downsample_average",
    "wgan_generator_loss",
    "wgan_discriminator_loss",
    "drift_penalty",
    "gradient_penalty",
    "wgan_gp_discriminator_loss",
    "PGGAN_LEAKY_SLOPE",
    # Ambient VAE-GAN
    "AmbientConfig",
    "AmbientNetworks",
    "AmbientGenerator",
    "AmbientBatchNormalization",
    "AmbientLearningRate",
    "build_ambient_encoder",
    "build_ambient_decoder",
    "build_ambient_discriminator",
    "set_batch_statistics",
    "to_network_range",
    "from_network_range",
]
