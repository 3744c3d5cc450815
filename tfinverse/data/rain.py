"""Synthetic rain: motion-blurred streaks rendered with cv2 and laid over clean images.

igan showed deraining results on the image-deraining dataset of Zhang, Sindagi and Patel
(2017) but published no deraining code. When no such folder is at hand (the ``rain_pairs``
source), :func:`add_rain` makes (rainy, clean) pairs offline: :func:`render_rain_streaks`
draws a rain layer ``R`` in [0, 1] and the rainy image is the *screen* blend
``Y = 1 - (1 - X)(1 - R) = X + R (1 - X)``, so ``Y`` stays in [0, 1] and the rain
component ``Y - X = R (1 - X)`` is non-negative: the additive model ``Y = X + Z`` holds
exactly. Every parameter is our choice, exposed as an argument.

A rain layer is built in three steps:

1. ``round(density * H * W / (length * thickness))`` line segments, so that ``density`` is
   the expected fraction of pixels the undilated streaks would cover if they did not
   overlap (the covered fraction grows like ``1 - exp(-density)`` once they do). Centres
   are uniform over the image grown by half a streak length on every side, so streaks
   enter and leave through the borders as often as they do inside.
2. Each segment has direction ``angle_degrees`` (plus a uniform jitter of
   ``angle_jitter_degrees``) measured from the vertical, length ``length`` (times
   ``1 +/- length_jitter``), line width ``thickness`` and an intensity drawn uniformly in
   ``[0.6, 1] * brightness``; it is drawn antialiased, overlapping streaks keep the brighter
   value.
3. A motion blur of ``blur`` pixels along ``angle_degrees`` (a normalised line kernel)
   smears the segments like drops moving during the exposure.

Angles: 0 is vertical; a positive angle puts the lower end of a streak to the right of
its upper end (rain blown to the right), in image coordinates with rows going down.

Example::

    from tfinverse.data import rain
    layer = rain.render_rain_streaks((64, 64), density=0.08, angle_degrees=15, seed=0)
    rainy, clean = rain.add_rain(clean_images, seed=0)     # clean: [N, H, W, C] in [0, 1]
"""

from __future__ import annotations

from typing import Sequence, Tuple, Union

import numpy as np

__all__ = [
    "RAIN_DEFAULTS",
    "render_rain_streaks",
    "motion_blur_kernel",
    "screen_blend",
    "add_rain",
]

#: Default rain parameters for 64x64 images (our choice; the original published none).
RAIN_DEFAULTS = {
    "density": 0.08,
    "angle_degrees": 10.0,
    "length": 14.0,
    "thickness": 1,
    "blur": 5,
    "brightness": 0.8,
    "angle_jitter_degrees": 4.0,
    "length_jitter": 0.3,
}

SeedLike = Union[int, Sequence[int], np.random.SeedSequence, np.random.Generator]

# Fractional bits of cv2 drawing coordinates: streak ends are placed to 1/16 pixel.
_SUBPIXEL_BITS = 4


def _generator(seed: SeedLike) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _shape_hw(shape) -> Tuple[int, int]:
    try:
        height, width = (int(s) for s in shape)
    except (TypeError, ValueError):
        raise ValueError(f"shape must be (height, width), got {shape!r}") from None
    if height < 1 or width < 1:
        raise ValueError(f"shape must be (height, width) with positive sides, got {shape!r}")
    return height, width


def motion_blur_kernel(size: int, angle_degrees: float) -> np.ndarray:
    """A normalised line kernel: the blur of a point moving ``size`` pixels along an angle.

    Args:
      size: length of the motion in pixels; 0 or 1 gives the identity ``[[1]]``.
      angle_degrees: direction from the vertical (positive: lower end to the right).

    Returns:
      float32 ``[k, k]`` kernel with ``k`` the odd number ``>= size``, summing to 1.

    Raises:
      ValueError: a negative size.
    """
    import cv2

    size = int(size)
    if size < 0:
        raise ValueError(f"blur size must be >= 0 pixels, got {size}")
    if size <= 1:
        return np.ones((1, 1), np.float32)
    side = size if size % 2 else size + 1
    canvas = np.zeros((side, side), np.uint8)
    half = (size - 1) / 2.0
    theta = np.deg2rad(angle_degrees)
    centre = (side - 1) / 2.0
    dx, dy = half * np.sin(theta), half * np.cos(theta)
    scale = 1 << _SUBPIXEL_BITS
    start = (int(round((centre - dx) * scale)), int(round((centre - dy) * scale)))
    end = (int(round((centre + dx) * scale)), int(round((centre + dy) * scale)))
    cv2.line(canvas, start, end, 255, 1, cv2.LINE_AA, _SUBPIXEL_BITS)
    kernel = canvas.astype(np.float32)
    return kernel / kernel.sum()


def render_rain_streaks(
    shape,
    density: float = RAIN_DEFAULTS["density"],
    angle_degrees: float = RAIN_DEFAULTS["angle_degrees"],
    length: float = RAIN_DEFAULTS["length"],
    thickness: int = RAIN_DEFAULTS["thickness"],
    blur: int = RAIN_DEFAULTS["blur"],
    brightness: float = RAIN_DEFAULTS["brightness"],
    seed: SeedLike = 0,
    angle_jitter_degrees: float = RAIN_DEFAULTS["angle_jitter_degrees"],
    length_jitter: float = RAIN_DEFAULTS["length_jitter"],
) -> np.ndarray:
    """Renders one rain layer of motion-blurred line segments.

    Args:
      shape: ``(height, width)`` of the layer.
      density: expected fraction of pixels covered by the streaks before blurring, ignoring
        overlaps; sets the number of streaks, ``round(density * H * W / (length *
        thickness))``. 0 gives an empty layer.
      angle_degrees: streak direction from the vertical; positive puts the lower end to the
        right.
      length: streak length in pixels.
      thickness: line width in pixels (an integer >= 1).
      blur: motion-blur length in pixels along ``angle_degrees`` (0 or 1: no blur).
      brightness: largest streak intensity, in (0, 1]; each streak's intensity is uniform in
        ``[0.6, 1] * brightness``.
      seed: int, sequence of ints, ``SeedSequence`` or numpy ``Generator``.
      angle_jitter_degrees: each streak's angle is ``angle_degrees`` plus a uniform draw in
        ``[-angle_jitter_degrees, angle_jitter_degrees]``.
      length_jitter: each streak's length is ``length`` times a uniform draw in
        ``[1 - length_jitter, 1 + length_jitter]``; in [0, 1).

    Returns:
      float32 ``[height, width]`` rain layer in [0, 1], deterministic for a seed.

    Raises:
      ValueError: a bad shape or a parameter out of its range.
    """
    import cv2

    height, width = _shape_hw(shape)
    if not (np.isfinite(density) and density >= 0):
        raise ValueError(f"density must be a fraction >= 0, got {density!r}")
    if not (np.isfinite(length) and length > 0):
        raise ValueError(f"length must be a positive number of pixels, got {length!r}")
    if isinstance(thickness, bool) or int(thickness) != thickness or thickness < 1:
        raise ValueError(f"thickness must be an integer >= 1 pixel, got {thickness!r}")
    if isinstance(blur, bool) or int(blur) != blur or blur < 0:
        raise ValueError(f"blur must be an integer >= 0 pixels, got {blur!r}")
    if not (np.isfinite(brightness) and 0 < brightness <= 1):
        raise ValueError(f"brightness must lie in (0, 1], got {brightness!r}")
    if not (np.isfinite(angle_degrees) and np.isfinite(angle_jitter_degrees) and angle_jitter_degrees >= 0):
        raise ValueError(
            f"angle_degrees must be finite and angle_jitter_degrees >= 0, got {angle_degrees!r}, "
            f"{angle_jitter_degrees!r}"
        )
    if not (0 <= length_jitter < 1):
        raise ValueError(f"length_jitter must lie in [0, 1), got {length_jitter!r}")
    thickness, blur = int(thickness), int(blur)
    rng = _generator(seed)
    n_streaks = int(round(density * height * width / (length * thickness)))

    layer = np.zeros((height, width), np.uint8)
    scale = 1 << _SUBPIXEL_BITS
    centres_x = rng.uniform(-length / 2, width + length / 2, n_streaks)
    centres_y = rng.uniform(-length / 2, height + length / 2, n_streaks)
    angles = np.deg2rad(angle_degrees + rng.uniform(-angle_jitter_degrees, angle_jitter_degrees, n_streaks))
    lengths = length * rng.uniform(1 - length_jitter, 1 + length_jitter, n_streaks)
    levels = np.round(255 * brightness * rng.uniform(0.6, 1.0, n_streaks)).astype(int)
    streak = np.zeros_like(layer)
    for cx, cy, theta, size, level in zip(centres_x, centres_y, angles, lengths, levels):
        dx, dy = 0.5 * size * np.sin(theta), 0.5 * size * np.cos(theta)
        start = (int(round((cx - dx) * scale)), int(round((cy - dy) * scale)))
        end = (int(round((cx + dx) * scale)), int(round((cy + dy) * scale)))
        streak[:] = 0
        cv2.line(streak, start, end, int(level), thickness, cv2.LINE_AA, _SUBPIXEL_BITS)
        np.maximum(layer, streak, out=layer)  # overlapping streaks keep the brighter value

    rain = layer.astype(np.float32) / 255.0
    if blur > 1:
        kernel = motion_blur_kernel(blur, angle_degrees)
        rain = cv2.filter2D(rain, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    return np.clip(rain, 0.0, 1.0).astype(np.float32)


def screen_blend(clean, rain_layer) -> np.ndarray:
    """Lays a rain layer over images: ``1 - (1 - clean)(1 - rain) = clean + rain (1 - clean)``.

    Args:
      clean: ``[..., H, W, C]`` images in [0, 1].
      rain_layer: ``[..., H, W]`` or ``[..., H, W, 1]`` layer in [0, 1], broadcast over
        channels (rain is grey).

    Returns:
      float32 rainy images of ``clean``'s shape, in [0, 1].

    Raises:
      ValueError: shapes that do not match.
    """
    clean = np.asarray(clean, np.float32)
    rain_layer = np.asarray(rain_layer, np.float32)
    if rain_layer.ndim == clean.ndim - 1:
        rain_layer = rain_layer[..., None]
    if rain_layer.shape[:-1] != clean.shape[:-1] or rain_layer.shape[-1] not in (1, clean.shape[-1]):
        raise ValueError(
            f"rain_layer must be [..., H, W] or [..., H, W, 1] matching clean {clean.shape}, "
            f"got {rain_layer.shape}"
        )
    return (clean + rain_layer * (1.0 - clean)).astype(np.float32)


def add_rain(clean_images, seed: SeedLike = 0, **rain_parameters) -> Tuple[np.ndarray, np.ndarray]:
    """Renders one rain layer per image and screen-blends it: offline (rainy, clean) pairs.

    Image ``i`` uses the ``i``-th child of ``np.random.SeedSequence(seed)`` (or draws in turn
    from ``seed`` when it is a ``Generator``).

    Args:
      clean_images: float ``[N, H, W, C]`` in [0, 1].
      seed: int, sequence of ints, ``SeedSequence`` or numpy ``Generator``.
      **rain_parameters: passed to :func:`render_rain_streaks` (``density``,
        ``angle_degrees``, ``length``, ``thickness``, ``blur``, ``brightness``, ...).

    Returns:
      ``(rainy, clean)``, float32 ``[N, H, W, C]`` each, with ``rainy - clean >= 0``.

    Raises:
      ValueError: images that are not ``[N, H, W, C]`` in [0, 1], or bad rain parameters.
    """
    clean = np.asarray(clean_images, np.float32)
    if clean.ndim != 4:
        raise ValueError(f"clean_images must be [N, H, W, C], got shape {clean.shape}")
    if clean.size and (clean.min() < 0 or clean.max() > 1):
        raise ValueError(f"clean_images must lie in [0, 1], got [{clean.min():.3g}, {clean.max():.3g}]")
    if isinstance(seed, np.random.Generator):
        generators = [seed] * len(clean)
    else:
        root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        generators = [np.random.default_rng(child) for child in root.spawn(len(clean))]
    layers = np.stack([render_rain_streaks(clean.shape[1:3], seed=g, **rain_parameters) for g in generators]) \
        if len(clean) else np.zeros(clean.shape[:3], np.float32)
    return screen_blend(clean, layers), clean
