"""The Frechet distance between two Gaussians, and between two sets of feature vectors.

For ``N(mu1, S1)`` and ``N(mu2, S2)`` the squared Frechet (2-Wasserstein) distance is::

    d^2 = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^{1/2})

Applied to the means and covariances of a network's features of two image sets it is the
"Frechet Inception Distance" idea; :mod:`tfinverse.evaluation.classifier` supplies a small
digit classifier whose penultimate layer plays the role of the Inception features.

Numerics: ``(S1 S2)^{1/2}`` comes from :func:`scipy.linalg.sqrtm`. When the product is
(nearly) singular, e.g. features with dead units or fewer samples than dimensions, the root
may be inaccurate or not finite; it is then recomputed with ``eps * I`` added to both
covariances. Imaginary parts that round-off leaves on the root are discarded when they are
small (below ``imaginary_tolerance`` relative to the largest entry) and are an error
otherwise. Everything is computed in float64.
"""

from __future__ import annotations

import warnings
from typing import Tuple

import numpy as np

__all__ = [
    "feature_statistics",
    "frechet_distance",
    "frechet_distance_of",
]

# Relative residual ||R R - S1 S2|| / ||S1 S2|| above which a square root is not trusted.
_ROOT_RESIDUAL_TOLERANCE = 1e-4


def feature_statistics(features) -> Tuple[np.ndarray, np.ndarray]:
    """Mean and covariance of a set of feature vectors.

    Args:
      features: ``[N, D]`` array-like (one row per sample), ``N >= 2``.

    Returns:
      ``(mu, sigma)``: float64 ``[D]`` mean and ``[D, D]`` unbiased covariance
      (normalised by ``N - 1``, as ``numpy.cov``).

    Raises:
      ValueError: if ``features`` is not 2-D ``[N, D]`` with ``N >= 2`` and ``D >= 1``, or holds
        non-finite values.
    """
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(
            f"features must have shape [N, D] (N samples of dimension D), got {features.shape}"
        )
    if features.shape[0] < 2 or features.shape[1] < 1:
        raise ValueError(
            f"features must have shape [N, D] with N >= 2 samples and D >= 1, got {features.shape}"
        )
    if not np.all(np.isfinite(features)):
        raise ValueError("features hold NaN or infinite values")
    mu = features.mean(axis=0)
    sigma = np.atleast_2d(np.cov(features, rowvar=False))
    return mu, sigma


def _check_statistics(mu, sigma, name: str) -> Tuple[np.ndarray, np.ndarray]:
    mu = np.atleast_1d(np.asarray(mu, dtype=np.float64))
    sigma = np.atleast_2d(np.asarray(sigma, dtype=np.float64))
    if mu.ndim != 1:
        raise ValueError(f"mu{name} must have shape [D], got {mu.shape}")
    dim = mu.shape[0]
    if sigma.shape != (dim, dim):
        raise ValueError(f"sigma{name} must have shape [D, D] = [{dim}, {dim}], got {sigma.shape}")
    if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
        raise ValueError(f"mu{name} and sigma{name} must be finite")
    return mu, sigma


def _matrix_square_root(product: np.ndarray) -> Tuple[np.ndarray, float]:
    """``scipy.linalg.sqrtm`` without its warnings; returns the root and its relative residual."""
    from scipy import linalg

    with warnings.catch_warnings():
        # singular products are expected for degenerate features; the residual decides
        warnings.simplefilter("ignore", RuntimeWarning)
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(product)
    root = np.asarray(root)
    if not np.all(np.isfinite(root)):
        return root, np.inf
    scale = max(np.linalg.norm(product), np.finfo(np.float64).tiny)
    residual = float(np.linalg.norm(root @ root - product) / scale)
    return root, residual


def frechet_distance(
    mu1, sigma1, mu2, sigma2, eps: float = 1e-6, imaginary_tolerance: float = 1e-3
) -> float:
    """Squared Frechet distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

    ``||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^{1/2})``, the quantity FID
    reports (it is the squared 2-Wasserstein distance, so it is not square-rooted).

    Args:
      mu1: ``[D]`` mean of the first Gaussian.
      sigma1: ``[D, D]`` covariance (symmetric positive semi-definite).
      mu2: ``[D]`` mean of the second Gaussian.
      sigma2: ``[D, D]`` covariance.
      eps: diagonal offset added to both covariances when the plain square root is not finite
        or not accurate (singular products); a common choice for FID, exposed since no
        single value is canonical.
      imaginary_tolerance: largest imaginary part of the root's diagonal, relative to the
        largest absolute entry of the root, that is treated as round-off and discarded.

    Returns:
      The distance as a Python float, ``>= 0`` (negative round-off is clipped to 0).

    Raises:
      ValueError: for mismatched shapes, non-finite inputs, ``eps < 0``, or a square root with
        a significant imaginary part (covariances that are not positive semi-definite).
    """
    mu1, sigma1 = _check_statistics(mu1, sigma1, "1")
    mu2, sigma2 = _check_statistics(mu2, sigma2, "2")
    if mu1.shape != mu2.shape:
        raise ValueError(
            f"the two Gaussians must have the same dimension, got mu1 {mu1.shape} and mu2 {mu2.shape}"
        )
    if eps < 0:
        raise ValueError(f"eps must be non-negative, got {eps}")

    root, residual = _matrix_square_root(sigma1 @ sigma2)
    if residual > _ROOT_RESIDUAL_TOLERANCE:
        offset = eps * np.eye(mu1.shape[0])
        root, residual = _matrix_square_root((sigma1 + offset) @ (sigma2 + offset))
        if not np.all(np.isfinite(root)):
            raise ValueError(
                "the square root of sigma1 @ sigma2 is not finite even with an eps offset; "
                "are the covariances positive semi-definite?"
            )
    if np.iscomplexobj(root):
        largest = max(float(np.max(np.abs(root))), np.finfo(np.float64).tiny)
        imaginary = float(np.max(np.abs(np.diagonal(root).imag)))
        if imaginary > imaginary_tolerance * largest:
            raise ValueError(
                f"the square root of sigma1 @ sigma2 has an imaginary component of {imaginary:.3g} "
                "on its diagonal; are the covariances positive semi-definite?"
            )
        root = root.real

    difference = mu1 - mu2
    value = float(
        difference @ difference + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(root)
    )
    return max(value, 0.0)


def frechet_distance_of(features_a, features_b, eps: float = 1e-6) -> float:
    """Frechet distance between the Gaussians fitted to two sets of feature vectors.

    Args:
      features_a: ``[N_a, D]`` features of the first set.
      features_b: ``[N_b, D]`` features of the second set (same ``D``).
      eps: see :func:`frechet_distance`.

    Returns:
      ``frechet_distance(*feature_statistics(features_a), *feature_statistics(features_b))``.

    Raises:
      ValueError: for features that are not ``[N, D]`` with ``N >= 2``, or different ``D``.
    """
    mu_a, sigma_a = feature_statistics(features_a)
    mu_b, sigma_b = feature_statistics(features_b)
    if mu_a.shape != mu_b.shape:
        raise ValueError(
            "features_a and features_b must have the same feature dimension D, got "
            f"{np.shape(features_a)} and {np.shape(features_b)}"
        )
    return frechet_distance(mu_a, sigma_a, mu_b, sigma_b, eps=eps)
