"""Sample grids of training runs: tiling a batch of images, and writing it as a PNG grid."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import numpy as np

from tfinverse.utils.results import save_image_grid

__all__ = ["tile_images", "save_sample_grid"]


def tile_images(images: np.ndarray, columns: Optional[int] = None) -> np.ndarray:
    """Tiles ``[n, H, W, C]`` images into one ``[rows * H, columns * W, C]`` mosaic (blank
    cells are black).

    Args:
      images: a batch of images.
      columns: images per row (default: ``ceil(sqrt(n))``).

    Returns:
      The mosaic.

    Raises:
      ValueError: for a batch that is not ``[n, H, W, C]`` with ``n >= 1``.
    """
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[0] < 1:
        raise ValueError(f"images must have shape [n, H, W, C] with n >= 1, got {images.shape}")
    count, height, width, channels = images.shape
    columns = int(columns or math.ceil(math.sqrt(count)))
    rows = int(math.ceil(count / columns))
    mosaic = np.zeros((rows * height, columns * width, channels), images.dtype)
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        mosaic[row * height : (row + 1) * height, column * width : (column + 1) * width] = image
    return mosaic


def save_sample_grid(path, images: np.ndarray, overwrite: bool = True) -> Path:
    """Writes a batch of samples as an about square PNG grid, pixels enlarged.

    Args:
      path: the ``.png`` file.
      images: ``[n, H, W, C]`` in ``[0, 1]`` (clipped).
      overwrite: replace an existing file (a resumed run redraws the same steps).

    Returns:
      ``path`` as a :class:`pathlib.Path`.
    """
    images = np.clip(np.asarray(images, np.float32), 0.0, 1.0)
    columns = int(math.ceil(math.sqrt(len(images))))
    rows = [list(images[start : start + columns]) for start in range(0, len(images), columns)]
    return save_image_grid(path, rows, min_cell_size=64, padding=2, overwrite=overwrite)
