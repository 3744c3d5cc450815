"""Image and audio quality metrics.

The image metrics take batched NHWC images ``[batch, height, width, channels]``, as numpy
arrays or tensors, and return one value per image (a ``[batch]`` tensor), except
:func:`dataset_psnr`, which returns one number for the whole set. They are written in
TensorFlow and work inside ``tf.function``. Inputs are computed in float32, or in float64
when either input is float64; integer images are cast to float, so give ``data_range=255``
for uint8 images.

PSNR conventions differ between papers. :func:`psnr` is per image and is averaged by the
caller; :func:`dataset_psnr` is the PSNR of the mean MSE over the set,
``10 log10(data_range^2 / mean_i MSE_i)``, which the IAGAN paper reports (its footnote gives
``10 log10(255^2 / mean MSE)``). The two differ whenever the per-image errors differ.

SSIM follows Wang et al. (2004) through ``tf.image.ssim`` (11x11 Gaussian window, sigma 1.5),
which equals ``skimage.metrics.structural_similarity`` with ``gaussian_weights=True,
sigma=1.5, use_sample_covariance=False``. The Ambient VAE-GAN original measured SSIM with
scikit-image's old defaults on [0, 1] images, which take the data range from the float
dtype (2, not 1) and use a 7x7 uniform window with the sample covariance;
:func:`ambient_vae_gan_ssim` reproduces that, and :data:`AMBIENT_VAE_GAN_SSIM_DATA_RANGE`
names the range.

Audio source separation is scored by :func:`bss_eval` through ``mir_eval`` (the audio
extra), imported only when called.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple, Tuple

import numpy as np
import tensorflow as tf

__all__ = [
    "AMBIENT_VAE_GAN_SSIM_DATA_RANGE",
    "BssEvalResult",
    "mse",
    "psnr",
    "dataset_psnr",
    "ssim",
    "ambient_vae_gan_ssim",
    "bss_eval",
]

# scikit-image < 0.16 took the SSIM data range of a float image from its dtype, [-1, 1].
AMBIENT_VAE_GAN_SSIM_DATA_RANGE = 2.0

_IMAGE_SHAPE_TEXT = "[batch, height, width, channels]"


def _as_float_tensor(value, name: str) -> tf.Tensor:
    tensor = tf.convert_to_tensor(value)
    if tensor.dtype.is_complex or tensor.dtype == tf.bool or tensor.dtype == tf.string:
        raise ValueError(f"{name} must hold real numbers, got dtype {tensor.dtype.name}")
    return tensor


def _image_pair(x, y, fn_name: str) -> Tuple[tf.Tensor, tf.Tensor]:
    """Converts, validates and casts a pair of NHWC batches to a common float dtype."""
    x = _as_float_tensor(x, "x")
    y = _as_float_tensor(y, "y")
    for name, tensor in (("x", x), ("y", y)):
        rank = tensor.shape.rank
        if rank is not None and rank != 4:
            raise ValueError(
                f"{fn_name}: {name} must have shape {_IMAGE_SHAPE_TEXT}, got shape "
                f"{tensor.shape.as_list()} (rank {rank}); add a batch axis with x[None] for "
                "one image"
            )
        if rank == 4 and any(size == 0 for size in tensor.shape[1:]):
            raise ValueError(
                f"{fn_name}: {name} has an empty image axis, shape {tensor.shape.as_list()}"
            )
    if not x.shape.is_compatible_with(y.shape):
        raise ValueError(
            f"{fn_name}: x and y must have the same shape {_IMAGE_SHAPE_TEXT}, got "
            f"{x.shape.as_list()} and {y.shape.as_list()}"
        )
    dtype = tf.float64 if tf.float64 in (x.dtype, y.dtype) else tf.float32
    x = tf.cast(x, dtype)
    y = tf.cast(y, dtype)
    if tf.executing_eagerly():
        for name, tensor in (("x", x), ("y", y)):
            if not bool(tf.reduce_all(tf.math.is_finite(tensor))):
                raise ValueError(f"{fn_name}: {name} contains NaN or Inf values")
    else:
        # In a graph the values are unknown at trace time: check them when the op runs.
        x = tf.debugging.assert_all_finite(x, f"{fn_name}: x contains NaN or Inf values")
        y = tf.debugging.assert_all_finite(y, f"{fn_name}: y contains NaN or Inf values")
        with tf.control_dependencies(
            [
                tf.debugging.assert_equal(
                    tf.shape(x), tf.shape(y), message=f"{fn_name}: x and y shapes differ"
                )
            ]
        ):
            x = tf.identity(x)
    return x, y


def _data_range_tensor(data_range, dtype: tf.DType, fn_name: str) -> tf.Tensor:
    if isinstance(data_range, (int, float, np.integer, np.floating)):
        if not np.isfinite(data_range) or data_range <= 0:
            raise ValueError(f"{fn_name}: data_range must be a positive number, got {data_range}")
    return tf.cast(data_range, dtype)


def mse(x, y) -> tf.Tensor:
    """Mean squared error of each image.

    Args:
      x: images ``[batch, height, width, channels]`` (numpy array or tensor).
      y: images of the same shape.

    Returns:
      A ``[batch]`` tensor: the mean over height, width and channels of ``(x - y)^2``.

    Raises:
      ValueError: if a shape is not rank 4, the shapes differ, or a value is NaN or Inf (in
        a ``tf.function`` the value check raises ``tf.errors.InvalidArgumentError`` at run
        time instead).
    """
    x, y = _image_pair(x, y, "mse")
    return tf.reduce_mean(tf.math.squared_difference(x, y), axis=[1, 2, 3])


def _psnr_from_mse(mean_squared_error: tf.Tensor, data_range: tf.Tensor) -> tf.Tensor:
    ten = tf.constant(10.0, mean_squared_error.dtype)
    # Identical images give mse 0 and PSNR +inf, as in scikit-image.
    return ten * (tf.math.log(data_range**2 / mean_squared_error) / tf.math.log(ten))


def psnr(x, y, data_range=1.0) -> tf.Tensor:
    """Peak signal-to-noise ratio of each image, in dB.

    ``10 log10(data_range^2 / MSE)`` per image. Identical images give ``+inf``.

    Args:
      x: reference images ``[batch, height, width, channels]``.
      y: images of the same shape to score.
      data_range: the span of valid values (1 for images in [0, 1], 255 for uint8).

    Returns:
      A ``[batch]`` tensor of PSNR values in dB.

    Raises:
      ValueError: for a bad shape, a shape mismatch, NaN or Inf values, or a data range
        that is not positive.
    """
    x, y = _image_pair(x, y, "psnr")
    data_range = _data_range_tensor(data_range, x.dtype, "psnr")
    return _psnr_from_mse(tf.reduce_mean(tf.math.squared_difference(x, y), axis=[1, 2, 3]), data_range)


def dataset_psnr(x, y, data_range=1.0) -> tf.Tensor:
    """PSNR of a whole set: ``10 log10(data_range^2 / mean over images of per-image MSE)``.

    This is the figure the IAGAN paper reports (its footnote: ``10 log10(255^2 / mean
    MSE)``). It is not the mean of the per-image PSNRs; by Jensen's inequality it is never
    larger than that mean.

    Args:
      x: reference images ``[batch, height, width, channels]``.
      y: images of the same shape to score.
      data_range: the span of valid values (1 for images in [0, 1], 255 for uint8).

    Returns:
      A scalar tensor in dB.

    Raises:
      ValueError: for a bad shape, a shape mismatch, NaN or Inf values, or a data range
        that is not positive.
    """
    x, y = _image_pair(x, y, "dataset_psnr")
    data_range = _data_range_tensor(data_range, x.dtype, "dataset_psnr")
    per_image_mse = tf.reduce_mean(tf.math.squared_difference(x, y), axis=[1, 2, 3])
    return _psnr_from_mse(tf.reduce_mean(per_image_mse), data_range)


def ssim(
    x,
    y,
    data_range=1.0,
    filter_size: int = 11,
    filter_sigma: float = 1.5,
    k1: float = 0.01,
    k2: float = 0.03,
) -> tf.Tensor:
    """Structural similarity of each image (Wang et al. 2004), through ``tf.image.ssim``.

    Local statistics use a Gaussian window over the valid region only (no padding); the
    SSIM map is averaged over space and then over channels. This matches
    ``skimage.metrics.structural_similarity(..., gaussian_weights=True, sigma=filter_sigma,
    use_sample_covariance=False, data_range=data_range, channel_axis=-1)``. Images smaller
    than the window get a window shrunk to the image (``tf.image.ssim`` behaviour).

    For the Ambient VAE-GAN convention pass ``data_range=AMBIENT_VAE_GAN_SSIM_DATA_RANGE``,
    or use :func:`ambient_vae_gan_ssim` to also match its window.

    Args:
      x: reference images ``[batch, height, width, channels]``.
      y: images of the same shape to score.
      data_range: the span of valid values; sets the constants ``(k1 data_range)^2`` and
        ``(k2 data_range)^2``.
      filter_size: width of the Gaussian window.
      filter_sigma: standard deviation of the Gaussian window.
      k1: luminance stabiliser.
      k2: contrast stabiliser.

    Returns:
      A ``[batch]`` tensor of SSIM values (1 for identical images).

    Raises:
      ValueError: for a bad shape, a shape mismatch, NaN or Inf values, or a data range
        that is not positive.
    """
    x, y = _image_pair(x, y, "ssim")
    if int(filter_size) < 1 or filter_sigma <= 0:
        raise ValueError(
            f"ssim: filter_size must be >= 1 and filter_sigma > 0, got {filter_size}, {filter_sigma}"
        )
    data_range = _data_range_tensor(data_range, x.dtype, "ssim")
    return tf.image.ssim(
        x,
        y,
        max_val=data_range,
        filter_size=int(filter_size),
        filter_sigma=filter_sigma,
        k1=k1,
        k2=k2,
    )


def ambient_vae_gan_ssim(x, y, data_range=AMBIENT_VAE_GAN_SSIM_DATA_RANGE, win_size: int = 7) -> tf.Tensor:
    """SSIM as the Ambient VAE-GAN original measured it, per image.

    The original called scikit-image's ``compare_ssim(x, y, multichannel=True)`` with its
    defaults on float images in [0, 1]: data range 2 (taken from the float dtype, not the
    data), a ``win_size x win_size`` uniform window, and the unbiased (sample) covariance
    ``N / (N - 1)``; SSIM maps are averaged over the valid region and the channels. That
    equals ``skimage.metrics.structural_similarity(x, y, channel_axis=-1, data_range=2)``
    today. The original scored one 8x8 grid of 64 test images as a single image; pass that
    grid as a batch of one to reproduce it.

    Args:
      x: reference images ``[batch, height, width, channels]``.
      y: images of the same shape to score.
      data_range: the data range in the SSIM constants (2 in the original).
      win_size: odd width of the uniform window (7 in the original).

    Returns:
      A ``[batch]`` tensor of SSIM values.

    Raises:
      ValueError: for a bad shape, a shape mismatch, NaN or Inf values, a data range that
        is not positive, an even or too small window, or images smaller than the window.
    """
    x, y = _image_pair(x, y, "ambient_vae_gan_ssim")
    if win_size < 3 or win_size % 2 == 0:
        raise ValueError(f"ambient_vae_gan_ssim: win_size must be odd and >= 3, got {win_size}")
    height, width = x.shape[1], x.shape[2]
    if (height is not None and height < win_size) or (width is not None and width < win_size):
        raise ValueError(
            f"ambient_vae_gan_ssim: images must be at least {win_size}x{win_size}, got "
            f"{height}x{width}"
        )
    dtype = x.dtype
    data_range = _data_range_tensor(data_range, dtype, "ambient_vae_gan_ssim")
    channels = x.shape[3] if x.shape[3] is not None else tf.shape(x)[3]
    window_area = float(win_size * win_size)
    kernel = tf.ones(tf.stack([win_size, win_size, channels, 1]), dtype) / window_area

    def local_mean(image):
        return tf.nn.depthwise_conv2d(image, kernel, strides=[1, 1, 1, 1], padding="VALID")

    mean_x, mean_y = local_mean(x), local_mean(y)
    covariance_norm = window_area / (window_area - 1.0)
    var_x = covariance_norm * (local_mean(x * x) - mean_x * mean_x)
    var_y = covariance_norm * (local_mean(y * y) - mean_y * mean_y)
    cov_xy = covariance_norm * (local_mean(x * y) - mean_x * mean_y)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    ssim_map = ((2.0 * mean_x * mean_y + c1) * (2.0 * cov_xy + c2)) / (
        (mean_x * mean_x + mean_y * mean_y + c1) * (var_x + var_y + c2)
    )
    return tf.reduce_mean(ssim_map, axis=[1, 2, 3])


class BssEvalResult(NamedTuple):
    """BSS Eval v3 scores of each estimated source, in dB.

    Attributes:
      sdr: signal-to-distortion ratio ``[n_sources]``.
      sir: signal-to-interference ratio ``[n_sources]``; ``+inf`` with a single source,
        since there is nothing to interfere.
      sar: signal-to-artefacts ratio ``[n_sources]``.
      permutation: ``permutation[j]`` is the index of the estimated source matched to
        reference ``j`` (the scores are in reference order).
    """

    sdr: np.ndarray
    sir: np.ndarray
    sar: np.ndarray
    permutation: np.ndarray


def _source_array(value, name: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(
            f"bss_eval: {name} must have shape [n_sources, n_samples] (or [n_samples] for one "
            f"source), got {np.shape(value)}"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(f"bss_eval: {name} contains NaN or Inf values")
    return array


def bss_eval(reference_sources, estimated_sources, compute_permutation: bool = True) -> BssEvalResult:
    """SDR, SIR and SAR of separated audio sources (BSS Eval v3, via ``mir_eval``).

    Calls ``mir_eval.separation.bss_eval_sources``. With ``compute_permutation`` the
    estimates are matched to the references by the permutation with the best mean SIR.
    With one source SIR is ``+inf``.

    Args:
      reference_sources: true sources ``[n_sources, n_samples]`` (or ``[n_samples]``).
      estimated_sources: estimates of the same shape.
      compute_permutation: search the best matching of estimates to references; if False
        estimate ``j`` is scored against reference ``j``.

    Returns:
      A :class:`BssEvalResult` ``(sdr, sir, sar, permutation)`` of numpy arrays.

    Raises:
      ImportError: if ``mir_eval`` is not installed (``pip install tfinverse[audio]``).
      ValueError: for a bad shape, a shape mismatch, NaN or Inf values, or a silent
        (all-zero) reference source.
    """
    try:
        import mir_eval.separation
    except ImportError as error:
        raise ImportError(
            "bss_eval needs mir_eval, which is part of the audio extra: "
            "pip install tfinverse[audio]"
        ) from error
    reference = _source_array(reference_sources, "reference_sources")
    estimated = _source_array(estimated_sources, "estimated_sources")
    if reference.shape != estimated.shape:
        raise ValueError(
            "bss_eval: reference_sources and estimated_sources must have the same shape "
            f"[n_sources, n_samples], got {reference.shape} and {estimated.shape}"
        )
    if np.any(np.all(reference == 0, axis=1)):
        raise ValueError("bss_eval: a reference source is silent (all zeros); BSS Eval is undefined")
    with warnings.catch_warnings():
        # mir_eval 0.8 flags the whole separation module as deprecated (removed in 0.9,
        # which the audio extra excludes); the numbers are unaffected.
        warnings.filterwarnings("ignore", message=r"mir_eval\.separation", category=FutureWarning)
        sdr, sir, sar, permutation = mir_eval.separation.bss_eval_sources(
            reference, estimated, compute_permutation=compute_permutation
        )
    return BssEvalResult(
        sdr=np.asarray(sdr), sir=np.asarray(sir), sar=np.asarray(sar), permutation=np.asarray(permutation)
    )
