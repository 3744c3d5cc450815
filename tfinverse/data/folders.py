"""Image sources read from folders on disk: ``folder``, ``celeba_folder`` and ``rain_pairs``.

Files are listed once (sorted, so every run sees the same order), then streamed through
tf.data and decoded with cv2 per element. Folders default to sub-folders of
``$TFINVERSE_DATA_DIR`` (else ``./data``): ``images/``, ``celeba/`` and ``rain/``.
``data/README.md`` shows the expected layouts.

A missing folder raises :class:`DatasetUnavailableError` naming the path and the layout it
should have; an unreadable image raises an error naming the file when it is reached.
"""

from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tfinverse.data import splits
from tfinverse.data.registry import DatasetUnavailableError, default_data_dir, register_source
from tfinverse.errors import InputError

__all__ = [
    "IMAGE_EXTENSIONS",
    "CELEBA_PARTITIONS",
    "list_images",
    "read_image",
    "read_folder_images",
    "center_crop_image",
    "split_side_by_side",
    "folder",
    "celeba_folder",
    "rain_pairs",
]

IMAGE_EXTENSIONS: Tuple[str, ...] = (".png", ".jpg", ".jpeg", ".bmp")
"""File endings read as images (case-insensitive)."""

CELEBA_PARTITIONS = {"train": 0, "valid": 1, "test": 2}
"""Codes of ``list_eval_partition.txt``."""

_FOLDER_SPLITS = ("train", "test", "all")
_SPLIT_FOLDER_NAMES = {"train": ("train", "training"), "test": ("test", "testing", "test_syn")}


def list_images(root: str, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> List[str]:
    """Image files under ``root``, recursively, as sorted relative paths with ``/``.

    Hidden files and folders (names starting with ``.``) are skipped.

    Args:
      root: folder to search.
      extensions: accepted endings, e.g. ``(".png", ".jpg")`` (case-insensitive).

    Returns:
      Sorted relative paths.
    """
    endings = tuple(e.lower() for e in extensions)
    found = []
    for current, subdirs, files in os.walk(root):
        subdirs[:] = [d for d in subdirs if not d.startswith(".")]
        rel_dir = os.path.relpath(current, root)
        for name in files:
            if name.startswith(".") or not name.lower().endswith(endings):
                continue
            rel = name if rel_dir == "." else os.path.join(rel_dir, name)
            found.append(rel.replace(os.sep, "/"))
    return sorted(found)


def read_image(path: str) -> np.ndarray:
    """Decodes an image file with cv2 to RGB float32 in [0, 1].

    Grey images are replicated to three channels and alpha is dropped; 8- and 16-bit files
    are scaled by 255 and 65535.

    Args:
      path: image file.

    Returns:
      float32 ``[H, W, 3]``.

    Raises:
      InputError: (a ``ValueError``) the file is missing or cannot be decoded (the message
        names it).
    """
    import cv2

    try:
        encoded = np.fromfile(path, dtype=np.uint8)  # handles non-ASCII paths, unlike imread
    except OSError as error:
        raise InputError(f"cannot read image file {path}: {error.strerror or error}") from None
    image = _quiet_decode(cv2, encoded) if encoded.size else None
    if image is None:
        raise InputError(
            f"cannot decode image file {path}: not a readable PNG, JPEG or BMP image; replace or remove it"
        )
    if image.dtype == np.uint8:
        scale = 255.0
    elif image.dtype == np.uint16:
        scale = 65535.0
    else:
        raise ValueError(f"image file {path} has unsupported pixel type {image.dtype}")
    if image.ndim == 2:
        image = image[..., None]
    if image.shape[-1] == 1:
        image = np.repeat(image, 3, axis=-1)
    elif image.shape[-1] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    else:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return image.astype(np.float32) / np.float32(scale)


def _quiet_decode(cv2, encoded: np.ndarray):
    """``cv2.imdecode`` without OpenCV's own log lines for a broken file (the caller says it)."""
    logging = getattr(getattr(cv2, "utils", None), "logging", None)
    if logging is None:
        return cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    level = logging.getLogLevel()
    logging.setLogLevel(logging.LOG_LEVEL_SILENT)
    try:
        return cv2.imdecode(encoded, cv2.IMREAD_UNCHANGED)
    finally:
        logging.setLogLevel(level)


def read_folder_images(root: str, n: int, image_size, channels: int, extensions=IMAGE_EXTENSIONS) -> np.ndarray:
    """The first ``n`` images of a folder in sorted path order, decoded at once, resized.

    The in-memory counterpart of the ``folder`` source with ``split="all"`` (same order,
    same area resizing), for scripts that evaluate a few images: a file that cannot be read
    is reported by name before any work starts.

    Args:
      root: the folder (searched recursively, hidden entries skipped).
      n: how many images (the first ``n`` sorted paths; fewer if the folder has fewer).
      image_size: an int or ``(height, width)``.
      channels: 1 or 3.
      extensions: accepted file endings.

    Returns:
      float32 ``[min(n, count), h, w, channels]`` in [0, 1].

    Raises:
      DatasetUnavailableError: the folder is missing or holds no images.
      InputError: a file cannot be decoded.
    """
    from tfinverse.data.registry import resize_images

    root = os.path.abspath(os.path.expanduser(root))
    _require_dir(root, "folder", _FOLDER_LAYOUT)
    paths = list_images(root, extensions)[: int(n)]
    if not paths:
        raise DatasetUnavailableError(
            f"folder: no {'/'.join(extensions)} images under {root}. Expected layout:\n{_FOLDER_LAYOUT}"
        )
    images = [resize_images(read_image(os.path.join(root, p))[None], image_size, channels) for p in paths]
    return np.concatenate(images).astype(np.float32)


def center_crop_image(image: np.ndarray, size: int, name: str = "image") -> np.ndarray:
    """The central ``size x size`` square, top-left corner at ``floor((H - size) / 2)``,
    ``floor((W - size) / 2)`` (CelebA 218x178 -> rows 55..162, columns 35..142 for 108).

    Args:
      image: ``[H, W, C]``.
      size: side of the square.
      name: what to call the image in errors (e.g. its file name).

    Returns:
      ``[size, size, C]``.

    Raises:
      ValueError: the image is smaller than the square.
    """
    height, width = image.shape[:2]
    if size > height or size > width:
        raise ValueError(f"{name} is {height}x{width}, smaller than center_crop={size}")
    top, left = (height - size) // 2, (width - size) // 2
    return image[top : top + size, left : left + size]


def split_side_by_side(image: np.ndarray, rainy_half: str = "right", name: str = "image"):
    """Cuts a side-by-side pair image into its (rainy, clean) halves.

    Args:
      image: ``[H, 2W, C]``.
      rainy_half: ``"right"`` or ``"left"``: which half holds the rainy image.
      name: what to call the image in errors.

    Returns:
      ``(rainy, clean)``, each ``[H, W, C]``.

    Raises:
      ValueError: an odd width or a bad ``rainy_half``.
    """
    if rainy_half not in ("left", "right"):
        raise ValueError(f"rainy_half must be 'left' or 'right', got {rainy_half!r}")
    width = image.shape[1]
    if width % 2:
        raise ValueError(f"{name} is {width} pixels wide; a side-by-side pair needs an even width")
    left, right = image[:, : width // 2], image[:, width // 2 :]
    return (right, left) if rainy_half == "right" else (left, right)


def _image_dataset(paths, shuffle_seed: Optional[int], decode, n_outputs: int = 1) -> tf.data.Dataset:
    """Streams ``decode(path)`` over a list of paths, or ``decode(path_a, path_b)`` over a
    tuple of two equal-length lists; ``decode`` returns ``n_outputs`` RGB float32 arrays."""
    count = len(paths[0]) if isinstance(paths, tuple) else len(paths)
    ds = tf.data.Dataset.from_tensor_slices(paths)
    if shuffle_seed is not None:  # shuffling names is cheap, so shuffle all of them
        ds = ds.shuffle(count, seed=shuffle_seed, reshuffle_each_iteration=True)

    def to_python(*encoded):
        decoded = decode(*[os.fsdecode(e) for e in encoded])
        decoded = decoded if n_outputs > 1 else (decoded,)
        return [np.ascontiguousarray(image, dtype=np.float32) for image in decoded]

    def fn(*path_tensors):
        out = tf.numpy_function(to_python, list(path_tensors), [tf.float32] * n_outputs)
        for tensor in out:
            tensor.set_shape((None, None, 3))
        return out[0] if n_outputs == 1 else tuple(out)

    return ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE)


def _require_dir(path: str, what: str, layout: str) -> str:
    if not os.path.isdir(path):
        raise DatasetUnavailableError(f"{what}: no folder {path}. Expected layout:\n{layout}")
    return path


def _select(paths: List[str], split: str, every: int, root: str) -> List[str]:
    chosen = [paths[i] for i in splits.every_nth_split(len(paths), split, every)]
    if not chosen:
        raise ValueError(
            f"the {split!r} split of {root} is empty: {len(paths)} file(s), every {every}th sorted "
            f"path is test; use split='all' or a smaller test_every"
        )
    return chosen


_FOLDER_LAYOUT = """  <data_dir>/            (default $TFINVERSE_DATA_DIR/images or ./data/images)
    a.png, b.jpg, ...     images in any sub-folders, .png/.jpg/.jpeg/.bmp"""


@register_source(
    "folder",
    offline=False,
    splits=_FOLDER_SPLITS,
    description="a folder of images (recursive); every 10th sorted path is test",
)
def folder(
    split: str,
    data_dir: Optional[str] = None,
    test_every: int = 10,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
    shuffle_seed: Optional[int] = None,
) -> tf.data.Dataset:
    """Every image under a folder, split by sorted relative path.

    Rule: sort the relative paths; positions ``test_every - 1``, ``2 * test_every - 1``, ...
    are test, the others train (:func:`tfinverse.data.splits.every_nth_split`).
    Images of different sizes need an ``image_size`` in ``load`` to be batched.

    Args:
      split: ``"train"``, ``"test"`` or ``"all"``.
      data_dir: the folder; None uses ``default_data_dir("images")``.
      test_every: test period of the split rule.
      extensions: accepted file endings.
      shuffle_seed: filled in by ``load``: shuffles the whole file list every epoch.

    Returns:
      A dataset of float32 ``[H, W, 3]`` images in [0, 1].

    Raises:
      DatasetUnavailableError: the folder is missing or holds no images.
      ValueError: the requested split is empty.
    """
    root = os.path.abspath(os.path.expanduser(data_dir or default_data_dir("images")))
    _require_dir(root, "folder", _FOLDER_LAYOUT)
    paths = list_images(root, extensions)
    if not paths:
        raise DatasetUnavailableError(
            f"folder: no {'/'.join(extensions)} images under {root}. Expected layout:\n{_FOLDER_LAYOUT}"
        )
    chosen = [os.path.join(root, p) for p in _select(paths, split, test_every, root)]
    return _image_dataset(chosen, shuffle_seed, read_image)


_CELEBA_LAYOUT = """  <data_dir>/            (default $TFINVERSE_DATA_DIR/celeba or ./data/celeba)
    img_align_celeba/000001.jpg ... 202599.jpg
    list_eval_partition.txt   lines "000001.jpg 0" (0 train, 1 valid, 2 test)
  (Img/img_align_celeba/ and Eval/list_eval_partition.txt of the official download, or the
  nested img_align_celeba/img_align_celeba/ and list_eval_partition.csv of other mirrors,
  are found too)"""


def _first_existing(candidates, is_dir: bool) -> Optional[str]:
    check = os.path.isdir if is_dir else os.path.isfile
    return next((c for c in candidates if check(c)), None)


def _read_partition(path: str) -> List[Tuple[str, int]]:
    entries = []
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, 1):
            fields = line.replace(",", " ").split()
            if not fields:
                continue
            if len(fields) != 2 or not fields[1].isdigit():
                if line_number == 1:  # a CSV header such as "image_id,partition"
                    continue
                raise ValueError(f"{path}, line {line_number}: expected '<file> <0|1|2>', got {line.strip()!r}")
            entries.append((fields[0], int(fields[1])))
    return entries


@register_source(
    "celeba_folder",
    offline=False,
    splits=("train", "valid", "test", "all"),
    description="CelebA img_align_celeba/ + list_eval_partition.txt, centre-cropped",
    interpolation="bilinear",
)
def celeba_folder(
    split: str,
    data_dir: Optional[str] = None,
    center_crop: Optional[int] = 108,
    shuffle_seed: Optional[int] = None,
) -> tf.data.Dataset:
    """CelebA aligned faces from the official folder layout, centre-cropped.

    DCGAN and Ambient VAE-GAN cropped the central 108x108 square of the 218x178 faces and
    resized it to 64x64; resizing is bilinear by default (their image library's default).

    Args:
      split: ``"train"`` (partition 0), ``"valid"`` (1), ``"test"`` (2) or ``"all"``
        (every listed image, or every .jpg/.png when there is no partition file).
      data_dir: the CelebA folder; None uses ``default_data_dir("celeba")``.
      center_crop: side of the central square kept; None keeps whole images.
      shuffle_seed: filled in by ``load``: shuffles the whole file list every epoch.

    Returns:
      A dataset of float32 ``[center_crop, center_crop, 3]`` images in [0, 1].

    Raises:
      DatasetUnavailableError: the folder, the images or the partition file are missing.
    """
    root = os.path.abspath(os.path.expanduser(data_dir or default_data_dir("celeba")))
    _require_dir(root, "celeba_folder", _CELEBA_LAYOUT)
    image_dir = _first_existing(
        [os.path.join(root, *parts) for parts in
         (("img_align_celeba", "img_align_celeba"), ("img_align_celeba",), ("Img", "img_align_celeba"))],
        is_dir=True,
    )
    if image_dir is None:
        raise DatasetUnavailableError(
            f"celeba_folder: no img_align_celeba/ folder in {root}. Expected layout:\n{_CELEBA_LAYOUT}"
        )
    partition_file = _first_existing(
        [os.path.join(root, "list_eval_partition.txt"), os.path.join(root, "Eval", "list_eval_partition.txt"),
         os.path.join(root, "list_eval_partition.csv")],
        is_dir=False,
    )
    if partition_file is None:
        if split != "all":
            raise DatasetUnavailableError(
                f"celeba_folder: no list_eval_partition.txt in {root}, needed for split {split!r} "
                f"(split='all' reads every image). Expected layout:\n{_CELEBA_LAYOUT}"
            )
        names = list_images(image_dir, (".jpg", ".png"))
    else:
        entries = _read_partition(partition_file)
        names = [n for n, part in entries if split == "all" or part == CELEBA_PARTITIONS[split]]
        present = set(os.listdir(image_dir))
        missing = [n for n in names if n not in present]
        if missing:
            raise DatasetUnavailableError(
                f"celeba_folder: {len(missing)} image(s) of the {split!r} split listed in "
                f"{partition_file} are missing from {image_dir} (e.g. {missing[:3]})"
            )
    if not names:
        raise DatasetUnavailableError(f"celeba_folder: the {split!r} split of {root} holds no images")

    def decode(path: str) -> np.ndarray:
        image = read_image(path)
        return image if center_crop is None else center_crop_image(image, center_crop, path)

    return _image_dataset([os.path.join(image_dir, n) for n in names], shuffle_seed, decode)


_RAIN_LAYOUT = """  <data_dir>/            (default $TFINVERSE_DATA_DIR/rain or ./data/rain)
    train/ and test/      optional split folders (also training/, testing/, test_syn/)
      1.jpg, 2.jpg, ...   side-by-side pairs: clean | rainy (rainy_half='right')
    or
      rainy/x.png, clean/x.png   two folders with matching file names"""


def _split_base(root: str, split: str) -> List[str]:
    # Split folders, if any exist, define the split; otherwise the sorted-path rule does.
    found = {s: _first_existing([os.path.join(root, n) for n in names], is_dir=True)
             for s, names in _SPLIT_FOLDER_NAMES.items()}
    if not any(found.values()):
        return []
    if split == "all":
        return [d for d in found.values() if d]
    if found[split] is None:
        raise DatasetUnavailableError(
            f"rain_pairs: {root} has split folders but none named {'/'.join(_SPLIT_FOLDER_NAMES[split])}. "
            f"Expected layout:\n{_RAIN_LAYOUT}"
        )
    return [found[split]]


def _rain_files(base: str, layout: str) -> Tuple[List[str], List[str]]:
    """(rainy paths, clean paths) for the two-folder layout, or (pair paths, []) otherwise."""
    rainy_dir, clean_dir = os.path.join(base, "rainy"), os.path.join(base, "clean")
    if layout == "auto":
        layout = "folders" if os.path.isdir(rainy_dir) and os.path.isdir(clean_dir) else "side_by_side"
    if layout == "side_by_side":
        return [os.path.join(base, p) for p in list_images(base)], []
    for path in (rainy_dir, clean_dir):
        _require_dir(path, "rain_pairs", _RAIN_LAYOUT)
    rainy = {os.path.splitext(p)[0]: p for p in list_images(rainy_dir)}
    clean = {os.path.splitext(p)[0]: p for p in list_images(clean_dir)}
    unmatched = sorted(set(rainy) ^ set(clean))
    if unmatched:
        raise ValueError(
            f"rain_pairs: {len(unmatched)} file(s) in {rainy_dir} and {clean_dir} have no partner "
            f"with the same name (e.g. {unmatched[:5]})"
        )
    keys = sorted(rainy)
    return [os.path.join(rainy_dir, rainy[k]) for k in keys], [os.path.join(clean_dir, clean[k]) for k in keys]


@register_source(
    "rain_pairs",
    kind="pairs",
    offline=False,
    splits=_FOLDER_SPLITS,
    description="(rainy, clean) pairs: side-by-side images or rainy/ + clean/ folders",
)
def rain_pairs(
    split: str,
    data_dir: Optional[str] = None,
    layout: str = "auto",
    rainy_half: str = "right",
    test_every: int = 10,
    shuffle_seed: Optional[int] = None,
) -> tf.data.Dataset:
    """(rainy, clean) image pairs for deraining.

    Two layouts: the public image-deraining dataset (Zhang, Sindagi and Patel, 2017) stores
    each pair as one image with the two halves side by side, in the pix2pix A|B format with
    the clean image on the left and the rainy one on the right (its model translates B to
    A), hence ``rainy_half="right"`` by default; or ``rainy/`` and ``clean/`` folders whose
    files match by name (extensions may differ). ``train/`` and ``test/`` sub-folders
    (also ``training/``, ``testing/``, ``test_syn/``) define the split when present;
    otherwise every ``test_every``-th sorted pair is test.

    Args:
      split: ``"train"``, ``"test"`` or ``"all"``.
      data_dir: the folder; None uses ``default_data_dir("rain")``.
      layout: ``"auto"`` (two folders if ``rainy/`` and ``clean/`` exist, else side by
        side), ``"side_by_side"`` or ``"folders"``.
      rainy_half: ``"right"`` or ``"left"``, for side-by-side pairs.
      test_every: test period of the sorted-path rule.
      shuffle_seed: filled in by ``load``: shuffles the whole pair list every epoch.

    Returns:
      A dataset of ``(rainy, clean)`` float32 ``[H, W, 3]`` images in [0, 1].

    Raises:
      DatasetUnavailableError: the folder is missing or holds no images.
      ValueError: bad options, unmatched names, or an empty split.
    """
    if layout not in ("auto", "side_by_side", "folders"):
        raise ValueError(f"layout must be 'auto', 'side_by_side' or 'folders', got {layout!r}")
    if rainy_half not in ("left", "right"):
        raise ValueError(f"rainy_half must be 'left' or 'right', got {rainy_half!r}")
    root = os.path.abspath(os.path.expanduser(data_dir or default_data_dir("rain")))
    _require_dir(root, "rain_pairs", _RAIN_LAYOUT)
    bases = _split_base(root, split)
    first, second = [], []
    for base in bases or [root]:
        a, b = _rain_files(base, layout)
        first += a
        second += b
    if not first:
        raise DatasetUnavailableError(f"rain_pairs: no images under {root}. Expected layout:\n{_RAIN_LAYOUT}")
    if not bases:  # no split folders: the sorted-path rule
        keep = _select(list(range(len(first))), split, test_every, root)
        first = [first[i] for i in keep]
        second = [second[i] for i in keep] if second else []
    if second:
        return _image_dataset((first, second), shuffle_seed, lambda r, c: (read_image(r), read_image(c)), 2)

    def decode_pair(path: str):
        return split_side_by_side(read_image(path), rainy_half, path)

    return _image_dataset(first, shuffle_seed, decode_pair, 2)
