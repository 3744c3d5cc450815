"""Subsampled Fourier measurements (compressed sensing as in sparse MRI; IAGAN's Fourier CS).

Every channel is transformed by the orthonormal 2-D DFT (``numpy.fft.fft2(norm="ortho")``)
and the coefficients at the ``K`` positions of a binary ``H x W`` mask are kept, as real
numbers. Measurement layout, shape ``(K, C, 2)``:

* axis 0: the sampled frequencies in row-major order of the *unshifted* frequency grid
  (``numpy.flatnonzero(mask)``; the zero frequency is at ``[0, 0]``);
* axis 1: the image channels;
* axis 2: real part, imaginary part.

Both members of a conjugate pair ``k, -k`` are stored, so the layout is redundant for real
images (and the imaginary parts of self-conjugate frequencies such as the zero frequency
are always 0). With an all-ones mask ``||A x|| = ||x||`` (Parseval: the squared real and
imaginary parts add up to ``|X_k|^2``) and ``A^T A = I``.

For a conjugate-symmetric mask (``mask[k] == mask[-k mod (H, W)]``) ``A^T A = F^H M F`` is
an orthogonal projector, so the pseudo-inverse equals the adjoint, which is the zero-filled
inverse FFT (real part): the naive reconstruction of IAGAN. Generated masks are always
symmetric; an explicit non-symmetric mask falls back to conjugate gradients.

Per-call draws (``A(x, seed=s)`` and the same ``seed`` for ``adjoint``, ``pinv``,
``back_project``) give every example its own generated mask, drawn in the graph with
stateless ops. The measurement layout needs a fixed count, so every drawn mask has exactly
the ``K`` frequencies of the operator's fixed mask (each row sorted in row-major order, as
above). The draw follows the generators' own sequential processes: the orbits that they
switch on together (the four mirror images ``(+-i, +-j)`` for ``variable_density``,
conjugate pairs for ``uniform``) come in the order of a sampling without replacement with
probability proportional to the chance that one draw of the generator hits the orbit (a
Gumbel top-k); the first ``K`` frequencies of that sequence form the mask. Where ``K`` ends
inside an orbit the drawn mask is not conjugate-symmetric; its ``pinv`` therefore always
runs conjugate gradients (which converge in a few iterations for these near-projections).
An operator with an explicit ``mask`` draws nothing and ignores the seed.
"""

from __future__ import annotations

import math

import numpy as np
import tensorflow as tf

from tfinverse.operators.base import LinearOperator, register

__all__ = [
    "variable_density_mask",
    "uniform_mask",
    "is_conjugate_symmetric",
    "zero_filled_ifft",
    "SubsampledFourier",
]

_MASK_TYPES = ("variable_density", "uniform")
# Rounds of variable-density draws after which the target is declared unreachable.
_MAX_DRAW_ROUNDS = 10_000


def is_conjugate_symmetric(mask) -> bool:
    """True if ``mask[i, j] == mask[-i mod H, -j mod W]`` for all frequencies.

    Args:
      mask: ``[H, W]`` array (non-zero means sampled) on the unshifted frequency grid.

    Returns:
      Whether the mask keeps every frequency together with its conjugate.
    """
    mask = np.asarray(mask) != 0
    mirrored = np.roll(mask[::-1, ::-1], shift=(1, 1), axis=(0, 1))
    return bool(np.array_equal(mask, mirrored))


def _target_count(ratio: float, height: int, width: int) -> int:
    if not 0 < ratio <= 1:
        raise ValueError(f"ratio must be in (0, 1], got {ratio}")
    return max(1, int(round(ratio * height * width)))


def _add_orbits(mask_flat: np.ndarray, orbits: np.ndarray, target: int) -> None:
    """Switches on whole orbits, in order of first appearance, until ``target`` ones.

    Args:
      mask_flat: boolean mask, flattened; modified in place.
      orbits: ``[n, r]`` flat indices, one candidate orbit per row (repeats allowed); an
        orbit is either entirely on or entirely off in the mask.
      target: stop as soon as the mask has at least this many ones.
    """
    keys = orbits.min(axis=1)
    _, first = np.unique(keys, return_index=True)
    orbits = orbits[np.sort(first)]
    orbits = orbits[~mask_flat[orbits[:, 0]]]
    if orbits.size == 0:
        return
    ordered = np.sort(orbits, axis=1)
    sizes = 1 + np.count_nonzero(np.diff(ordered, axis=1), axis=1)
    need = target - int(mask_flat.sum())
    count = int(np.searchsorted(np.cumsum(sizes), need)) + 1
    mask_flat[orbits[:count].ravel()] = True


def variable_density_mask(height: int, width: int, ratio: float, seed: int,
                          spread: float | None = None) -> np.ndarray:
    """IAGAN-style variable-density mask, dense at low frequencies, conjugate-symmetric.

    Frequency indices ``floor(|N(0, 1)| * t) mod (L // 2 + 1)`` are drawn independently
    per axis (``L`` the axis length, ``t = spread * L``) for a point ``(i, j)`` of the
    quadrant of non-negative frequencies, which is then mirrored to ``(-i, j)``,
    ``(i, -j)`` and ``(-i, -j)`` (mod the grid size). Rounds of ``(H/2)(W/2)`` points are
    drawn, each point adding its mirrored group in order, until the mask has at least
    ``round(ratio H W)`` ones (at most 3 more).

    Differences from the original, which drew ``(size/2)^2`` points once and flipped the
    quadrant about the array centre: the mirror is about frequency 0 (``k -> -k mod L``),
    which makes the mask exactly conjugate-symmetric; the modulus ``L // 2 + 1`` lets the
    Nyquist row and column be drawn, so every ratio up to 1 is reachable; points are drawn
    until the requested ratio is met, not a fixed number.

    Args:
      height: grid height ``H``.
      width: grid width ``W``.
      ratio: requested fraction of sampled frequencies, in (0, 1].
      seed: seed of ``np.random.default_rng``.
      spread: scale ``t / L`` of the half-normal index distribution; default ``ratio / 2``
        as in the original (``t = size * ratio / 2``).

    Returns:
      Boolean ``[H, W]`` mask on the unshifted grid (zero frequency at ``[0, 0]``).

    Raises:
      ValueError: for a ratio outside (0, 1] or a non-positive spread.
    """
    target = _target_count(ratio, height, width)
    spread = ratio / 2 if spread is None else float(spread)
    if not spread > 0:
        raise ValueError(f"spread must be positive, got {spread}")
    rng = np.random.default_rng(seed)
    rows_mod, cols_mod = height // 2 + 1, width // 2 + 1
    per_round = max(1, (height // 2) * (width // 2))
    mask_flat = np.zeros(height * width, bool)
    for _ in range(_MAX_DRAW_ROUNDS):
        i = np.floor(np.abs(rng.standard_normal(per_round)) * spread * height).astype(np.int64) % rows_mod
        j = np.floor(np.abs(rng.standard_normal(per_round)) * spread * width).astype(np.int64) % cols_mod
        ni, nj = (-i) % height, (-j) % width
        orbits = np.stack([i * width + j, ni * width + j, i * width + nj, ni * width + nj], axis=1)
        _add_orbits(mask_flat, orbits, target)
        if mask_flat.sum() >= target:
            return mask_flat.reshape(height, width)
    raise ValueError(
        f"could not reach ratio {ratio} in {_MAX_DRAW_ROUNDS} rounds of draws with spread {spread}; "
        "use a larger spread"
    )


def uniform_mask(height: int, width: int, ratio: float, seed: int) -> np.ndarray:
    """Uniformly random conjugate-symmetric mask with at least ``round(ratio H W)`` ones.

    Frequencies are visited in a random order; each adds itself and its conjugate
    ``-k mod (H, W)`` until the target is reached (at most one extra one).

    Args:
      height: grid height ``H``.
      width: grid width ``W``.
      ratio: requested fraction of sampled frequencies, in (0, 1].
      seed: seed of ``np.random.default_rng``.

    Returns:
      Boolean ``[H, W]`` mask on the unshifted grid.
    """
    target = _target_count(ratio, height, width)
    order = np.random.default_rng(seed).permutation(height * width)
    i, j = np.divmod(order, width)
    conjugate = ((-i) % height) * width + (-j) % width
    mask_flat = np.zeros(height * width, bool)
    _add_orbits(mask_flat, np.stack([order, conjugate], axis=1), target)
    return mask_flat.reshape(height, width)


def _erfc_array(values: np.ndarray) -> np.ndarray:
    return np.array([math.erfc(v) for v in np.ravel(values)]).reshape(np.shape(values))


def _folded_index_probabilities(length: int, spread: float) -> np.ndarray:
    """``P(floor(|N(0, 1)| * spread * length) mod (length // 2 + 1) = a)`` for every ``a``.

    The distribution of one axis index of :func:`variable_density_mask`'s draws.
    """
    modulus = length // 2 + 1
    scale = spread * length
    # Integers k with k / scale beyond ~40 standard deviations contribute nothing.
    k = np.arange(int(np.ceil(40.0 * scale)) + modulus + 1)
    cell = _erfc_array(k / scale / np.sqrt(2.0)) - _erfc_array((k + 1) / scale / np.sqrt(2.0))
    return np.bincount(k % modulus, weights=cell, minlength=modulus)


def _orbit_table(height: int, width: int, mask_type: str, spread: float):
    """The groups of frequencies a generator switches on together, and their draw weights.

    Returns:
      ``(members, weights)``: int ``[n_orbits, 4]`` flat frequency indices, padded with -1,
      and float64 ``[n_orbits]`` probabilities that one draw of the generator hits the orbit.
    """
    if mask_type == "variable_density":
        i, j = np.meshgrid(np.arange(height // 2 + 1), np.arange(width // 2 + 1), indexing="ij")
        i, j = i.ravel(), j.ravel()
        ni, nj = (-i) % height, (-j) % width
        members = np.stack([i * width + j, ni * width + j, i * width + nj, ni * width + nj], axis=1)
        weights = _folded_index_probabilities(height, spread)[i] * _folded_index_probabilities(width, spread)[j]
    else:  # uniform: conjugate pairs, hit when either member is visited
        f = np.arange(height * width)
        r, c = np.divmod(f, width)
        conjugate = ((-r) % height) * width + (-c) % width
        keep = f <= conjugate
        members = np.stack([f[keep], conjugate[keep]], axis=1)
        weights = np.where(members[:, 0] == members[:, 1], 1.0, 2.0)
    members = np.sort(members, axis=1)
    duplicate = np.zeros(members.shape, bool)
    duplicate[:, 1:] = members[:, 1:] == members[:, :-1]
    members = np.where(duplicate, -1, members)
    members = np.pad(members, [(0, 0), (0, 4 - members.shape[1])], constant_values=-1)
    return members.astype(np.int32), weights


def zero_filled_ifft(operator: "SubsampledFourier", y, seed=None) -> tf.Tensor:
    """The naive reconstruction: zeros at unsampled frequencies, then the inverse FFT.

    Args:
      operator: the :class:`SubsampledFourier` operator that produced ``y``.
      y: ``[batch, K, C, 2]`` measurements.
      seed: the per-call seed ``y`` was measured with (None: the fixed mask).

    Returns:
      ``[batch, H, W, C]`` real part of the orthonormal inverse 2-D FFT of the zero-filled
      spectrum (equal to ``operator.adjoint(y)``, and to ``operator.pinv(y)`` for a
      conjugate-symmetric mask).
    """
    return operator.zero_filled_ifft(y, seed=seed)


@register("subsampled_fourier")
class SubsampledFourier(LinearOperator):
    """Orthonormal 2-D DFT per channel, sampled at the ones of a binary frequency mask.

    See the module docstring for the ``(K, C, 2)`` measurement layout. One mask serves all
    channels.

    Args:
      image_shape: ``(height, width, channels)``.
      ratio: requested fraction of sampled frequencies for generated masks (IAGAN used 0.3
        and 0.5); the mask reaches at least ``round(ratio H W)`` ones.
      mask_type: ``"variable_density"`` (IAGAN-style, see :func:`variable_density_mask`)
        or ``"uniform"`` (see :func:`uniform_mask`).
      mask: explicit ``[H, W]`` mask on the unshifted grid (non-zero = sampled); overrides
        ``ratio`` and ``mask_type``, and then no seed is needed. A non-symmetric mask is
        allowed; its pseudo-inverse uses conjugate gradients.
      spread: half-normal scale of variable-density masks (see
        :func:`variable_density_mask`); None for the original's ``ratio / 2``.
      dtype: ``tf.float32`` (complex64 FFTs) or ``tf.float64`` (complex128).
      seed: integer seed of the generated mask.
      **kwargs: ``cg_tol``, ``cg_max_iter`` of :class:`LinearOperator`.

    Raises:
      ValueError: for an unknown mask type, a bad ratio, an explicit mask of the wrong
        shape or with no ones, or a generated mask without a seed.
    """

    random = True

    def __init__(self, image_shape=(32, 32, 3), ratio: float = 0.3,
                 mask_type: str = "variable_density", mask=None, spread: float | None = None,
                 dtype=tf.float32, seed: int | None = None, **kwargs):
        # An explicit mask draws nothing, so it needs no seed.
        self.random = mask is None
        super().__init__(image_shape, dtype, seed=seed, **kwargs)
        height, width, channels = self.image_shape
        if mask_type not in _MASK_TYPES:
            raise ValueError(f"mask_type must be one of {_MASK_TYPES}, got {mask_type!r}")
        self.ratio = float(ratio)
        self.mask_type = mask_type
        self.spread = None if spread is None else float(spread)
        self._explicit_mask = mask is not None
        if mask is not None:
            mask = np.asarray(mask)
            if mask.shape != (height, width):
                raise ValueError(
                    f"{self.name}: mask must have shape ({height}, {width}), got {mask.shape}"
                )
            mask = mask != 0
            if not mask.any():
                raise ValueError(f"{self.name}: mask samples no frequency")
        elif mask_type == "variable_density":
            mask = variable_density_mask(height, width, self.ratio, self.seed, self.spread)
        else:
            mask = uniform_mask(height, width, self.ratio, self.seed)
        self._mask = mask
        self.symmetric = is_conjugate_symmetric(mask)
        indices = np.flatnonzero(mask)
        self.num_frequencies = int(indices.size)
        self.out_shape = (self.num_frequencies, channels, 2)
        self._indices = tf.constant(indices, tf.int64)
        # Position of every grid frequency in the measurement, K (a zero) if unsampled.
        fill = np.full(height * width, indices.size, np.int64)
        fill[indices] = np.arange(indices.size)
        self._fill_index = tf.constant(fill, tf.int64)
        self._complex = tf.complex64 if self.dtype == tf.float32 else tf.complex128
        # Orthonormal scaling; made in the complex dtype directly to keep float64 precision.
        self._inv_sqrt_size = tf.constant(1.0 / np.sqrt(height * width), self._complex)
        self._sqrt_size = tf.constant(np.sqrt(height * width), self._complex)
        self._orbits = None  # tables of per-call draws, built on first use

    @property
    def mask(self) -> np.ndarray:
        """Boolean ``[H, W]`` mask on the unshifted grid (zero frequency at ``[0, 0]``)."""
        return self._mask.copy()

    @property
    def sampling_ratio(self) -> float:
        """Fraction of sampled frequencies, ``K / (H W)``."""
        return self.num_frequencies / float(self._mask.size)

    def mask_image(self, centered: bool = True) -> np.ndarray:
        """The mask as a float32 ``[H, W]`` image in {0, 1}, for plots.

        Args:
          centered: move the zero frequency to the centre (``numpy.fft.fftshift``), the
            usual way masks are displayed (IAGAN's Figure 4).

        Returns:
          float32 array.
        """
        image = self._mask.astype(np.float32)
        return np.fft.fftshift(image) if centered else image

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            ratio=self.ratio,
            mask_type=self.mask_type,
            mask=self._mask.copy() if self._explicit_mask else None,
            spread=self.spread,
        )
        return config

    def _spectrum(self, x):
        """``[B, H, W, C]`` -> orthonormal 2-D DFT ``[B, C, H*W]``."""
        height, width, channels = self.image_shape
        planes = tf.transpose(x, [0, 3, 1, 2])
        spectrum = tf.signal.fft2d(tf.complex(planes, tf.zeros_like(planes)))
        spectrum = spectrum * self._inv_sqrt_size
        return tf.reshape(spectrum, [-1, channels, height * width])

    def _orbit_constants(self):
        """``(members [n_orbits, 4], log_weights [n_orbits])`` as constants, built once."""
        if self._orbits is None:
            height, width, _ = self.image_shape
            spread = self.ratio / 2 if self.spread is None else self.spread
            members, weights = _orbit_table(height, width, self.mask_type, spread)
            log_weights = np.log(np.maximum(weights, np.finfo(np.float64).tiny))
            # Built outside any tf.function being traced, so every trace can capture them.
            with tf.init_scope():
                self._orbits = (tf.constant(members), tf.constant(log_weights, tf.float64))
        return self._orbits

    def _draw(self, seed, n):
        members, log_weights = self._orbit_constants()
        n_orbits = int(members.shape[0])
        k = self.num_frequencies
        # Gumbel top-k: the order of a sampling without replacement proportional to the
        # weights, i.e. the order in which the generator's sequential draws switch orbits on.
        tiny = float(np.finfo(np.float64).tiny)
        uniform = tf.random.stateless_uniform(tf.stack([n, n_orbits]), seed, minval=tiny, maxval=1.0,
                                              dtype=tf.float64, alg="philox")
        keys = log_weights[None, :] - tf.math.log(-tf.math.log(uniform))
        _, order = tf.math.top_k(keys, k=min(k, n_orbits), sorted=True)
        candidates = tf.reshape(tf.gather(members, order), tf.stack([n, -1]))
        valid = candidates >= 0
        position = tf.cumsum(tf.cast(valid, tf.int32), axis=1)
        # Every row holds at least k frequencies, so exactly k entries per row are taken.
        taken = tf.boolean_mask(candidates, valid & (position <= k))
        return tf.sort(tf.reshape(taken, tf.stack([n, k])), axis=1)

    def _forward(self, x, draw=None):
        if draw is None:
            sampled = tf.gather(self._spectrum(x), self._indices, axis=2)
        else:
            sampled = tf.gather(self._spectrum(x), draw, axis=2, batch_dims=1)
        sampled = tf.transpose(sampled, [0, 2, 1])
        return tf.stack([tf.math.real(sampled), tf.math.imag(sampled)], axis=-1)

    def _adjoint(self, y, draw=None):
        # <A x, y> = Re <F x, P^T w> = <x, Re F^H P^T w> with w = y_re + i y_im.
        height, width, channels = self.image_shape
        coefficients = tf.transpose(tf.complex(y[..., 0], y[..., 1]), [0, 2, 1])
        coefficients = tf.pad(coefficients, [[0, 0], [0, 0], [0, 1]])
        if draw is None:
            spectrum = tf.gather(coefficients, self._fill_index, axis=2)
        else:
            spectrum = tf.gather(coefficients, self._drawn_fill_index(draw), axis=2, batch_dims=1)
        spectrum = tf.reshape(spectrum, [-1, channels, height, width])
        planes = tf.math.real(tf.signal.ifft2d(spectrum) * self._sqrt_size)
        return tf.transpose(planes, [0, 2, 3, 1])

    def _drawn_fill_index(self, draw: tf.Tensor) -> tf.Tensor:
        """Per example, the measurement position of every grid frequency (K if unsampled)."""
        height, width, _ = self.image_shape
        k = self.num_frequencies
        n = tf.shape(draw)[0]
        example = tf.broadcast_to(tf.range(n)[:, None], tf.shape(draw))
        fill = tf.fill(tf.stack([n, height * width]), tf.constant(k, draw.dtype))
        positions = tf.broadcast_to(tf.range(k, dtype=draw.dtype)[None, :], tf.shape(draw))
        return tf.tensor_scatter_nd_update(fill, tf.stack([example, tf.cast(draw, tf.int32)], axis=-1), positions)

    def _pinv(self, y, draw=None):
        if draw is None and self.symmetric:
            return self._adjoint(y)
        # A drawn mask may end inside an orbit (not symmetric): conjugate gradients.
        return super()._pinv(y, draw)

    def zero_filled_ifft(self, y, seed=None) -> tf.Tensor:
        """The naive reconstruction of ``y`` (see :func:`zero_filled_ifft`).

        Args:
          y: ``[batch, K, C, 2]`` measurements.
          seed: the per-call seed ``y`` was measured with (None: the fixed mask).
        """
        return self.adjoint(y, seed=seed)
