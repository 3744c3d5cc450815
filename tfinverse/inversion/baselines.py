"""Classical baselines: bicubic up-sampling, zero-filled inverse FFT, BM3D, the observation, blur / median.

These are the non-learned reference columns of the reproduced tables: IAGAN's "Bicubic"
(super-resolution), "naive IFFT" (subsampled Fourier) and "Blurred" (deblurring),
LVR's BM3D denoiser, and Ambient VAE-GAN's "non-learned" row (:func:`non_learned_ambient`). Every function returns an
:class:`~tfinverse.inversion.base.InversionResult` whose ``history`` is empty (``[0, N]``:
nothing is iterated) and whose ``best_objective`` is the per-image measurement residual
``mean (A x_hat - y)^2``.

BM3D comes from the ``bm3d`` package (``pip install tfinverse[bm3d]``), imported only when
:func:`bm3d_denoise` is called; it is free for non-commercial use only. Poisson (shot) noise
has no single sigma: :func:`bm3d_poisson_denoise` runs BM3D in the Anscombe domain, where the
noise is close to unit-variance Gaussian, and maps back with the exact unbiased inverse.
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
    "anscombe",
    "inverse_anscombe",
    "bm3d_poisson_denoise",
    "observation_baseline",
    "NON_LEARNED_KINDS",
    "non_learned_ambient",
]

#: :func:`non_learned_ambient`'s filters, and the paper measurement each one serves.
NON_LEARNED_KINDS = {"blur": ("drop_independent", "drop_patch"), "median": ("add_noise",)}

#: How :func:`observation_baseline` turns ``y`` into an image.
OBSERVATION_MODES = ("auto", "observation", "adjoint", "pinv")

_BM3D_MIN_SIDE = 8
_ANSCOMBE_OF_ZERO = 2.0 * np.sqrt(0.375)

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


def anscombe(counts):
    """Anscombe's variance-stabilising transform ``2 sqrt(counts + 3/8)``.

    Poisson counts of mean ``lambda`` become approximately Gaussian with unit variance (within
    a few percent for ``lambda`` above about 4).

    Args:
      counts: array of non-negative Poisson counts (any shape; negatives are clipped to 0).

    Returns:
      float64 array of the same shape.
    """
    return 2.0 * np.sqrt(np.maximum(np.asarray(counts, np.float64), 0.0) + 0.375)


def inverse_anscombe(transformed):
    """The closed-form approximation of the exact unbiased inverse of :func:`anscombe`.

    Makitalo and Foi (IEEE TIP 2011): the algebraic inverse ``(d / 2)^2 - 3/8`` is biased at low
    counts, because the transform is not linear; this inverse maps ``E[anscombe(counts)]``
    back to the mean count instead, which is what a denoiser estimates.

    Args:
      transformed: array of values in the Anscombe domain.

    Returns:
      float64 array of estimated mean counts (non-negative).
    """
    d = np.asarray(transformed, np.float64)
    # Below anscombe(0) the series diverges (its 1/d^3 term); those values mean zero counts.
    safe = np.maximum(d, _ANSCOMBE_OF_ZERO)
    root = np.sqrt(1.5)
    value = 0.25 * safe**2 + 0.25 * root / safe - 1.375 / safe**2 + 0.625 * root / safe**3 - 0.125
    return np.where(d < _ANSCOMBE_OF_ZERO, 0.0, np.maximum(value, 0.0))


def bm3d_poisson_denoise(y, peak: float, *, profile: str = "np", progress: bool = True) -> InversionResult:
    """BM3D for Poisson noise ``y = Poisson(peak * x) / peak``, through the Anscombe transform.

    ``peak * y`` (the counts) goes through :func:`anscombe`, is scaled to about ``[0, 1]``
    and denoised by :func:`bm3d_denoise` with the stabilised noise level (unit variance before
    the scaling), and comes back through :func:`inverse_anscombe` divided by ``peak``. This is
    the usual way to give BM3D, a Gaussian denoiser, shot noise (LIR's Poisson setting uses
    scikit-image's ``random_noise('poisson')``, peak 256 for 8-bit photographs).

    Args:
      y: noisy images ``[N, H, W, 1|3]`` in the units of ``x`` (e.g. ``[0, 1]``).
      peak: the counts of a pixel of value 1, ``> 0``.
      profile: the bm3d package's profile.
      progress: show a progress bar (on a terminal).

    Returns:
      An :class:`InversionResult` with float32 estimates (not clipped); ``extras`` hold
      ``peak`` and the stabilised ``sigma`` given to BM3D.

    Raises:
      ValueError: for a bad ``peak`` or input (see :func:`bm3d_denoise`).
      ImportError: if the bm3d package is missing.
    """
    peak = float(peak)
    if not np.isfinite(peak) or peak <= 0:
        raise ValueError(f"peak must be a finite number > 0, got {peak}")
    values = np.asarray(y, np.float64)
    if not np.all(np.isfinite(values)):
        raise ValueError("y contains NaN or Inf values")
    start_time = time.perf_counter()
    transformed = anscombe(peak * values)
    scale = float(anscombe(peak))  # a pixel of value 1 maps to about 1
    result = bm3d_denoise((transformed / scale).astype(np.float32), 1.0 / scale, profile=profile, progress=progress)
    x_hat = (inverse_anscombe(np.asarray(result.x_hat, np.float64) * scale) / peak).astype(np.float32)
    from tfinverse.operators.identity import Identity

    operator = Identity(image_shape=tuple(np.shape(y))[1:])
    return _closed_form_result(operator, x_hat, tf.constant(values, tf.float32), start_time,
                               {"peak": peak, "sigma": 1.0 / scale, "profile": profile})


def _gaussian_blur_zero_padded(images: tf.Tensor, sigma: float, size: int) -> tf.Tensor:
    """Every channel convolved with a normalised ``size x size`` Gaussian, zeros outside the image."""
    from tfinverse.operators.blur import gaussian_kernel

    channels = images.shape[-1]
    kernel = tf.constant(gaussian_kernel(sigma, size), images.dtype)  # symmetric: correlation = convolution
    kernel = tf.tile(kernel[:, :, None, None], [1, 1, channels, 1])
    return tf.nn.depthwise_conv2d(images, kernel, strides=[1, 1, 1, 1], padding="SAME")


def _median_zero_padded(images: tf.Tensor, window) -> tf.Tensor:
    """The median over a ``(kh, kw, kc)`` window centred on every entry, zeros outside (``scipy.signal.medfilt``)."""
    kh, kw, kc = window
    padded = tf.pad(images, [[0, 0], [kh // 2, kh // 2], [kw // 2, kw // 2], [kc // 2, kc // 2]])
    height, width, channels = images.shape[1:]
    shifted = [
        padded[:, i:i + height, j:j + width, c:c + channels]
        for i in range(kh) for j in range(kw) for c in range(kc)
    ]
    values = tf.sort(tf.stack(shifted, axis=-1), axis=-1)
    return values[..., (kh * kw * kc) // 2]


def non_learned_ambient(
    y,
    kind: str,
    mask=None,
    *,
    zero_level: float = 0.0,
    blur_sigma: float = 1.0,
    blur_size: int = 5,
    median_size=(3, 3, 3),
    clip: bool = True,
) -> InversionResult:
    """Ambient VAE-GAN's non-learned baseline: a Gaussian blur for the drop models, a median for noise.

    ``"blur"`` (``drop_independent``, ``drop_patch``): every channel of every image is
    convolved with a ``blur_size`` x ``blur_size`` Gaussian of sigma ``blur_sigma``
    (normalised, zero padding: ``scipy.signal.convolve2d(..., mode="same")``), except a
    channel whose mask has no zero, which is kept as it is (the original's rule).
    ``"median"`` (``add_noise``): the median over a ``median_size`` window of the
    ``H x W x C`` array with zero padding (``scipy.signal.medfilt``): the default 3x3x3 window
    mixes the channels, and on 1-channel images 18 of its 27 values are padding (so the
    median of a non-negative image is about 0; this is what the original computed on MNIST:
    pass ``(3, 3, 1)`` for a plain 3x3 median). Both work about ``zero_level``
    (``filter(y - c) + c``), since the original padded with zeros in its network range
    (``c = 0.5`` for CelebA's ``[-1, 1]``; see
    :attr:`tfinverse.tasks.ambient.AmbientConfig.zero_level`). The result is clipped to
    ``[0, 1]`` (the original clipped to its range).

    Args:
      y: lossy images ``[N, H, W, C]`` on ``[0, 1]`` coordinates (a ``drop_independent``
        measurement holds values up to ``1/(1-p)``).
      kind: ``"blur"`` or ``"median"``, or a paper measurement name (``drop_independent``,
        ``drop_patch`` -> blur; ``add_noise`` -> median).
      mask: for ``"blur"``: the masks ``[N, H, W, C]`` that made ``y`` (e.g.
        ``measure.mask(x, seed)``); None blurs every channel.
      zero_level: ``c`` in ``[0, 1]``.
      blur_sigma: the Gaussian's standard deviation in pixels (1).
      blur_size: its odd side (5).
      median_size: the median window ``(kh, kw, kc)``, odd sides (``(3, 3, 3)``).
      clip: clip the estimate to ``[0, 1]``.

    Returns:
      An :class:`InversionResult` with float32 estimates and an empty history;
      ``best_objective`` is the per-image mean squared difference to ``y``; ``extras`` hold
      ``kind``, ``zero_level`` and (blur) ``blurred_channels`` ``[N, C]`` (False where the
      channel was kept).

    Raises:
      ValueError: a shape that is not ``[N, H, W, C]``, a mask of another shape, NaN/Inf, an
        unknown kind, or filter sizes that are not positive odd numbers.
    """
    start_time = time.perf_counter()
    array = np.asarray(y.numpy() if isinstance(y, (tf.Tensor, tf.Variable)) else y)
    if array.ndim != 4 or array.dtype.kind != "f":
        raise ValueError(f"y must be floating-point images [N, H, W, C], got {array.dtype} {list(array.shape)}")
    if not np.all(np.isfinite(array)):
        raise ValueError("y contains NaN or Inf values")
    filters = {name: k for k, names in NON_LEARNED_KINDS.items() for name in (k, *names)}
    if kind not in filters:
        raise ValueError(f"kind must be one of {sorted(filters)}, got {kind!r}")
    kind = filters[kind]
    zero_level = float(zero_level)
    if not 0.0 <= zero_level <= 1.0:
        raise ValueError(f"zero_level must be in [0, 1], got {zero_level}")
    images = tf.constant(array.astype(np.float32) - np.float32(zero_level))
    extras: Dict[str, Any] = {"kind": kind, "zero_level": zero_level}
    if kind == "blur":
        if isinstance(blur_size, bool) or int(blur_size) != blur_size or blur_size < 1 or blur_size % 2 == 0:
            raise ValueError(f"blur_size must be a positive odd integer, got {blur_size!r}")
        estimate = _gaussian_blur_zero_padded(images, float(blur_sigma), int(blur_size))
        if mask is not None:
            mask = np.asarray(mask.numpy() if isinstance(mask, (tf.Tensor, tf.Variable)) else mask)
            if mask.shape != array.shape:
                raise ValueError(f"mask must have the shape of y {list(array.shape)}, got {list(mask.shape)}")
            holes = np.any(mask == 0, axis=(1, 2))  # [N, C]: the channel lost something
            estimate = tf.where(tf.constant(holes)[:, None, None, :], estimate, images)
            extras["blurred_channels"] = holes
    else:
        window = tuple(int(k) for k in median_size)
        if len(window) != 3 or any(k < 1 or k % 2 == 0 for k in window):
            raise ValueError(f"median_size must be three positive odd sizes (kh, kw, kc), got {median_size!r}")
        estimate = _median_zero_padded(images, window)
        extras["median_size"] = window
    estimate = estimate.numpy() + np.float32(zero_level)
    if clip:
        estimate = np.clip(estimate, 0.0, 1.0)
    estimate = estimate.astype(np.float32)
    return InversionResult(
        x_hat=estimate,
        history=np.zeros((0, array.shape[0]), np.float32),
        best_objective=np.mean((estimate - array) ** 2, axis=(1, 2, 3)).astype(np.float32),
        latents=None,
        seconds=time.perf_counter() - start_time,
        extras=extras,
    )
