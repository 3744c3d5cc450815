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

Per-call draws. Every public method also takes an optional stateless ``seed`` (a Python int
or an integer tensor of shape ``[2]``): ``A(x, seed=s)`` then draws a fresh, independent
realisation for every example of the batch (a mask, a patch position, a matrix) with
``tf.random.stateless_*`` ops, inside ``tf.function`` and without retracing per seed value
(pass the seed as a tensor), for any (also dynamic) batch size::

    y = A(x, seed=s)                  # per-example draws keyed by s
    x_adj = A.adjoint(y, seed=s)      # the same draws: <A x, y'> = <x, A^T y'>
    x_dag = A.pinv(y, seed=s)         # the same draws again

The draws depend only on ``(seed, global batch size, position in the global batch)``. Under
a ``tf.distribute`` strategy a replica draws for the global batch (``num_replicas`` times its
local batch, assumed evenly split) and keeps its own slice, so a step on two replicas sees
the draws of the same step on one device. ``seed=None`` (the default) uses the fixed draw
made at construction, exactly as before; operators that draw nothing ignore the seed.
"""

from __future__ import annotations

from typing import Callable, Sequence, Tuple

import numpy as np
import tensorflow as tf

from tfinverse.utils.registry import Registry

__all__ = [
    "LinearOperator",
    "stateless_seed",
    "replica_slot",
    "global_slice",
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


def stateless_seed(seed) -> tf.Tensor:
    """Turns a per-call seed into the int64 ``[2]`` seed of ``tf.random.stateless_*``.

    Args:
      seed: a Python int, an integer scalar tensor, or an integer tensor of shape ``[2]``
        (e.g. from ``tf.random.experimental.stateless_split``). A tensor seed passed into a
        ``tf.function`` does not retrace it when its value changes.

    Returns:
      An int64 tensor of shape ``[2]`` (``[seed, 0]`` for an int or a scalar).

    Raises:
      ValueError: for None, a bool, a non-integer dtype or a shape other than ``[]``/``[2]``.
    """
    if isinstance(seed, bool) or seed is None:
        raise ValueError(f"seed must be a Python int or an integer tensor of shape [2], got {seed!r}")
    if isinstance(seed, (int, np.integer)):
        return tf.constant([int(seed), 0], tf.int64)
    seed = tf.convert_to_tensor(seed)
    if not seed.dtype.is_integer:
        raise ValueError(f"seed must be a Python int or an integer tensor of shape [2], got dtype {seed.dtype.name}")
    if seed.shape.rank == 0:
        return tf.stack([tf.cast(seed, tf.int64), tf.constant(0, tf.int64)])
    if seed.shape.rank is None:  # shape only known when the graph runs
        return tf.reshape(tf.cast(seed, tf.int64), [2])
    if seed.shape.rank != 1 or seed.shape[0] not in (2, None):
        raise ValueError(f"seed must be a Python int or an integer tensor of shape [2], got shape {seed.shape}")
    return tf.reshape(tf.cast(seed, tf.int64), [2])


def replica_slot():
    """``(replica_id, num_replicas)`` of the calling replica; ``(0, 1)`` outside a strategy.

    In a cross-replica context (inside ``strategy.scope()`` but not ``strategy.run``) the
    caller acts as a single replica. ``replica_id`` may be a scalar int32 tensor.
    """
    context = tf.distribute.get_replica_context()
    if context is None:
        return 0, 1
    return context.replica_id_in_sync_group, int(context.num_replicas_in_sync)


def global_slice(draw_global: Callable[[tf.Tensor], object], local_batch) -> object:
    """Draws for the global batch and keeps this replica's examples.

    Args:
      draw_global: maps a number of examples ``n`` (int32 scalar) to a tensor or nested
        structure of tensors whose first axis has length ``n``.
      local_batch: this replica's batch size (int32 scalar tensor).

    Returns:
      The structure restricted to rows ``[replica_id * local_batch, (replica_id + 1) *
      local_batch)``; with one replica, ``draw_global(local_batch)`` itself.
    """
    replica_id, num_replicas = replica_slot()
    local_batch = tf.cast(local_batch, tf.int32)
    if num_replicas == 1:
        return draw_global(local_batch)
    draws = draw_global(local_batch * num_replicas)
    start = tf.cast(replica_id, tf.int32) * local_batch
    return tf.nest.map_structure(lambda d: d[start : start + local_batch], draws)


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

    Random operators (``random = True``) also implement per-call draws (see the module
    docstring): :meth:`_draw` returns, for a stateless seed and a number of examples ``n``,
    a tensor (or nested structure of tensors) whose first axis has length ``n`` holding every
    example's draw, and :meth:`_forward`, :meth:`_adjoint` and :meth:`_pinv` take it as an
    optional second argument ``draw`` (None: the fixed draw of construction). The base class
    draws once per public call from the ``seed`` argument and passes the same ``draw`` to
    every private method it calls, so ``forward``, ``adjoint``, ``pinv`` and
    ``back_project`` with one seed use one realisation; the default :meth:`_adjoint`
    (automatic differentiation) and :meth:`_pinv` (conjugate gradients) thread ``draw``
    through. Operators that draw nothing keep one-argument private methods and never see a
    ``draw``.

    Args:
      image_shape: ``(height, width, channels)`` of one image.
      dtype: ``tf.float32`` (default) or ``tf.float64``.
      seed: integer seed of the operator's random draw; required by random operators and
        ignored by the others.
      cg_tol: relative residual tolerance of the conjugate-gradient pseudo-inverse.
      cg_max_iter: iteration limit of the conjugate-gradient pseudo-inverse.
    """

    name: str = "linear"
    #: True for operators whose construction draws random numbers (masks, matrices); such
    #: operators also implement :meth:`_draw` for per-call ``seed`` draws.
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
    def forward(self, x, seed=None) -> tf.Tensor:
        """Applies ``A`` to a batch ``x`` of shape ``[batch, *in_shape]``.

        Args:
          x: the batch (float tensor or array of the operator's dtype).
          seed: None for the fixed draw made at construction; or a stateless seed (Python
            int or integer tensor of shape ``[2]``) for a fresh draw per example (random
            operators only; others ignore it).

        Returns:
          ``[batch, *out_shape]``.

        Raises:
          ValueError: a wrong shape or dtype, or a malformed seed.
        """
        x = self._check(x, self.in_shape, "input x")
        return self._apply_forward(x, self._draw_for(x, seed))

    __call__ = forward

    def adjoint(self, y, seed=None) -> tf.Tensor:
        """Applies ``A^T`` to a batch ``y`` of shape ``[batch, *out_shape]``.

        Args:
          y: the measurement batch.
          seed: as for :meth:`forward`; the same seed gives the adjoint of the same draw.

        Returns:
          ``[batch, *in_shape]``.
        """
        y = self._check(y, self.out_shape, "measurement y")
        return self._apply_adjoint(y, self._draw_for(y, seed))

    def pinv(self, y, seed=None) -> tf.Tensor:
        """Applies the Moore-Penrose pseudo-inverse ``A^+`` to ``y``.

        Closed form where the operator has one; otherwise ``A^T u`` with ``u`` solving
        ``A A^T u = y`` by conjugate gradients (``cg_tol``, ``cg_max_iter``).

        Args:
          y: the measurement batch.
          seed: as for :meth:`forward`; the same seed inverts the same draw.

        Raises:
          ValueError: a wrong shape or dtype, or NaN/Inf in ``y`` (inside ``tf.function``
            the NaN/Inf check runs with the graph and raises ``InvalidArgumentError``).
          NotImplementedError: for a per-call seed on an operator whose pseudo-inverse of a
            fresh draw is not supported (``compressed_sensing``).
        """
        y = self._check_finite(self._check(y, self.out_shape, "measurement y"), "measurement y")
        return self._apply_pinv(y, self._draw_for(y, seed))

    def back_project(self, x_hat, y, seed=None) -> tf.Tensor:
        """Back-projection ``x_hat + A^+ (y - A x_hat)`` (IAGAN, eq. 10).

        The result agrees exactly with ``y`` in the row space of ``A`` and keeps ``x_hat``'s
        null-space component.

        Args:
          x_hat: the estimate, ``[batch, *in_shape]``.
          y: the measurement batch.
          seed: as for :meth:`forward`; one draw serves ``A`` and ``A^+``.

        Raises:
          ValueError: a wrong shape or dtype, or NaN/Inf in ``x_hat`` or ``y``, as every
            inversion method refuses them (inside ``tf.function``: ``InvalidArgumentError``).
          NotImplementedError: as :meth:`pinv`.
        """
        x_hat = self._check_finite(self._check(x_hat, self.in_shape, "estimate x_hat"), "estimate x_hat")
        y = self._check_finite(self._check(y, self.out_shape, "measurement y"), "measurement y")
        draw = self._draw_for(y, seed)
        return x_hat + self._apply_pinv(y - self._apply_forward(x_hat, draw), draw)

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

    def _adjoint(self, y: tf.Tensor, draw=None) -> tf.Tensor:
        # The adjoint of a linear map is its vector-Jacobian product at any point.
        x0 = tf.zeros(tf.concat([tf.shape(y)[:1], self.in_shape], axis=0), self.dtype)
        with tf.GradientTape() as tape:
            tape.watch(x0)
            out = self._apply_forward(x0, draw)
        return tape.gradient(out, x0, output_gradients=y)

    def _pinv(self, y: tf.Tensor, draw=None) -> tf.Tensor:
        def normal(u):
            return self._apply_forward(self._apply_adjoint(u, draw), draw)

        u = conjugate_gradient(normal, y, tol=self.cg_tol, max_iter=self.cg_max_iter)
        return self._apply_adjoint(u, draw)

    def _draw(self, seed: tf.Tensor, n: tf.Tensor):
        """Per-example draws of a random operator (subclasses with ``random = True``).

        Args:
          seed: int64 stateless seed, shape ``[2]``.
          n: int32 scalar, the number of examples (may only be known when the graph runs).

        Returns:
          A tensor or nested structure of tensors with first axis ``n``; row ``i`` is
          example ``i``'s draw, passed as ``draw`` to the private methods.
        """
        raise NotImplementedError(f"{self.name}: this operator does not implement per-call draws (seed=...)")

    def _draw_for(self, t: tf.Tensor, seed):
        """The draw for batch ``t`` from a per-call seed; None for the fixed draw."""
        if seed is None:
            return None
        seed = stateless_seed(seed)  # validated even where it is then ignored
        if not self.random:
            return None
        return global_slice(lambda n: self._draw(seed, n), tf.shape(t)[0])

    # Only random operators take a ``draw``; the others keep one-argument private methods.
    def _apply_forward(self, x: tf.Tensor, draw) -> tf.Tensor:
        return self._forward(x) if draw is None else self._forward(x, draw)

    def _apply_adjoint(self, y: tf.Tensor, draw) -> tf.Tensor:
        return self._adjoint(y) if draw is None else self._adjoint(y, draw)

    def _apply_pinv(self, y: tf.Tensor, draw) -> tf.Tensor:
        return self._pinv(y) if draw is None else self._pinv(y, draw)

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
