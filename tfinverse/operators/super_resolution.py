"""Super-resolution forward models: bicubic anti-aliased downscaling and plain decimation.

``super_resolution`` is the IAGAN observation model: every channel is filtered with a
normalised separable Keys cubic kernel stretched by the scale factor ``s`` and sampled with
stride ``s``, so an ``H x W`` image becomes ``H/s x W/s``. The kernel has
``4 s + (s mod 2)`` taps per axis at centred unit-spaced offsets divided by ``s``; the
image is zero-padded by ``(taps - s) / 2`` pixels on every side.

``decimate`` keeps every ``s``-th pixel with no anti-aliasing filter.

Besides the exact pseudo-inverse, :func:`bicubic_upsample` gives the approximate one used
for back-projection in IAGAN (bicubic interpolation back to full size).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from tfinverse.operators.base import LinearOperator, register

__all__ = [
    "keys_cubic",
    "bicubic_kernel_1d",
    "bicubic_kernel",
    "downsampling_matrix",
    "upsampling_matrix",
    "bicubic_upsample",
    "SuperResolution",
    "Decimate",
]

_MIN_FACTOR = 2
_MAX_FACTOR = 16


def keys_cubic(t, a: float = -0.5) -> np.ndarray:
    """Keys' cubic convolution kernel ``W(t)``.

    ``W(t) = (a + 2)|t|^3 - (a + 3)|t|^2 + 1`` for ``|t| <= 1``,
    ``a|t|^3 - 5a|t|^2 + 8a|t| - 4a`` for ``1 < |t| < 2`` and 0 beyond.

    Args:
      t: offsets (any shape).
      a: the kernel parameter; -0.5 is Keys' choice (and MATLAB's ``imresize``), -0.75
        is the one of OpenCV and PyTorch.

    Returns:
      float64 array of kernel values, shaped like ``t``.
    """
    t = np.abs(np.asarray(t, dtype=np.float64))
    t2, t3 = t * t, t * t * t
    near = (a + 2.0) * t3 - (a + 3.0) * t2 + 1.0
    far = a * t3 - 5.0 * a * t2 + 8.0 * a * t - 4.0 * a
    return np.where(t <= 1.0, near, np.where(t < 2.0, far, 0.0))


def _check_factor(factor) -> int:
    if isinstance(factor, bool) or int(factor) != factor:
        raise ValueError(f"factor must be an integer, got {factor!r}")
    factor = int(factor)
    if not _MIN_FACTOR <= factor <= _MAX_FACTOR:
        raise ValueError(f"factor must be between {_MIN_FACTOR} and {_MAX_FACTOR}, got {factor}")
    return factor


def bicubic_kernel_1d(factor: int, a: float = -0.5) -> np.ndarray:
    """The normalised 1-D anti-aliasing kernel of bicubic downscaling by ``factor``.

    Args:
      factor: the integer scale factor ``s`` (2 to 16).
      a: Keys kernel parameter.

    Returns:
      float64 array of ``4 s + (s mod 2)`` taps summing to 1; even factors have taps at
      half-integer offsets, odd factors at integer offsets, both centred on zero.
    """
    factor = _check_factor(factor)
    taps = 4 * factor + factor % 2
    half_shift = 0.5 * (1 - factor % 2)
    offsets = np.arange(taps) - taps // 2 + half_shift
    weights = keys_cubic(offsets / factor, a)
    return weights / weights.sum()


def bicubic_kernel(factor: int, a: float = -0.5) -> np.ndarray:
    """The separable 2-D bicubic downscaling kernel, normalised to sum 1.

    Args:
      factor: the integer scale factor ``s`` (2 to 16).
      a: Keys kernel parameter.

    Returns:
      float64 array of shape ``[taps, taps]`` with ``taps = 4 s + (s mod 2)``.
    """
    k = bicubic_kernel_1d(factor, a)
    return np.outer(k, k)


def downsampling_matrix(size: int, factor: int, a: float = -0.5) -> np.ndarray:
    """The 1-D bicubic downscaling (filter, zero padding, stride) as a dense matrix.

    Row ``i`` holds the kernel placed at input pixels ``i s - pad ... i s - pad + taps - 1``
    with ``pad = (taps - s) / 2``; taps that fall in the zero padding are dropped.

    Args:
      size: input length (a multiple of ``factor``).
      factor: the scale factor ``s``.
      a: Keys kernel parameter.

    Returns:
      float64 array ``[size // factor, size]``.

    Raises:
      ValueError: if ``size`` is not a multiple of ``factor``.
    """
    factor = _check_factor(factor)
    if size % factor:
        raise ValueError(f"size {size} is not divisible by the factor {factor}")
    kernel = bicubic_kernel_1d(factor, a)
    taps = kernel.size
    pad = (taps - factor) // 2
    matrix = np.zeros((size // factor, size))
    for i in range(size // factor):
        start = i * factor - pad
        for t in range(taps):
            j = start + t
            if 0 <= j < size:
                matrix[i, j] = kernel[t]
    return matrix


def upsampling_matrix(size: int, factor: int, a: float = -0.75) -> np.ndarray:
    """1-D bicubic interpolation to ``size * factor`` samples as a dense matrix.

    Pixel centres are aligned (output ``i`` reads input position ``(i + 0.5) / s - 0.5``)
    and taps beyond the edges repeat the edge sample, which is what PyTorch's
    ``interpolate(mode="bicubic", align_corners=False)`` and OpenCV's ``INTER_CUBIC`` do.

    Args:
      size: input length.
      factor: integer up-scaling factor.
      a: Keys kernel parameter (-0.75 for PyTorch/OpenCV, -0.5 for ``tf.image.resize``).

    Returns:
      float64 array ``[size * factor, size]``.
    """
    if isinstance(factor, bool) or int(factor) != factor or factor < 1:
        raise ValueError(f"factor must be a positive integer, got {factor!r}")
    factor = int(factor)
    out = size * factor
    source = (np.arange(out) + 0.5) / factor - 0.5
    base = np.floor(source).astype(int)
    frac = source - base
    matrix = np.zeros((out, size))
    for tap in range(-1, 3):
        weight = keys_cubic(frac - tap, a)
        index = np.clip(base + tap, 0, size - 1)
        np.add.at(matrix, (np.arange(out), index), weight)
    return matrix


def _apply_separable(images: tf.Tensor, rows, cols) -> tf.Tensor:
    """``rows @ X @ cols^T`` for every image and channel of ``[batch, H, W, C]``."""
    rows = tf.convert_to_tensor(rows, images.dtype)
    cols = tf.convert_to_tensor(cols, images.dtype)
    return tf.einsum("ih,bhwc,jw->bijc", rows, images, cols)


def bicubic_upsample(y, factor: int, a: float = -0.75) -> tf.Tensor:
    """Bicubic up-sampling of a batch by an integer factor.

    This is the approximate pseudo-inverse IAGAN used for super-resolution back-projection.
    The default ``a = -0.75`` and the edge handling follow PyTorch's
    ``interpolate(mode="bicubic", align_corners=False)``, which the original code called;
    ``tf.image.resize(method="bicubic")`` uses ``a = -0.5`` and renormalises the weights
    at the borders instead, so it agrees with ``a=-0.5`` here away from the edges only.

    Args:
      y: ``[batch, h, w, channels]`` float tensor with static ``h`` and ``w``.
      factor: integer up-scaling factor.
      a: Keys kernel parameter.

    Returns:
      ``[batch, h * factor, w * factor, channels]`` tensor of the input's dtype.

    Raises:
      ValueError: if ``y`` is not rank 4 with static spatial sizes.
    """
    y = tf.convert_to_tensor(y)
    if y.shape.rank != 4 or y.shape[1] is None or y.shape[2] is None:
        raise ValueError(f"y must have shape [batch, height, width, channels], got {y.shape}")
    if not y.dtype.is_floating:
        raise ValueError(f"y must be a float tensor, got {y.dtype.name}")
    rows = upsampling_matrix(int(y.shape[1]), factor, a)
    cols = upsampling_matrix(int(y.shape[2]), factor, a)
    return _apply_separable(y, rows, cols)


def _check_divisible(image_shape: Sequence[int], factor: int, name: str) -> None:
    height, width = int(image_shape[0]), int(image_shape[1])
    if height % factor or width % factor:
        raise ValueError(
            f"{name}: image size {height}x{width} is not divisible by the factor {factor}; "
            f"crop or pad the image to a multiple of {factor}"
        )


@register("super_resolution")
class SuperResolution(LinearOperator):
    """Bicubic downscaling by an integer factor (the IAGAN super-resolution model).

    ``A x`` filters every channel with :func:`bicubic_kernel` (Keys, ``a = -0.5`` by
    default) after zero padding of ``(taps - s) / 2`` pixels per side and keeps every
    ``s``-th output: ``[H, W, C] -> [H/s, W/s, C]``. The kernel is separable, so per channel
    ``A`` is the Kronecker product of two banded 1-D matrices (:func:`downsampling_matrix`):
    ``Y = D_H X D_W^T``. Forward and adjoint (the transposed strided convolution,
    ``D_H^T Y D_W``) are computed as these matrix products: ``tf.nn.conv2d`` with the
    ``4s``-tap kernel after zero padding aborts the process inside oneDNN under
    ``tf.function`` for large images (TensorFlow 2.21 on CPU, e.g. 512 x 512 at factor 16).
    The exact pseudo-inverse is closed form, ``A^+ = D_H^+ (x) D_W^+``, with the small 1-D
    pseudo-inverses computed once (it equals the conjugate-gradient solution on ``A A^T``
    up to the CG tolerance). :meth:`bicubic_upsample` is the approximate pseudo-inverse of
    the paper.

    Args:
      image_shape: ``(height, width, channels)``; height and width must be multiples of
        ``factor``.
      factor: integer scale factor, 2 to 16 (IAGAN used 4, 8 and 16).
      kernel_a: Keys parameter of the downscaling kernel (the original used -0.5).
      dtype: ``tf.float32`` or ``tf.float64``.
      **kwargs: ``seed`` (ignored), ``cg_tol``, ``cg_max_iter`` of :class:`LinearOperator`.

    Raises:
      ValueError: for a factor outside 2..16 or an image size not divisible by it.
    """

    def __init__(self, image_shape=(32, 32, 3), factor: int = 4, kernel_a: float = -0.5,
                 dtype=tf.float32, **kwargs):
        super().__init__(image_shape, dtype, **kwargs)
        self.factor = _check_factor(factor)
        self.kernel_a = float(kernel_a)
        height, width, channels = self.image_shape
        _check_divisible(self.image_shape, self.factor, self.name)
        self.out_shape = (height // self.factor, width // self.factor, channels)
        self.taps = 4 * self.factor + self.factor % 2
        self.padding = (self.taps - self.factor) // 2
        rows = downsampling_matrix(height, self.factor, self.kernel_a)
        cols = downsampling_matrix(width, self.factor, self.kernel_a)
        self._rows = tf.constant(rows, self.dtype)
        self._cols = tf.constant(cols, self.dtype)
        self._rows_t = tf.constant(rows.T, self.dtype)
        self._cols_t = tf.constant(cols.T, self.dtype)
        self._rows_pinv = tf.constant(np.linalg.pinv(rows), self.dtype)
        self._cols_pinv = tf.constant(np.linalg.pinv(cols), self.dtype)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(factor=self.factor, kernel_a=self.kernel_a)
        return config

    def _forward(self, x):
        return _apply_separable(x, self._rows, self._cols)

    def _adjoint(self, y):
        # D^T spreads every low-resolution pixel back through the kernel (the transposed
        # strided convolution) and drops what lands in the padding.
        return _apply_separable(y, self._rows_t, self._cols_t)

    def _pinv(self, y):
        return _apply_separable(y, self._rows_pinv, self._cols_pinv)

    def bicubic_upsample(self, y, a: float = -0.75) -> tf.Tensor:
        """IAGAN's approximate pseudo-inverse: bicubic up-sampling of ``y`` by ``factor``.

        Unlike :meth:`pinv`, ``forward(bicubic_upsample(y))`` only approximates ``y``.

        Args:
          y: ``[batch, H/s, W/s, C]`` measurements.
          a: Keys parameter; -0.75 matches PyTorch's bicubic interpolation used in the
            original code (see :func:`bicubic_upsample`).

        Returns:
          ``[batch, H, W, C]`` images.
        """
        y = self._check(y, self.out_shape, "measurement y")
        return bicubic_upsample(y, self.factor, a)


@register("decimate")
class Decimate(LinearOperator):
    """Keeps every ``factor``-th pixel along both axes, with no anti-aliasing filter.

    ``A x = x[offset::s, offset::s]``. ``A A^T = I``, so the pseudo-inverse equals the
    adjoint: zero insertion (each kept pixel back in place, zeros elsewhere).

    Args:
      image_shape: ``(height, width, channels)``; height and width must be multiples of
        ``factor``.
      factor: integer sub-sampling step, 2 to 16.
      offset: index of the kept pixel inside each ``s x s`` cell, ``0 <= offset < s``
        (0 keeps the top-left pixel).
      dtype: ``tf.float32`` or ``tf.float64``.
      **kwargs: ``seed`` (ignored), ``cg_tol``, ``cg_max_iter`` of :class:`LinearOperator`.

    Raises:
      ValueError: for a factor outside 2..16, a bad offset or an image size not divisible by
        the factor.
    """

    def __init__(self, image_shape=(32, 32, 3), factor: int = 2, offset: int = 0,
                 dtype=tf.float32, **kwargs):
        super().__init__(image_shape, dtype, **kwargs)
        self.factor = _check_factor(factor)
        if int(offset) != offset or not 0 <= offset < self.factor:
            raise ValueError(f"offset must be an integer in [0, {self.factor}), got {offset!r}")
        self.offset = int(offset)
        height, width, channels = self.image_shape
        _check_divisible(self.image_shape, self.factor, self.name)
        self.out_shape = (height // self.factor, width // self.factor, channels)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(factor=self.factor, offset=self.offset)
        return config

    def _forward(self, x):
        return x[:, self.offset::self.factor, self.offset::self.factor, :]

    def _adjoint(self, y):
        height, width, channels = self.image_shape
        s, o = self.factor, self.offset
        # [B, h, 1, w, 1, C] padded to [B, h, s, w, s, C] is a zero-inserted image.
        cells = y[:, :, None, :, None, :]
        cells = tf.pad(cells, [[0, 0], [0, 0], [o, s - 1 - o], [0, 0], [o, s - 1 - o], [0, 0]])
        return tf.reshape(cells, tf.stack([tf.shape(y)[0], height, width, channels]))

    def _pinv(self, y):
        return self._adjoint(y)
