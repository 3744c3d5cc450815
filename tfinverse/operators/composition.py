"""Composition of linear operators: ``A = A_k ... A_2 A_1``.

:class:`Composition` chains operators that are already built; the registered
``composition`` (:class:`NamedComposition`) builds its parts from registry names, by
default the classic super-resolution model: Gaussian blur followed by decimation by 2::

    A = get("composition", image_shape=(64, 64, 3))                  # blur, then decimate
    A = get("composition", image_shape=(64, 64, 3),
            steps=[("blur_uniform", {"kernel_size": 5}), ("super_resolution", {"factor": 2})])

A chain with a random part is random; a per-call ``seed`` (``A(x, seed=s)``) gives part ``i``
the seed ``stateless_fold_in(s, i)``, so its parts draw independently, and ``adjoint``,
``pinv`` and ``back_project`` with the same seed use the same draws.
"""

from __future__ import annotations

import importlib
from typing import Mapping, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tfinverse.operators.base import LinearOperator, get, register

__all__ = ["Composition", "NamedComposition", "DEFAULT_STEPS", "part_seed"]

#: Steps of the default ``composition``: Gaussian blur (its defaults), then keep every
#: second pixel.
DEFAULT_STEPS: Tuple[Tuple[str, dict], ...] = (
    ("blur_gaussian", {}),
    ("decimate", {"factor": 2}),
)


def part_seed(seed: int, index: int) -> int:
    """Seed of part ``index`` of a composition seeded with ``seed``.

    Derived with ``numpy.random.SeedSequence`` so that parts draw independent streams
    (two random parts never share a seed, whatever ``seed`` is).

    Args:
      seed: the composition's seed.
      index: position of the part in the chain.

    Returns:
      A non-negative integer seed.
    """
    return int(np.random.SeedSequence([int(seed), int(index)]).generate_state(1)[0])


class Composition(LinearOperator):
    """Applies ``operators`` in order: ``A x = A_k(... A_2(A_1 x))``.

    The adjoint applies the parts' adjoints in reverse order,
    ``A^T y = A_1^T(... A_k^T y)``; the pseudo-inverse runs conjugate gradients on
    ``A A^T`` (the product of the parts' pseudo-inverses is not ``A^+`` in general).
    Every part but the last must output an image (a 3-D shape) that the next one takes.

    Args:
      operators: the built parts, in application order; they share one dtype.
      cg_tol: relative residual tolerance of the conjugate-gradient pseudo-inverse.
      cg_max_iter: iteration limit of the conjugate-gradient pseudo-inverse.

    Raises:
      ValueError: for an empty chain, a part that is not a :class:`LinearOperator`, a part
        whose input shape differs from the previous part's output, or mixed dtypes.
    """

    name = "composition"

    def __init__(self, operators: Sequence[LinearOperator], cg_tol: float = 1e-6,
                 cg_max_iter: int = 500):
        operators = tuple(operators)
        if not operators:
            raise ValueError("a composition needs at least one operator")
        for op in operators:
            if not isinstance(op, LinearOperator):
                raise ValueError(f"composition parts must be LinearOperator instances, got {type(op).__name__}")
        first = operators[0]
        super().__init__(first.image_shape, first.dtype, cg_tol=cg_tol, cg_max_iter=cg_max_iter)
        for index, (previous, following) in enumerate(zip(operators[:-1], operators[1:]), start=1):
            if tuple(following.in_shape) != tuple(previous.out_shape):
                raise ValueError(
                    f"composition part {index} ({following.name}) takes shape {tuple(following.in_shape)} "
                    f"but part {index - 1} ({previous.name}) outputs shape {tuple(previous.out_shape)}"
                )
            if following.dtype != first.dtype:
                raise ValueError(
                    f"composition parts must share one dtype: part {index} ({following.name}) is "
                    f"{following.dtype.name}, part 0 is {first.dtype.name}"
                )
        self.operators = operators
        self.in_shape = tuple(first.in_shape)
        self.out_shape = tuple(operators[-1].out_shape)
        self.random = any(op.random for op in operators)

    def get_config(self) -> dict:
        return {"operators": self.operators, "cg_tol": self.cg_tol, "cg_max_iter": self.cg_max_iter}

    def resample(self, seed: int) -> "Composition":
        """The same chain with new draws: random part ``i`` gets ``part_seed(seed, i)``."""
        parts = [op.resample(part_seed(seed, i)) if op.random else op for i, op in enumerate(self.operators)]
        return Composition(parts, cg_tol=self.cg_tol, cg_max_iter=self.cg_max_iter)

    def __repr__(self) -> str:
        chain = " -> ".join(op.name for op in self.operators)
        return f"{type(self).__name__}({chain}, in_shape={self.in_shape}, out_shape={self.out_shape})"

    def _draw(self, seed, n):
        # Non-random parts get an empty structure, which the per-replica slicing skips.
        return tuple(
            op._draw(tf.random.experimental.stateless_fold_in(seed, index, alg="philox"), n) if op.random else ()
            for index, op in enumerate(self.operators)
        )

    def _forward(self, x, draw=None):
        for index, op in enumerate(self.operators):
            if draw is None:
                x = op.forward(x)
            else:
                x = op._apply_forward(op._check(x, op.in_shape, "input x"), draw[index] if op.random else None)
        return x

    def _adjoint(self, y, draw=None):
        for index in reversed(range(len(self.operators))):
            op = self.operators[index]
            if draw is None:
                y = op.adjoint(y)
            else:
                y = op._apply_adjoint(op._check(y, op.out_shape, "measurement y"), draw[index] if op.random else None)
        return y


def _normalise_steps(steps) -> Tuple[Tuple[str, dict], ...]:
    if isinstance(steps, str) or not isinstance(steps, Sequence) or not steps:
        raise ValueError(f"steps must be a non-empty sequence of names or (name, params) pairs, got {steps!r}")
    normalised = []
    for step in steps:
        if isinstance(step, str):
            name, params = step, {}
        elif isinstance(step, Sequence) and len(step) == 2 and isinstance(step[1], Mapping):
            name, params = step[0], dict(step[1])
        else:
            raise ValueError(f"each step must be a name or a (name, params) pair, got {step!r}")
        reserved = {"image_shape", "dtype", "seed"} & set(params)
        if reserved:
            raise ValueError(
                f"step {name!r}: {sorted(reserved)} are set by the composition (image_shape and dtype "
                "follow the chain, seeds derive from its seed)"
            )
        normalised.append((str(name), params))
    return tuple(normalised)


@register("composition")
class NamedComposition(Composition):
    """A chain of registered operators built by name; by default blur then decimate by 2.

    Part ``i`` is built as ``get(name_i, image_shape=<previous output>, dtype=dtype,
    seed=part_seed(seed, i), **params_i)`` (seeds only when ``seed`` is given; random
    parts need one). The default, Gaussian blur (``blur_gaussian`` with its own defaults)
    followed by ``decimate`` with factor 2, is the classic super-resolution model; with
    ``image_shape (H, W, C)`` it outputs ``(H/2, W/2, C)``.

    Args:
      image_shape: ``(height, width, channels)`` of the input image.
      steps: sequence of registry names or ``(name, params)`` pairs, in application order;
        ``params`` must not contain ``image_shape``, ``dtype`` or ``seed``.
      dtype: ``tf.float32`` or ``tf.float64`` for every part.
      seed: seed from which the random parts' seeds derive.
      cg_tol: relative residual tolerance of the conjugate-gradient pseudo-inverse.
      cg_max_iter: iteration limit of the conjugate-gradient pseudo-inverse.

    Raises:
      ValueError: for malformed steps, incompatible shapes, or a random part without seed.
      KeyError: for an unknown operator name.
    """

    def __init__(self, image_shape=(32, 32, 3), steps=DEFAULT_STEPS, dtype=tf.float32,
                 seed: int | None = None, cg_tol: float = 1e-6, cg_max_iter: int = 500):
        # Register the families the steps may name (the default needs blur and decimate).
        importlib.import_module("tfinverse.operators")
        importlib.import_module("tfinverse.operators.blur")
        importlib.import_module("tfinverse.operators.super_resolution")
        steps = _normalise_steps(steps)
        shape = tuple(int(s) for s in image_shape)
        parts = []
        for index, (name, params) in enumerate(steps):
            if len(shape) != 3:
                raise ValueError(
                    f"step {index} ({name!r}) needs an image input but step {index - 1} outputs shape {shape}"
                )
            part_params = dict(params, image_shape=shape, dtype=dtype)
            if seed is not None:
                part_params["seed"] = part_seed(seed, index)
            part = get(name, **part_params)
            parts.append(part)
            shape = tuple(part.out_shape)
        super().__init__(parts, cg_tol=cg_tol, cg_max_iter=cg_max_iter)
        self.seed = None if seed is None else int(seed)
        self.steps = steps

    def get_config(self) -> dict:
        return {
            "image_shape": self.image_shape,
            "steps": self.steps,
            "dtype": self.dtype.name,
            "seed": self.seed,
            "cg_tol": self.cg_tol,
            "cg_max_iter": self.cg_max_iter,
        }

    def resample(self, seed: int) -> "NamedComposition":
        """The same steps rebuilt from a new seed."""
        return type(self)(**dict(self.get_config(), seed=seed))
