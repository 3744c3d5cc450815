"""Compressed sensing with a dense i.i.d. Gaussian measurement matrix.

``y = A vec(x)`` with ``A`` an ``m x n`` matrix (``n = H W C``, the image flattened in
row-major ``[H, W, C]`` order) whose entries are i.i.d. ``N(0, 1/m)``, so that
``E ||A x||^2 = ||x||^2``. This is the model of CSGM and of IAGAN's Gaussian compressed
sensing experiments (128 x 128 x 3 images, n = 49152).

The matrix is dense: it takes ``m n`` numbers of the operator's dtype. With the default
limit ``max_matrix_bytes = 2 GiB`` and float32 (``m n <= 536,870,912``):

* 64 x 64 x 3 (n = 12,288) and 128 x 128 x 1 (n = 16,384) fit at every ratio up to 1;
* 128 x 128 x 3 (n = 49,152) fits up to m = 10,922 (m/n <= 0.222); the paper's
  m/n = 0.5 is a 24,576 x 49,152 float32 matrix of 4.8 GB and needs a larger limit;
* 256 x 256 x 3 (n = 196,608) fits only up to m = 2,730 (m/n <= 0.0139).

float64 halves these limits.

Per-call draws (``A(x, seed=s)``, ``A.adjoint(y, seed=s)``) are matrix-free: every example
gets its own stateless seed, and its ``m x n`` matrix (i.i.d. ``N(0, 1/m)``, drawn with
``tf.random.stateless_normal``, so other numbers than the fixed numpy draw) is generated
inside the graph, applied, and dropped, one example at a time, so memory stays at one
matrix (within ``max_matrix_bytes``) but every call generates ``batch * m * n`` normals.
The adjoint with the same seed regenerates the same matrices. :meth:`pinv` and
:meth:`back_project` refuse a per-call seed (``NotImplementedError``): the closed form would
factorise a fresh ``m x m`` Gram matrix per example and per call, and conjugate gradients
would regenerate every matrix twice per iteration; invert with the fixed draw instead.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from tfinverse.operators.base import LinearOperator, register

__all__ = ["CompressedSensing", "DEFAULT_MAX_MATRIX_BYTES"]

#: Default cap on the size of the dense measurement matrix: 2 GiB.
DEFAULT_MAX_MATRIX_BYTES = 2 * 1024**3

# Rows drawn per call, so that float32 matrices never need a float64 copy of the whole.
_DRAW_BLOCK_ENTRIES = 1 << 22


@register("compressed_sensing")
class CompressedSensing(LinearOperator):
    """Gaussian compressed sensing: ``y = A vec(x)``, ``A_ij ~ N(0, 1/m)`` i.i.d.

    The measurement count is either ``m`` or ``ratio = m / n`` (``m = round(ratio n)``, at
    least 1). The matrix is drawn once from ``np.random.default_rng(seed)`` in float64 and
    stored in the operator's dtype (float32 and float64 operators with one seed hold the
    same matrix up to rounding). Measurements have shape ``(m,)``.

    The pseudo-inverse is closed form: ``A^T (A A^T)^{-1} y`` for ``m <= n`` (and
    ``(A^T A)^{-1} A^T y`` for ``m > n``) through a Cholesky factor of the smaller Gram
    matrix, formed in float64 and factorised once, on the first call. If that factor would
    itself exceed ``max_matrix_bytes`` (as float64), :meth:`pinv` falls back to conjugate
    gradients.

    Args:
      image_shape: ``(height, width, channels)``.
      m: number of measurements; give either ``m`` or ``ratio``.
      ratio: ``m / n``; 0.1 when neither is given.
      max_matrix_bytes: largest matrix (in bytes) the operator may allocate; larger ones
        raise ValueError before anything is drawn.
      dtype: ``tf.float32`` or ``tf.float64``.
      seed: integer seed of the matrix (required).
      **kwargs: ``cg_tol``, ``cg_max_iter`` of :class:`LinearOperator`.

    Raises:
      ValueError: for both or invalid ``m``/``ratio``, a missing seed, or a matrix larger
        than ``max_matrix_bytes`` (the message gives its size in GB and the image size).
    """

    random = True

    def __init__(self, image_shape=(32, 32, 3), m: int | None = None, ratio: float | None = None,
                 max_matrix_bytes: int = DEFAULT_MAX_MATRIX_BYTES, dtype=tf.float32,
                 seed: int | None = None, **kwargs):
        super().__init__(image_shape, dtype, seed=seed, **kwargs)
        n = int(np.prod(self.image_shape))
        if m is not None and ratio is not None:
            raise ValueError(f"give either m or ratio, not both (got m={m}, ratio={ratio})")
        if m is None:
            ratio = 0.1 if ratio is None else float(ratio)
            if not ratio > 0:
                raise ValueError(f"ratio must be positive, got {ratio}")
            m = max(1, int(round(ratio * n)))
        elif isinstance(m, bool) or int(m) != m or m < 1:
            raise ValueError(f"m must be a positive integer, got {m!r}")
        self.m = int(m)
        self.n = n
        self.max_matrix_bytes = int(max_matrix_bytes)
        itemsize = self.dtype.size
        matrix_bytes = self.m * self.n * itemsize
        if matrix_bytes > self.max_matrix_bytes:
            height, width, channels = self.image_shape
            largest_m = self.max_matrix_bytes // (self.n * itemsize)
            raise ValueError(
                f"{self.name}: a {self.m} x {self.n} {self.dtype.name} measurement matrix needs "
                f"{matrix_bytes / 1e9:.1f} GB for a {height}x{width}x{channels} image "
                f"(m/n = {self.m / self.n:.3g}), more than max_matrix_bytes = "
                f"{self.max_matrix_bytes / 1e9:.1f} GB; at this image size at most m = {largest_m} "
                f"fits: lower m or ratio, use a smaller image, or raise max_matrix_bytes"
            )
        self.out_shape = (self.m,)
        self._matrix = tf.constant(self._draw_matrix(), self.dtype)
        self._cholesky = None

    def _draw_matrix(self) -> np.ndarray:
        rng = np.random.default_rng(self.seed)
        matrix = np.empty((self.m, self.n), self.dtype.as_numpy_dtype)
        block = max(1, _DRAW_BLOCK_ENTRIES // self.n)
        scale = 1.0 / np.sqrt(self.m)
        for start in range(0, self.m, block):
            stop = min(self.m, start + block)
            matrix[start:stop] = rng.standard_normal((stop - start, self.n)) * scale
        return matrix

    @property
    def matrix(self) -> tf.Tensor:
        """The ``[m, n]`` measurement matrix (a constant of the operator's dtype)."""
        return self._matrix

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(m=self.m, max_matrix_bytes=self.max_matrix_bytes)
        return config

    def _draw(self, seed, n):
        # One seed per example; the matrices themselves are generated where they are used.
        return tf.random.experimental.stateless_split(seed, n, alg="philox")

    def _example_matrix(self, seed: tf.Tensor) -> tf.Tensor:
        scale = tf.constant(1.0 / np.sqrt(self.m), self.dtype)
        return tf.random.stateless_normal([self.m, self.n], seed, dtype=self.dtype, alg="philox") * scale

    def _per_example(self, fn, rows: tf.Tensor, seeds: tf.Tensor, size: int) -> tf.Tensor:
        """Maps ``fn(matrix, row)`` over the examples, one generated matrix at a time."""
        return tf.map_fn(
            lambda args: fn(self._example_matrix(args[1]), args[0]),
            (rows, seeds),
            fn_output_signature=tf.TensorSpec([size], self.dtype),
            parallel_iterations=1,  # at most one matrix alive: max_matrix_bytes still holds
        )

    def _forward(self, x, draw=None):
        flat = tf.reshape(x, [-1, self.n])
        if draw is None:
            return tf.matmul(flat, self._matrix, transpose_b=True)
        return self._per_example(lambda a, v: tf.linalg.matvec(a, v), flat, draw, self.m)

    def _adjoint(self, y, draw=None):
        if draw is None:
            flat = tf.matmul(y, self._matrix)
        else:
            flat = self._per_example(lambda a, v: tf.linalg.matvec(a, v, transpose_a=True), y, draw, self.n)
        return tf.reshape(flat, tf.concat([tf.shape(y)[:1], self.in_shape], axis=0))

    def _gram_cholesky(self):
        """Lower Cholesky factor of ``A A^T`` (m <= n) or ``A^T A`` (m > n), or None if too big."""
        if self._cholesky is None:
            size = min(self.m, self.n)
            if size * size * 8 > self.max_matrix_bytes:
                return None
            matrix = self._matrix.numpy()
            gram = np.zeros((size, size))
            # Accumulate the Gram matrix in float64 one slab at a time.
            if self.m <= self.n:
                step = max(1, _DRAW_BLOCK_ENTRIES // self.m)
                for j in range(0, self.n, step):
                    slab = matrix[:, j:j + step].astype(np.float64)
                    gram += slab @ slab.T
            else:
                step = max(1, _DRAW_BLOCK_ENTRIES // self.n)
                for i in range(0, self.m, step):
                    slab = matrix[i:i + step].astype(np.float64)
                    gram += slab.T @ slab
            # Built outside any tf.function being traced, so every trace can capture it.
            with tf.init_scope():
                self._cholesky = tf.constant(np.linalg.cholesky(gram), self.dtype)
        return self._cholesky

    def _pinv(self, y, draw=None):
        if draw is not None:
            raise NotImplementedError(
                f"{self.name}: pinv and back_project do not support a per-call seed (every example's "
                "fresh Gaussian matrix would need its own m x m Gram factorisation on every call); "
                "call them without seed= to invert the fixed draw, or use adjoint(y, seed=...)"
            )
        chol = self._gram_cholesky()
        if chol is None:
            return super()._pinv(y)
        if self.m <= self.n:
            u = tf.transpose(tf.linalg.cholesky_solve(chol, tf.transpose(y)))
            return self._adjoint(u)
        flat = tf.reshape(self._adjoint(y), [-1, self.n])
        x = tf.transpose(tf.linalg.cholesky_solve(chol, tf.transpose(flat)))
        return tf.reshape(x, tf.concat([tf.shape(y)[:1], self.in_shape], axis=0))
