"""Classical baselines: bicubic up-sampling, zero-filled inverse FFT, BM3D, the observation.

These are the non-learned reference columns of the reproduced tables: IAGAN's "Bicubic"
(super-resolution), "naive IFFT" (subsampled Fourier) and "Blurred" (deblurring), and
LVR's BM3D denoiser. Every function returns an
:class:`~tfinverse.inversion.base.InversionResult` whose ``history`` is empty (``[0, N]``:
nothing is iterated) and whose ``best_objective`` is the per-image measurement residual
``mean (A x_hat - y)^2``.

BM3D comes from the ``bm3d`` package (``pip install tfinverse[bm3d]``), imported only when
:func:`bm3d_denoise` is called; it is free for non-commercial use only.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Optional

import numpy as np
import tensorflow as tf

from tfinverse.inversion.base import InversionResult, check_measurement

__all__ = [
    "OBSERVATION_MODES",
    "measurement_residual",
    "bicubic_upsampling",
    "zero_filled_ifft",
    "bm3d_denoise",
    "observation_baseline",
]

#: How :func:`observation_baseline` turns ``y`` into an image.
OBSERVATION_MODES = ("auto", "observation", "adjoint", "pinv")

_BM3D_MIN_SIDE = 8

_BM3D_INSTALL_HINT = (
    "bm3d_denoise needs the bm3d package: pip install tfinverse[bm3d] "
    "(BM3D is free for non-commercial use only; read the bm3d package's licence before other use)"
)


def measurement_residual(operator, x_hat, y) -> np.ndarray:
    """Per-image mean squared measurement residual ``mean (A x_hat - y)^2``.

    Args:
      operator: the forward operator.
      x_hat: estimates ``[N, *operator.in_shape]``.
      y: measurements ``[N, *operator.out_shape]``.

    Returns:
      float32 ``[N]``.
    """
    x_hat = tf.cast(tf.convert_to_tensor(x_hat), operator.dtype)
    y = tf.cast(tf.convert_to_tensor(y), operator.dtype)
    residual = operator(x_hat) - y
    axes = list(range(1, residual.shape.rank))
    return tf.reduce_mean(tf.square(residual), axis=axes).numpy().astype(np.float32)


def _closed_form_result(
    operator, x_hat, y, start_time: float, extras: Optional[Dict[str, Any]] = None
) -> InversionResult:
    x_hat = np.asarray(x_hat, np.float32)
    n = x_hat.shape[0]
    return InversionResult(
        x_hat=x_hat,
        history=np.zeros((0, n), np.float32),
        best_objective=measurement_residual(operator, x_hat, y),
        latents=None,
        seconds=time.perf_counter() - start_time,
        extras=dict(extras or {}),
    )


def bicubic_upsampling(operator, y, *, a: float = -0.75) -> InversionResult:
    """Bicubic up-sampling of super-resolution measurements (IAGAN's "Bicubic" column).

    Args:
      operator: a ``super_resolution`` operator (anything with a ``bicubic_upsample``
        method).
      y: low-resolution measurements ``[N, *operator.out_shape]``.
      a: Keys parameter of the interpolation kernel (-0.75, PyTorch's bicubic, which the
        IAGAN code used).

    Returns:
      An :class:`InversionResult` with the up-sampled images (not clipped).

    Raises:
      ValueError: for a bad measurement, or an operator without bicubic up-sampling.
    """
    y = check_measurement(operator, y)
    start_time = time.perf_counter()
    upsample = getattr(operator, "bicubic_upsample", None)
    if not callable(upsample):
        raise ValueError(
            f"bicubic_upsampling needs a super-resolution operator (one with bicubic_upsample), "
            f"got {operator.name!r}"
        )
    return _closed_form_result(operator, upsample(y, a=a).numpy(), y, start_time, {"a": float(a)})


def zero_filled_ifft(operator, y) -> InversionResult:
    """Zero-filled inverse FFT of subsampled Fourier measurements (IAGAN's "naive IFFT").

    Args:
      operator: a ``subsampled_fourier`` operator (anything with a ``zero_filled_ifft``
        method).
      y: measurements ``[N, *operator.out_shape]``.

    Returns:
      An :class:`InversionResult` with the real part of the inverse FFT of the zero-filled
      spectrum (not clipped).

    Raises:
      ValueError: for a bad measurement, or an operator without a zero-filled inverse.
    """
    y = check_measurement(operator, y)
    start_time = time.perf_counter()
    inverse = getattr(operator, "zero_filled_ifft", None)
    if not callable(inverse):
        raise ValueError(
            f"zero_filled_ifft needs a subsampled Fourier operator (one with zero_filled_ifft), "
            f"got {operator.name!r}"
        )
    return _closed_form_result(operator, inverse(y).numpy(), y, start_time)


def observation_baseline(operator, y, *, mode: str = "auto") -> InversionResult:
    """The naive estimate: the observation itself, or ``A^T y`` / ``A^+ y``.

    Args:
      operator: the forward operator.
      y: measurements ``[N, *operator.out_shape]``.
      mode: ``"observation"`` returns ``y`` (needs ``out_shape == in_shape``, e.g. the blurred
        image of IAGAN's deblurring table or the noisy image of denoising); ``"adjoint"``
        returns ``A^T y``; ``"pinv"`` returns ``A^+ y``; ``"auto"`` is ``"observation"``
        when the shapes agree and ``"adjoint"`` otherwise.

    Returns:
      An :class:`InversionResult`; ``extras["mode"]`` names the mode used.

    Raises:
      ValueError: for a bad measurement, an unknown mode, or ``"observation"`` with
        ``out_shape != in_shape``.
    """
    y = check_measurement(operator, y)
    start_time = time.perf_counter()
    if mode not in OBSERVATION_MODES:
        raise ValueError(f"mode must be one of {OBSERVATION_MODES}, got {mode!r}")
    same_shape = tuple(operator.out_shape) == tuple(operator.in_shape)
    if mode == "auto":
        mode = "observation" if same_shape else "adjoint"
    if mode == "observation":
        if not same_shape:
            raise ValueError(
                f"mode='observation' needs measurements shaped like images, but operator "
                f"{operator.name!r} maps {tuple(operator.in_shape)} to {tuple(operator.out_shape)}; "
                "use mode='adjoint' or 'pinv'"
            )
        x_hat = y.numpy()
    elif mode == "adjoint":
        x_hat = operator.adjoint(y).numpy()
    else:
        x_hat = operator.pinv(y).numpy()
    return _closed_form_result(operator, x_hat, y, start_time, {"mode": mode})


def bm3d_denoise(y, sigma: float, *, profile: str = "np", progress: bool = True) -> InversionResult:
    """BM3D denoising of grey or RGB images (the LVR paper's comparison).

    Grey images go through ``bm3d.bm3d`` one by one, RGB images through ``bm3d.bm3d_rgb``
    (opponent colour space). ``sigma`` is the noise standard deviation in the units of the
    images (``[0, 1]``), e.g. ``0.1`` or ``10 / 255``; BM3D needs it, unlike LVR.

    Args:
      y: noisy images ``[N, H, W, 1]`` or ``[N, H, W, 3]``, both sides at least 8 pixels
        (BM3D's block size) and not exactly 8x8 (the bm3d package crashes on those).
      sigma: noise standard deviation, ``> 0``.
      profile: the bm3d package's profile (``"np"``, its default; bm3d 4.0.3's
        ``"refilter"`` fails with a scalar sigma).
      progress: show a progress bar (on a terminal).

    Returns:
      An :class:`InversionResult` with float32 estimates (not clipped); its objective is the
      per-image mean squared difference to ``y``.

    Raises:
      ValueError: for images of another shape or too small, NaN/Inf values or a bad ``sigma``
        (before bm3d is imported).
      ImportError: if the bm3d package is missing (the message says how to install it).
    """
    from tfinverse.operators.identity import Identity

    shape = tuple(np.shape(y))
    if len(shape) != 4 or shape[-1] not in (1, 3) or min(shape[1:3], default=0) < 1:
        raise ValueError(
            f"y must have shape [batch, H, W, 1] (grey) or [batch, H, W, 3] (RGB), got {list(shape)}"
        )
    height, width = shape[1], shape[2]
    # BM3D works on 8x8 blocks; the bm3d package rejects smaller images and crashes the
    # interpreter (segmentation fault) on exactly 8x8 ones.
    if min(height, width) < _BM3D_MIN_SIDE or (height, width) == (_BM3D_MIN_SIDE, _BM3D_MIN_SIDE):
        raise ValueError(
            f"BM3D needs images with both sides >= {_BM3D_MIN_SIDE} pixels and not exactly "
            f"{_BM3D_MIN_SIDE}x{_BM3D_MIN_SIDE}, got {height}x{width}"
        )
    operator = Identity(image_shape=shape[1:])
    y = check_measurement(operator, y)
    start_time = time.perf_counter()
    sigma = float(sigma)
    if not np.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"sigma must be a finite number > 0 (in image units, e.g. 0.1), got {sigma}")
    try:
        import bm3d
    except ImportError as error:
        raise ImportError(_BM3D_INSTALL_HINT) from error
    from tfinverse.utils.cli import progress as progress_bar

    noisy = y.numpy().astype(np.float64)
    estimates = np.empty(noisy.shape, np.float32)
    kwargs: Dict[str, Any] = {"desc": "BM3D", "leave": False}
    if not progress:
        kwargs["disable"] = True
    for i in progress_bar(range(noisy.shape[0]), **kwargs):
        if noisy.shape[-1] == 1:
            estimates[i, :, :, 0] = np.asarray(bm3d.bm3d(noisy[i, :, :, 0], sigma_psd=sigma, profile=profile))
        else:
            estimates[i] = np.asarray(bm3d.bm3d_rgb(noisy[i], sigma_psd=sigma, profile=profile))
    return _closed_form_result(operator, estimates, y, start_time, {"sigma": sigma, "profile": profile})
