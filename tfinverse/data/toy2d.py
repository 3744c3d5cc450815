"""igan's toy 2-D point sets: a Gaussian and a banana, and the two-domain mapping task.

igan illustrates its method on two 2-D data sets, "Gaussian" and "banana": a network learns
a per-point affine map ``y = M x + b`` (and its inverse) that carries a green cluster onto
a red one without pair-wise supervision (6000 steps in the figure). The toy code itself is
not published, so every parameter here is our choice and an argument:

* ``gaussian``: ``N(mean, cov)``.
* ``banana``: ``u ~ N(0, spread^2)``, ``v = curvature * (u^2 - spread^2) + N(0, thickness^2)``,
  shifted by ``center``. Its mean is ``center`` and its covariance is
  ``diag(spread^2, 2 curvature^2 spread^4 + thickness^2)`` (``u`` and ``u^2`` are
  uncorrelated), although the two coordinates are strongly dependent.

:func:`toy2d_domains` returns a source cluster and a target cluster made by one affine map
``target = source @ matrix.T + offset``; by default the two are independent draws
(unpaired), as in the original task.

Example::

    from tfinverse.data.toy2d import toy2d, toy2d_domains
    points = toy2d("banana", 1000, seed=0)            # float32 [1000, 2]
    green, red = toy2d_domains("gaussian", 1000, seed=0)
"""

from __future__ import annotations

from typing import Sequence, Tuple, Union

import numpy as np

__all__ = [
    "TOY2D_NAMES",
    "DEFAULT_MATRIX",
    "DEFAULT_OFFSET",
    "gaussian_points",
    "banana_points",
    "toy2d",
    "toy2d_domains",
]

#: Names accepted by :func:`toy2d`.
TOY2D_NAMES = ("gaussian", "banana")

#: Default linear part of the source -> target map: a rotation by 60 degrees scaled by 0.75.
DEFAULT_MATRIX = tuple(
    tuple(float(0.75 * v) for v in row)
    for row in ((np.cos(np.pi / 3), -np.sin(np.pi / 3)), (np.sin(np.pi / 3), np.cos(np.pi / 3)))
)

#: Default translation of the source -> target map (moves the red cluster clear of the green).
DEFAULT_OFFSET = (4.0, 2.0)

SeedLike = Union[int, Sequence[int], np.random.SeedSequence, np.random.Generator]


def _generator(seed: SeedLike) -> np.random.Generator:
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.default_rng(seed)


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    return int(n)


def _vector2(name: str, value) -> np.ndarray:
    vector = np.asarray(value, dtype=np.float64)
    if vector.shape != (2,) or not np.all(np.isfinite(vector)):
        raise ValueError(f"{name} must be a finite vector of shape (2,), got {np.shape(value)}")
    return vector


def _matrix2(name: str, value) -> np.ndarray:
    matrix = np.asarray(value, dtype=np.float64)
    if matrix.shape != (2, 2) or not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name} must be a finite matrix of shape (2, 2), got {np.shape(value)}")
    return matrix


def _positive(name: str, value) -> float:
    value = float(value)
    if not (np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return value


def gaussian_points(
    n: int,
    seed: SeedLike = 0,
    mean: Sequence[float] = (0.0, 0.0),
    cov: Sequence[Sequence[float]] = ((1.0, 0.6), (0.6, 0.8)),
) -> np.ndarray:
    """``n`` points from a 2-D Gaussian ``N(mean, cov)``.

    Args:
      n: number of points.
      seed: int, sequence of ints, ``SeedSequence`` or numpy ``Generator``.
      mean: mean, shape (2,) (our choice; unpublished).
      cov: covariance, symmetric positive semi-definite (2, 2) (our choice; unpublished).

    Returns:
      float32 ``[n, 2]``.

    Raises:
      ValueError: bad ``n``, or ``mean``/``cov`` of the wrong shape, or ``cov`` not symmetric
        positive semi-definite.
    """
    n = _check_n(n)
    mean = _vector2("mean", mean)
    cov = _matrix2("cov", cov)
    if not np.allclose(cov, cov.T) or np.linalg.eigvalsh(cov).min() < -1e-12:
        raise ValueError(f"cov must be symmetric positive semi-definite, got {cov.tolist()}")
    # Symmetric square root: works for singular covariances, unlike Cholesky.
    eigenvalues, eigenvectors = np.linalg.eigh(cov)
    root = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))
    standard = _generator(seed).standard_normal((n, 2))
    return (standard @ root.T + mean).astype(np.float32)


def banana_points(
    n: int,
    seed: SeedLike = 0,
    center: Sequence[float] = (0.0, 0.0),
    spread: float = 1.0,
    curvature: float = 0.5,
    thickness: float = 0.25,
) -> np.ndarray:
    """``n`` points from a banana: a parabola ``v = curvature (u^2 - spread^2)`` blurred.

    ``u ~ N(0, spread^2)``, ``v = curvature (u^2 - spread^2) + N(0, thickness^2)``, and the
    point is ``center + (u, v)``. Mean ``center``; covariance
    ``diag(spread^2, 2 curvature^2 spread^4 + thickness^2)``.

    Args:
      n: number of points.
      seed: int, sequence of ints, ``SeedSequence`` or numpy ``Generator``.
      center: mean of the points, shape (2,) (our choice; unpublished).
      spread: standard deviation along the banana's axis (our choice).
      curvature: bend of the parabola; 0 gives a Gaussian (our choice).
      thickness: standard deviation across the parabola (our choice).

    Returns:
      float32 ``[n, 2]``.

    Raises:
      ValueError: bad ``n``, ``center`` of the wrong shape, non-positive ``spread`` or
        ``thickness``, or a non-finite ``curvature``.
    """
    n = _check_n(n)
    center = _vector2("center", center)
    spread = _positive("spread", spread)
    thickness = _positive("thickness", thickness)
    if not np.isfinite(curvature):
        raise ValueError(f"curvature must be finite, got {curvature!r}")
    standard = _generator(seed).standard_normal((n, 2))
    u = spread * standard[:, 0]
    v = curvature * (u**2 - spread**2) + thickness * standard[:, 1]
    return (np.stack([u, v], axis=1) + center).astype(np.float32)


_SAMPLERS = {"gaussian": gaussian_points, "banana": banana_points}


def toy2d(name: str, n: int, seed: SeedLike = 0, **params) -> np.ndarray:
    """``n`` points of one of igan's toy 2-D distributions.

    Args:
      name: ``"gaussian"`` or ``"banana"``.
      n: number of points.
      seed: int, sequence of ints, ``SeedSequence`` or numpy ``Generator``.
      **params: the distribution's parameters (see :func:`gaussian_points`,
        :func:`banana_points`).

    Returns:
      float32 ``[n, 2]``, deterministic for a seed.

    Raises:
      ValueError: unknown ``name`` or invalid parameters.
    """
    if name not in _SAMPLERS:
        raise ValueError(f"unknown toy 2-D set {name!r}; choose one of {TOY2D_NAMES}")
    return _SAMPLERS[name](n, seed, **params)


def toy2d_domains(
    name: str,
    n: int,
    seed: SeedLike = 0,
    matrix: Sequence[Sequence[float]] = DEFAULT_MATRIX,
    offset: Sequence[float] = DEFAULT_OFFSET,
    paired: bool = False,
    **params,
) -> Tuple[np.ndarray, np.ndarray]:
    """The unpaired mapping task: a source cluster and its affine image (green and red).

    ``source`` is drawn from ``toy2d(name, ...)``; ``target = x @ matrix.T + offset`` where
    ``x`` is an independent draw of the same distribution (``paired=False``, the task igan
    solves without supervision) or ``source`` itself (``paired=True``, for checking a learnt
    map point by point). The map is invertible so the inverse task is well posed. igan's
    map parameters were not published; the defaults (rotation by 60 degrees, scale 0.75,
    shift (4, 2)) are our choice.

    Args:
      name: ``"gaussian"`` or ``"banana"``.
      n: number of points per cluster.
      seed: int, sequence of ints or ``SeedSequence`` (the two clusters use its first two
        children), or a numpy ``Generator`` (drawn from in turn).
      matrix: linear part ``M`` of the map, (2, 2), invertible.
      offset: translation ``b`` of the map, (2,).
      paired: map the source points themselves instead of an independent draw.
      **params: parameters of the distribution.

    Returns:
      ``(source, target)``, float32 ``[n, 2]`` each.

    Raises:
      ValueError: unknown ``name``, a singular or misshapen ``matrix``, a misshapen ``offset``.
    """
    matrix = _matrix2("matrix", matrix)
    offset = _vector2("offset", offset)
    if abs(np.linalg.det(matrix)) < 1e-9 * max(1.0, np.abs(matrix).max() ** 2):
        raise ValueError(f"matrix must be invertible, got {matrix.tolist()}")
    if isinstance(seed, np.random.Generator):
        source_rng = target_rng = seed  # drawn one after the other
    else:
        root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        source_rng, target_rng = (np.random.default_rng(child) for child in root.spawn(2))
    source = toy2d(name, n, source_rng, **params)
    preimage = source if paired else toy2d(name, n, target_rng, **params)
    target = preimage.astype(np.float64) @ matrix.T + offset
    return source, target.astype(np.float32)
