"""Base classes and the registry of forward operators.

A forward operator is the ``A`` of ``y = A x + e``. Images enter as float NHWC batches
``[batch, H, W, C]``; what comes out (the measurement) has the shape given by
:attr:`LinearOperator.out_shape`, also batched on its first axis.

Every operator registers itself under a name so that experiments, scripts and tests can
build it from a string::

    import tfinverse.operators as ops
    A = ops.get("blur_uniform", image_shape=(64, 64, 3), kernel_size=9)
    y = A(x)                 # forward
    x_adj = A.adjoint(y)     # A^T y
    x_dag = A.pinv(y)        # A^+ y (closed form, or conjugate gradients)
    x_bp = A.back_project(x_hat, y)

Random operators (masks, Gaussian matrices) draw once, from an explicit ``seed``, at
construction and keep what they drew, so ``forward`` and ``adjoint`` always use the same
draw; :meth:`LinearOperator.resample` gives the same operator with a new draw.
"""

from __future__ import annotations

from typing import Callable, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tfinverse.utils.registry import Registry

__all__ = [
    "LinearOperator",
    "register",
    "available",
    "get",
    "operator_class",
    "conjugate_gradient",
]

_REGISTRY = Registry("operator", optional_params=("seed",))


def register(name: str) -> Callable[[type], type]:
    """Class decorator that adds a :class:`LinearOperator` subclass to the registry.

    Args:
      name: registry name, lower case with underscores (``"blur_uniform"``).

    Returns:
      The decorator; it sets ``cls.name`` and returns the class unchanged otherwise.
    """
    return _REGISTRY.register(name)


def available() -> Tuple[str, ...]:
    """Names of all registered linear operators, sorted."""
    return _REGISTRY.names()


def get(name: str, **params) -> "LinearOperator":
    """Builds a registered operator by name.

    Args:
      name: one of :func:`available`.
      **params: constructor arguments, e.g. ``image_shape=(32, 32, 3)``, ``seed=0``. A
        ``seed`` given to an operator that draws nothing is ignored, so callers can pass one
        seed to any operator.

    Returns:
      The operator.

    Raises:
      KeyError: for an unknown name (the message lists the known ones).
    """
    return _REGISTRY.build(name, **params)


def operator_class(name: str) -> type:
    """The class registered under ``name`` (its constructor lists the valid parameters).

    Raises:
      UnknownNameError: (a ``KeyError``) for an unknown name, listing the known ones.
    """
    return _REGISTRY.get_class(name)


def _as_shape(shape: Sequence[int], what: str) -> Tuple[int, ...]:
    shape = tuple(int(s) for s in shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"{what} must be (height, width, channels) with positive sizes, got {shape}")
    return shape


def _batched_dot(a: tf.Tensor, b: tf.Tensor) -> tf.Tensor:
    """Per-example inner product over all but the first axis, shape [batch, 1, ..., 1]."""
    axes = list(range(1, a.shape.rank))
    return tf.reduce_sum(a * b, axis=axes, keepdims=True)


def conjugate_gradient(
    apply: Callable[[tf.Tensor], tf.Tensor],
    b: tf.Tensor,
    tol: float = 1e-6,
    max_iter: int = 500,
) -> tf.Tensor:
    """Solves ``apply(u) = b`` for a symmetric positive semi-definite ``apply``, per example.

    The system is block-diagonal over the batch (axis 0), so every example gets its own step
    sizes and stops contributing once its residual norm is below ``tol * ||b||``. For a
    singular system with ``b`` in its range (``A A^T u = y`` with ``y`` in the range of
    ``A``) CG started from zero converges to the minimum-norm solution.

    Works eagerly and inside ``tf.function``.

    Args:
      apply: linear map from tensors shaped like ``b`` to the same shape.
      b: right-hand side, ``[batch, ...]``.
      tol: relative residual at which an example stops.
      max_iter: upper bound on iterations.

    Returns:
      ``u`` with the shape of ``b``.
    """
    b = tf.convert_to_tensor(b)
    tiny = tf.constant(np.finfo(b.dtype.as_numpy_dtype).tiny, b.dtype)
    threshold = tf.cast(tol, b.dtype) ** 2 * _batched_dot(b, b)
    u = tf.zeros_like(b)
    r = b
    p = r
    rr = _batched_dot(r, r)

    def cond(i, u, r, p, rr):
        return tf.logical_and(i < max_iter, tf.reduce_any(rr > threshold))

    def body(i, u, r, p, rr):
        active = tf.cast(rr > threshold, b.dtype)
        ap = apply(p)
        pap = _batched_dot(p, ap)
        alpha = active * rr / tf.maximum(pap, tiny)
        u = u + alpha * p
        r = r - alpha * ap
        rr_new = _batched_dot(r, r)
        beta = rr_new / tf.maximum(rr, tiny)
        p = r + beta * p
        # Finished examples keep their residual so they stay finished.
        rr_new = active * rr_new + (1.0 - active) * rr
        return i + 1, u, r, p, rr_new

    _, u, _, _, _ = tf.while_loop(cond, body, (tf.constant(0), u, r, p, rr))
    return u


class LinearOperator:
    """A linear forward model ``x -> A x`` on batched NHWC images.

    Subclasses set ``self.in_shape`` and ``self.out_shape`` (shapes without the batch axis)
    in ``__init__`` and implement :meth:`_forward`. They override :meth:`_adjoint` where a
    closed form is cheaper than automatic differentiation, and :meth:`_pinv` where the
    pseudo-inverse has a closed form; otherwise :meth:`pinv` runs conjugate gradients on
    ``A A^T``.

    Args:
      image_shape: ``(height, width, channels)`` of one image.
      dtype: ``tf.float32`` (default) or ``tf.float64``.
      seed: integer seed of the operator's random draw; required by random operators and
        ignored by the others.
      cg_tol: relative residual tolerance of the conjugate-gradient pseudo-inverse.
      cg_max_iter: iteration limit of the conjugate-gradient pseudo-inverse.
    """

    name: str = "linear"
    #: True for operators whose construction draws random numbers (masks, matrices).
    random: bool = False

    def __init__(
        self,
        image_shape: Sequence[int] = (32, 32, 3),
        dtype=tf.float32,
        seed: int | None = None,
        cg_tol: float = 1e-6,
        cg_max_iter: int = 500,
    ):
        self.image_shape = _as_shape(image_shape, "image_shape")
        self.dtype = tf.as_dtype(dtype)
        if self.dtype not in (tf.float32, tf.float64):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype.name}")
        if self.random and seed is None:
            raise ValueError(f"operator {self.name!r} draws random numbers: pass an explicit seed=")
        self.seed = None if seed is None else int(seed)
        self.cg_tol = float(cg_tol)
        self.cg_max_iter = int(cg_max_iter)
        self.in_shape: Tuple[int, ...] = self.image_shape
        self.out_shape: Tuple[int, ...] = self.image_shape

    # ----------------------------------------------------------------- public API
    def forward(self, x) -> tf.Tensor:
        """Applies ``A`` to a batch ``x`` of shape ``[batch, *in_shape]``."""
        return self._forward(self._check(x, self.in_shape, "input x"))

    __call__ = forward

    def adjoint(self, y) -> tf.Tensor:
        """Applies ``A^T`` to a batch ``y`` of shape ``[batch, *out_shape]``."""
        return self._adjoint(self._check(y, self.out_shape, "measurement y"))

    def pinv(self, y) -> tf.Tensor:
        """Applies the Moore-Penrose pseudo-inverse ``A^+`` to ``y``.

        Closed form where the operator has one; otherwise ``A^T u`` with ``u`` solving
        ``A A^T u = y`` by conjugate gradients (``cg_tol``, ``cg_max_iter``).

        Raises:
          ValueError: a wrong shape or dtype, or NaN/Inf in ``y`` (inside ``tf.function``
            the NaN/Inf check runs with the graph and raises ``InvalidArgumentError``).
        """
        return self._pinv(self._check_finite(self._check(y, self.out_shape, "measurement y"), "measurement y"))

    def back_project(self, x_hat, y) -> tf.Tensor:
        """Back-projection ``x_hat + A^+ (y - A x_hat)`` (IAGAN, eq. 10).

        The result agrees exactly with ``y`` in the row space of ``A`` and keeps ``x_hat``'s
        null-space component.

        Raises:
          ValueError: a wrong shape or dtype, or NaN/Inf in ``x_hat`` or ``y``, as every
            inversion method refuses them (inside ``tf.function``: ``InvalidArgumentError``).
        """
        x_hat = self._check_finite(self._check(x_hat, self.in_shape, "estimate x_hat"), "estimate x_hat")
        y = self._check_finite(self._check(y, self.out_shape, "measurement y"), "measurement y")
        return x_hat + self._pinv(y - self._forward(x_hat))

    def resample(self, seed: int) -> "LinearOperator":
        """The same operator with a new random draw (for random operators)."""
        params = dict(self.get_config())
        params["seed"] = seed
        return type(self)(**params)

    def get_config(self) -> dict:
        """Constructor arguments that rebuild this operator."""
        return {
            "image_shape": self.image_shape,
            "dtype": self.dtype.name,
            "seed": self.seed,
            "cg_tol": self.cg_tol,
            "cg_max_iter": self.cg_max_iter,
        }

    def norm(self, n_iter: int = 100, seed: int = 0) -> float:
        """Spectral norm ``||A||_2`` by power iteration on ``A^T A``."""
        rng = np.random.default_rng(seed)
        v = tf.constant(rng.standard_normal((1,) + self.in_shape), self.dtype)
        sigma2 = tf.constant(0.0, self.dtype)
        for _ in range(n_iter):
            v = v / tf.norm(v)
            w = self._adjoint(self._forward(v))
            sigma2 = tf.reduce_sum(v * w)
            v = w
        return float(tf.sqrt(sigma2))

    def random_input(self, batch: int, seed: int) -> tf.Tensor:
        """A standard-normal batch in the operator's domain (for tests and benchmarks)."""
        rng = np.random.default_rng(seed)
        return tf.constant(rng.standard_normal((batch,) + self.in_shape), self.dtype)

    def random_measurement(self, batch: int, seed: int) -> tf.Tensor:
        """A standard-normal batch in the operator's measurement space."""
        rng = np.random.default_rng(seed)
        return tf.constant(rng.standard_normal((batch,) + self.out_shape), self.dtype)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, in_shape={self.in_shape}, out_shape={self.out_shape})"

    # ------------------------------------------------------------ for subclasses
    def _forward(self, x: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def _adjoint(self, y: tf.Tensor) -> tf.Tensor:
        # The adjoint of a linear map is its vector-Jacobian product at any point.
        x0 = tf.zeros(tf.concat([tf.shape(y)[:1], self.in_shape], axis=0), self.dtype)
        with tf.GradientTape() as tape:
            tape.watch(x0)
            out = self._forward(x0)
        return tape.gradient(out, x0, output_gradients=y)

    def _pinv(self, y: tf.Tensor) -> tf.Tensor:
        def normal(u):
            return self._forward(self._adjoint(u))

        u = conjugate_gradient(normal, y, tol=self.cg_tol, max_iter=self.cg_max_iter)
        return self._adjoint(u)

    def _check(self, t, shape: Tuple[int, ...], what: str) -> tf.Tensor:
        """Converts to a tensor and validates rank, shape and dtype (raises ValueError)."""
        expected = "[batch, " + ", ".join(str(s) for s in shape) + "]"
        if isinstance(t, (tf.Tensor, tf.Variable)):
            if t.dtype != self.dtype:
                raise ValueError(
                    f"{self.name}: {what} must be {self.dtype.name} with shape {expected}, got dtype {t.dtype.name}"
                )
        else:
            arr = np.asarray(t)
            if arr.dtype.kind != "f" or np.dtype(arr.dtype) != np.dtype(self.dtype.as_numpy_dtype):
                raise ValueError(
                    f"{self.name}: {what} must be {self.dtype.name} with shape {expected}, got dtype {arr.dtype}"
                )
            t = tf.convert_to_tensor(arr)
        got = tuple(t.shape)
        if len(got) != len(shape) + 1 or any(
            g is not None and g != s for g, s in zip(got[1:], shape)
        ):
            raise ValueError(f"{self.name}: {what} must have shape {expected}, got {list(got)}")
        return t

    def _check_finite(self, t: tf.Tensor, what: str) -> tf.Tensor:
        """Refuses NaN/Inf: a ValueError when eager, a graph assertion inside tf.function."""
        message = f"{self.name}: {what} contains NaN or Inf values"
        if tf.executing_eagerly() and not isinstance(t, tf.Variable):
            bad = int(tf.size(t)) - int(tf.math.count_nonzero(tf.math.is_finite(t)))
            if bad:
                raise ValueError(f"{self.name}: {what} contains {bad} NaN or Inf value(s)")
            return t
        return tf.debugging.assert_all_finite(t, message)
