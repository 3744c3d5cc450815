"""Frechet distance against closed forms and an independent symmetric-root formula."""

import numpy as np
import pytest
from scipy.stats import ortho_group

from tfinverse.evaluation import frechet as frechet_module
from tfinverse.evaluation.frechet import feature_statistics, frechet_distance, frechet_distance_of


def random_spd(dim, rng, rank=None):
    factor = rng.standard_normal((dim, rank or dim))
    return factor @ factor.T / (rank or dim) + (0.0 if rank else 0.1) * np.eye(dim)


def symmetric_sqrt(matrix):
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(np.clip(values, 0.0, None))) @ vectors.T


def reference_distance(mu1, s1, mu2, s2):
    """Tr (S1 S2)^{1/2} = Tr (S1^{1/2} S2 S1^{1/2})^{1/2}: symmetric roots by eigh only."""
    root1 = symmetric_sqrt(s1)
    cross = symmetric_sqrt(root1 @ s2 @ root1)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2.0 * np.trace(cross))


def test_identical_gaussians_are_at_distance_zero():
    rng = np.random.default_rng(0)
    mu, sigma = rng.standard_normal(16), random_spd(16, rng)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-9)


def test_identical_singular_gaussians_give_zero():
    rng = np.random.default_rng(1)
    mu, sigma = rng.standard_normal(12), random_spd(12, rng, rank=3)
    assert np.linalg.matrix_rank(sigma) == 3
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6)


def test_rank_deficient_sample_covariances_match_the_symmetric_root_formula():
    # fewer samples than dimensions and dead (always zero) units, as ReLU features can give
    rng = np.random.default_rng(10)
    a, b = (np.maximum(rng.standard_normal((20, 48)), 0.0) for _ in range(2))
    a[:, :5] = b[:, :5] = 0.0
    stats_a, stats_b = feature_statistics(a), feature_statistics(b)
    expected = reference_distance(*stats_a, *stats_b)
    assert frechet_distance_of(a, b) == pytest.approx(expected, rel=1e-6)


def test_an_inaccurate_square_root_is_recomputed_with_the_eps_offset(monkeypatch):
    rng = np.random.default_rng(11)
    mu1, mu2 = rng.standard_normal(5), rng.standard_normal(5)
    sigma1, sigma2 = random_spd(5, rng), random_spd(5, rng)
    real_root = frechet_module._matrix_square_root
    calls = []

    def failing_first(product):
        calls.append(product)
        root, residual = real_root(product)
        return (root, np.inf) if len(calls) == 1 else (root, residual)

    monkeypatch.setattr(frechet_module, "_matrix_square_root", failing_first)
    eps = 0.5  # large, so that using the offset is visible in the value
    got = frechet_distance(mu1, sigma1, mu2, sigma2, eps=eps)
    assert len(calls) == 2
    offset = eps * np.eye(5)
    np.testing.assert_allclose(calls[1], (sigma1 + offset) @ (sigma2 + offset))
    shifted = reference_distance(mu1, sigma1 + offset, mu2, sigma2 + offset) - 2 * 5 * eps
    assert got == pytest.approx(shifted, rel=1e-8)


def test_diagonal_covariances_match_the_closed_form():
    rng = np.random.default_rng(2)
    mu1, mu2 = rng.standard_normal(8), rng.standard_normal(8)
    var1, var2 = rng.uniform(0.1, 3.0, 8), rng.uniform(0.1, 3.0, 8)
    expected = np.sum((mu1 - mu2) ** 2) + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    got = frechet_distance(mu1, np.diag(var1), mu2, np.diag(var2))
    assert got == pytest.approx(expected, rel=1e-9)


def test_commuting_covariances_match_the_closed_form():
    rng = np.random.default_rng(3)
    basis = ortho_group.rvs(6, random_state=4)
    var1, var2 = rng.uniform(0.2, 2.0, 6), rng.uniform(0.2, 2.0, 6)
    sigma1, sigma2 = basis @ np.diag(var1) @ basis.T, basis @ np.diag(var2) @ basis.T
    mu1, mu2 = np.zeros(6), np.full(6, 0.5)
    expected = 6 * 0.25 + np.sum((np.sqrt(var1) - np.sqrt(var2)) ** 2)
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-8)


def test_one_dimensional_gaussians():
    # W2^2 between N(m1, s1^2) and N(m2, s2^2) is (m1 - m2)^2 + (s1 - s2)^2
    got = frechet_distance([1.0], [[4.0]], [-2.0], [[0.25]])
    assert got == pytest.approx(9.0 + 1.5**2, rel=1e-12)


def test_general_covariances_match_the_symmetric_root_formula_and_are_symmetric():
    rng = np.random.default_rng(5)
    mu1, mu2 = rng.standard_normal(10), rng.standard_normal(10)
    sigma1, sigma2 = random_spd(10, rng), random_spd(10, rng)
    expected = reference_distance(mu1, sigma1, mu2, sigma2)
    assert frechet_distance(mu1, sigma1, mu2, sigma2) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(mu2, sigma2, mu1, sigma1) == pytest.approx(expected, rel=1e-8)


def test_invariance_to_a_common_rotation_and_translation():
    rng = np.random.default_rng(6)
    mu1, mu2 = rng.standard_normal(7), rng.standard_normal(7)
    sigma1, sigma2 = random_spd(7, rng), random_spd(7, rng)
    rotation = ortho_group.rvs(7, random_state=7)
    shift = rng.standard_normal(7)
    before = frechet_distance(mu1, sigma1, mu2, sigma2)
    after = frechet_distance(
        rotation @ mu1 + shift,
        rotation @ sigma1 @ rotation.T,
        rotation @ mu2 + shift,
        rotation @ sigma2 @ rotation.T,
    )
    assert before > 1.0
    assert after == pytest.approx(before, rel=1e-8)


def test_sampled_estimate_converges_to_the_closed_form():
    rng = np.random.default_rng(8)
    dim = 4
    mu1, mu2 = np.zeros(dim), np.array([1.0, -0.5, 0.0, 0.25])
    sigma1, sigma2 = random_spd(dim, rng), random_spd(dim, rng)
    exact = reference_distance(mu1, sigma1, mu2, sigma2)
    errors = {}
    for n in (200, 50_000):
        trial_errors = []
        for trial in range(3):
            draws = np.random.default_rng(100 * n + trial)
            a = draws.multivariate_normal(mu1, sigma1, size=n)
            b = draws.multivariate_normal(mu2, sigma2, size=n)
            trial_errors.append(abs(frechet_distance_of(a, b) - exact))
        errors[n] = np.mean(trial_errors)
    assert errors[50_000] < 0.02 * exact
    assert errors[50_000] < errors[200]


def test_feature_statistics_are_the_sample_mean_and_unbiased_covariance():
    features = np.random.default_rng(9).standard_normal((50, 3)) * [1.0, 2.0, 0.5]
    mu, sigma = feature_statistics(features.astype(np.float32))
    assert mu.dtype == np.float64 and sigma.shape == (3, 3)
    np.testing.assert_allclose(mu, features.mean(axis=0), rtol=1e-6)
    centred = features - features.mean(axis=0)
    np.testing.assert_allclose(sigma, centred.T @ centred / 49, rtol=1e-5)


def test_one_feature_dimension_gives_a_one_by_one_covariance():
    mu, sigma = feature_statistics(np.arange(5.0)[:, None])
    assert sigma.shape == (1, 1) and sigma[0, 0] == pytest.approx(2.5)


@pytest.mark.parametrize(
    "features, match",
    [
        (np.zeros(10), r"\[N, D\]"),
        (np.zeros((1, 4)), "N >= 2"),
        (np.full((3, 2), np.nan), "NaN"),
    ],
)
def test_feature_statistics_rejects_bad_input(features, match):
    with pytest.raises(ValueError, match=match):
        feature_statistics(features)


def test_frechet_distance_rejects_bad_shapes_and_indefinite_covariances():
    eye = np.eye(3)
    with pytest.raises(ValueError, match=r"\[D, D\] = \[3, 3\]"):
        frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), eye)
    with pytest.raises(ValueError, match="same dimension"):
        frechet_distance(np.zeros(3), eye, np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="positive semi-definite"):
        frechet_distance(np.zeros(3), -eye, np.zeros(3), eye)
    with pytest.raises(ValueError, match="feature dimension"):
        frechet_distance_of(np.zeros((5, 3)), np.zeros((5, 4)))
