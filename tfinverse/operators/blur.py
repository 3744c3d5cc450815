"""Blur operators: convolution of every channel with one 2-D kernel.

``y[i, j] = sum_{a, b} k[a, b] * x[i + ca - a, j + cb - b]`` with the kernel centre
``(ca, cb) = (kh // 2, kw // 2)``; this is ``scipy.ndimage.convolve`` with ``origin=0``,
also for even kernel sizes. The output has the image's size ("same" convolution).

Boundary handling (the IAGAN paper does not state how its 9 x 9 uniform blur treats the
image border, so it is a parameter here):

* ``boundary="circular"`` (default): periodic extension, ``scipy.ndimage.convolve`` with
  ``mode="wrap"``. Computed with 2-D real FFTs; the operator is diagonal in the Fourier
  basis with transfer function ``K(f)``, so the adjoint multiplies by ``conj(K)`` and the
  pseudo-inverse divides by ``K`` where ``|K(f)| > pinv_rtol * max|K|`` and zeroes the
  other frequencies (a truncated SVD: the singular values of a circular convolution are
  ``|K(f)|``, so this equals ``numpy.linalg.pinv(A, rcond=pinv_rtol)``).
* ``boundary="zero"``: zero padding outside the image, ``scipy.ndimage.convolve`` with
  ``mode="constant", cval=0``. Computed by a depthwise convolution; the adjoint is the
  correlation with the same kernel (the transpose of the zero-padded convolution). For a
  separable kernel ``k = u v^T`` (box and Gaussian kernels) the operator on one channel is
  ``X -> T_u X T_v^T`` with small 1-D convolution matrices, whose SVDs give the operator's
  SVD; the pseudo-inverse is then the same truncated SVD as above, in closed form. Other
  kernels use conjugate gradients on ``A A^T`` (slow and inexact for strong blurs, whose
  zero-boundary singular values decay to ~1e-8 and below).

The truncation threshold ``pinv_rtol`` is our choice (no original publishes a blur
pseudo-inverse). Its default 1e-4 bounds the noise amplification by 1e4 while the
part of a measurement ``y = A x`` that the pseudo-inverse drops has norm at most
``1e-4 * ||A|| * ||x||`` (measured ``||A A^+ y - y|| / ||y||`` is ~1e-7 in float32 for the
default kernels); raise it for noisy data.

Registered operators: ``blur_uniform`` (box filter), ``blur_gaussian``. :class:`Blur`
takes any 2-D kernel and is built directly (it has no default kernel, so it is not in the
registry).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import tensorflow as tf

from tfinverse.operators.base import LinearOperator, register

__all__ = [
    "BOUNDARIES",
    "Blur",
    "UniformBlur",
    "GaussianBlur",
    "uniform_kernel",
    "gaussian_kernel",
]

#: Supported boundary modes.
BOUNDARIES = ("circular", "zero")


def uniform_kernel(kernel_size: int | Sequence[int]) -> np.ndarray:
    """A box filter of ones over ``kernel_size`` entries, normalised to sum 1.

    Args:
      kernel_size: side ``k`` of a square kernel, or ``(kh, kw)``.

    Returns:
      float64 array of shape ``(kh, kw)``.

    Raises:
      ValueError: for a non-positive size.
    """
    kh, kw = _pair(kernel_size, "kernel_size")
    return np.full((kh, kw), 1.0 / (kh * kw))


def gaussian_kernel(sigma: float, kernel_size: int | Sequence[int]) -> np.ndarray:
    """An isotropic Gaussian sampled at integer offsets from the kernel centre, sum 1.

    The centre is ``(kh // 2, kw // 2)`` like the convolution's, so odd sizes are symmetric.

    Args:
      sigma: standard deviation in pixels, ``> 0``.
      kernel_size: side ``k`` of a square kernel, or ``(kh, kw)``.

    Returns:
      float64 array of shape ``(kh, kw)``.

    Raises:
      ValueError: for a non-positive ``sigma`` or size.
    """
    sigma = float(sigma)
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"sigma must be a finite number > 0, got {sigma}")
    kh, kw = _pair(kernel_size, "kernel_size")
    rows = np.arange(kh) - kh // 2
    cols = np.arange(kw) - kw // 2
    kernel = np.exp(-(rows[:, None] ** 2 + cols[None, :] ** 2) / (2.0 * sigma**2))
    return kernel / kernel.sum()


def _pair(value, what: str):
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        value = (value, value)
    try:
        pair = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be an integer or a pair of integers, got {value!r}") from None
    if len(pair) != 2 or min(pair) < 1 or any(p != v for p, v in zip(pair, value)):
        raise ValueError(f"{what} must be a positive integer or a pair of them, got {value!r}")
    return pair


def _largest_odd_at_most(limit: int, preferred: int) -> int:
    """``preferred`` if it is at most ``limit``, else the largest odd number <= limit."""
    if preferred <= limit:
        return preferred
    return limit if limit % 2 == 1 else limit - 1


def _convolution_matrix(kernel_1d: np.ndarray, size: int, centre: int) -> np.ndarray:
    """The ``size x size`` matrix of the zero-padded "same" 1-D convolution with ``kernel_1d``."""
    out_index = np.arange(size)[:, None]
    in_index = np.arange(size)[None, :]
    tap = out_index + centre - in_index
    valid = (tap >= 0) & (tap < kernel_1d.size)
    return np.where(valid, kernel_1d[np.clip(tap, 0, kernel_1d.size - 1)], 0.0)


class Blur(LinearOperator):
    """Convolution of every channel with a given 2-D kernel (see the module docstring).

    Args:
      image_shape: ``(height, width, channels)``.
      dtype: ``tf.float32`` or ``tf.float64``.
      kernel: 2-D array ``(kh, kw)`` with ``kh <= height`` and ``kw <= width``; used as
        given (not normalised).
      boundary: ``"circular"`` (FFT, closed-form pseudo-inverse) or ``"zero"`` (zero
        padding; closed-form pseudo-inverse for separable kernels, conjugate gradients
        otherwise).
      pinv_rtol: singular values ``<= pinv_rtol * largest`` (for ``"circular"``: frequencies
        with ``|K(f)| <= pinv_rtol * max|K|``) are treated as zero by the pseudo-inverse.
      **kwargs: further :class:`~tfinverse.operators.base.LinearOperator` arguments
        (``seed`` is accepted and ignored, ``cg_tol``, ``cg_max_iter``).

    Raises:
      ValueError: for a kernel that is not 2-D, not finite, all zero or larger than the
        image, an unknown boundary, or a negative ``pinv_rtol``.
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (32, 32, 3),
        dtype=tf.float32,
        kernel=None,
        boundary: str = "circular",
        pinv_rtol: float = 1e-4,
        **kwargs,
    ):
        super().__init__(image_shape, dtype, **kwargs)
        if kernel is None:
            raise ValueError("Blur needs a 2-D kernel=; use blur_uniform or blur_gaussian for the standard ones")
        kernel = np.asarray(kernel, dtype=np.float64)
        height, width, channels = self.image_shape
        if kernel.ndim != 2 or kernel.size == 0:
            raise ValueError(f"kernel must be a 2-D array (kh, kw), got shape {kernel.shape}")
        if not np.all(np.isfinite(kernel)) or not np.any(kernel):
            raise ValueError("kernel must be finite and not all zero")
        if kernel.shape[0] > height or kernel.shape[1] > width:
            raise ValueError(
                f"kernel shape {kernel.shape} must not exceed the image size ({height}, {width})"
            )
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")
        pinv_rtol = float(pinv_rtol)
        if not np.isfinite(pinv_rtol) or pinv_rtol < 0:
            raise ValueError(f"pinv_rtol must be a finite number >= 0, got {pinv_rtol}")
        self.kernel = kernel
        self.boundary = boundary
        self.pinv_rtol = pinv_rtol
        kh, kw = kernel.shape
        # Kernel centre, as scipy.ndimage.convolve places it (also for even sizes).
        self._centre = (kh // 2, kw // 2)
        if boundary == "circular":
            self._build_transfer_function()
        else:
            # tf.nn convolutions correlate, so the forward pass uses the flipped kernel.
            self._forward_filter = tf.constant(
                np.repeat(kernel[::-1, ::-1, None, None], channels, axis=2), self.dtype
            )
            self._adjoint_filter = tf.constant(np.repeat(kernel[:, :, None, None], channels, axis=2), self.dtype)
            self._build_separable_pinv()

    # ---------------------------------------------------------------- circular
    def _build_transfer_function(self) -> None:
        height, width, _ = self.image_shape
        kh, kw = self.kernel.shape
        padded = np.zeros((height, width))
        padded[:kh, :kw] = self.kernel
        # Put the kernel centre at the origin so that the FFT product is the centred convolution.
        padded = np.roll(padded, (-self._centre[0], -self._centre[1]), axis=(0, 1))
        transfer = np.fft.rfft2(padded)
        magnitude = np.abs(transfer)
        keep = magnitude > self.pinv_rtol * magnitude.max()
        inverse = np.zeros_like(transfer)
        inverse[keep] = 1.0 / transfer[keep]
        complex_dtype = tf.complex64 if self.dtype == tf.float32 else tf.complex128
        self.transfer_function = tf.constant(transfer, complex_dtype)
        self._adjoint_transfer = tf.constant(np.conj(transfer), complex_dtype)
        self._inverse_transfer = tf.constant(inverse, complex_dtype)

    # -------------------------------------------------------------------- zero
    @property
    def separable(self) -> bool:
        """True if the kernel is an outer product ``u v^T`` (box and Gaussian kernels are)."""
        singular_values = np.linalg.svd(self.kernel, compute_uv=False)
        return bool(singular_values.size < 2 or singular_values[1] <= 1e-10 * singular_values[0])

    def _build_separable_pinv(self) -> None:
        """Truncated-SVD pseudo-inverse of the zero-boundary blur for a separable kernel.

        With ``k = u v^T`` the blur of one channel ``X`` is ``T_u X T_v^T``, where ``T_u`` is
        the ``H x H`` matrix of the zero-padded 1-D convolution with ``u``. The SVDs of the two
        small factors give the SVD of the whole operator (a Kronecker product), so its
        pseudo-inverse is exact and cheap. Non-separable kernels fall back to conjugate
        gradients.
        """
        self._svd_factors = None
        if not self.separable:
            return
        left, singular_values, right = np.linalg.svd(self.kernel)
        scale = np.sqrt(singular_values[0])
        row_kernel, col_kernel = left[:, 0] * scale, right[0, :] * scale
        height, width, _ = self.image_shape
        u_rows, s_rows, vt_rows = np.linalg.svd(_convolution_matrix(row_kernel, height, self._centre[0]))
        u_cols, s_cols, vt_cols = np.linalg.svd(_convolution_matrix(col_kernel, width, self._centre[1]))
        products = s_rows[:, None] * s_cols[None, :]
        keep = products > self.pinv_rtol * products.max()
        inverse = np.divide(1.0, products, out=np.zeros_like(products), where=keep)
        self._svd_factors = tuple(
            tf.constant(m, self.dtype) for m in (u_rows, u_cols, inverse, vt_rows.T, vt_cols.T)
        )

    def _separable_pinv(self, y: tf.Tensor) -> tf.Tensor:
        u_rows, u_cols, inverse, v_rows, v_cols = self._svd_factors
        coefficients = tf.einsum("hi,bhwc,wj->bijc", u_rows, y, u_cols)
        coefficients = coefficients * inverse[None, :, :, None]
        return tf.einsum("hi,bijc,wj->bhwc", v_rows, coefficients, v_cols)

    # ---------------------------------------------------------------- circular
    def _apply_transfer(self, t: tf.Tensor, transfer: tf.Tensor) -> tf.Tensor:
        height, width, _ = self.image_shape
        channels_first = tf.transpose(t, (0, 3, 1, 2))
        spectrum = tf.signal.rfft2d(channels_first) * transfer
        out = tf.signal.irfft2d(spectrum, fft_length=[height, width])
        return tf.transpose(out, (0, 2, 3, 1))

    def _correlate_padded(self, t: tf.Tensor, filters: tf.Tensor, pad_rows, pad_cols) -> tf.Tensor:
        padded = tf.pad(t, [[0, 0], list(pad_rows), list(pad_cols), [0, 0]])
        return tf.nn.depthwise_conv2d(padded, filters, strides=[1, 1, 1, 1], padding="VALID")

    # ---------------------------------------------------------------- operator
    def _forward(self, x):
        if self.boundary == "circular":
            return self._apply_transfer(x, self.transfer_function)
        kh, kw = self.kernel.shape
        ch, cw = self._centre
        return self._correlate_padded(x, self._forward_filter, (kh - 1 - ch, ch), (kw - 1 - cw, cw))

    def _adjoint(self, y):
        if self.boundary == "circular":
            return self._apply_transfer(y, self._adjoint_transfer)
        kh, kw = self.kernel.shape
        ch, cw = self._centre
        return self._correlate_padded(y, self._adjoint_filter, (ch, kh - 1 - ch), (cw, kw - 1 - cw))

    def _pinv(self, y):
        if self.boundary == "circular":
            return self._apply_transfer(y, self._inverse_transfer)
        if self._svd_factors is not None:
            return self._separable_pinv(y)
        return super()._pinv(y)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "kernel": self.kernel.tolist(),
            "boundary": self.boundary,
            "pinv_rtol": self.pinv_rtol,
        }


@register("blur_uniform")
class UniformBlur(Blur):
    """Box blur: the mean over a ``k x k`` window (IAGAN's deblurring uses ``k = 9``).

    Args:
      image_shape: ``(height, width, channels)``.
      dtype: ``tf.float32`` or ``tf.float64``.
      kernel_size: ``k`` or ``(kh, kw)``; default 9, reduced to the largest odd size that
        fits when the image is smaller.
      boundary: ``"circular"`` or ``"zero"`` (see the module docstring).
      pinv_rtol: relative threshold of the circular pseudo-inverse.
      **kwargs: further :class:`~tfinverse.operators.base.LinearOperator` arguments.

    Raises:
      ValueError: for a kernel size larger than the image or an unknown boundary.
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (32, 32, 3),
        dtype=tf.float32,
        kernel_size: int | Sequence[int] | None = None,
        boundary: str = "circular",
        pinv_rtol: float = 1e-4,
        **kwargs,
    ):
        if kernel_size is None:
            kernel_size = _largest_odd_at_most(min(int(s) for s in tuple(image_shape)[:2]), 9)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        super().__init__(image_shape, dtype, uniform_kernel(self.kernel_size), boundary, pinv_rtol, **kwargs)

    def get_config(self) -> dict:
        config = super().get_config()
        del config["kernel"]
        return {**config, "kernel_size": self.kernel_size}


@register("blur_gaussian")
class GaussianBlur(Blur):
    """Gaussian blur with standard deviation ``sigma`` pixels, kernel normalised to sum 1.

    Args:
      image_shape: ``(height, width, channels)``.
      dtype: ``tf.float32`` or ``tf.float64``.
      sigma: standard deviation in pixels (default 1.0).
      kernel_size: ``k`` or ``(kh, kw)``; default ``2 * ceil(3 * sigma) + 1`` (the kernel
        covers +-3 sigma), reduced to the largest odd size that fits when the image is
        smaller.
      boundary: ``"circular"`` or ``"zero"`` (see the module docstring).
      pinv_rtol: relative threshold of the circular pseudo-inverse.
      **kwargs: further :class:`~tfinverse.operators.base.LinearOperator` arguments.

    Raises:
      ValueError: for a non-positive ``sigma``, a kernel larger than the image or an unknown
        boundary.
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (32, 32, 3),
        dtype=tf.float32,
        sigma: float = 1.0,
        kernel_size: int | Sequence[int] | None = None,
        boundary: str = "circular",
        pinv_rtol: float = 1e-4,
        **kwargs,
    ):
        self.sigma = float(sigma)
        if not np.isfinite(self.sigma) or self.sigma <= 0:
            raise ValueError(f"sigma must be a finite number > 0, got {sigma}")
        if kernel_size is None:
            preferred = 2 * math.ceil(3.0 * self.sigma) + 1
            kernel_size = _largest_odd_at_most(min(int(s) for s in tuple(image_shape)[:2]), preferred)
        self.kernel_size = _pair(kernel_size, "kernel_size")
        super().__init__(
            image_shape, dtype, gaussian_kernel(self.sigma, self.kernel_size), boundary, pinv_rtol, **kwargs
        )

    def get_config(self) -> dict:
        config = super().get_config()
        del config["kernel"]
        return {**config, "sigma": self.sigma, "kernel_size": self.kernel_size}
