"""The progressive-growing schedule of PGGAN: which level and fade-in weight at each image count.

Training starts at ``start_level`` (4x4 for level 0) and shows it ``images_per_phase``
images. Every further level then has two phases of ``images_per_phase`` images each: a
fade-in, during which ``alpha`` ramps linearly from 0 to 1, and a stabilisation at
``alpha = 1``. After the top level's stabilisation the schedule stays at the top level::

    images:  [0, P)     [P, 2P)        [2P, 3P)     [3P, 4P)       ...
    level:   0          1              1            2
    alpha:   1          0 -> 1         1            0 -> 1

The schedule is a pure function of the number of images shown, so a resumed run recomputes
it from its restored step counter. The official code uses 600k images per phase (the paper
800k); :data:`PGGAN_KIMG_PER_PHASE` is the former.
"""

from __future__ import annotations

import math
from typing import Tuple

__all__ = ["PGGAN_KIMG_PER_PHASE", "ProgressiveSchedule"]

from tfinverse.tasks.iagan import PGGAN_KIMG_PER_PHASE  # noqa: E402  (the index of IAGAN settings)


class ProgressiveSchedule:
    """Level and fade-in weight as a function of the number of images shown.

    Args:
      num_levels: levels of the networks (``log2(resolution) - 1``).
      images_per_phase: images of one fade-in or stabilisation phase (> 0).
      start_level: the level training starts at (0 = 4x4).

    Raises:
      ValueError: for ``num_levels < 1``, ``images_per_phase <= 0`` or a ``start_level``
        outside ``[0, num_levels - 1]``.
    """

    def __init__(self, num_levels: int, images_per_phase: int, start_level: int = 0):
        if int(num_levels) < 1:
            raise ValueError(f"num_levels must be >= 1, got {num_levels}")
        if int(images_per_phase) <= 0:
            raise ValueError(f"images_per_phase must be positive, got {images_per_phase}")
        if not 0 <= int(start_level) < int(num_levels):
            raise ValueError(f"start_level must be in [0, {int(num_levels) - 1}], got {start_level}")
        self.num_levels = int(num_levels)
        self.images_per_phase = int(images_per_phase)
        self.start_level = int(start_level)

    def __call__(self, images_seen: int) -> Tuple[int, float]:
        """``(level, alpha)`` after ``images_seen`` images.

        Args:
          images_seen: images shown so far (>= 0).

        Returns:
          The level (int) and the fade-in weight in ``[0, 1]``.

        Raises:
          ValueError: for a negative image count.
        """
        images_seen = int(images_seen)
        if images_seen < 0:
            raise ValueError(f"images_seen must be >= 0, got {images_seen}")
        phase = self.images_per_phase
        if images_seen < phase:
            return self.start_level, 1.0
        grown, into_level = divmod(images_seen - phase, 2 * phase)
        level = self.start_level + 1 + grown
        if level >= self.num_levels:
            return self.num_levels - 1, 1.0
        return level, min(into_level / phase, 1.0)

    @property
    def total_images(self) -> int:
        """Images until the top level has been faded in and stabilised."""
        return self.images_per_phase * (1 + 2 * (self.num_levels - 1 - self.start_level))

    def steps_to_complete(self, batch_size: int) -> int:
        """Training steps of ``batch_size`` images that cover :attr:`total_images`."""
        if int(batch_size) <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        return int(math.ceil(self.total_images / int(batch_size)))

    def __repr__(self) -> str:
        return (
            f"ProgressiveSchedule(num_levels={self.num_levels}, "
            f"images_per_phase={self.images_per_phase}, start_level={self.start_level})"
        )
