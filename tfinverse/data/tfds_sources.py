"""Image sources read from local tensorflow-datasets copies: mnist, cifar10, celeb_a, voc.

tensorflow-datasets is imported inside the loaders only. Copies live under ``data_dir``
(default ``$TFINVERSE_DATA_DIR/tfds``, else ``./data/tfds``) in tfds's own layout,
``<data_dir>/<name>[/<config>]/<version>/``; files that tfds asks users to fetch by hand
go in ``manual_dir`` (default ``<data_dir>/downloads/manual``).

With ``download=False`` (the default) a loader checks that a prepared copy exists before
anything that could reach the network (``tfds.load`` of a missing dataset retries the
network for minutes on an offline machine) and raises :class:`DatasetUnavailableError` at
once, naming the folder the copy must be in. ``download=True`` (``--download`` in the
scripts) downloads and prepares it there.
"""

from __future__ import annotations

import os
from typing import Optional

import tensorflow as tf

from tfinverse.data.registry import DatasetUnavailableError, default_data_dir, register_source

__all__ = [
    "TFDS_NAMES",
    "tfds_builder",
    "tfds_images",
    "mnist",
    "cifar10",
    "celeb_a",
    "voc",
]

TFDS_NAMES = {"mnist": "mnist", "cifar10": "cifar10", "celeb_a": "celeb_a", "voc": "voc/2012"}
"""Registry name -> tensorflow-datasets name (with config)."""

# tfinverse split name -> tfds split name.
_SPLIT_NAMES = {"train": "train", "valid": "validation", "test": "test"}


def _resolve_dirs(data_dir: Optional[str], manual_dir: Optional[str]):
    data_dir = os.path.abspath(os.path.expanduser(data_dir or default_data_dir("tfds")))
    manual_dir = manual_dir or os.path.join(data_dir, "downloads", "manual")
    return data_dir, os.path.abspath(os.path.expanduser(manual_dir))


def tfds_builder(
    tfds_name: str,
    data_dir: Optional[str] = None,
    manual_dir: Optional[str] = None,
    download: bool = False,
):
    """A tfds builder whose data is prepared in ``data_dir``, checked without the network.

    Args:
      tfds_name: tensorflow-datasets name, e.g. ``"mnist"`` or ``"voc/2012"``.
      data_dir: root of the tfds copies; None uses ``default_data_dir("tfds")``.
      manual_dir: folder of manually downloaded files; None uses
        ``<data_dir>/downloads/manual``.
      download: download and prepare the dataset when it is missing.

    Returns:
      A prepared ``tfds.core.DatasetBuilder``.

    Raises:
      DatasetUnavailableError: no prepared copy and ``download`` is False. The message names
        the folder the copy must be in.
    """
    import tensorflow_datasets as tfds

    data_dir, manual_dir = _resolve_dirs(data_dir, manual_dir)
    # Constructing a builder of a registered dataset only reads local files.
    builder = tfds.builder(tfds_name, data_dir=data_dir)
    if builder.is_prepared():
        return builder
    if not download:
        dataset_root = os.path.join(data_dir, tfds_name.split("/")[0])
        found = ""
        if os.path.isdir(dataset_root):
            entries = sorted(os.listdir(dataset_root))
            found = f" (found {entries} under {dataset_root}, not a prepared version {builder.version})"
        raise DatasetUnavailableError(
            f"no prepared tensorflow-datasets copy of {tfds_name!r} {builder.version} at "
            f"{builder.data_dir}{found}. Put it there: the folder must hold dataset_info.json, "
            f"features.json and the *.tfrecord* shards (copy <tfds data_dir>/{tfds_name}/"
            f"{builder.version} from a machine that has it, or run `tfds build {tfds_name} "
            f"--data_dir {data_dir}` there); files tfds wants fetched by hand go in {manual_dir}. "
            f"Or pass download=True (--download) to download and prepare it; set data_dir= or "
            f"$TFINVERSE_DATA_DIR to use another root."
        )
    builder.download_and_prepare(download_config=tfds.download.DownloadConfig(manual_dir=manual_dir))
    return builder


def tfds_images(
    tfds_name: str,
    split: str,
    data_dir: Optional[str] = None,
    manual_dir: Optional[str] = None,
    download: bool = False,
    shuffle_seed: Optional[int] = None,
    shuffle_buffer: int = 10_000,
) -> tf.data.Dataset:
    """The uint8 images of one split of a local tfds copy.

    Args:
      tfds_name: tensorflow-datasets name.
      split: ``"train"``, ``"valid"`` or ``"test"``.
      data_dir: root of the tfds copies (see :func:`tfds_builder`).
      manual_dir: folder of manually downloaded files.
      download: download and prepare a missing copy.
      shuffle_seed: None reads in file order; an int shuffles the shard files and then the
        images with a buffer of ``shuffle_buffer``, reshuffled every epoch.
      shuffle_buffer: images held by the shuffle buffer.

    Returns:
      A ``tf.data.Dataset`` of uint8 ``[H, W, C]`` images.

    Raises:
      DatasetUnavailableError: no prepared copy and ``download`` is False.
      ValueError: a split the copy does not have.
    """
    import tensorflow_datasets as tfds

    if split not in _SPLIT_NAMES:
        raise ValueError(f"split must be one of {tuple(_SPLIT_NAMES)}, got {split!r}")
    builder = tfds_builder(tfds_name, data_dir, manual_dir, download)
    tfds_split = _SPLIT_NAMES[split]
    known = builder.info.splits
    if known and tfds_split not in known:
        raise ValueError(f"{tfds_name!r} has splits {sorted(known)}, not {tfds_split!r}")
    shuffle = shuffle_seed is not None
    ds = builder.as_dataset(
        split=tfds_split,
        shuffle_files=shuffle,
        read_config=tfds.ReadConfig(shuffle_seed=shuffle_seed),
    )
    ds = ds.map(lambda example: example["image"], num_parallel_calls=tf.data.AUTOTUNE)
    if shuffle:
        ds = ds.shuffle(shuffle_buffer, seed=shuffle_seed, reshuffle_each_iteration=True)
    return ds


def _center_crop(image: tf.Tensor, size: int) -> tf.Tensor:
    # Top-left corner at floor((H - size) / 2), floor((W - size) / 2), as celeba_folder does.
    shape = tf.shape(image)
    top, left = (shape[0] - size) // 2, (shape[1] - size) // 2
    return tf.image.crop_to_bounding_box(image, top, left, size, size)


@register_source(
    "mnist",
    offline=False,
    splits=("train", "test"),
    description="MNIST 28x28x1 from a local tensorflow-datasets copy (60000 / 10000)",
    interpolation="bilinear",
)
def mnist(
    split: str,
    data_dir: Optional[str] = None,
    download: bool = False,
    shuffle_seed: Optional[int] = None,
) -> tf.data.Dataset:
    """MNIST from tensorflow-datasets; resized bilinearly by default, as igan did.

    Args:
      split: ``"train"`` or ``"test"`` (the official splits).
      data_dir: root of the tfds copies.
      download: download and prepare a missing copy.
      shuffle_seed: filled in by ``load``.

    Returns:
      A dataset of uint8 ``[28, 28, 1]`` images.
    """
    return tfds_images(TFDS_NAMES["mnist"], split, data_dir, None, download, shuffle_seed)


@register_source(
    "cifar10",
    offline=False,
    splits=("train", "test"),
    description="CIFAR-10 32x32x3 from a local tensorflow-datasets copy (50000 / 10000)",
    interpolation="bicubic",
)
def cifar10(
    split: str,
    data_dir: Optional[str] = None,
    download: bool = False,
    shuffle_seed: Optional[int] = None,
) -> tf.data.Dataset:
    """CIFAR-10 from tensorflow-datasets; resized bicubically by default, as igan did.

    Args:
      split: ``"train"`` or ``"test"`` (the official splits).
      data_dir: root of the tfds copies.
      download: download and prepare a missing copy.
      shuffle_seed: filled in by ``load``.

    Returns:
      A dataset of uint8 ``[32, 32, 3]`` images.
    """
    return tfds_images(TFDS_NAMES["cifar10"], split, data_dir, None, download, shuffle_seed)


@register_source(
    "celeb_a",
    offline=False,
    splits=("train", "valid", "test"),
    description="CelebA aligned faces from a local tensorflow-datasets copy, centre-cropped",
    interpolation="bilinear",
)
def celeb_a(
    split: str,
    data_dir: Optional[str] = None,
    manual_dir: Optional[str] = None,
    download: bool = False,
    center_crop: Optional[int] = 108,
    shuffle_seed: Optional[int] = None,
    shuffle_buffer: int = 1_000,
) -> tf.data.Dataset:
    """CelebA (218x178 aligned faces) from tensorflow-datasets, centre-cropped.

    DCGAN and Ambient VAE-GAN cropped the central 108x108 square and resized it to 64x64;
    resizing is bilinear by default (their image library's default).

    Args:
      split: ``"train"``, ``"valid"`` or ``"test"`` (the official partition).
      data_dir: root of the tfds copies.
      manual_dir: folder of manually downloaded files.
      download: download and prepare a missing copy.
      center_crop: side of the central square kept; None keeps the whole image.
      shuffle_seed: filled in by ``load``.
      shuffle_buffer: images in the shuffle buffer (after shard shuffling); kept small
        because CelebA images are large.

    Returns:
      A dataset of uint8 ``[center_crop, center_crop, 3]`` (or ``[218, 178, 3]``) images.
    """
    if center_crop is not None and not 1 <= center_crop <= 178:
        raise ValueError(f"center_crop must lie in [1, 178] for 218x178 CelebA images, got {center_crop}")
    ds = tfds_images(
        TFDS_NAMES["celeb_a"], split, data_dir, manual_dir, download, shuffle_seed, shuffle_buffer
    )
    if center_crop is not None:
        ds = ds.map(lambda image: _center_crop(image, center_crop), num_parallel_calls=tf.data.AUTOTUNE)
    return ds


@register_source(
    "voc",
    offline=False,
    splits=("train", "valid", "test"),
    description="PASCAL VOC 2012 photographs from a local tensorflow-datasets copy",
)
def voc(
    split: str,
    data_dir: Optional[str] = None,
    manual_dir: Optional[str] = None,
    download: bool = False,
    year: str = "2012",
    shuffle_seed: Optional[int] = None,
    shuffle_buffer: int = 1_000,
) -> tf.data.Dataset:
    """PASCAL VOC photographs (LIR trained Gaussian denoising on VOC images).

    The images have different sizes: give ``load`` an ``image_size`` to batch them.

    Args:
      split: ``"train"``, ``"valid"`` or ``"test"`` (tfds's VOC splits).
      data_dir: root of the tfds copies.
      manual_dir: folder of manually downloaded files.
      download: download and prepare a missing copy.
      year: ``"2012"`` or ``"2007"`` (the tfds config).
      shuffle_seed: filled in by ``load``.
      shuffle_buffer: images in the shuffle buffer (after shard shuffling).

    Returns:
      A dataset of uint8 ``[H, W, 3]`` images.
    """
    if str(year) not in ("2007", "2012"):
        raise ValueError(f"year must be '2007' or '2012', got {year!r}")
    return tfds_images(f"voc/{year}", split, data_dir, manual_dir, download, shuffle_seed, shuffle_buffer)
