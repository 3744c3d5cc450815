"""The dataset registry and the tf.data pipeline every image source goes through.

A *source* is a function registered under a name that returns the raw data of one split;
:func:`load` turns it into a batched ``tf.data.Dataset`` of float32 NHWC images in [0, 1]
at the requested size and channel count::

    from tfinverse import data
    ds = data.load("mnist5k", split="train", image_size=32, batch_size=64, seed=0)

Sources return one of:

* a numpy array ``[N, H, W, C]`` (uint8 in [0, 255] or float in [0, 1]): small sources held
  in memory, resized once with cv2;
* a ``tf.data.Dataset`` of single images ``[H, W, C]`` (uint8 or float in [0, 1]): large or
  streaming sources (tfds, folders), resized per element with cv2 via ``tf.numpy_function``;
* a tuple of either, for paired sources (observation, clean), resized alike; a paired
  streaming source may instead return one ``tf.data.Dataset`` of ``(observation, clean)``
  tuples (one decode serves both images).

A loader may declare any of these keyword parameters, which :func:`load` then fills in
from its own arguments (they are never reported as unknown options):

* ``image_size`` / ``channels``: the requested output size and channel count, for sources
  that can produce them directly (a phantom rendered at any size, grey or colour patches);
* ``shuffle_seed``: the shuffle seed (None when not shuffling), for streaming sources that
  shuffle their own file list each epoch -- cheap and complete, unlike a buffer of decoded
  images; :func:`load` then adds no shuffle buffer of its own.

Resizing uses cv2 as the original codebases did: ``interpolation="area"`` by default when
shrinking (no aliasing), ``"bilinear"`` or ``"bicubic"`` on request (igan resized MNIST
bilinearly and CIFAR-10 bicubically). Channels are converted by replicating grey to RGB or
by the ITU-R 601 luma of RGB.
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass
from typing import Callable, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf

from tfinverse.errors import InputError, UnknownNameError, unknown_name

__all__ = [
    "held_out_images",
    "DatasetUnavailableError",
    "SourceInfo",
    "DATA_DIR_ENV",
    "default_data_dir",
    "register_source",
    "available",
    "info",
    "load_arrays",
    "load",
    "resize_images",
    "to_float",
]


class DatasetUnavailableError(FileNotFoundError):
    """A dataset that has no local copy (and may not be downloaded). The message says where
    to put the files or which flag downloads them."""


@dataclass(frozen=True)
class SourceInfo:
    """What a registered source is.

    Attributes:
      name: registry name.
      fn: the loader ``fn(split, **options)``.
      kind: ``"images"`` (single images) or ``"pairs"`` (observation, clean).
      offline: True when the data ships inside an installed package (no files, no network).
      splits: the split names it accepts.
      description: one line for tables and ``--help``.
      interpolation: default cv2 interpolation used when resizing this source.
    """

    name: str
    fn: Callable
    kind: str
    offline: bool
    splits: Tuple[str, ...]
    description: str
    interpolation: str = "area"


_SOURCES: Dict[str, SourceInfo] = {}

DATA_DIR_ENV = "TFINVERSE_DATA_DIR"
"""Environment variable naming the root folder of local dataset copies."""

# Arguments of load() that a loader receives when its signature declares them.
_PIPELINE_ARGS = ("image_size", "channels", "shuffle_seed")

# Element-level shuffle buffer for streaming sources that do not shuffle themselves.
_STREAM_SHUFFLE_BUFFER = 10_000


def default_data_dir(*parts: str) -> str:
    """Where local dataset copies live: ``$TFINVERSE_DATA_DIR`` or ``./data``, plus ``parts``.

    Args:
      *parts: sub-folders, e.g. ``default_data_dir("tfds")``.

    Returns:
      The path (not checked for existence).
    """
    root = os.environ.get(DATA_DIR_ENV) or os.path.join(os.getcwd(), "data")
    return os.path.join(root, *parts)


_CV2_INTERPOLATION = {"nearest": 0, "bilinear": 1, "bicubic": 2, "area": 3, "lanczos": 4}


def register_source(
    name: str,
    *,
    kind: str = "images",
    offline: bool,
    splits: Tuple[str, ...] = ("train", "test"),
    description: str = "",
    interpolation: str = "area",
) -> Callable:
    """Decorator that registers a source loader under ``name``.

    Args:
      name: registry name.
      kind: ``"images"`` or ``"pairs"``.
      offline: whether it needs no files and no network.
      splits: accepted split names.
      description: one line for tables.
      interpolation: default cv2 resize interpolation for this source.

    Returns:
      The decorator (the loader is returned unchanged).
    """
    if kind not in ("images", "pairs"):
        raise ValueError(f"kind must be 'images' or 'pairs', got {kind!r}")
    if interpolation not in _CV2_INTERPOLATION:
        raise ValueError(f"interpolation must be one of {sorted(_CV2_INTERPOLATION)}")

    def decorator(fn: Callable) -> Callable:
        _SOURCES[name] = SourceInfo(name, fn, kind, offline, tuple(splits), description, interpolation)
        return fn

    return decorator


def _ensure_registered() -> None:
    # Importing the package registers every source module.
    import tfinverse.data  # noqa: F401


def available(offline_only: bool = False) -> Tuple[str, ...]:
    """Sorted names of the registered sources (only the offline ones if asked)."""
    _ensure_registered()
    return tuple(sorted(n for n, s in _SOURCES.items() if s.offline or not offline_only))


def _looks_like_path(name: str) -> bool:
    return any(sep in name for sep in ("/", "\\", os.sep)) or name.startswith(("~", ".")) or "." in name


def info(name: str) -> SourceInfo:
    """The :class:`SourceInfo` of a source.

    Raises:
      UnknownNameError: (a ``KeyError``) for an unknown name, listing the known ones; a name
        that looks like a path is reported as a missing file or folder instead.
    """
    _ensure_registered()
    try:
        return _SOURCES[name]
    except KeyError:
        if _looks_like_path(str(name)):
            what = "is not a folder" if os.path.isfile(name) else "does not exist"
            raise UnknownNameError(
                f"{name} {what}: expected a folder of images or a registered dataset "
                f"({', '.join(available())})"
            ) from None
        raise unknown_name("dataset", name, available()) from None


def to_float(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] or float [0, 1] -> float32 [0, 1]; adds a channel axis to [N, H, W]."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"images must be [N, H, W, C] or [N, H, W], got shape {images.shape}")
    if images.dtype == np.uint8:
        return images.astype(np.float32) / 255.0
    if images.dtype == bool:
        return images.astype(np.float32)
    images = images.astype(np.float32)
    if images.size and (images.min() < -1e-6 or images.max() > 1 + 1e-6):
        raise ValueError(f"float images must lie in [0, 1], got [{images.min():.3g}, {images.max():.3g}]")
    return np.clip(images, 0.0, 1.0)


def _convert_channels(images: np.ndarray, channels: Optional[int]) -> np.ndarray:
    have = images.shape[-1]
    if channels is None or channels == have:
        return images
    if have == 1 and channels == 3:
        return np.repeat(images, 3, axis=-1)
    if have == 4 and channels == 3:
        return images[..., :3]
    if have in (3, 4) and channels == 1:
        luma = images[..., 0] * 0.299 + images[..., 1] * 0.587 + images[..., 2] * 0.114
        return luma[..., None].astype(np.float32)
    raise ValueError(f"cannot convert {have} channels to {channels}")


def resize_images(
    images: np.ndarray,
    image_size=None,
    channels: Optional[int] = None,
    interpolation: str = "area",
) -> np.ndarray:
    """Resizes a batch with cv2 and converts channels.

    Args:
      images: ``[N, H, W, C]`` (or ``[N, H, W]``) uint8 or float in [0, 1].
      image_size: an int (square) or ``(height, width)``; None keeps the size.
      channels: 1 or 3; None keeps the channel count.
      interpolation: ``"area"``, ``"bilinear"``, ``"bicubic"``, ``"nearest"`` or ``"lanczos"``.

    Returns:
      float32 ``[N, h, w, channels]`` in [0, 1] (bicubic overshoot is clipped).
    """
    images = to_float(images)
    if image_size is not None:
        h, w = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)
        if (h, w) != images.shape[1:3]:
            import cv2

            flag = _CV2_INTERPOLATION[interpolation]
            out = np.empty((images.shape[0], h, w, images.shape[-1]), np.float32)
            for i, im in enumerate(images):
                r = cv2.resize(im, (w, h), interpolation=flag)
                out[i] = r.reshape(h, w, -1)
            images = np.clip(out, 0.0, 1.0)
    return _convert_channels(images, channels)


def _resize_stream(ds: tf.data.Dataset, image_size, channels, interpolation) -> tf.data.Dataset:
    h, w = (None, None)
    if image_size is not None:
        h, w = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)

    def resize_one(image):
        out = tf.numpy_function(
            lambda im: resize_images(im[None], image_size, channels, interpolation)[0],
            [image],
            tf.float32,
        )
        c = channels if channels is not None else image.shape[-1]
        out.set_shape((h, w, c))
        return out

    def fn(*images):
        resized = tuple(resize_one(image) for image in images)
        return resized[0] if len(resized) == 1 else resized

    return ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE)


def load_arrays(name: str, split: str = "train", image_size=None, channels=None, interpolation=None, **options):
    """Loads an in-memory source as float32 numpy arrays at the requested size.

    Args:
      name: a registered source that returns arrays.
      split: split name.
      image_size: int or (height, width); None keeps the source's size.
      channels: 1 or 3; None keeps the source's channels.
      interpolation: cv2 interpolation; None uses the source's default.
      **options: passed to the source (e.g. ``data_dir``, ``download``).

    Returns:
      ``[N, h, w, c]`` float32 in [0, 1], or a tuple of two such arrays for paired sources.
    """
    src = info(name)
    raw = _call_source(src, split, options, image_size=image_size, channels=channels)
    interp = interpolation or src.interpolation
    if isinstance(raw, tuple):
        return tuple(resize_images(r, image_size, channels, interp) for r in raw)
    if isinstance(raw, tf.data.Dataset):
        raise ValueError(f"dataset {name!r} streams from disk; use tfinverse.data.load() instead")
    return resize_images(raw, image_size, channels, interp)


def _accepts(src: SourceInfo, parameter: str) -> bool:
    return parameter in inspect.signature(src.fn).parameters


def _call_source(src: SourceInfo, split: str, options: dict, **pipeline):
    if split not in src.splits:
        raise ValueError(f"dataset {src.name!r} has splits {src.splits}, not {split!r}")
    accepted = inspect.signature(src.fn).parameters
    unknown = [k for k in options if k not in accepted and options[k] is not None]
    if unknown and not any(p.kind == p.VAR_KEYWORD for p in accepted.values()):
        takes = [k for k in list(accepted)[1:] if k not in _PIPELINE_ARGS]
        raise TypeError(f"dataset {src.name!r} takes no option(s) {unknown}; it takes {takes}")
    kwargs = {k: v for k, v in options.items() if k in accepted}
    for key, value in pipeline.items():
        if key in accepted and value is not None and key not in kwargs:
            kwargs[key] = value
    return src.fn(split, **kwargs)


def load(
    name: str,
    split: str = "train",
    image_size=None,
    channels: Optional[int] = None,
    batch_size: Optional[int] = 64,
    shuffle: bool = True,
    seed: int = 0,
    cache: bool = False,
    repeat: bool = False,
    drop_remainder: bool = False,
    interpolation: Optional[str] = None,
    **options,
) -> tf.data.Dataset:
    """A tf.data pipeline of float32 NHWC images in [0, 1] from a registered source.

    Args:
      name: a name from :func:`available`.
      split: ``"train"`` or ``"test"`` (the fixed held-out splits of
        :mod:`tfinverse.data.splits`), or another split the source lists.
      image_size: int or (height, width); None keeps the source's size.
      channels: 1 or 3; None keeps the source's channels.
      batch_size: batch size; None yields single images.
      shuffle: shuffle, seeded by ``seed`` and reshuffled every epoch: in-memory sources
        with a buffer of the whole split; streaming sources that declare ``shuffle_seed``
        shuffle their whole file list themselves; other streaming sources use a buffer
        of 10 000 decoded images. With ``cache`` the shuffle follows the cache, over the
        whole cached split.
      seed: shuffle seed.
      cache: cache decoded, resized images in memory after the first pass.
      repeat: repeat forever.
      drop_remainder: drop the last incomplete batch.
      interpolation: cv2 interpolation; None uses the source's default.
      **options: source options such as ``data_dir``, ``manual_dir``, ``download``.

    Returns:
      A ``tf.data.Dataset`` of ``[batch, h, w, c]`` float32 tensors, or of
      ``(observation, clean)`` tuples for paired sources; prefetched with AUTOTUNE.

    Raises:
      DatasetUnavailableError: no local copy of a dataset that needs files.
    """
    src = info(name)
    self_shuffling = _accepts(src, "shuffle_seed")
    # A cached pipeline replays its first pass, so a source must not shuffle before the
    # cache: the shuffle then comes after it, over the whole cached split.
    source_seed = seed if shuffle and not cache else None
    raw = _call_source(
        src, split, options, image_size=image_size, channels=channels, shuffle_seed=source_seed
    )
    interp = interpolation or src.interpolation
    parts = raw if isinstance(raw, tuple) else (raw,)
    if all(isinstance(p, tf.data.Dataset) for p in parts):
        streams = [_resize_stream(p, image_size, channels, interp) for p in parts]
        ds = streams[0] if len(streams) == 1 else tf.data.Dataset.zip(tuple(streams))
        buffer = 0 if self_shuffling and source_seed is not None else _STREAM_SHUFFLE_BUFFER
    else:
        arrays = [resize_images(p, image_size, channels, interp) for p in parts]
        ds = tf.data.Dataset.from_tensor_slices(arrays[0] if len(arrays) == 1 else tuple(arrays))
        buffer = len(arrays[0])
    if cache:
        ds = ds.cache()
        size = int(ds.cardinality())
        if size > 0:
            buffer = max(buffer, size)
    if shuffle and buffer > 0:
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
    if batch_size is not None:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
    return ds.prefetch(tf.data.AUTOTUNE)


def held_out_images(spec: str, n: int, image_shape, data_dir=None) -> np.ndarray:
    """``n`` held-out images evenly spaced through a source's test split, or through a folder.

    Evenly spaced rather than the first ``n``: held-out splits are often ordered by class
    (mnist5k is), and a small evaluation set should still cover every class.

    Args:
      spec: a registered source with arrays (its ``"test"`` split is used) or a folder of
        images (all of it, in sorted order).
      n: how many images.
      image_shape: ``(height, width, channels)`` to load them at.
      data_dir: folder of local dataset copies, for sources that are not offline.

    Returns:
      float32 ``[n, height, width, channels]`` in ``[0, 1]``.

    Raises:
      ValueError: ``n`` is not positive, or the source holds fewer than ``n`` images.
      DatasetUnavailableError: the source has no local copy.
    """
    from pathlib import Path

    if isinstance(n, bool) or int(n) != n or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    height, width, channels = (int(v) for v in image_shape)
    if Path(spec).is_dir():
        from tfinverse.data.folders import read_folder_images

        arrays = read_folder_images(spec, int(n), (height, width), channels)
    else:
        options = {"data_dir": data_dir} if data_dir and not info(spec).offline else {}
        arrays = load_arrays(spec, split="test", image_size=(height, width), channels=channels, **options)
    if len(arrays) < n:
        raise InputError(f"{spec} has {len(arrays)} held-out images, {n} requested")
    picks = np.linspace(0, len(arrays) - 1, int(n)).round().astype(int)
    return np.asarray(arrays[picks], dtype=np.float32)
