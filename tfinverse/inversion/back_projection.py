"""Back-projection (BP): hard compliance of an estimate with the measurements (IAGAN, eq. 10).

``x_bp = x_hat + A^+ (y - A x_hat)`` is the point closest to ``x_hat`` on the affine set
``{x : A x = y}`` (for ``y`` in the range of ``A``): it replaces the row-space component of
``x_hat`` by that of the measurements and keeps its null-space component unchanged. Applied
to a CSGM estimate it gives CSGM-BP, to an IAGAN estimate IAGAN-BP. With noise ``A^+``
amplifies ``e``, so BP is meant for low noise levels.

Two pseudo-inverses are available:

* exact (default): ``operator.back_project``, i.e. the operator's own ``A^+`` (closed form,
  or conjugate gradients on ``A A^T``);
* approximate (``approximate=True``): what the IAGAN paper used where inverting ``A A^T`` is
  costly: bicubic up-sampling for super-resolution and the zero-filled inverse FFT for
  subsampled Fourier measurements (which equals the exact ``A^+`` for the
  conjugate-symmetric masks the Fourier operator generates).

::

    from tfinverse.inversion.back_projection import back_project, back_project_result
    x_bp = back_project(operator, csgm_result.x_hat, y)
    csgm_bp = back_project_result(operator, csgm_result, y)
"""

from __future__ import annotations

import dataclasses
import time
from typing import Callable

import numpy as np
import tensorflow as tf

from tfinverse.inversion.base import InversionResult, check_measurement

__all__ = [
    "APPROXIMATE_PINV_METHODS",
    "approximate_pinv",
    "has_approximate_pinv",
    "back_project",
    "back_project_result",
]

#: Operator methods that act as the paper's approximate ``A^+``, in the order they are tried.
APPROXIMATE_PINV_METHODS = ("bicubic_upsample", "zero_filled_ifft")


def has_approximate_pinv(operator) -> bool:
    """True if the operator offers one of :data:`APPROXIMATE_PINV_METHODS`."""
    return any(callable(getattr(operator, name, None)) for name in APPROXIMATE_PINV_METHODS)


def approximate_pinv(operator) -> Callable[[tf.Tensor], tf.Tensor]:
    """The paper's approximate pseudo-inverse of an operator.

    Args:
      operator: a :class:`tfinverse.operators.LinearOperator`.

    Returns:
      A function ``y -> x`` (``[batch, *out_shape] -> [batch, *in_shape]``):
      ``operator.bicubic_upsample`` for super-resolution, ``operator.zero_filled_ifft`` for
      subsampled Fourier measurements.

    Raises:
      ValueError: if the operator has no approximate pseudo-inverse (the message names the
        operators that do and suggests ``approximate=False``).
    """
    for name in APPROXIMATE_PINV_METHODS:
        method = getattr(operator, name, None)
        if callable(method):
            return method
    raise ValueError(
        f"operator {operator.name!r} has no approximate pseudo-inverse (only super_resolution, "
        "with bicubic up-sampling, and subsampled_fourier, with the zero-filled inverse FFT, "
        "have one); use approximate=False for the exact pseudo-inverse"
    )


def _check_estimate(operator, x_hat, batch) -> tf.Tensor:
    """Validates an estimate batch ``[batch, *in_shape]`` and casts it to the operator's dtype."""
    expected = "[" + ", ".join([str(batch)] + [str(s) for s in operator.in_shape]) + "]"
    if not isinstance(x_hat, (tf.Tensor, tf.Variable)):
        x_hat = np.asarray(x_hat)
    dtype = tf.as_dtype(x_hat.dtype)
    if not dtype.is_floating:
        raise ValueError(f"x_hat must be a float image batch of shape {expected}, got dtype {dtype.name}")
    shape = tuple(x_hat.shape)
    if (
        len(shape) != len(operator.in_shape) + 1
        or tuple(shape[1:]) != tuple(operator.in_shape)
        or (batch is not None and shape[0] is not None and shape[0] != batch)
    ):
        raise ValueError(f"x_hat must have shape {expected} (one estimate per measurement), got {list(shape)}")
    return tf.cast(tf.convert_to_tensor(x_hat), operator.dtype)


def back_project(operator, x_hat, y, approximate: bool = False) -> tf.Tensor:
    """Back-projects estimates onto the measurements: ``x_hat + A^+ (y - A x_hat)``.

    Works eagerly and inside ``tf.function``.

    Args:
      operator: a :class:`tfinverse.operators.LinearOperator`.
      x_hat: ``[N, *operator.in_shape]`` estimates (float; cast to the operator's dtype).
      y: ``[N, *operator.out_shape]`` measurements.
      approximate: use the paper's approximate ``A^+`` (:func:`approximate_pinv`) instead of
        the exact pseudo-inverse.

    Returns:
      ``[N, *in_shape]`` tensor of the operator's dtype. With the exact ``A^+`` and ``y`` in
      the range of ``A``, ``A x_bp = y`` and ``x_bp - x_hat`` lies in the row space of ``A``.
      Not clipped to [0, 1].

    Raises:
      ValueError: for a measurement of the wrong shape or with NaN/Inf, an ``x_hat`` whose
        shape does not match (the message names the expected one), or ``approximate=True``
        with an operator that has no approximate pseudo-inverse.
    """
    y = check_measurement(operator, y)
    x_hat = _check_estimate(operator, x_hat, int(y.shape[0]) if y.shape[0] is not None else None)
    if not approximate:
        return operator.back_project(x_hat, y)
    pinv = approximate_pinv(operator)
    return x_hat + tf.cast(pinv(y - operator(x_hat)), operator.dtype)


def back_project_result(operator, result: InversionResult, y, approximate: bool = False) -> InversionResult:
    """CSGM-BP / IAGAN-BP: an inversion result with its estimate back-projected.

    Args:
      operator: the operator that produced ``y``.
      result: the result of an inversion of ``y`` (e.g. from ``csgm`` or ``iagan``).
      y: ``[N, *operator.out_shape]`` measurements.
      approximate: use the paper's approximate ``A^+`` (see :func:`back_project`).

    Returns:
      A new :class:`~tfinverse.inversion.base.InversionResult`: ``x_hat`` back-projected
      (float32, not clipped), ``best_objective`` its ``||y - A x_bp||^2``, the original
      ``history``, ``latents`` and ``extras``, plus ``extras["back_projection"]`` (``"exact"``
      or ``"approximate"``) and ``extras["objective_before_back_projection"]``; ``seconds``
      adds the time of the back-projection.

    Raises:
      ValueError: as :func:`back_project`.
    """
    start = time.perf_counter()
    y = check_measurement(operator, y)
    x_bp = back_project(operator, result.x_hat, y, approximate=approximate)
    residual = y - operator(x_bp)
    axes = list(range(1, len(operator.out_shape) + 1))
    objective = tf.reduce_sum(tf.square(residual), axis=axes).numpy().astype(np.float32)
    extras = dict(result.extras)
    extras["back_projection"] = "approximate" if approximate else "exact"
    extras["objective_before_back_projection"] = result.best_objective
    return dataclasses.replace(
        result,
        x_hat=tf.cast(x_bp, tf.float32).numpy(),
        best_objective=objective,
        seconds=result.seconds + time.perf_counter() - start,
        extras=extras,
    )
