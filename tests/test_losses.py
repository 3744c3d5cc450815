"""tfinverse.losses against closed forms and independent numpy / scipy computations, and the
old names of the models and trainers pointing at the single definitions."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf
from scipy import integrate, stats

from tfinverse import losses


def log_sigmoid(v):
    return -np.logaddexp(0.0, -np.asarray(v, np.float64))


def np_cross_entropy(logits, label):
    """Mean of -t log s(l) - (1 - t) log(1 - s(l)), with log(1 - s(l)) = log s(-l)."""
    logits = np.asarray(logits, np.float64)
    return float(np.mean(-label * log_sigmoid(logits) - (1 - label) * log_sigmoid(-logits)))


RNG = np.random.default_rng(0)
REAL = RNG.normal(size=(16, 1)).astype(np.float32) * 3
FAKE = RNG.normal(size=(16, 1)).astype(np.float32) * 3


# ----------------------------------------------------------------------------- cross-entropy
@pytest.mark.parametrize("label", [1.0, 0.0, 0.75, 0.375])
def test_sigmoid_cross_entropy_matches_numpy_log_sigmoid(label):
    assert float(losses.sigmoid_cross_entropy(REAL, label)) == pytest.approx(np_cross_entropy(REAL, label), rel=1e-5)


def test_cross_entropy_is_stable_for_large_logits():
    logits = np.array([-80.0, 80.0], np.float32)
    value = float(losses.sigmoid_cross_entropy(logits, 1.0))
    assert np.isfinite(value) and value == pytest.approx(40.0, rel=1e-6)  # (80 + 0) / 2


def test_gan_losses_with_label_values():
    d = losses.cross_entropy_discriminator_loss(REAL, FAKE)
    assert float(d) == pytest.approx(np_cross_entropy(REAL, 1) + np_cross_entropy(FAKE, 0), rel=1e-5)
    ambient = losses.cross_entropy_discriminator_loss(REAL, FAKE, real_label=0.75, fake_label=0.0)
    assert float(ambient) == pytest.approx(np_cross_entropy(REAL, 0.75) + np_cross_entropy(FAKE, 0), rel=1e-5)
    assert float(losses.non_saturating_generator_loss(FAKE)) == pytest.approx(
        float(np.mean(-log_sigmoid(FAKE))), rel=1e-5)
    assert float(losses.non_saturating_generator_loss(FAKE, target=0.375)) == pytest.approx(
        np_cross_entropy(FAKE, 0.375), rel=1e-5)
    # minimax: G minimises mean log(1 - D(G(z)))
    assert float(losses.minimax_generator_loss(FAKE)) == pytest.approx(float(np.mean(log_sigmoid(-FAKE))), rel=1e-5)


def test_minimax_saturates_where_non_saturating_does_not():
    rejected = tf.constant([[-10.0]])  # D is sure the sample is fake
    grads = []
    for loss in (losses.minimax_generator_loss, losses.non_saturating_generator_loss):
        with tf.GradientTape() as tape:
            tape.watch(rejected)
            value = loss(rejected)
        grads.append(float(tape.gradient(value, rejected).numpy().item()))
    # d/dl log(1 - s(l)) = -s(l) ~ -4.5e-5;  d/dl -log s(l) = s(l) - 1 ~ -1
    assert abs(grads[0]) < 1e-4 and grads[1] == pytest.approx(-1.0, abs=1e-4)


# ----------------------------------------------------------------------------- least squares, Wasserstein
def test_least_squares_by_hand():
    real, fake = np.array([1.0, 3.0]), np.array([0.0, 2.0])
    # 0.5 [mean((1-1)^2, (3-1)^2) + mean(0^2, 2^2)] = 0.5 (2 + 2)
    assert float(losses.least_squares_discriminator_loss(real, fake)) == pytest.approx(2.0)
    # targets a = 3, b = -1, weight 1: mean(4, 0) + mean(1, 9) = 2 + 5
    assert float(losses.least_squares_discriminator_loss(real, fake, 3.0, -1.0, weight=1.0)) == pytest.approx(7.0)
    # 0.5 mean((0-1)^2, (2-1)^2) = 0.5
    assert float(losses.least_squares_generator_loss(fake)) == pytest.approx(0.5)
    assert float(losses.least_squares_generator_loss(fake, target=2.0, weight=1.0)) == pytest.approx(2.0)


def test_wasserstein_losses_and_clipping():
    real, fake = np.array([[1.0], [5.0]]), np.array([[-2.0], [0.0]])
    assert float(losses.wasserstein_critic_loss(real, fake)) == pytest.approx(-1.0 - 3.0)
    assert float(losses.wasserstein_generator_loss(fake)) == pytest.approx(1.0)
    variables = [tf.Variable([-0.5, 0.005, 0.2]), tf.Variable([[0.03]])]
    losses.clip_weights(variables, 0.01)
    np.testing.assert_allclose(variables[0].numpy(), [-0.01, 0.005, 0.01])
    np.testing.assert_allclose(variables[1].numpy(), [[0.01]])
    with pytest.raises(ValueError):
        losses.clip_weights(variables, 0.0)


# ----------------------------------------------------------------------------- gradient penalty
def _linear_critic(w):
    w = tf.constant(w, tf.float32)
    return lambda x: tf.reduce_sum(x * w, axis=list(range(1, x.shape.rank)))[:, None]


@pytest.mark.parametrize("target", [1.0, 2.0])
def test_gradient_penalty_of_a_linear_critic(target):
    # f(x) = <w, x>: the gradient is w everywhere, so the penalty is (|w| - t)^2 / t^2 for any u
    w = RNG.normal(size=(1, 4, 4, 1)).astype(np.float32)
    real = RNG.normal(size=(5, 4, 4, 1)).astype(np.float32)
    fake = RNG.normal(size=(5, 4, 4, 1)).astype(np.float32)
    expected = (np.linalg.norm(w) - target) ** 2 / target**2
    value = losses.gradient_penalty(_linear_critic(w), real, fake, seed=[1, 2], target=target)
    assert float(value) == pytest.approx(expected, rel=1e-4)


def test_gradient_penalty_interpolates_with_the_given_epsilon():
    # f(x) = 0.5 ||x||^2 has gradient x_hat, so the penalty is mean (||x_hat_i|| - 1)^2
    real = RNG.normal(size=(4, 3)).astype(np.float32)
    fake = RNG.normal(size=(4, 3)).astype(np.float32)
    u = np.array([0.0, 0.25, 0.5, 1.0], np.float32)

    def critic(x):
        return 0.5 * tf.reduce_sum(tf.square(x), axis=1, keepdims=True)

    x_hat = real + u[:, None] * (fake - real)
    expected = np.mean((np.linalg.norm(x_hat, axis=1) - 1.0) ** 2)
    assert float(losses.gradient_penalty(critic, real, fake, interpolation_weights=u)) == pytest.approx(expected, rel=1e-5)
    # a seed draws u statelessly: the same seed, the same u
    drawn = tf.random.stateless_uniform([4], tf.constant([3, 4]), dtype=tf.float32).numpy()
    x_hat = real + drawn[:, None] * (fake - real)
    expected = np.mean((np.linalg.norm(x_hat, axis=1) - 1.0) ** 2)
    assert float(losses.gradient_penalty(critic, real, fake, seed=[3, 4])) == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="seed"):
        losses.gradient_penalty(critic, real, fake)
    with pytest.raises(ValueError, match="same shape"):
        losses.gradient_penalty(critic, real, fake[:2], seed=[0, 0])


def test_gradient_penalty_is_differentiable_in_the_critic_weights():
    w = tf.Variable(np.full((1, 3), 2.0, np.float32))  # |w| = 2 sqrt(3)
    real = RNG.normal(size=(2, 3)).astype(np.float32)
    with tf.GradientTape() as tape:
        value = losses.gradient_penalty(lambda x: tf.reduce_sum(x * w, axis=1), real, real + 1, seed=[0, 1])
    grad = tape.gradient(value, w).numpy()
    norm = 2 * np.sqrt(3)
    # d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|
    np.testing.assert_allclose(grad, 2 * (norm - 1) * w.numpy() / norm, rtol=1e-4)


def test_drift_and_pggan_critic_loss():
    real, fake = np.array([1.0, -3.0]), np.array([2.0, 0.0])
    assert float(losses.drift_penalty(real)) == pytest.approx(5.0)
    # (1 - (-1)) + 10 * 0.5 + 1e-3 * 5
    assert float(losses.wgan_gp_critic_loss(real, fake, 0.5)) == pytest.approx(2.0 + 5.0 + 5e-3)
    assert float(losses.wgan_gp_critic_loss(real, fake, 0.5, gp_weight=1.0, drift_weight=0.0)) == pytest.approx(2.5)


# ----------------------------------------------------------------------------- BEGAN
def test_began_losses_and_k_update_by_hand():
    x = RNG.random((2, 4, 4, 1)).astype(np.float32)
    dx, gz, dgz = (RNG.random(x.shape).astype(np.float32) for _ in range(3))
    out = losses.began_losses(x, dx, gz, dgz, k_t=0.25)
    l_real, l_fake = np.abs(x - dx).mean(), np.abs(gz - dgz).mean()
    assert float(out["loss_real"]) == pytest.approx(l_real, rel=1e-5)
    assert float(out["discriminator_loss"]) == pytest.approx(l_real - 0.25 * l_fake, rel=1e-5)
    assert float(out["generator_loss"]) == pytest.approx(l_fake, rel=1e-5)
    assert float(losses.began_autoencoder_loss(x, dx, "sum")) == pytest.approx(np.abs(x - dx).sum(), rel=1e-5)
    with pytest.raises(ValueError):
        losses.began_autoencoder_loss(x, dx, "max")
    # k: 0.5 + 1e-3 (0.5 * 0.2 - 0.05) = 0.50005; clipped to [0, 1]
    assert float(losses.began_update_k(0.5, 0.2, 0.05)) == pytest.approx(0.50005, abs=1e-7)
    assert float(losses.began_update_k(0.99999, 1.0, 0.0, lambda_k=0.1)) == 1.0
    assert float(losses.began_update_k(0.0, 0.0, 1.0)) == 0.0
    # M = L_real + |gamma L_real - L_fake| = 0.2 + |0.1 - 0.3|
    assert float(losses.began_convergence_measure(0.2, 0.3)) == pytest.approx(0.4)


# ----------------------------------------------------------------------------- VAE
def _kl_1d_by_quadrature(mu, var):
    p = stats.norm(mu, np.sqrt(var))
    q = stats.norm(0.0, 1.0)
    value, _ = integrate.quad(lambda t: p.pdf(t) * (p.logpdf(t) - q.logpdf(t)), mu - 15 * np.sqrt(var),
                              mu + 15 * np.sqrt(var))
    return value


def test_kl_of_known_gaussians():
    mean = np.array([[1.0, -2.0, 0.0], [0.0, 0.0, 0.0]], np.float32)
    variance = np.array([[0.5, 2.0, 1.0], [1.0, 1.0, 1.0]], np.float32)
    per_example = np.array([sum(_kl_1d_by_quadrature(m, v) for m, v in zip(ms, vs)) for ms, vs in zip(mean, variance)])
    assert per_example[1] == pytest.approx(0.0, abs=1e-8)  # the prior itself
    kl = losses.gaussian_kl_divergence(mean, np.log(variance), reduction="none")
    np.testing.assert_allclose(kl.numpy(), per_example, rtol=1e-5, atol=1e-7)
    assert float(losses.gaussian_kl_divergence(mean, np.log(variance))) == pytest.approx(per_example.mean(), rel=1e-5)
    assert float(losses.gaussian_kl_divergence(mean, np.log(variance), "sum")) == pytest.approx(per_example.sum(),
                                                                                             rel=1e-5)
    # summed over every non-batch axis: an image-shaped latent gives the same per-example total
    reshaped = losses.gaussian_kl_divergence(mean.reshape(2, 3, 1), np.log(variance).reshape(2, 3, 1), "none")
    np.testing.assert_allclose(reshaped.numpy(), per_example, rtol=1e-5, atol=1e-7)
    with pytest.raises(ValueError, match="reduction"):
        losses.gaussian_kl_divergence(mean, mean, reduction="batchmean")


def test_gaussian_log_likelihood_matches_scipy():
    x = RNG.random((3, 4, 4, 2)).astype(np.float32)
    mu = RNG.random(x.shape).astype(np.float32)
    fixed = stats.norm(mu, np.sqrt(0.1)).logpdf(x).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(losses.gaussian_log_likelihood(x, mu, variance=0.1, reduction="none").numpy(), fixed,
                               rtol=1e-5)
    assert float(losses.gaussian_negative_log_likelihood(x, mu, variance=0.1)) == pytest.approx(-fixed.mean(), rel=1e-5)
    pixelwise = (0.05 + RNG.random(x.shape)).astype(np.float32)
    expected = stats.norm(mu, np.sqrt(pixelwise)).logpdf(x).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(losses.gaussian_log_likelihood(x, mu, variance=pixelwise, reduction="none").numpy(),
                               expected, rtol=1e-5)
    np.testing.assert_allclose(
        losses.gaussian_log_likelihood(x, mu, log_variance=np.log(pixelwise), reduction="none").numpy(), expected,
        rtol=1e-5)
    unit = stats.norm(mu, 1.0).logpdf(x).sum()
    assert float(losses.gaussian_log_likelihood(x, mu, reduction="sum")) == pytest.approx(unit, rel=1e-5)
    without = float(losses.gaussian_log_likelihood(x, mu, reduction="sum", include_constant=False))
    assert without == pytest.approx(unit + 0.5 * np.log(2 * np.pi) * x.size, rel=1e-5)
    with pytest.raises(ValueError, match="not both"):
        losses.gaussian_log_likelihood(x, mu, variance=1.0, log_variance=0.0)
    with pytest.raises(ValueError, match="positive"):
        losses.gaussian_log_likelihood(x, mu, variance=0.0)


# ----------------------------------------------------------------------------- features
def test_feature_matching_on_lists_weights_and_batch_means():
    a = [RNG.normal(size=(4, 3, 3, 2)), RNG.normal(size=(4, 5))]
    b = [RNG.normal(size=(4, 3, 3, 2)), RNG.normal(size=(4, 5))]
    per_map = [np.mean((u - v) ** 2) for u, v in zip(a, b)]
    assert float(losses.feature_matching_loss(a[0], b[0])) == pytest.approx(per_map[0], rel=1e-5)
    assert float(losses.feature_matching_loss(a, b)) == pytest.approx(sum(per_map), rel=1e-5)
    assert float(losses.feature_matching_loss(a, b, weights=[2.0, 0.5])) == pytest.approx(
        2 * per_map[0] + 0.5 * per_map[1], rel=1e-5)
    means = np.mean((a[1].mean(0) - b[1][:2].mean(0)) ** 2)  # unpaired batches of different sizes
    assert float(losses.feature_matching_loss(a[1], b[1][:2], batch_mean=True)) == pytest.approx(means, rel=1e-5)
    with pytest.raises(ValueError):
        losses.feature_matching_loss(a, b[:1])
    with pytest.raises(ValueError):
        losses.feature_matching_loss(a, b, weights=[1.0])


def test_perceptual_loss_with_and_without_a_backbone():
    images = RNG.random((2, 4, 4, 3)).astype(np.float32)
    references = RNG.random((2, 4, 4, 3)).astype(np.float32)

    def backbone(x):  # two "layers": the pixels and a pooled map
        return [x, tf.reduce_mean(x, axis=[1, 2])]

    expected = np.mean((images - references) ** 2) + np.mean((images.mean((1, 2)) - references.mean((1, 2))) ** 2)
    loss = losses.PerceptualLoss(backbone)
    assert loss.available
    assert float(loss(images, references)) == pytest.approx(expected, rel=1e-5)
    assert float(losses.perceptual_loss(images, references, backbone)) == pytest.approx(expected, rel=1e-5)
    scaled = losses.PerceptualLoss(backbone, preprocess=lambda x: 2.0 * x)
    assert float(scaled(images, references)) == pytest.approx(4 * expected, rel=1e-5)

    missing = losses.PerceptualLoss()
    assert not missing.available
    with pytest.raises(losses.BackboneMissingError, match="no backbone"):
        missing(images, references)
    with pytest.raises(losses.BackboneMissingError):
        losses.perceptual_loss(images, references)
    with pytest.raises(TypeError):
        losses.PerceptualLoss(backbone="vgg16")


# ----------------------------------------------------------------------------- measurement
def test_data_fit_reductions_and_operators():
    matrix = RNG.normal(size=(3, 5)).astype(np.float32)
    x = RNG.normal(size=(4, 5)).astype(np.float32)
    y = RNG.normal(size=(4, 3)).astype(np.float32)
    residual = x @ matrix.T - y
    predicted = x @ matrix.T
    assert float(losses.data_fit_loss(predicted, y)) == pytest.approx(np.sum(residual**2), rel=1e-5)
    assert float(losses.data_fit_loss(predicted, y, "mean")) == pytest.approx(np.mean(residual**2), rel=1e-5)
    np.testing.assert_allclose(losses.data_fit_loss(predicted, y, "per_example_sum").numpy(),
                               np.sum(residual**2, axis=1), rtol=1e-5)
    np.testing.assert_allclose(losses.data_fit_loss(predicted, y, "per_example_mean").numpy(),
                               np.mean(residual**2, axis=1), rtol=1e-5)
    operator = lambda v: tf.matmul(v, matrix, transpose_b=True)  # noqa: E731
    assert float(losses.measurement_loss(operator, x, y)) == pytest.approx(np.sum(residual**2), rel=1e-5)
    # complex measurements: |r|^2, not r^2
    z = np.array([[1 + 2j, 3 - 1j]], np.complex64)
    assert float(losses.data_fit_loss(z, np.zeros_like(z))) == pytest.approx(5 + 10)
    with pytest.raises(ValueError, match="reduction"):
        losses.data_fit_loss(predicted, y, "none")


def test_paired_loss_min_over_permutations():
    x1 = np.zeros((1, 2, 2, 1), np.float32)
    y = np.full((1, 2, 2, 1), 1.0, np.float32)  # y - x1 = 1
    x_gen = np.full((1, 2, 2, 1), 0.9, np.float32)  # close to the other digit
    assert float(losses.paired_loss(x_gen, x1, y)) == pytest.approx(900.0, rel=1e-6)
    assert float(losses.paired_loss(x_gen, x1, y, min_over_permutations=True)) == pytest.approx(100.0, rel=1e-5)
    assert float(losses.paired_loss(x_gen, x1, y, weight=1.0)) == pytest.approx(0.9, rel=1e-6)


# ----------------------------------------------------------------------------- one definition
def test_old_names_are_the_single_definitions():
    from tfinverse import models
    from tfinverse.training import dcgan_trainer
    from tfinverse.training import igan as igan_training

    assert models.wgan_generator_loss is losses.wasserstein_generator_loss
    assert models.wgan_discriminator_loss is losses.wasserstein_critic_loss
    assert models.wgan_gp_discriminator_loss is losses.wgan_gp_critic_loss
    assert models.gradient_penalty is losses.gradient_penalty and models.drift_penalty is losses.drift_penalty
    assert models.autoencoder_loss is losses.began_autoencoder_loss and models.began_losses is losses.began_losses
    assert models.update_k is losses.began_update_k
    assert models.convergence_measure is losses.began_convergence_measure
    assert models.BEGAN_GAMMA == losses.BEGAN_GAMMA and models.BEGAN_LAMBDA_K == losses.BEGAN_LAMBDA_K
    assert dcgan_trainer._cross_entropy is losses.sigmoid_cross_entropy
    assert igan_training.paired_loss is losses.paired_loss
    assert igan_training.PAIRED_LOSS_WEIGHT == losses.PAIRED_LOSS_WEIGHT == 1000.0
    # igan's dispatch gives exactly the shared losses
    for model, d_loss, g_loss in (
        ("vanilla", losses.cross_entropy_discriminator_loss, losses.non_saturating_generator_loss),
        ("ls", losses.least_squares_discriminator_loss, losses.least_squares_generator_loss),
        ("wgan", losses.wasserstein_critic_loss, losses.wasserstein_generator_loss),
    ):
        assert float(igan_training.discriminator_loss(model, REAL, FAKE)) == float(d_loss(REAL, FAKE))
        assert float(igan_training.generator_loss_term(model, FAKE)) == float(g_loss(FAKE))


def test_public_names():
    assert sorted(losses.__all__) == sorted(set(losses.__all__))
    for name in losses.__all__:
        assert hasattr(losses, name), name
