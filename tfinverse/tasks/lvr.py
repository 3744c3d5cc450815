"""LVR ("Correction by Projection: Denoising Images with GANs"): its settings.

The original's clipping rules, noise variances and precision levels, and the training
constants of the DCGAN that LVR inverts, as the original's code set them. This module imports nothing heavy, so scripts can use it for their flag defaults before
TensorFlow is loaded.
"""

__all__ = [
    "CLIPPING_MODES",
    "ORIGINAL_NOISE_VARIANCES",
    "ORIGINAL_PRECISIONS",
    "DCGAN_LEARNING_RATE",
    "DCGAN_BETA_1",
    "DCGAN_GENERATOR_STEPS",
    "PATH_LENGTH_DECAY",
]

#: The three constraint rules applied after every gradient step.
CLIPPING_MODES = ("stochastic", "projected", "none")

#: Noise variances of the original's noisy runs, on images in ``[-1, 1]``.
ORIGINAL_NOISE_VARIANCES = (1e-3, 5e-3, 1e-2, 5e-2, 1e-1, 5e-1, 1.0)

#: Precision levels of the original's recovery-accuracy experiment.
ORIGINAL_PRECISIONS = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5)

#: Adam learning rate of both networks.
DCGAN_LEARNING_RATE = 2e-4
#: Adam beta_1.
DCGAN_BETA_1 = 0.5
#: Generator updates per discriminator update (the original ran the generator twice).
DCGAN_GENERATOR_STEPS = 2
#: Running-mean decay of the path-length regulariser (StyleGAN2's; not part of LVR).
PATH_LENGTH_DECAY = 0.01
