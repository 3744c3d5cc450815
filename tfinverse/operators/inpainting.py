"""Masking operators for inpainting: ``y = m * x`` with a random mask ``m``.

Every operator here is diagonal: it multiplies the image entrywise by a mask drawn once, at
construction, from ``np.random.default_rng(seed)`` and kept as a constant. So
``A^T = A`` and the pseudo-inverse divides by the mask value where it is non-zero and
returns zero where it is zero.

Mask batches. ``batch_size=None`` (default) draws one mask of shape ``(H, W, C)`` that is
shared by every example of any batch. ``batch_size=n`` draws ``n`` independent masks,
shape ``(n, H, W, C)``; example ``i`` of a batch then uses mask ``i``, and ``forward``,
``adjoint`` and ``pinv`` require batches of exactly ``n`` examples (a ValueError when the
batch size is known at trace time, an ``InvalidArgumentError`` when it is only known at run
time). This reproduces AmbientGAN-style training, where each example sees its own draw;
use :meth:`~tfinverse.operators.base.LinearOperator.resample` for a fresh draw.

Per-call draws. With a stateless ``seed`` (``A(x, seed=s)``, ``A.adjoint(y, seed=s)``,
``A.pinv(y, seed=s)``, ``A.back_project(x_hat, y, seed=s)``) every example of a batch of any
size gets its own fresh mask from the same distribution as the fixed draw, made with
``tf.random.stateless_*`` ops inside the graph (``batch_size`` then plays no role); one seed
gives one set of masks to all four methods, so ``A^T = A`` and ``A^+`` hold per draw. This
is the per-step measurement of AmbientGAN-style training::

    A = get("drop_independent", image_shape=(64, 64, 3), seed=0)   # p = 0.9, rescaled

    @tf.function
    def step(x, seed):            # seed: int tensor [2], a new one every step
        return A(x, seed=seed)    # a fresh mask per example, one trace for all seeds

Registered operators: ``drop_independent``, ``drop_patch``, ``keep_patch``,
``random_pixel_mask``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import tensorflow as tf

from tfinverse.operators.base import LinearOperator, register

__all__ = [
    "MaskOperator",
    "DropIndependent",
    "DropPatch",
    "KeepPatch",
    "RandomPixelMask",
]


class MaskOperator(LinearOperator):
    """Base of the diagonal masking operators: ``y = mask * x``.

    Subclasses implement :meth:`_draw_masks`, which returns a numpy array of shape
    ``(n, H, W, C)`` for ``n`` masks drawn from the given generator (the fixed draw), and
    :meth:`_draw_masks_tf`, the same distribution drawn with stateless TensorFlow ops for
    per-call seeds (the ``draw`` of the private methods is then the ``[n, H, W, C]`` mask).

    Args:
      image_shape: ``(height, width, channels)``.
      dtype: ``tf.float32`` or ``tf.float64``.
      seed: seed of the mask draw (required).
      batch_size: None for one mask shared by the whole batch, or the number of per-example
        masks (the batch size ``forward`` then requires). Calls with a per-call ``seed``
        ignore it: they draw one mask per example for any batch size.
      **kwargs: further :class:`~tfinverse.operators.base.LinearOperator` arguments.

    Raises:
      ValueError: for a ``batch_size`` that is not a positive integer.
    """

    random = True

    def __init__(
        self,
        image_shape: Sequence[int] = (32, 32, 3),
        dtype=tf.float32,
        seed: int | None = None,
        batch_size: int | None = None,
        **kwargs,
    ):
        super().__init__(image_shape, dtype, seed=seed, **kwargs)
        if batch_size is not None:
            if isinstance(batch_size, bool) or int(batch_size) != batch_size or batch_size < 1:
                raise ValueError(f"batch_size must be None or a positive integer, got {batch_size!r}")
            batch_size = int(batch_size)
        self.batch_size = batch_size

    def _build_masks(self) -> None:
        """Draws the masks once; called by subclasses after their own parameters are set."""
        rng = np.random.default_rng(self.seed)
        n = 1 if self.batch_size is None else self.batch_size
        masks = np.asarray(self._draw_masks(rng, n), dtype=np.float64)
        expected = (n,) + self.image_shape
        if masks.shape != expected:  # a broken subclass, not user input
            raise AssertionError(f"{type(self).__name__}._draw_masks returned {masks.shape}, expected {expected}")
        if self.batch_size is None:
            masks = masks[0]
        inverse = np.divide(1.0, masks, out=np.zeros_like(masks), where=masks != 0)
        self.mask = tf.constant(masks, self.dtype)
        self._inverse_mask = tf.constant(inverse, self.dtype)

    def _draw_masks(self, rng: np.random.Generator, n: int) -> np.ndarray:
        raise NotImplementedError

    def _draw_masks_tf(self, seed: tf.Tensor, n: tf.Tensor) -> tf.Tensor:
        """``n`` masks ``[n, H, W, C]`` of the operator's dtype from a stateless seed."""
        raise NotImplementedError

    def _draw(self, seed, n):
        return self._draw_masks_tf(seed, n)

    def _per_batch(self, t: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
        """Returns ``mask`` ready to multiply ``t``, checking the batch size of per-example masks."""
        if self.batch_size is None:
            return mask
        got = t.shape[0]
        if got is not None and got != self.batch_size:
            raise ValueError(
                f"{self.name}: this operator holds {self.batch_size} per-example masks, so its batches "
                f"must have shape [{self.batch_size}, {', '.join(str(s) for s in self.image_shape)}], "
                f"got batch size {got}"
            )
        if got is None:
            check = tf.debugging.assert_equal(
                tf.shape(t)[0],
                self.batch_size,
                message=f"{self.name}: batches must hold exactly {self.batch_size} examples (one per mask)",
            )
            with tf.control_dependencies([check]):
                return tf.identity(mask)
        return mask

    def _forward(self, x, draw=None):
        return x * (self._per_batch(x, self.mask) if draw is None else draw)

    def _adjoint(self, y, draw=None):
        return y * (self._per_batch(y, self.mask) if draw is None else draw)

    def _pinv(self, y, draw=None):
        if draw is None:
            return y * self._per_batch(y, self._inverse_mask)
        return y * tf.math.divide_no_nan(tf.ones_like(draw), draw)

    @property
    def kept_fraction(self) -> float:
        """Fraction of entries with a non-zero mask value (over all masks)."""
        return float(np.mean(self.mask.numpy() != 0))

    def get_config(self) -> dict:
        return {**super().get_config(), "batch_size": self.batch_size}


def _default_patch_size(image_shape, patch_size) -> int:
    height, width, _ = image_shape
    if patch_size is None:
        patch_size = max(1, min(height, width) // 2)
    if isinstance(patch_size, bool) or int(patch_size) != patch_size:
        raise ValueError(f"patch_size must be an integer, got {patch_size!r}")
    patch_size = int(patch_size)
    if not 1 <= patch_size < min(height, width):
        raise ValueError(
            f"patch_size must satisfy 1 <= patch_size < min(height, width) = {min(height, width)} "
            f"(the corner is drawn from [0, size - patch_size)), got {patch_size}"
        )
    return patch_size


def _patch_masks(rng, n, image_shape, patch_size, inside_value) -> np.ndarray:
    """``n`` masks equal to ``inside_value`` on a random ``k x k`` patch and ``1 - inside_value`` elsewhere."""
    height, width, channels = image_shape
    masks = np.full((n, height, width, channels), 1.0 - inside_value)
    # Corners are uniform in [0, h - k) x [0, w - k), as in AmbientGAN / Ambient VAE-GAN.
    rows = rng.integers(0, height - patch_size, size=n)
    cols = rng.integers(0, width - patch_size, size=n)
    for i in range(n):
        masks[i, rows[i] : rows[i] + patch_size, cols[i] : cols[i] + patch_size, :] = inside_value
    return masks


def _patch_masks_tf(seed, n, image_shape, patch_size, inside_value, dtype) -> tf.Tensor:
    """The stateless-TF twin of :func:`_patch_masks`: ``[n, H, W, C]``, one patch per example."""
    height, width, channels = image_shape
    row_seed, col_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2, alg="philox"))
    rows = tf.random.stateless_uniform([n], row_seed, 0, height - patch_size, dtype=tf.int32, alg="philox")
    cols = tf.random.stateless_uniform([n], col_seed, 0, width - patch_size, dtype=tf.int32, alg="philox")
    r = tf.range(height)[None, :]
    c = tf.range(width)[None, :]
    in_rows = (r >= rows[:, None]) & (r < rows[:, None] + patch_size)  # [n, H]
    in_cols = (c >= cols[:, None]) & (c < cols[:, None] + patch_size)  # [n, W]
    inside = in_rows[:, :, None, None] & in_cols[:, None, :, None]  # [n, H, W, 1]
    mask = tf.where(inside, tf.constant(inside_value, dtype), tf.constant(1.0 - inside_value, dtype))
    return tf.broadcast_to(mask, tf.stack([n, height, width, channels]))


@register("drop_independent")
class DropIndependent(MaskOperator):
    """Drops each entry independently with probability ``p`` (AmbientGAN's ``drop_independent``).

    An entry is kept where a uniform draw ``u`` in ``[0, 1)`` satisfies ``u >= p``. With
    ``rescale`` the kept entries are multiplied by ``1 / (1 - p)`` so that the measurement
    equals the image in expectation, as AmbientGAN and Ambient VAE-GAN do. The defaults
    (``p = 0.9``, rescaled, one draw per pixel and channel) are Ambient VAE-GAN's.

    Args:
      image_shape: ``(height, width, channels)``.
      dtype: ``tf.float32`` or ``tf.float64``.
      seed: seed of the mask draw (required).
      p: drop probability in ``[0, 1)``.
      rescale: multiply kept entries by ``1 / (1 - p)``.
      per_channel: True draws every channel of every pixel independently (AmbientGAN);
        False drops whole pixels (all channels together).
      batch_size: None for one shared mask, or the number of per-example masks.
      **kwargs: further :class:`~tfinverse.operators.base.LinearOperator` arguments.

    Raises:
      ValueError: for ``p`` outside ``[0, 1)``.
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (32, 32, 3),
        dtype=tf.float32,
        seed: int | None = None,
        p: float = 0.9,
        rescale: bool = True,
        per_channel: bool = True,
        batch_size: int | None = None,
        **kwargs,
    ):
        super().__init__(image_shape, dtype, seed=seed, batch_size=batch_size, **kwargs)
        p = float(p)
        if not 0.0 <= p < 1.0:
            raise ValueError(f"drop probability p must be in [0, 1), got {p}")
        self.p = p
        self.rescale = bool(rescale)
        self.per_channel = bool(per_channel)
        self._build_masks()

    def _draw_masks(self, rng, n):
        height, width, channels = self.image_shape
        draw_shape = (n, height, width, channels if self.per_channel else 1)
        keep = (rng.random(draw_shape) >= self.p).astype(np.float64)
        keep = np.broadcast_to(keep, (n, height, width, channels))
        return keep / (1.0 - self.p) if self.rescale else keep

    def _draw_masks_tf(self, seed, n):
        height, width, channels = self.image_shape
        draw_shape = tf.stack([n, height, width, channels if self.per_channel else 1])
        uniform = tf.random.stateless_uniform(draw_shape, seed, dtype=self.dtype, alg="philox")
        keep = tf.cast(uniform >= tf.constant(self.p, self.dtype), self.dtype)
        keep = tf.broadcast_to(keep, tf.stack([n, height, width, channels]))
        return keep * tf.constant(1.0 / (1.0 - self.p), self.dtype) if self.rescale else keep

    def get_config(self) -> dict:
        return {**super().get_config(), "p": self.p, "rescale": self.rescale, "per_channel": self.per_channel}


@register("drop_patch")
class DropPatch(MaskOperator):
    """Zeroes a random ``k x k`` patch (all channels); keeps everything else.

    The patch's top-left corner is uniform in ``[0, h - k) x [0, w - k)``, so the patch
    always lies inside the image (and never touches the last row or column), as in
    AmbientGAN and Ambient VAE-GAN (which use ``k = 32`` on 64 x 64 images).

    Args:
      image_shape: ``(height, width, channels)``.
      dtype: ``tf.float32`` or ``tf.float64``.
      seed: seed of the patch position (required).
      patch_size: ``k``; default half the shorter image side. Must be below both sides.
      batch_size: None for one shared patch, or the number of per-example patches.
      **kwargs: further :class:`~tfinverse.operators.base.LinearOperator` arguments.

    Raises:
      ValueError: for a patch size not in ``[1, min(h, w))``.
    """

    _inside_value = 0.0

    def __init__(
        self,
        image_shape: Sequence[int] = (32, 32, 3),
        dtype=tf.float32,
        seed: int | None = None,
        patch_size: int | None = None,
        batch_size: int | None = None,
        **kwargs,
    ):
        super().__init__(image_shape, dtype, seed=seed, batch_size=batch_size, **kwargs)
        self.patch_size = _default_patch_size(self.image_shape, patch_size)
        self._build_masks()

    def _draw_masks(self, rng, n):
        return _patch_masks(rng, n, self.image_shape, self.patch_size, self._inside_value)

    def _draw_masks_tf(self, seed, n):
        return _patch_masks_tf(seed, n, self.image_shape, self.patch_size, self._inside_value, self.dtype)

    def get_config(self) -> dict:
        return {**super().get_config(), "patch_size": self.patch_size}


@register("keep_patch")
class KeepPatch(DropPatch):
    """Keeps only a random ``k x k`` patch (all channels); zeroes everything else.

    The complement of :class:`DropPatch`, with the same patch distribution (top-left corner
    uniform in ``[0, h - k) x [0, w - k)``, default ``k`` half the shorter side).

    Args:
      image_shape: ``(height, width, channels)``.
      dtype: ``tf.float32`` or ``tf.float64``.
      seed: seed of the patch position (required).
      patch_size: ``k``; default half the shorter image side. Must be below both sides.
      batch_size: None for one shared patch, or the number of per-example patches.
      **kwargs: further :class:`~tfinverse.operators.base.LinearOperator` arguments.

    Raises:
      ValueError: for a patch size not in ``[1, min(h, w))``.
    """

    _inside_value = 1.0


@register("random_pixel_mask")
class RandomPixelMask(MaskOperator):
    """Keeps a fixed fraction of pixel locations, the same for every channel; no rescaling.

    Exactly ``round(keep_fraction * H * W)`` (at least one) pixel locations are kept, chosen
    uniformly without replacement, so the kept fraction is exact rather than random (a
    choice of this package; the compressed-sensing inpainting literature uses both).

    Args:
      image_shape: ``(height, width, channels)``.
      dtype: ``tf.float32`` or ``tf.float64``.
      seed: seed of the mask draw (required).
      keep_fraction: fraction of pixels kept, in ``(0, 1]``.
      batch_size: None for one shared mask, or the number of per-example masks.
      **kwargs: further :class:`~tfinverse.operators.base.LinearOperator` arguments.

    Raises:
      ValueError: for ``keep_fraction`` outside ``(0, 1]``.
    """

    def __init__(
        self,
        image_shape: Sequence[int] = (32, 32, 3),
        dtype=tf.float32,
        seed: int | None = None,
        keep_fraction: float = 0.5,
        batch_size: int | None = None,
        **kwargs,
    ):
        super().__init__(image_shape, dtype, seed=seed, batch_size=batch_size, **kwargs)
        keep_fraction = float(keep_fraction)
        if not 0.0 < keep_fraction <= 1.0:
            raise ValueError(f"keep_fraction must be in (0, 1], got {keep_fraction}")
        self.keep_fraction = keep_fraction
        self._build_masks()

    def _draw_masks(self, rng, n):
        height, width, channels = self.image_shape
        n_pixels = height * width
        n_kept = max(1, int(round(self.keep_fraction * n_pixels)))
        masks = np.zeros((n, n_pixels))
        for i in range(n):
            masks[i, rng.choice(n_pixels, size=n_kept, replace=False)] = 1.0
        masks = masks.reshape(n, height, width, 1)
        return np.broadcast_to(masks, (n, height, width, channels))

    def _draw_masks_tf(self, seed, n):
        height, width, channels = self.image_shape
        n_pixels = height * width
        n_kept = max(1, int(round(self.keep_fraction * n_pixels)))
        # The n_kept largest of i.i.d. uniforms are a uniform subset without replacement.
        scores = tf.random.stateless_uniform(tf.stack([n, n_pixels]), seed, alg="philox")
        _, kept = tf.math.top_k(scores, k=n_kept, sorted=False)
        example = tf.broadcast_to(tf.range(n)[:, None], tf.shape(kept))
        masks = tf.scatter_nd(
            tf.stack([example, kept], axis=-1), tf.ones(tf.shape(kept), self.dtype), tf.stack([n, n_pixels])
        )
        masks = tf.reshape(masks, tf.stack([n, height, width, 1]))
        return tf.broadcast_to(masks, tf.stack([n, height, width, channels]))

    def get_config(self) -> dict:
        return {**super().get_config(), "keep_fraction": self.keep_fraction}
