"""Tests of tfinverse.data.toy2d: Gaussian and banana point sets and the two-domain task."""

import numpy as np
import pytest

from tfinverse.data import toy2d as toy

N = 200_000


def assert_moments(points, mean, cov, n_sigma=6.0):
    """Sample mean and covariance within n_sigma standard errors of the closed forms."""
    points = points.astype(np.float64)
    n = len(points)
    mean, cov = np.asarray(mean, float), np.asarray(cov, float)
    np.testing.assert_array_less(np.abs(points.mean(0) - mean), n_sigma * np.sqrt(np.diag(cov) / n) + 1e-12)
    sample_cov = np.cov(points, rowvar=False)
    # standard error of a covariance entry, estimated from the data's fourth moments
    centred = points - points.mean(0)
    products = centred[:, :, None] * centred[:, None, :]
    stderr = products.std(axis=0) / np.sqrt(n)
    np.testing.assert_array_less(np.abs(sample_cov - cov), n_sigma * stderr + 1e-12)


@pytest.mark.parametrize("name", toy.TOY2D_NAMES)
def test_shape_dtype_determinism(name):
    points = toy.toy2d(name, 500, seed=1)
    assert points.shape == (500, 2) and points.dtype == np.float32
    assert np.all(np.isfinite(points))
    np.testing.assert_array_equal(points, toy.toy2d(name, 500, seed=1))
    assert not np.allclose(points, toy.toy2d(name, 500, seed=2))
    assert toy.toy2d(name, 1, seed=0).shape == (1, 2)


def test_gaussian_moments():
    mean, cov = (1.5, -2.0), ((2.0, -0.7), (-0.7, 0.5))
    points = toy.toy2d("gaussian", N, seed=0, mean=mean, cov=cov)
    assert_moments(points, mean, cov)
    default = toy.toy2d("gaussian", N, seed=3)
    assert_moments(default, (0.0, 0.0), ((1.0, 0.6), (0.6, 0.8)))


def test_gaussian_singular_covariance_lies_on_a_line():
    points = toy.gaussian_points(1000, 0, mean=(1.0, 1.0), cov=((1.0, 2.0), (2.0, 4.0))).astype(np.float64)
    # cov has null vector (2, -1): 2 x - y is constant (= 2*1 - 1)
    np.testing.assert_allclose(2 * points[:, 0] - points[:, 1], 1.0, atol=1e-4)


def test_banana_moments_and_shape():
    center, spread, curvature, thickness = (0.5, -1.0), 1.5, 0.4, 0.2
    points = toy.toy2d(
        "banana", N, seed=0, center=center, spread=spread, curvature=curvature, thickness=thickness
    ).astype(np.float64)
    cov = np.diag([spread**2, 2 * curvature**2 * spread**4 + thickness**2])
    assert_moments(points, center, cov)
    # the points lie on the parabola up to Gaussian noise of std `thickness`, independent of u
    u = points[:, 0] - center[0]
    residual = points[:, 1] - center[1] - curvature * (u**2 - spread**2)
    assert abs(residual.std() - thickness) < 0.01 * thickness
    assert abs(np.corrcoef(residual, u**2)[0, 1]) < 0.02
    # unlike a Gaussian with the same covariance, v depends strongly on u^2
    assert np.corrcoef(points[:, 1], u**2)[0, 1] > 0.9


def test_banana_without_curvature_is_gaussian():
    points = toy.banana_points(N, 4, center=(0, 0), spread=1.0, curvature=0.0, thickness=0.5)
    assert_moments(points, (0, 0), np.diag([1.0, 0.25]))


def test_generator_seed_is_consumed():
    rng = np.random.default_rng(0)
    first = toy.toy2d("gaussian", 10, rng)
    second = toy.toy2d("gaussian", 10, rng)
    assert not np.allclose(first, second)


@pytest.mark.parametrize("name", toy.TOY2D_NAMES)
def test_domains_unpaired_are_affine_images_in_distribution(name):
    matrix = np.array([[0.0, -2.0], [1.0, 0.5]])
    offset = np.array([3.0, -1.0])
    source, target = toy.toy2d_domains(name, N, seed=0, matrix=matrix, offset=offset)
    assert source.shape == target.shape == (N, 2) and target.dtype == np.float32
    source64 = source.astype(np.float64)
    # target ~ M x + b: its moments are M mu + b and M S M^T
    mu, sigma = source64.mean(0), np.cov(source64, rowvar=False)
    np.testing.assert_allclose(target.mean(0), matrix @ mu + offset, atol=0.03)
    np.testing.assert_allclose(np.cov(target.astype(np.float64), rowvar=False), matrix @ sigma @ matrix.T, atol=0.05)
    # unpaired: the target is not the image of these very source points
    assert not np.allclose(target, source64 @ matrix.T + offset, atol=1e-3)
    # the inverse map brings the target back to the source distribution
    back = (target.astype(np.float64) - offset) @ np.linalg.inv(matrix).T
    levels = np.linspace(0.05, 0.95, 19)
    for axis in range(2):
        np.testing.assert_allclose(
            np.quantile(back[:, axis], levels), np.quantile(source64[:, axis], levels), atol=0.05
        )


def test_domains_paired_and_defaults():
    source, target = toy.toy2d_domains("banana", 1000, seed=5, paired=True)
    matrix, offset = np.array(toy.DEFAULT_MATRIX), np.array(toy.DEFAULT_OFFSET)
    np.testing.assert_allclose(target, source.astype(np.float64) @ matrix.T + offset, atol=1e-5)
    # default map: rotation by 60 degrees scaled by 0.75
    np.testing.assert_allclose(matrix.T @ matrix, 0.5625 * np.eye(2), atol=1e-12)
    np.testing.assert_allclose(np.arctan2(matrix[1, 0], matrix[0, 0]), np.pi / 3)
    # two separate clusters
    assert np.linalg.norm(target.mean(0) - source.mean(0)) > 3.0
    again = toy.toy2d_domains("banana", 1000, seed=5, paired=True)
    np.testing.assert_array_equal(again[1], target)
    other = toy.toy2d_domains("banana", 1000, seed=6)
    assert not np.allclose(other[0], source)


def test_errors():
    with pytest.raises(ValueError, match="gaussian"):
        toy.toy2d("moons", 10, 0)
    for bad_n in (0, -3, 2.5, True):
        with pytest.raises(ValueError, match="positive integer"):
            toy.toy2d("gaussian", bad_n, 0)
    with pytest.raises(ValueError, match=r"shape \(2, 2\)"):
        toy.toy2d("gaussian", 10, 0, cov=np.eye(3))
    with pytest.raises(ValueError, match="positive semi-definite"):
        toy.toy2d("gaussian", 10, 0, cov=((1.0, 2.0), (2.0, 1.0)))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        toy.toy2d("banana", 10, 0, center=(0.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="spread"):
        toy.toy2d("banana", 10, 0, spread=0.0)
    with pytest.raises(ValueError, match="invertible"):
        toy.toy2d_domains("gaussian", 10, 0, matrix=((1.0, 2.0), (2.0, 4.0)))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        toy.toy2d_domains("gaussian", 10, 0, offset=(1.0,))
    with pytest.raises(TypeError):
        toy.toy2d("gaussian", 10, 0, spread=1.0)
