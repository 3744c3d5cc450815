"""LIR ("Learning Invariant Representation for Unsupervised Image Restoration"): its settings.

Every loss weight, optimiser setting, schedule and noise level of the original
(Wenchao-Du/LIR-for-Unsupervised-IR, configs ``unit_noise2clear-bn.yaml`` and
``unit_noise2self.yaml``), as ``ORIGINALS.md`` section 3 lists them, plus the constants of
tfinverse's offline low-dose CT setup (the original's AAPM-Mayo data is not public). Domain
A is noisy, B clean.

This module imports nothing heavy (no TensorFlow, Keras or scikit-image), so scripts can use
it for flag defaults before TensorFlow loads. The networks are in
:mod:`tfinverse.models.lir`, the data in :mod:`tfinverse.data.unpaired` and
:mod:`tfinverse.data.ct`.
"""

from __future__ import annotations

from typing import Dict, Tuple

__all__ = [
    "CONFIGS",
    "LSGAN_REAL",
    "LSGAN_FAKE",
    "LSGAN_GENERATOR_TARGET",
    "CONTENT_NOISY_TARGET",
    "CONTENT_CLEAN_TARGET",
    "CONTENT_GENERATOR_TARGET",
    "LOSS_WEIGHTS",
    "CODE_NOISE_STD",
    "CONTENT_D_UPDATES",
    "CONTENT_GRAD_CLIP_NORM",
    "CONTENT_LR_FACTOR",
    "LEARNING_RATE",
    "ADAM_BETA_1",
    "ADAM_BETA_2",
    "WEIGHT_DECAY",
    "WEIGHT_DECAY_COUPLED",
    "LR_STEP_SIZE",
    "LR_GAMMA",
    "MAX_ITERATIONS",
    "BATCH_SIZE",
    "CROP_SIZE",
    "TEST_SEED",
    "SIZE_MULTIPLE",
    "NOISE_PRESETS",
    "SKIMAGE_POISSON_PEAK",
    "skimage_poisson_peak",
    "learning_rate_at",
    "PHOTO_PSNR_DATA_RANGE",
    "PHOTO_SSIM_WINDOW",
    "CT_HU_SCALE",
    "CT_DISPLAY_WINDOW",
    "CT_PSNR_DATA_RANGE",
    "CT_SSIM_DATA_RANGE",
    "CT_FULL_DOSE_I0",
    "CT_LOW_DOSE_FRACTION",
    "CT_NUM_ANGLES",
    "CT_IMAGE_SIZE",
    "CT_WINDOWED",
    "ORIGINAL_CT_SLICE",
    "NOISE_KINDS",
    "DEFAULT_SIGMA_255",
    "noise_spec",
]

#: The two configs: image-discriminator layout (noise2self: 1 scale, width 256). The
#: trainer settings below are shared (noise2self's other settings are not in ORIGINALS.md).
CONFIGS: Tuple[str, ...] = ("noise2clear", "noise2self")

# --- LSGAN targets ---------------------------------------------------------------------
#: Image discriminators: real images -> 1.
LSGAN_REAL = 1.0
#: Image discriminators: translated images -> 0.
LSGAN_FAKE = 0.0
#: Generator: its translations judged toward 1.
LSGAN_GENERATOR_TARGET = 1.0
#: Content discriminator: codes of noisy images -> 0.
CONTENT_NOISY_TARGET = 0.0
#: Content discriminator: codes of clean images -> 1.
CONTENT_CLEAN_TARGET = 1.0
#: Generator: both domains' codes pushed toward 0.5 (indistinguishable).
CONTENT_GENERATOR_TARGET = 0.5

#: Generator loss weights (the original's yaml keys in comments).
LOSS_WEIGHTS: Dict[str, float] = {
    "gan": 1.0,  # gan_w: LSGAN on x_ba (dis_a) and x_ab (dis_b)
    "recon_x": 10.0,  # recon_x_w: L1 reconstructions x_a_rec, x_b_rec
    "recon_kl": 0.01,  # recon_kl_w: "KL" = mean(h^2) on h_a, h_b, s_a
    "recon_x_cyc": 10.0,  # recon_x_cyc_w: L1 cycles x_aba, x_bab
    "recon_kl_cyc": 0.01,  # recon_kl_cyc_w: "KL" on h_a', h_b', s'
    "vgg": 1.0,  # vgg_w: VGG(x_ba, x_b) + VGG(x_ab, x_a)
    "background": 5.0,  # the background module of three Gaussian blurs
    "content": 1.0,  # content-D LSGAN toward 0.5 for both domains
}

#: Standard deviation of the Gaussian noise added to the codes at training time (UNIT's
#: ``torch.randn``): one 512-channel draw for R's input and one 256-channel draw for C's,
#: drawn once per generator step and reused. No code noise at test time.
CODE_NOISE_STD = 1.0

# --- Optimisation ---------------------------------------------------------------------
#: Content-discriminator updates per iteration (before the image-discriminator update).
CONTENT_D_UPDATES = 3
#: Gradient-norm clip of those content updates (PyTorch ``clip_grad_norm_``: global norm).
CONTENT_GRAD_CLIP_NORM = 5.0
#: The content discriminator's learning rate is the base rate times this.
CONTENT_LR_FACTOR = 0.5
#: Base learning rate (generators and image discriminators).
LEARNING_RATE = 1e-4
#: Adam beta_1.
ADAM_BETA_1 = 0.0
#: Adam beta_2.
ADAM_BETA_2 = 0.9
#: Weight decay: PyTorch Adam's ``weight_decay``, i.e. L2 ADDED TO THE GRADIENT before the
#: Adam moments (coupled), not Keras AdamW's decoupled decay.
WEIGHT_DECAY = 1e-4
#: True: the decay is coupled (see :data:`WEIGHT_DECAY`).
WEIGHT_DECAY_COUPLED = True
#: Step schedule: the rate is multiplied by :data:`LR_GAMMA` every this many iterations.
LR_STEP_SIZE = 100_000
#: Factor of each step of the schedule.
LR_GAMMA = 0.5
#: Training iterations of the original.
MAX_ITERATIONS = 300_000
#: Batch size (of each of the two unpaired streams).
BATCH_SIZE = 16
#: Side of the random training crops.
CROP_SIZE = 64
#: ``test.py --seed`` of the original.
TEST_SEED = 10
#: Test inputs are cropped (tfinverse: padded) to a multiple of this (two stride-2 convs).
SIZE_MULTIPLE = 4

# --- Noise ------------------------------------------------------------------------------
#: scikit-image's ``random_noise(mode="poisson")`` scales by the number of distinct values of
#: the image rounded up to a power of two: 256 for 8-bit photographs with more than 128 levels.
SKIMAGE_POISSON_PEAK = 256.0

#: Noise presets: keyword arguments of ``tfinverse.operators.noise.get_noise``. The original
#: added its noise offline to the noisy folder; here the trainer draws it per step.
NOISE_PRESETS: Dict[str, Dict[str, object]] = {
    "gaussian50": {"name": "gaussian", "sigma": 50.0 / 255.0, "clip": True},  # the original's
    "gaussian25": {"name": "gaussian", "sigma": 25.0 / 255.0, "clip": True},
    "poisson": {"name": "poisson", "peak": SKIMAGE_POISSON_PEAK, "clip": True},  # random_noise('poisson')
}


def skimage_poisson_peak(image) -> float:
    """The peak scikit-image's ``random_noise(image, "poisson")`` uses for ``image``.

    ``2 ** ceil(log2(number of distinct values))``: ``PoissonNoise(peak=this, clip=True)``
    then draws the same distribution as scikit-image (which also clips to [0, 1] by
    default). For a whole 8-bit photograph this is 256; a small crop with few grey levels
    can give 128 or less, which is why tfinverse fixes the peak instead of measuring it
    per patch.

    Args:
      image: array of pixel values (any shape), non-negative.

    Returns:
      The peak as a float.
    """
    import math

    import numpy as np

    count = len(np.unique(np.asarray(image)))
    return float(2 ** math.ceil(math.log2(max(count, 1))))


def learning_rate_at(step: int, base: float = LEARNING_RATE) -> float:
    """The step schedule: ``base * LR_GAMMA ** (step // LR_STEP_SIZE)``."""
    return float(base) * LR_GAMMA ** (int(step) // LR_STEP_SIZE)


# --- Metrics ------------------------------------------------------------------------
#: Photographs: PSNR/SSIM on uint8 files (data range 255), SSIM multichannel, 7x7 window.
PHOTO_PSNR_DATA_RANGE = 255.0
#: SSIM window of the photograph metrics.
PHOTO_SSIM_WINDOW = 7

# --- CT -------------------------------------------------------------------------------
#: The original's CT slices are stored as values / 3000 in [0, 1] (0 = -1024 HU shifted:
#: ``(HU + 1024) / 3000``, the usual AAPM-Mayo convention; the shift is not published).
CT_HU_SCALE = 3000.0
#: The original's display window, in the units of :data:`CT_HU_SCALE` (about -164..236 HU).
CT_DISPLAY_WINDOW: Tuple[float, float] = (860.0, 1260.0)
#: CT PSNR data range (slices in [0, 1]).
CT_PSNR_DATA_RANGE = 1.0
#: CT SSIM data range (2, as the original's code set it, on [0, 1] slices).
CT_SSIM_DATA_RANGE = 2.0
#: Offline CT: incident photons per detector bin at full dose.
CT_FULL_DOSE_I0 = 1e5
#: Offline CT: low dose as a fraction of full dose (quarter dose, as AAPM-Mayo's low dose).
CT_LOW_DOSE_FRACTION = 0.25
#: Offline CT: projection angles over 180 degrees.
CT_NUM_ANGLES = 180
#: Offline CT: default slice size in pixels.
CT_IMAGE_SIZE = 128
#: Offline CT: slices are served in the display window (see :mod:`tfinverse.data.ct`).
CT_WINDOWED = True

#: The one CT slice of the original's figure: (PSNR, SSIM) per method.
ORIGINAL_CT_SLICE: Dict[str, Tuple[float, float]] = {
    "ldct_input": (24.42, 0.87),
    "bm3d": (28.81, 0.91),
    "red_cnn": (29.62, 0.92),
    "dip": (24.90, 0.85),
    "lir": (28.19, 0.92),
}

# --- Scripts ----------------------------------------------------------------------------
#: ``--noise`` of scripts/train_lir.py and deploy_lir.py: Gaussian / Poisson drawn per step on
#: the noisy set's images, ``ct`` the low-dose CT set (already noisy), ``given`` a folder of
#: really noisy images used as they are (``--noisy-dir``).
NOISE_KINDS: Tuple[str, ...] = ("gaussian", "poisson", "ct", "given")
#: Gaussian sigma of the original, in 8-bit units (sigma = 50 / 255).
DEFAULT_SIGMA_255 = 50.0


def noise_spec(kind: str, sigma_255: float = DEFAULT_SIGMA_255):
    """``get_noise`` keyword arguments of a ``--noise`` kind, or None when the data is noisy.

    Args:
      kind: one of :data:`NOISE_KINDS`.
      sigma_255: Gaussian standard deviation in 8-bit units (50 or 25 in the paper).

    Returns:
      A dict for :func:`tfinverse.operators.noise.get_noise`, or None (``ct``, ``given``).
    """
    if kind == "gaussian":
        return {"name": "gaussian", "sigma": float(sigma_255) / 255.0, "clip": True}
    if kind == "poisson":
        return dict(NOISE_PRESETS["poisson"])
    if kind in ("ct", "given"):
        return None
    raise ValueError(f"--noise must be one of {', '.join(NOISE_KINDS)}, got {kind!r}")
