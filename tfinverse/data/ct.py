"""Low-dose CT for LIR: offline phantoms through a simulated scanner, and ``.npy`` folders.

The original's CT data (AAPM-Mayo full vs quarter dose) is not public, so tfinverse makes
its own (this setup is tfinverse's, not the original's):

1. Phantoms: the modified Shepp-Logan head with a random rotation (any angle), scale
   (0.75-0.95), shift, jittered inner intensities and 1-4 extra small ellipses inside the
   skull. Each phantom is drawn from its own seed ``(seed, index)``: the noisy, clean and
   test sets use disjoint index ranges, so they share no phantom.
2. Phantom values ``v`` are tissue labels mapped to Hounsfield units,
   ``HU = 1250 (v - 0.2)`` inside the head (brain 0, ventricles -250, lesions +125, skull
   +1000 HU) and -1000 HU outside; attenuation ``mu = MU_WATER (1 + HU / 1000)`` per mm on a
   256 mm field of view.
3. ``skimage.transform.radon`` (180 angles) gives line integrals ``p``; detector counts are
   ``Poisson(I0 exp(-p))`` with ``I0 = 1e5`` photons per bin at full dose and ``I0 / 4`` at
   low dose (AAPM-Mayo's quarter dose); ``p^ = -log(max(I, 1) / I0)``.
4. ``skimage.transform.iradon`` (filtered back-projection, ramp filter) back to ``mu``,
   then ``HU``, then the original's [0, 1] slice convention ``(HU + 1024) / 3000``, clipped.

The "clean" domain is full-dose FBP (as AAPM-Mayo's normal dose), the "noisy" domain
low-dose FBP; the test splits give both (and the noiseless phantom slice) of held-out
phantoms. By default slices are returned in the original's display window
(:func:`display_window`: stored values 860-1260 of 3000, about -164..236 HU, mapped to
[0, 1]); ``window=False`` gives the stored [0, 1] convention instead. Why the window: on the
3000-unit scale quarter-dose noise is tiny (about 41 dB PSNR), while the original reports
24.42 dB for its low-dose input at data range 1, a level only a windowed scale reaches (how
its .npy files were normalised was not published).

Measured at the defaults (128 px, 180 angles, seed 0, test phantoms 0-7), PSNR at data
range 1, windowed: low-dose vs full-dose FBP 26.8 dB (24.3 dB at 1/8 dose); against the
noiseless phantom slice low dose 24.0 dB and full dose 25.6 dB (the original's one Mayo slice:
LDCT input 24.42 dB); on the stored scale low vs full 41.2 dB. The noiseless radon/iradon round trip gives 33.6 dB on the stored scale
(26.3 dB windowed: FBP's ringing at the 1000 HU skull edge is magnified by the 400-unit
window), and full-dose FBP vs the noiseless phantom 33.3 dB stored: full-dose noise is well
below the reconstruction error, as clean data should be. The quarter-dose noise is plainly
visible in the window.

Generation is in memory and cached (the 64 noisy and 64 clean phantoms at 128 px take about
10 s on 2 cores, the 8 test phantoms about 2 s). ``ct_npy`` reads real slices from two ``.npy`` folders instead.
scikit-image is imported inside the functions.
"""

from __future__ import annotations

import functools
import os
from typing import Optional, Sequence, Tuple

import numpy as np

from tfinverse.data.offline import SHEPP_LOGAN_ELLIPSES
from tfinverse.data.registry import register_source
from tfinverse.errors import InputError

__all__ = [
    "MU_WATER",
    "FIELD_OF_VIEW_MM",
    "HU_SCALE",
    "HU_OFFSET",
    "DISPLAY_WINDOW",
    "FULL_DOSE_I0",
    "LOW_DOSE_FRACTION",
    "random_phantom_ellipses",
    "render_ellipses",
    "phantom_to_hu",
    "hu_to_slice",
    "slice_to_hu",
    "display_window",
    "simulate_fbp",
    "ct_phantom_set",
    "ct_phantoms",
    "ct_npy",
]

MU_WATER = 0.019
"""Linear attenuation of water per mm (about 70 keV)."""
FIELD_OF_VIEW_MM = 256.0
"""Side of the reconstructed field of view in mm (whatever the pixel count)."""
HU_SCALE = 3000.0
"""Slices are ``(HU + HU_OFFSET) / HU_SCALE`` in [0, 1], as the original's .npy files."""
HU_OFFSET = 1024.0
"""HU offset of the slice convention (the usual CT storage offset; not published by LIR)."""
DISPLAY_WINDOW: Tuple[float, float] = (860.0, 1260.0)
"""The original's display window, in the stored units (times HU_SCALE)."""
FULL_DOSE_I0 = 1e5
"""Incident photons per detector bin at full dose."""
LOW_DOSE_FRACTION = 0.25
"""Low dose as a fraction of full dose (quarter dose)."""

_TISSUE_HU_PER_UNIT = 1250.0
_SPLIT_NAMES = ("noisy", "clean", "test_noisy", "test_clean", "test_truth")


def random_phantom_ellipses(rng: np.random.Generator, extra: Tuple[int, int] = (1, 4)) -> np.ndarray:
    """A random variant of the modified Shepp-Logan ellipses.

    Args:
      rng: a NumPy generator.
      extra: inclusive range of the number of extra small ellipses inside the skull.

    Returns:
      float64 ``[n, 6]`` rows ``(intensity, a, b, x0, y0, degrees)`` on ``[-1, 1]^2``.
    """
    base = np.array(SHEPP_LOGAN_ELLIPSES, dtype=np.float64)
    base[2:, 0] *= rng.uniform(0.7, 1.3, size=len(base) - 2)  # inner features' contrast
    extras = []
    for _ in range(int(rng.integers(extra[0], extra[1] + 1))):
        radius, angle = 0.45 * np.sqrt(rng.uniform()), rng.uniform(0, 2 * np.pi)
        extras.append((rng.choice([-1.0, 1.0]) * rng.uniform(0.05, 0.15), rng.uniform(0.02, 0.12),
                       rng.uniform(0.02, 0.12), radius * np.cos(angle) * 0.7, radius * np.sin(angle),
                       rng.uniform(0, 180)))
    ellipses = np.concatenate([base, np.array(extras).reshape(-1, 6)])
    scale, rotation = rng.uniform(0.75, 0.95), rng.uniform(0, 360)
    shift = rng.uniform(-0.04, 0.04, size=2)
    cos, sin = np.cos(np.deg2rad(rotation)), np.sin(np.deg2rad(rotation))
    x0, y0 = ellipses[:, 3].copy(), ellipses[:, 4].copy()
    ellipses[:, 3] = scale * (cos * x0 - sin * y0) + shift[0]
    ellipses[:, 4] = scale * (sin * x0 + cos * y0) + shift[1]
    ellipses[:, 1:3] *= scale
    ellipses[:, 5] += rotation
    return ellipses


def render_ellipses(ellipses: np.ndarray, size: int, supersample: int = 2) -> np.ndarray:
    """Sum of constant ellipses on ``[-1, 1]^2`` (y up), anti-aliased.

    Args:
      ellipses: rows ``(intensity, a, b, x0, y0, degrees)``.
      size: image side.
      supersample: samples per pixel along each axis.

    Returns:
      float64 ``[size, size]``.
    """
    n = int(size) * int(supersample)
    y = 1.0 - (np.arange(n) + 0.5) * (2.0 / n)
    x = -1.0 + (np.arange(n) + 0.5) * (2.0 / n)
    yy, xx = np.meshgrid(y, x, indexing="ij")
    image = np.zeros((n, n))
    for intensity, a, b, x0, y0, degrees in ellipses:
        cos, sin = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
        u = (xx - x0) * cos + (yy - y0) * sin
        v = -(xx - x0) * sin + (yy - y0) * cos
        image[(u / a) ** 2 + (v / b) ** 2 <= 1.0] += intensity
    return image.reshape(size, supersample, size, supersample).mean(axis=(1, 3))


def phantom_to_hu(values: np.ndarray, head: np.ndarray) -> np.ndarray:
    """Tissue labels to HU: ``1250 (v - 0.2)`` inside the head mask, -1000 outside."""
    return np.where(head > 0, _TISSUE_HU_PER_UNIT * (values - 0.2), -1000.0)


def hu_to_slice(hu: np.ndarray) -> np.ndarray:
    """HU to the stored [0, 1] slice ``(HU + 1024) / 3000``, clipped."""
    return np.clip((np.asarray(hu) + HU_OFFSET) / HU_SCALE, 0.0, 1.0)


def slice_to_hu(slices: np.ndarray) -> np.ndarray:
    """Inverse of :func:`hu_to_slice` (without the clipping)."""
    return np.asarray(slices) * HU_SCALE - HU_OFFSET


def display_window(slices, window: Tuple[float, float] = DISPLAY_WINDOW) -> np.ndarray:
    """The original's display window: stored values ``(s * 3000 - 860) / 400`` clipped to [0, 1].

    Args:
      slices: [0, 1] slices (any shape).
      window: (low, high) in stored units.

    Returns:
      float32 array of the same shape in [0, 1].
    """
    low, high = window
    return np.clip((np.asarray(slices, np.float64) * HU_SCALE - low) / (high - low), 0, 1).astype(np.float32)


def simulate_fbp(
    hu: np.ndarray,
    doses: Sequence[Optional[float]],
    rng: np.random.Generator,
    num_angles: int = 180,
) -> list:
    """Radon -> Poisson counts -> -log -> filtered back-projection, at several doses.

    Args:
      hu: ``[n, n]`` image in HU (-1000 outside the inscribed circle).
      doses: incident photons per bin ``I0`` for each reconstruction; None means noiseless.
      rng: generator of the Poisson draws.
      num_angles: projection angles over 180 degrees.

    Returns:
      One HU image ``[n, n]`` per dose.
    """
    from skimage.transform import iradon, radon

    size = hu.shape[0]
    pixel_mm = FIELD_OF_VIEW_MM / size
    mu = np.maximum(MU_WATER * (1.0 + hu / 1000.0), 0.0)
    theta = np.linspace(0.0, 180.0, int(num_angles), endpoint=False)
    line_integrals = radon(mu, theta=theta, circle=True) * pixel_mm
    out = []
    for dose in doses:
        if dose is None:
            measured = line_integrals
        else:
            counts = rng.poisson(float(dose) * np.exp(-line_integrals))
            measured = -np.log(np.maximum(counts, 1.0) / float(dose))
        recon = iradon(measured / pixel_mm, theta=theta, filter_name="ramp", circle=True,
                       output_size=size)
        out.append((recon / MU_WATER - 1.0) * 1000.0)
    return out


def _phantom(seed: int, index: int, size: int) -> Tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([int(seed), int(index), 1])
    ellipses = random_phantom_ellipses(rng)
    values = render_ellipses(ellipses, size)
    head = render_ellipses(ellipses[:1] * np.array([[0, 1, 1, 1, 1, 1]]) + np.array([[1, 0, 0, 0, 0, 0]]), size)
    return values, head


@functools.lru_cache(maxsize=16)
def ct_phantom_set(
    split: str,
    count: int,
    image_size: int = 128,
    seed: int = 0,
    low_dose_fraction: float = LOW_DOSE_FRACTION,
    full_dose_i0: float = FULL_DOSE_I0,
    num_angles: int = 180,
    train_count: int = 64,
    window: bool = True,
) -> np.ndarray:
    """One split of the offline CT sets, as [0, 1] slices (cached; read-only arrays).

    Phantom indices: ``"noisy"`` ``[0, train_count)``, ``"clean"``
    ``[train_count, 2 train_count)``, the test splits ``[2 train_count, 2 train_count + count)``
    (the same phantoms, so ``test_noisy[i]``, ``test_clean[i]`` and ``test_truth[i]`` pair up).

    Args:
      split: ``"noisy"`` (low-dose FBP), ``"clean"`` (full-dose FBP), ``"test_noisy"``,
        ``"test_clean"`` or ``"test_truth"`` (the noiseless phantom slice).
      count: slices to make (at most ``train_count`` for the training splits).
      image_size: side in pixels.
      seed: phantom and noise seed.
      low_dose_fraction: low dose / full dose.
      full_dose_i0: full-dose photons per bin.
      num_angles: projection angles.
      train_count: phantoms per training set (fixes where the test phantoms start).
      window: map the slices through :func:`display_window`.

    Returns:
      float32 ``[count, size, size, 1]`` in [0, 1].
    """
    if split not in _SPLIT_NAMES:
        raise InputError(f"ct_phantoms has splits {', '.join(_SPLIT_NAMES)}, not {split!r}")
    if split in ("noisy", "clean") and count > train_count:
        raise InputError(f"{split}: count {count} exceeds train_count {train_count}")
    start = {"noisy": 0, "clean": train_count}.get(split, 2 * train_count)
    low, full = float(full_dose_i0) * float(low_dose_fraction), float(full_dose_i0)
    slices = []
    for index in range(start, start + int(count)):
        values, head = _phantom(seed, index, int(image_size))
        hu = phantom_to_hu(values, head)
        if split == "test_truth":
            slices.append(hu_to_slice(hu))
            continue
        dose = low if split in ("noisy", "test_noisy") else full
        rng = np.random.default_rng([int(seed), index, 2 if dose == low else 3])
        slices.append(hu_to_slice(simulate_fbp(hu, [dose], rng, num_angles)[0]))
    array = np.stack(slices)[..., None].astype(np.float32)
    if window:
        array = display_window(array)
    array.setflags(write=False)
    return array


@register_source(
    "ct_phantoms",
    offline=True,
    splits=_SPLIT_NAMES,
    description="LIR offline low-dose CT: random Shepp-Logan phantoms, radon + Poisson + FBP; low/full dose",
)
def ct_phantoms(
    split: str,
    count: Optional[int] = None,
    image_size=None,
    seed: int = 0,
    low_dose_fraction: float = LOW_DOSE_FRACTION,
    full_dose_i0: float = FULL_DOSE_I0,
    num_angles: int = 180,
    train_count: int = 64,
    window: bool = True,
) -> np.ndarray:
    """Offline low-dose CT slices (see the module docstring).

    Args:
      split: ``"noisy"``, ``"clean"``, ``"test_noisy"``, ``"test_clean"`` or ``"test_truth"``.
      count: slices; None means ``train_count`` for the training splits and 8 for test.
      image_size: side (an int; default 128); ``load(image_size=...)`` fills it in, so the
        phantom is simulated at that size rather than resampled.
      seed: phantom and noise seed.
      low_dose_fraction: low dose / full dose (0.25).
      full_dose_i0: full-dose photons per bin (1e5).
      num_angles: projection angles (180).
      train_count: phantoms per training set.
      window: slices in the display window (True) or the stored convention (False).

    Returns:
      float32 ``[count, size, size, 1]`` in [0, 1] (a copy).
    """
    size = 128 if image_size is None else image_size
    if not np.isscalar(size):
        height, width = size
        if height != width:
            raise InputError(f"ct_phantoms makes square slices, got image_size {size}")
        size = height
    if count is None:
        count = train_count if split in ("noisy", "clean") else 8
    return np.array(ct_phantom_set(split, int(count), int(size), int(seed), float(low_dose_fraction),
                                   float(full_dose_i0), int(num_angles), int(train_count), bool(window)))


_NPY_LAYOUT = """  noisy_dir/*.npy and clean_dir/*.npy: one 2-D slice per file ([H, W] or [H, W, 1]),
  values in [0, 1] ((HU + 1024) / 3000), disjoint sets of slices"""


@register_source(
    "ct_npy",
    offline=False,
    splits=("noisy", "clean"),
    description="LIR: real CT slices from two .npy folders (noisy_dir low dose, clean_dir full dose)",
)
def ct_npy(split: str, noisy_dir: Optional[str] = None, clean_dir: Optional[str] = None,
           allow_same_names: bool = False, shuffle_seed: Optional[int] = None, crop_size: int = 0):
    """Real CT slices from ``.npy`` folders, streamed.

    Both folders are checked as :func:`tfinverse.data.unpaired.check_unpaired_folders`
    checks image folders (not the same or nested folders, no shared file); then every file
    of the requested split is opened (memory-mapped) to check its shape and range.

    Args:
      split: ``"noisy"`` (reads ``noisy_dir``) or ``"clean"`` (``clean_dir``).
      noisy_dir: folder of low-dose slices.
      clean_dir: folder of full-dose slices.
      allow_same_names: accept the same file names in both folders (refused by default: a
        paired low/full-dose set, such as AAPM-Mayo's, must be split into disjoint slices).
      shuffle_seed: filled in by ``load``: shuffles the file list every epoch.
      crop_size: refuse slices smaller than this in either direction (0: no check).

    Returns:
      A ``tf.data.Dataset`` of float32 ``[H, W, 1]`` slices.

    Raises:
      InputError: bad folders, a file that is not a 2-D slice in [0, 1].
    """
    import tensorflow as tf

    from tfinverse.data.unpaired import check_unpaired_folders

    noisy, clean = check_unpaired_folders(noisy_dir, clean_dir, crop_size=0, extensions=(".npy",),
                                          allow_same_names=allow_same_names)
    paths = noisy if split == "noisy" else clean
    for path in paths:
        try:
            array = np.load(path, mmap_mode="r")
        except (OSError, ValueError) as error:
            raise InputError(f"cannot read {path}: {error}") from None
        shape = array.shape[:2] if array.ndim == 3 and array.shape[-1] == 1 else array.shape
        if len(shape) != 2:
            raise InputError(f"{path} has shape {array.shape}; expected one slice [H, W] or [H, W, 1]")
        if crop_size and min(shape) < int(crop_size):
            raise InputError(f"{path} is {shape[0]}x{shape[1]}, smaller than the {crop_size}x{crop_size} crop")
        low, high = float(np.min(array)), float(np.max(array))
        if low < -1e-6 or high > 1 + 1e-6:
            raise InputError(f"{path} has values in [{low:.4g}, {high:.4g}]; expected [0, 1] slices "
                             f"((HU + 1024) / 3000)")
    ds = tf.data.Dataset.from_tensor_slices(paths)
    if shuffle_seed is not None:
        ds = ds.shuffle(len(paths), seed=shuffle_seed, reshuffle_each_iteration=True)

    def read(path):
        array = np.load(os.fsdecode(path)).astype(np.float32)
        return np.clip(array.reshape(array.shape[0], array.shape[1], 1), 0.0, 1.0)

    def fn(path):
        image = tf.numpy_function(read, [path], tf.float32)
        image.set_shape((None, None, 1))
        return image

    return ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE)

