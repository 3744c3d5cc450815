"""Unpaired noisy/clean image sets for LIR: two folders, or scikit-image's photographs.

LIR learns from a noisy set and a clean set that share NO image (domain A noisy, B clean),
read by two independently shuffled loaders with random 64x64 crops and horizontal flips, in
[0, 1], never resized. This module gives:

* :func:`check_unpaired_folders`: refuses (one-line :class:`~tfinverse.errors.InputError`)
  the same folder twice, nested folders, folders sharing a file (the same file, identical
  bytes, or the same relative name: a paired set), and images smaller than the crop, before
  any work.
* :func:`unpaired_stream`: the training stream of ``(noisy_batch, clean_batch)`` from any two
  sources (arrays or tf.data streams of single images): each shuffled with its own seed,
  repeated, randomly cropped and flipped with stateless (seeded) ops, batched, zipped.
* the registered sources ``unpaired_folders`` (``noisy_dir``, ``clean_dir``; kind
  ``"pairs"``: ``(noisy, clean)`` crops, the two streams shuffled independently, so the
  pairing is random) and ``lir_photos`` (offline default, splits ``"noisy"``, ``"clean"``,
  ``"test"``), and :func:`lir_test_photos` (whole held-out photographs).

The noise itself is not in the data: the trainer draws it per step with
:mod:`tfinverse.operators.noise` (presets in :data:`tfinverse.tasks.lir.NOISE_PRESETS`).
The original added it offline with scikit-image's ``random_noise``; its ``"poisson"`` mode
scales by ``2 ** ceil(log2(distinct values))`` (256 for an 8-bit photograph) and clips, which
``PoissonNoise(peak=256, clip=True)`` reproduces (:func:`tfinverse.tasks.lir.skimage_poisson_peak`).

scikit-image's photographs (``skimage.data`` in scikit-image 0.26, files shipped with the
package, nothing downloaded), split BY SOURCE IMAGE:

========  =======================================  ======================================
split     colour (``channels=3``)                  added for grey (``channels=1``)
========  =======================================  ======================================
noisy     astronaut, rocket, immunohistochemistry  brick, grass, moon, text
clean     stereo_motorcycle (left and right view)  clock, gravel, page, cell
test      chelsea, coffee                          camera, coins
========  =======================================  ======================================

The split keeps the three sets about equally bright (mean intensity of the colour patches:
noisy 0.45, clean 0.41, test 0.40): an unpaired translation to the clean domain adopts that
domain's statistics, and a darker clean set (an earlier split used rocket and
hubble_deep_field, mean 0.12) made every restoration too dark. With the defaults (64 px
patches, stride 32, patches flatter than 1/255 dropped) the colour sets hold 677 noisy and 616
clean patches; the grey sets 1404 noisy and 1277 clean; the ``"test"`` split holds
non-overlapping 64 px tiles of the test photographs (82 colour, 170 grey), and
:func:`lir_test_photos` the whole photographs. Not used: ``retina`` and ``hubble_deep_field``
(mostly flat black), synthetic images (``colorwheel``, ``logo``, ``checkerboard``, ...),
``cat`` (a copy of ``chelsea``) and photographs that scikit-image must download
(``eagle``, ``kidney``, ``lily``, ``skin``, ...).

Heavy libraries (scikit-image, cv2, PIL) are imported inside the functions.
"""

from __future__ import annotations

import hashlib
import os
from typing import List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tfinverse.data.folders import IMAGE_EXTENSIONS, list_images, read_image
from tfinverse.data.registry import DatasetUnavailableError, register_source
from tfinverse.errors import InputError, MissingPathError

__all__ = [
    "PHOTO_NOISY_IMAGES",
    "PHOTO_CLEAN_IMAGES",
    "PHOTO_TEST_IMAGES",
    "GREY_NOISY_IMAGES",
    "GREY_CLEAN_IMAGES",
    "GREY_TEST_IMAGES",
    "DEFAULT_CROP_SIZE",
    "photo_names",
    "check_unpaired_folders",
    "random_crop_flip",
    "unpaired_stream",
    "unpaired_folders",
    "lir_photos",
    "lir_test_photos",
]

DEFAULT_CROP_SIZE = 64
"""LIR's training crop."""

PHOTO_NOISY_IMAGES: Tuple[str, ...] = ("astronaut", "rocket", "immunohistochemistry")
"""Colour photographs of the noisy set."""
PHOTO_CLEAN_IMAGES: Tuple[str, ...] = ("stereo_motorcycle_left", "stereo_motorcycle_right")
"""Colour photographs of the clean set."""
PHOTO_TEST_IMAGES: Tuple[str, ...] = ("chelsea", "coffee")
"""Held-out colour photographs."""
GREY_NOISY_IMAGES: Tuple[str, ...] = ("brick", "grass", "moon", "text")
"""Grey photographs added to the noisy set for ``channels=1``."""
GREY_CLEAN_IMAGES: Tuple[str, ...] = ("clock", "gravel", "page", "cell")
"""Grey photographs added to the clean set for ``channels=1``."""
GREY_TEST_IMAGES: Tuple[str, ...] = ("camera", "coins")
"""Held-out grey photographs for ``channels=1``."""

_PHOTO_SPLITS = ("noisy", "clean", "test")


def photo_names(split: str, channels: int = 3) -> Tuple[str, ...]:
    """``skimage.data`` names of the photographs of a ``lir_photos`` split.

    Args:
      split: ``"noisy"``, ``"clean"`` or ``"test"``.
      channels: 3 (colour photographs) or 1 (also the grey ones; colour ones by their luma).

    Returns:
      The names, colour ones first.

    Raises:
      InputError: for a bad split or channel count.
    """
    if split not in _PHOTO_SPLITS:
        raise InputError(f"lir_photos has splits {', '.join(_PHOTO_SPLITS)}, not {split!r}")
    if channels not in (1, 3):
        raise InputError(f"channels must be 1 or 3, got {channels}")
    colour = {"noisy": PHOTO_NOISY_IMAGES, "clean": PHOTO_CLEAN_IMAGES, "test": PHOTO_TEST_IMAGES}[split]
    grey = {"noisy": GREY_NOISY_IMAGES, "clean": GREY_CLEAN_IMAGES, "test": GREY_TEST_IMAGES}[split]
    return colour + (grey if channels == 1 else ())


# ----------------------------------------------------------------------------- folder checks


def _image_size(path: str) -> Tuple[int, int]:
    """(height, width) from the file header (PIL), decoding with cv2 only if PIL cannot."""
    try:
        from PIL import Image

        with Image.open(path) as image:
            width, height = image.size
        return int(height), int(width)
    except Exception:  # PIL missing or an unusual file: decode it (errors name the file)
        return tuple(read_image(path).shape[:2])


def _digest(path: str) -> str:
    hasher = hashlib.sha1()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def _shared_file(noisy_root, noisy, clean_root, clean, check_names: bool = True) -> Optional[Tuple[str, str, str]]:
    """A (noisy file, clean file, why) pair the two sets share, or None."""
    if check_names:
        stems = {}
        for rel in noisy:
            stems.setdefault(os.path.splitext(rel)[0].lower(), rel)
        for rel in clean:
            match = stems.get(os.path.splitext(rel)[0].lower())
            if match is not None:
                return match, rel, "the same name (a paired set?)"
    # Identical bytes (copies, hard or symbolic links): hash only files whose sizes collide.
    by_size = {}
    for rel in noisy:
        by_size.setdefault(os.path.getsize(os.path.join(noisy_root, rel)), []).append(rel)
    digests = {}
    for rel in clean:
        candidates = by_size.get(os.path.getsize(os.path.join(clean_root, rel)))
        if not candidates:
            continue
        digest = _digest(os.path.join(clean_root, rel))
        for other in candidates:
            if other not in digests:
                digests[other] = _digest(os.path.join(noisy_root, other))
            if digests[other] == digest:
                return other, rel, "identical contents"
    return None


def check_unpaired_folders(
    noisy_dir: str,
    clean_dir: str,
    crop_size: int = DEFAULT_CROP_SIZE,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
    allow_same_names: bool = False,
) -> Tuple[List[str], List[str]]:
    """Validates an unpaired noisy/clean folder pair before any training work.

    Args:
      noisy_dir: folder of noisy images (searched recursively).
      clean_dir: folder of clean images.
      crop_size: every image must be at least this large in both directions (0: no size
        check, nothing is opened).
      extensions: accepted file endings.
      allow_same_names: accept files with the same relative name (without extension) in
        both folders; by default that is refused as the layout of a paired set.

    Returns:
      ``(noisy_paths, clean_paths)``: sorted absolute paths.

    Raises:
      MissingPathError: a folder does not exist.
      DatasetUnavailableError: a folder holds no images.
      InputError: (one line) the same or nested folders, a shared file, or an image
        smaller than the crop.
    """
    roots = []
    for what, folder in (("noisy_dir", noisy_dir), ("clean_dir", clean_dir)):
        if folder is None:
            raise InputError(f"{what} is required: LIR trains on a noisy folder and a clean folder")
        root = os.path.realpath(os.path.expanduser(str(folder)))
        if not os.path.isdir(root):
            raise MissingPathError(f"{what} {folder} is not a folder")
        roots.append(root)
    noisy_root, clean_root = roots
    if noisy_root == clean_root:
        raise InputError(f"noisy_dir and clean_dir are the same folder ({noisy_root}); LIR is unpaired: "
                         f"give two folders with disjoint images")
    for inner, outer in ((noisy_root, clean_root), (clean_root, noisy_root)):
        if os.path.commonpath([inner, outer]) == outer:
            raise InputError(f"{inner} is inside {outer}; noisy_dir and clean_dir must not overlap")
    noisy = list_images(noisy_root, extensions)
    clean = list_images(clean_root, extensions)
    for what, root, found in (("noisy_dir", noisy_root, noisy), ("clean_dir", clean_root, clean)):
        if not found:
            raise DatasetUnavailableError(f"{what} {root} holds no {'/'.join(extensions)} images")
    shared = _shared_file(noisy_root, noisy, clean_root, clean, check_names=not allow_same_names)
    if shared is not None:
        a, b, why = shared
        raise InputError(f"noisy_dir and clean_dir share a file ({why}): {os.path.join(noisy_root, a)} and "
                         f"{os.path.join(clean_root, b)}; LIR is unpaired: the two sets must be disjoint")
    paths = ([os.path.join(noisy_root, p) for p in noisy], [os.path.join(clean_root, p) for p in clean])
    for group in paths if crop_size > 0 else ():
        for path in group:
            height, width = _image_size(path)
            if height < crop_size or width < crop_size:
                raise InputError(f"{path} is {height}x{width}, smaller than the {crop_size}x{crop_size} crop")
    return paths


# ----------------------------------------------------------------------------- streams


def random_crop_flip(image, crop_size: int, seed, flip: bool = True):
    """A random ``crop_size`` square and a random horizontal flip, both stateless.

    Args:
      image: ``[H, W, C]`` with ``H, W >= crop_size``.
      crop_size: side of the crop.
      seed: integer tensor ``[2]``.
      flip: also flip left-right with probability 1/2.

    Returns:
      ``[crop_size, crop_size, C]``.
    """
    channels = image.shape[-1] if image.shape[-1] is not None else tf.shape(image)[-1]
    seed = tf.cast(seed, tf.int64)
    crop = tf.image.stateless_random_crop(image, [crop_size, crop_size, channels], seed=seed)
    if flip:
        crop = tf.image.stateless_random_flip_left_right(crop, seed=seed[::-1] + 1)
    return crop


def _single_images(source, seed: Optional[int]) -> tf.data.Dataset:
    if isinstance(source, tf.data.Dataset):
        return source
    images = np.asarray(source, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"an array source must be [N, H, W, C], got shape {images.shape}")
    ds = tf.data.Dataset.from_tensor_slices(images)
    if seed is not None:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    return ds


def _cropped(ds: tf.data.Dataset, crop_size: Optional[int], seed: int, flip: bool) -> tf.data.Dataset:
    if crop_size is None and not flip:
        return ds
    # A stream of random seeds, new every epoch, pairs each image with its own crop seed.
    seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def fn(image, s):
        if crop_size is None:
            return tf.image.stateless_random_flip_left_right(image, seed=s)
        return random_crop_flip(image, crop_size, s, flip)

    return tf.data.Dataset.zip((ds, seeds)).map(fn, num_parallel_calls=tf.data.AUTOTUNE)


def unpaired_stream(
    noisy,
    clean,
    batch_size: int = 16,
    crop_size: Optional[int] = DEFAULT_CROP_SIZE,
    seed: int = 0,
    flip: bool = True,
    repeat: bool = True,
) -> tf.data.Dataset:
    """LIR's two independently shuffled loaders, zipped: ``(noisy_batch, clean_batch)``.

    Args:
      noisy: noisy-domain images: ``[N, H, W, C]`` float array in [0, 1] (shuffled here with
        ``seed``) or a ``tf.data.Dataset`` of single images (shuffled by its maker).
      clean: clean-domain images, likewise (shuffled with ``seed + 1``).
      batch_size: images per batch of each stream (16).
      crop_size: random crop side (64); None keeps the images (they must then share a size).
      seed: seed of the shuffles, crops and flips.
      flip: random horizontal flips.
      repeat: repeat each stream forever (the two epochs then drift apart, as in the original).

    Returns:
      A prefetched dataset of ``(noisy, clean)`` float32 ``[batch, crop, crop, C]`` batches
      (complete batches only).
    """
    streams = []
    for offset, source in enumerate((noisy, clean)):
        ds = _single_images(source, seed + offset)
        if repeat:
            ds = ds.repeat()
        ds = _cropped(ds, crop_size, seed * 2 + offset + 7, flip)
        streams.append(ds.batch(int(batch_size), drop_remainder=True))
    return tf.data.Dataset.zip(tuple(streams)).prefetch(tf.data.AUTOTUNE)


def _to_channels(image: np.ndarray, channels: Optional[int]) -> np.ndarray:
    if channels == 1 and image.shape[-1] == 3:
        luma = image[..., 0] * 0.299 + image[..., 1] * 0.587 + image[..., 2] * 0.114
        return luma[..., None].astype(np.float32)
    return image


def _file_stream(paths: List[str], shuffle_seed: Optional[int], channels: int) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices(paths)
    if shuffle_seed is not None:
        ds = ds.shuffle(len(paths), seed=shuffle_seed, reshuffle_each_iteration=True)

    def decode(path):
        return np.ascontiguousarray(_to_channels(read_image(os.fsdecode(path)), channels), dtype=np.float32)

    def fn(path):
        image = tf.numpy_function(decode, [path], tf.float32)
        image.set_shape((None, None, channels))
        return image

    return ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE)


@register_source(
    "unpaired_folders",
    kind="pairs",
    offline=False,
    splits=("train",),
    description="LIR: (noisy, clean) random crops from two disjoint folders, shuffled independently",
)
def unpaired_folders(
    split: str,
    noisy_dir: Optional[str] = None,
    clean_dir: Optional[str] = None,
    crop_size: int = DEFAULT_CROP_SIZE,
    channels: Optional[int] = None,
    flip: bool = True,
    allow_same_names: bool = False,
    shuffle_seed: Optional[int] = None,
):
    """Random crops of a noisy folder and of a clean folder, two independent streams.

    ``load("unpaired_folders", noisy_dir=..., clean_dir=..., repeat=True)`` zips them into
    ``(noisy, clean)`` batches whose pairing is random (each stream shuffles its own file
    list with its own seed every epoch). The folders are checked first
    (:func:`check_unpaired_folders`).

    Args:
      split: ``"train"`` (held-out images are a separate folder).
      noisy_dir: folder of noisy images.
      clean_dir: folder of clean images.
      crop_size: random crop side (64).
      channels: 3 (default) or 1 (luma).
      flip: random horizontal flips.
      allow_same_names: see :func:`check_unpaired_folders`.
      shuffle_seed: filled in by ``load``; also seeds the crops (0 when not shuffling).

    Returns:
      ``(noisy_stream, clean_stream)``: datasets of float32 ``[crop, crop, C]`` in [0, 1].

    Raises:
      InputError: see :func:`check_unpaired_folders`.
    """
    del split
    channels = 3 if channels is None else int(channels)
    if channels not in (1, 3):
        raise InputError(f"channels must be 1 or 3, got {channels}")
    noisy, clean = check_unpaired_folders(noisy_dir, clean_dir, crop_size, allow_same_names=allow_same_names)
    base = 0 if shuffle_seed is None else int(shuffle_seed)
    streams = []
    for offset, paths in enumerate((noisy, clean)):
        seed = None if shuffle_seed is None else base + offset
        ds = _file_stream(paths, seed, channels)
        streams.append(_cropped(ds, crop_size, base * 2 + offset + 7, flip))
    return tuple(streams)


# ----------------------------------------------------------------------------- photographs


def _photo(name: str, channels: int) -> np.ndarray:
    from tfinverse.data.offline import _skimage_photo

    image = _skimage_photo(name, channels)
    return image.astype(np.float32) / 255.0 if image.dtype == np.uint8 else image


@register_source(
    "lir_photos",
    offline=True,
    splits=_PHOTO_SPLITS,
    description="LIR offline: scikit-image photographs as noisy / clean / test patches, split by source image",
)
def lir_photos(
    split: str,
    patch_size: int = DEFAULT_CROP_SIZE,
    stride: Optional[int] = None,
    channels: Optional[int] = None,
    min_std: float = 1.0 / 255.0,
) -> np.ndarray:
    """Clean patches of scikit-image's photographs for LIR's unpaired sets.

    Both the ``"noisy"`` and the ``"clean"`` splits are clean images: the noisy domain is
    made by the trainer's per-step noise. They come from different photographs (see the
    module docstring), so no content is shared.

    Args:
      split: ``"noisy"``, ``"clean"`` or ``"test"``.
      patch_size: patch side (64).
      stride: step between patches; None means ``patch_size // 2`` for ``"noisy"`` and
        ``"clean"`` and ``patch_size`` (tiles) for ``"test"``.
      channels: 3 (default, colour photographs) or 1 (all photographs, colour ones by luma).
      min_std: drop patches whose standard deviation is below this (flat sky, black space).

    Returns:
      float32 ``[N, patch, patch, channels]`` in [0, 1].
    """
    from tfinverse.data.offline import extract_patches

    channels = 3 if channels is None else int(channels)
    if stride is None:
        stride = patch_size if split == "test" else patch_size // 2
    parts = []
    for name in photo_names(split, channels):
        patches = extract_patches(_photo(name, channels), patch_size, stride)
        if min_std > 0 and len(patches):
            patches = patches[patches.reshape(len(patches), -1).std(axis=1) >= min_std]
        parts.append(patches)
    return np.concatenate(parts).astype(np.float32)


def lir_test_photos(channels: int = 3) -> List[np.ndarray]:
    """The whole held-out photographs of ``lir_photos`` (not cropped; sizes differ).

    Args:
      channels: 3 or 1.

    Returns:
      A list of float32 ``[H, W, channels]`` arrays in [0, 1], in :func:`photo_names` order.
    """
    return [np.array(_photo(name, channels), dtype=np.float32) for name in photo_names("test", channels)]
