"""What every inversion method shares: its result type and the checks on its input.

Every method takes an operator from :mod:`tfinverse.operators` and a measurement batch ``y``
and returns an :class:`InversionResult`. Bad input fails before any optimisation starts.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional

import numpy as np
import tensorflow as tf

__all__ = ["InversionResult", "check_measurement", "is_per_example_operator", "check_operator_batch", "check_generator_operator"]


@dataclasses.dataclass
class InversionResult:
    """The outcome of an inversion.

    Attributes:
      x_hat: the estimates, float32 ``[N, H, W, C]`` in the operator's domain (not clipped;
        clip to [0, 1] for display and metrics if the method can leave that range).
      history: the objective per iteration and image, float32 ``[iterations, N]`` (empty for
        closed-form methods).
      best_objective: the objective of the returned estimate per image, ``[N]``.
      latents: the chosen latent vectors ``[N, latent_dim]`` for generative methods, else None.
      seconds: wall time of the whole call.
      extras: method-specific data (e.g. the restart index chosen per image, the iteration
        at which the best value was reached, an early-stopping iteration).
    """

    x_hat: np.ndarray
    history: np.ndarray
    best_objective: np.ndarray
    latents: Optional[np.ndarray] = None
    seconds: float = 0.0
    extras: Dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def seconds_per_image(self) -> float:
        """Wall time divided by the number of images."""
        return self.seconds / max(len(self.x_hat), 1)


def check_measurement(operator, y) -> tf.Tensor:
    """Validates a measurement batch against an operator before any optimisation.

    Args:
      operator: a :class:`tfinverse.operators.LinearOperator`.
      y: ``[batch, *operator.out_shape]`` measurements (numpy or tensor).

    Returns:
      ``y`` as a tensor of the operator's dtype.

    Raises:
      ValueError: a shape that does not fit the operator (the message names the expected
        shape), a non-float dtype, or NaN/Inf values.
    """
    expected = "[batch, " + ", ".join(str(s) for s in operator.out_shape) + "]"
    if isinstance(y, (tf.Tensor, tf.Variable)):
        arr = y.numpy() if tf.executing_eagerly() else None
        shape = tuple(y.shape)
    else:
        arr = np.asarray(y)
        shape = arr.shape
    if len(shape) != len(operator.out_shape) + 1 or tuple(shape[1:]) != tuple(operator.out_shape):
        raise ValueError(f"measurement y must have shape {expected} for operator {operator.name!r}, got {list(shape)}")
    if arr is not None:
        if arr.dtype.kind != "f":
            raise ValueError(f"measurement y must be floating point, got dtype {arr.dtype}")
        bad = ~np.isfinite(arr)
        if bad.any():
            raise ValueError(f"measurement y contains {int(bad.sum())} NaN or Inf value(s)")
    return tf.cast(tf.convert_to_tensor(y), operator.dtype)


def is_per_example_operator(operator) -> bool:
    """True for operators holding one draw per batch example (e.g. masks with ``batch_size``)."""
    return getattr(operator, "batch_size", None) is not None


def check_operator_batch(operator, batch: int) -> None:
    """Raises ValueError if a per-example operator does not hold exactly ``batch`` draws."""
    if is_per_example_operator(operator) and int(operator.batch_size) != batch:
        raise ValueError(
            f"operator {operator.name!r} holds {operator.batch_size} per-example draws, so y must "
            f"have shape [{operator.batch_size}, {', '.join(str(s) for s in operator.out_shape)}], "
            f"got batch size {batch}"
        )


def check_generator_operator(generator, operator) -> None:
    """Checks that a prior's images are what an operator takes.

    Args:
      generator: a :class:`tfinverse.models.Generator`.
      operator: a :class:`tfinverse.operators.LinearOperator`.

    Raises:
      ValueError: if ``generator.output_shape`` differs from ``operator.in_shape``.
    """
    if tuple(generator.output_shape) != tuple(operator.in_shape):
        raise ValueError(
            f"the generator makes images of shape {tuple(generator.output_shape)} but operator "
            f"{operator.name!r} takes images of shape {tuple(operator.in_shape)}"
        )
