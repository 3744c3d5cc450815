"""LVR (latent-vector recovery with stochastic clipping) and LVR-SA against closed forms."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import scipy.stats
import tensorflow as tf

from tfinverse.inversion import lvr
from tfinverse.models.dcgan import DCGANGenerator
from tfinverse.models.generator import KerasGenerator
from tfinverse.operators.identity import Identity
from tfinverse.operators.inpainting import RandomPixelMask
from tfinverse.operators.noise import GaussianNoise, NoiseModel
from tfinverse.pretrained import SHIPPED_PRIORS

IMAGE_SHAPE = (4, 4, 1)
PIXELS = 16


class CountingGenerator(KerasGenerator):
    """A KerasGenerator that counts how often its network runs."""

    calls = 0

    def native(self, z, training=False):
        CountingGenerator.calls += 1
        return super().native(z, training=training)


def linear_generator(latent_dim=3, scale=0.5, seed=0, cls=KerasGenerator):
    """G(z) = W z on the native [-1, 1] range, W = scale * (orthonormal columns), 4x4x1 images.

    Returns the generator and W (pixels x latent_dim).
    """
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((PIXELS, latent_dim)))
    w = (scale * q).astype(np.float32)
    network = keras.Sequential(
        [
            keras.Input((latent_dim,)),
            keras.layers.Dense(PIXELS, use_bias=False),
            keras.layers.Reshape(IMAGE_SHAPE),
        ]
    )
    network.layers[0].set_weights([w.T])
    return cls(network, latent_dim, "uniform", output_range=(-1.0, 1.0)), w


def sine_generator(latent_dim=PIXELS):
    """Pixel j = sin(pi z_j / 2): one-to-one on the box, with a mirror pre-image 2 - z outside."""
    network = keras.Sequential(
        [
            keras.Input((latent_dim,)),
            keras.layers.Lambda(lambda t: keras.ops.sin(t * (np.pi / 2))),
            keras.layers.Reshape(IMAGE_SHAPE),
        ]
    )
    return KerasGenerator(network, latent_dim, "uniform", output_range=(-1.0, 1.0))


def native(images):
    return 2.0 * np.asarray(images, np.float64) - 1.0


# ----------------------------------------------------------------------------- clipping rules
def test_stochastic_clip_redraws_exactly_the_components_at_or_beyond_the_bound():
    z = np.array(
        [[0.0, 1.0, -1.0, 0.99999994, -0.99999994, 1.5], [-3.0, 0.3, 2.0, -1.0000001, 0.7, -0.2]],
        np.float32,
    )
    seed = tf.constant([7, 3], tf.int64)
    out = lvr.stochastic_clip(z, seed).numpy()
    # The same random numbers, drawn independently: one uniform per component in the open box.
    low = np.nextafter(np.float32(-1), np.float32(0))
    draws = tf.random.stateless_uniform(z.shape, seed, minval=float(low), maxval=1.0).numpy()
    expected = np.where(np.abs(z) >= 1.0, draws, z)
    np.testing.assert_array_equal(out, expected)
    redrawn = np.abs(z) >= 1
    assert redrawn.sum() == 6
    np.testing.assert_array_equal(out[~redrawn], z[~redrawn])
    assert np.all(np.abs(out) < 1.0)


def test_stochastic_clip_redraws_are_uniform_seeded_and_work_in_tf_function():
    z = np.full((200, 50), 3.0, np.float32)
    z[:, ::2] = -1.0
    clip = tf.function(lvr.stochastic_clip)
    out = clip(tf.constant(z), tf.constant([1, 2], tf.int64)).numpy()
    assert np.all(np.abs(out) < 1.0)
    assert scipy.stats.kstest(out.ravel(), "uniform", args=(-1.0, 2.0)).pvalue > 1e-3
    again = lvr.stochastic_clip(z, tf.constant([1, 2], tf.int64)).numpy()
    np.testing.assert_array_equal(out, again)
    other = lvr.stochastic_clip(z, tf.constant([1, 3], tf.int64)).numpy()
    assert np.mean(other == out) < 0.01
    half = lvr.stochastic_clip(z, tf.constant([1, 2], tf.int64), bound=0.5).numpy()
    assert np.all(np.abs(half) < 0.5)


def test_project_to_box_matches_numpy_clip():
    z = np.random.default_rng(0).normal(0, 2, (5, 7)).astype(np.float32)
    np.testing.assert_array_equal(lvr.project_to_box(z).numpy(), np.clip(z, -1, 1))
    np.testing.assert_array_equal(lvr.project_to_box(z, 0.5).numpy(), np.clip(z, -0.5, 0.5))


# ----------------------------------------------------------------------------- the descent
def numpy_descent(w, y_native, z0, lr, steps, halving, clipping):
    """Plain gradient descent on sum_i mean_p (W z_i - y_i)^2, written out with numpy."""
    z = z0.astype(np.float64)
    objectives = []
    for t in range(steps):
        residual = z @ w.T - y_native
        objectives.append(np.mean(residual**2, axis=1))
        gradient = (2.0 / w.shape[0]) * residual @ w
        z = z - lr * 0.5 ** (t // halving) * gradient
        if clipping == "projected":
            z = np.clip(z, -1, 1)
    final = np.mean((z @ w.T - y_native) ** 2, axis=1)
    return z, np.array(objectives), final


@pytest.mark.parametrize("clipping", ["none", "projected"])
def test_descent_matches_numpy_gradient_descent_with_lr_halving(clipping):
    g, w = linear_generator(latent_dim=3, scale=0.5)
    rng = np.random.default_rng(1)
    z_true = rng.uniform(-0.9, 0.9, (4, 3)).astype(np.float32)
    y = g(z_true).numpy()
    z0 = rng.uniform(-0.5, 0.5, (4, 3)).astype(np.float32)
    # Large steps so that the projected variant actually hits the box.
    result = lvr.recover_latents(
        g, Identity(IMAGE_SHAPE), y, clipping=clipping, iterations=5, learning_rate=60.0,
        lr_halving_steps=2, initial_latents=z0, seed=0, progress=False,
    )
    y_native = native(y).reshape(4, -1)
    z_ref, objectives, final = numpy_descent(w.astype(np.float64), y_native, z0, 60.0, 5, 2, clipping)
    np.testing.assert_allclose(result.latents, z_ref, atol=2e-5)
    np.testing.assert_allclose(result.history, objectives, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(result.best_objective, final, rtol=1e-4, atol=1e-7)
    assert result.extras["learning_rate_final"] == 60.0 * 0.5**2
    np.testing.assert_allclose(result.x_hat, (z_ref @ w.T).reshape(4, 4, 4, 1) / 2 + 0.5, atol=2e-5)
    if clipping == "projected":
        # The box mattered: the unconstrained descent ends elsewhere.
        z_free, _, _ = numpy_descent(w.astype(np.float64), y_native, z0, 60.0, 5, 2, "none")
        assert np.abs(z_free - z_ref).max() > 5e-4


def test_recovery_through_per_example_masks_is_masked_least_squares():
    g, w = linear_generator(latent_dim=3, scale=0.5, seed=3)
    op = RandomPixelMask(image_shape=IMAGE_SHAPE, seed=1, keep_fraction=0.5, batch_size=2)
    rng = np.random.default_rng(6)
    clean = g(rng.uniform(-0.8, 0.8, (2, 3)).astype(np.float32)).numpy()
    y = op((clean + 0.05 * rng.standard_normal(clean.shape)).astype(np.float32)).numpy()
    result = lvr.recover_latents(
        g, op, y, clipping="none", iterations=300, learning_rate=16.0, seed=0, progress=False
    )
    masks = op.mask.numpy().reshape(2, -1)
    for i in range(2):
        kept = masks[i] > 0
        z_ls = np.linalg.lstsq(w[kept].astype(np.float64), native(y[i]).ravel()[kept], rcond=None)[0]
        np.testing.assert_allclose(result.latents[i], z_ls, atol=1e-4)


def test_one_stochastic_step_matches_numpy_with_the_same_random_numbers():
    g, w = linear_generator(latent_dim=3, scale=0.5)
    rng = np.random.default_rng(2)
    y = g(rng.uniform(-0.9, 0.9, (6, 3)).astype(np.float32)).numpy()
    z0 = rng.uniform(-0.9, 0.9, (6, 3)).astype(np.float32)
    result = lvr.recover_latents(
        g, Identity(IMAGE_SHAPE), y, clipping="stochastic", iterations=1, learning_rate=60.0,
        initial_latents=z0, seed=5, progress=False,
    )
    z_step, _, _ = numpy_descent(w.astype(np.float64), native(y).reshape(6, -1), z0, 60.0, 1, 10, "none")
    outside = np.abs(z_step) >= 1
    assert 0 < outside.sum() < outside.size
    low = np.nextafter(np.float32(-1), np.float32(0))
    draws = tf.random.stateless_uniform(
        z_step.shape, tf.constant([result.extras["clip_seed"], 0], tf.int64), minval=float(low), maxval=1.0
    ).numpy()
    np.testing.assert_allclose(result.latents[~outside], z_step[~outside], atol=2e-5)
    np.testing.assert_array_equal(result.latents[outside], draws[outside])
    np.testing.assert_array_equal(result.extras["redrawn"], outside.sum(axis=1))


def test_stochastic_clipping_recovers_latents_where_no_clipping_and_projection_fail():
    # sin(pi z / 2) is one-to-one on [-1, 1], but a step of 7 overshoots the box from many
    # starts; beyond it the descent without clipping falls into the mirror pre-image 2 - z*
    # (same image, wrong latent), projection parks the component on the bound, where the
    # gradient vanishes, and stochastic clipping restarts it until it lands in z*'s basin.
    g = sine_generator()
    z_true = np.random.default_rng(3).uniform(0.4, 0.7, (8, PIXELS)).astype(np.float32)
    y = g(z_true).numpy()
    results = {
        clipping: lvr.recover_latents(
            g, Identity(IMAGE_SHAPE), y, clipping=clipping, iterations=100, learning_rate=7.0,
            z_true=z_true, seed=0, progress=False,
        )
        for clipping in lvr.CLIPPING_MODES
    }
    stochastic = lvr.recovery_success_rate(z_true, results["stochastic"].latents)
    assert all(rate == 1.0 for rate in stochastic.values())
    assert results["stochastic"].extras["redrawn"].sum() > 0
    assert np.all(np.abs(results["stochastic"].latents) < 1)

    unclipped = results["none"]
    assert lvr.recovery_success_rate(z_true, unclipped.latents, precisions=(1e-1,))[0.1] == 0.0
    # It did fit the image: every component sits on z* or on its mirror 2 - z*.
    assert np.all(unclipped.best_objective < 1e-8)
    on_truth = np.abs(unclipped.latents - z_true) < 1e-3
    on_mirror = np.abs(unclipped.latents - (2.0 - z_true)) < 1e-3
    assert np.all(on_truth | on_mirror) and on_mirror.sum() > 0

    projected = results["projected"]
    stuck = projected.latents == 1.0
    assert stuck.sum() > 0
    np.testing.assert_allclose(projected.latents[~stuck], z_true[~stuck], atol=1e-3)
    assert lvr.recovery_success_rate(z_true, projected.latents, precisions=(1e-2,))[0.01] == 0.0
    # The latent error history shows the same ordering at the end.
    final_error = {k: r.extras["latent_error"].mean() for k, r in results.items()}
    assert final_error["stochastic"] < 1e-8 < final_error["projected"] < final_error["none"]


def test_early_stopping_on_latent_error_and_on_objective():
    g, _ = linear_generator(latent_dim=3, scale=0.5)
    rng = np.random.default_rng(4)
    z_true = rng.uniform(-0.9, 0.9, (5, 3)).astype(np.float32)
    y = g(z_true).numpy()
    threshold = 0.005
    result = lvr.recover_latents(
        g, Identity(IMAGE_SHAPE), y, clipping="none", iterations=500, learning_rate=4.0,
        early_stop_threshold=threshold, z_true=z_true, seed=0, progress=False,
    )
    stop = result.extras["early_stop_iteration"]
    errors = result.extras["latent_error_history"].sum(axis=1)
    assert stop is not None and 0 < stop < 499
    assert len(result.history) == stop + 1
    assert errors[stop] < threshold * 5 <= errors[stop - 1]
    # The returned latents are the iterate that met the criterion.
    returned_error = np.mean((result.latents - z_true) ** 2, axis=1)
    np.testing.assert_allclose(returned_error, result.extras["latent_error_history"][stop], rtol=1e-5)
    np.testing.assert_allclose(result.best_objective, result.history[stop])

    by_objective = lvr.recover_latents(
        g, Identity(IMAGE_SHAPE), y, clipping="none", iterations=500, learning_rate=4.0,
        early_stop_threshold=1e-4, seed=0, progress=False,
    )
    sums = by_objective.history.sum(axis=1)
    assert sums[-1] < 1e-4 * 5 <= sums[-2]
    assert by_objective.extras["early_stop_iteration"] == len(sums) - 1

    no_stop = lvr.recover_latents(
        g, Identity(IMAGE_SHAPE), y, clipping="none", iterations=20, learning_rate=4.0, seed=0, progress=False
    )
    assert no_stop.extras["early_stop_iteration"] is None and len(no_stop.history) == 20


def test_jit_compiled_step_gives_the_same_descent():
    g, _ = linear_generator(latent_dim=3, scale=0.5)
    y = g(np.random.default_rng(5).uniform(-1, 1, (3, 3)).astype(np.float32)).numpy()
    # Steps large enough to leave the box: the re-draws must not depend on XLA either.
    kwargs = dict(clipping="stochastic", iterations=8, learning_rate=80.0, seed=9, progress=False)
    plain = lvr.recover_latents(g, Identity(IMAGE_SHAPE), y, **kwargs)
    compiled = lvr.recover_latents(g, Identity(IMAGE_SHAPE), y, jit_compile=True, **kwargs)
    assert plain.extras["redrawn"].sum() > 0
    np.testing.assert_array_equal(compiled.extras["redrawn"], plain.extras["redrawn"])
    np.testing.assert_allclose(compiled.latents, plain.latents, atol=1e-5)


def test_dcgan_in_batch_statistics_mode():
    # A random, untrained DCGAN has small gradients: a large step keeps the test short.
    g = DCGANGenerator(resolution=8, channels=1, latent_dim=4, base_filters=4, seed=0)
    z_true = g.sample_latent(6, seed=1)
    y = g(z_true, batch_statistics=True).numpy()
    result = lvr.recover_latents(
        g, Identity((8, 8, 1)), y, iterations=100, learning_rate=50.0, batch_statistics=True,
        z_true=z_true, seed=0, progress=False,
    )
    assert result.history[-1].sum() < 0.1 * result.history[0].sum()
    assert result.extras["latent_error"].mean() < 0.5 * result.extras["latent_error_history"][0].mean()
    np.testing.assert_allclose(result.x_hat, g(result.latents, batch_statistics=True).numpy(), atol=1e-6)
    # Moving-average mode gives other images for the same latents (the statistics differ).
    assert np.abs(result.x_hat - g(result.latents, batch_statistics=False).numpy()).max() > 1e-3
    # The prior itself is unchanged: its moving averages were never updated.
    bn = [layer for layer in g.network.layers if isinstance(layer, keras.layers.BatchNormalization)][0]
    np.testing.assert_array_equal(bn.moving_mean.numpy(), 0.0)


# ----------------------------------------------------------------------------- accuracy metric
def test_recovery_success_rate_on_hand_made_vectors():
    z_true = np.zeros((4, 4))
    z_hat = np.array(
        [
            [0.0, 0.0, 0.0, 0.0],  # mse 0,       max 0
            [0.05, -0.05, 0.05, -0.05],  # mse 0.0025, max 0.05
            [0.5, 0.0, 0.0, 0.0],  # mse 0.0625 (exactly), max 0.5
            [0.2, 0.2, -0.2, 0.2],  # mse 0.04,   max 0.2
        ]
    )
    rates = lvr.recovery_success_rate(z_true, z_hat, precisions=(0.1, 0.0625, 0.01, 1e-3))
    assert rates == {0.1: 1.0, 0.0625: 0.75, 0.01: 0.5, 1e-3: 0.25}
    assert list(lvr.recovery_success_rate(z_true, z_hat)) == list(lvr.ORIGINAL_PRECISIONS)
    max_abs = lvr.recovery_success_rate(z_true, z_hat, precisions=(0.6, 0.1, 0.01), criterion="max_abs")
    assert max_abs == {0.6: 1.0, 0.1: 0.5, 0.01: 0.25}
    np.testing.assert_allclose(lvr.latent_errors(z_true, z_hat), [0, 0.0025, 0.0625, 0.04])
    with pytest.raises(ValueError, match="shape"):
        lvr.recovery_success_rate(z_true, z_hat[:, :3])
    with pytest.raises(ValueError, match="criterion"):
        lvr.recovery_success_rate(z_true, z_hat, criterion="l1")


def test_noise_sigma_from_variance():
    assert lvr.noise_sigma_from_variance(0.04) == pytest.approx(0.1)
    assert lvr.noise_sigma_from_variance(1.0) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        lvr.noise_sigma_from_variance(-1e-3)


# ----------------------------------------------------------------------------- sharpness attribute
class ConstantShift(NoiseModel):
    """Deterministic "noise" y + delta, so the recovered latents' bias has a closed form."""

    def __init__(self, delta):
        super().__init__(clip=False)
        self.delta = np.asarray(delta, np.float32)

    def _apply(self, y, seed):
        return y + tf.constant(self.delta.reshape(IMAGE_SHAPE), y.dtype)


def test_sharpness_attribute_of_a_linear_generator_has_the_closed_form():
    g, w = linear_generator(latent_dim=3, scale=0.5, seed=6)
    delta = 0.03 * np.random.default_rng(7).standard_normal(PIXELS)
    # Least squares on the native range: z_hat = z + W^+ (2 delta), so the bias is -W^+ (2 delta).
    expected = -np.linalg.pinv(w.astype(np.float64)) @ (2.0 * delta)
    lr = 0.5 * PIXELS / (2 * 0.25)  # half the inverse curvature: error halves every step
    attribute = lvr.estimate_sharpness_attribute(
        g, ConstantShift(delta), n=8, seed=0, iterations=60, learning_rate=lr, clipping="none", progress=False
    )
    assert attribute.shape == (3,) and attribute.dtype == np.float32
    np.testing.assert_allclose(attribute, expected, atol=1e-5)


def test_sharpness_attribute_under_gaussian_noise_matches_least_squares():
    g, w = linear_generator(latent_dim=3, scale=0.5, seed=8)
    lr = 0.5 * PIXELS / (2 * 0.25)
    attribute, details = lvr.estimate_sharpness_attribute(
        g, GaussianNoise(sigma=0.05), n=16, seed=3, iterations=60, learning_rate=lr, clipping="none",
        return_details=True, progress=False,
    )
    z_true, noisy = details["z_true"], details["noisy"]
    np.testing.assert_allclose(details["clean"], g(z_true).numpy())
    z_ls = np.linalg.lstsq(w.astype(np.float64), native(noisy).reshape(16, -1).T, rcond=None)[0].T
    np.testing.assert_allclose(attribute, z_true.mean(0) - z_ls.mean(0), atol=1e-5)
    assert np.abs(attribute).max() > 1e-3  # the noise leaves a visible bias at n = 16


def test_sigma_argument_means_clipped_gaussian_noise():
    g, _ = linear_generator(latent_dim=3, scale=0.5)
    _, details = lvr.estimate_sharpness_attribute(
        g, 0.5, n=4, seed=0, iterations=2, clipping="none", return_details=True, progress=False
    )
    assert details["noisy"].min() >= 0.0 and details["noisy"].max() <= 1.0
    assert np.abs(details["noisy"] - details["clean"]).mean() > 0.1
    with pytest.raises(ValueError, match="noise"):
        lvr.estimate_sharpness_attribute(g, "loud", n=4, seed=0, iterations=2, progress=False)


@pytest.mark.parametrize("suffix", [".npz", ".json"])
def test_attribute_save_load_round_trip(tmp_path, suffix):
    vector = np.random.default_rng(0).standard_normal(100).astype(np.float32)
    metadata = {"noise_variance": 0.1, "sigma": np.float32(0.25), "generator": "dcgan64", "n": np.int64(64)}
    path = lvr.save_attribute(tmp_path / f"attribute{suffix}", vector, metadata)
    loaded, loaded_meta = lvr.load_attribute(path)
    np.testing.assert_array_equal(loaded, vector)
    assert loaded.dtype == np.float32
    assert loaded_meta == {"noise_variance": 0.1, "sigma": 0.25, "generator": "dcgan64", "n": 64}
    with pytest.raises(FileExistsError):
        lvr.save_attribute(path, vector, metadata)
    with pytest.raises(ValueError, match="1-D"):
        lvr.save_attribute(tmp_path / f"bad{suffix}", vector.reshape(10, 10))


def test_save_attribute_appends_npz_suffix(tmp_path):
    path = lvr.save_attribute(tmp_path / "plain", np.ones(3))
    assert path.endswith(".npz") and os.path.exists(path)
    vector, metadata = lvr.load_attribute(path)
    np.testing.assert_array_equal(vector, np.ones(3, np.float32))
    assert metadata == {}


def test_apply_sharpness_attribute_against_numpy():
    z = np.random.default_rng(1).uniform(-1, 1, (5, 4)).astype(np.float32)
    attribute = np.array([0.3, -0.2, 0.0, 0.9], np.float32)
    np.testing.assert_array_equal(lvr.apply_sharpness_attribute(z, attribute), np.clip(z + attribute, -1, 1))
    np.testing.assert_array_equal(lvr.apply_sharpness_attribute(z, attribute, bound=None), z + attribute)
    with pytest.raises(ValueError, match="latent_dim"):
        lvr.apply_sharpness_attribute(z, attribute[:3])


# ----------------------------------------------------------------------------- denoising
def test_denoise_by_projection_is_the_orthogonal_projection_for_a_linear_generator():
    g, w = linear_generator(latent_dim=3, scale=0.5, seed=2)
    rng = np.random.default_rng(3)
    clean = g(rng.uniform(-0.8, 0.8, (4, 3)).astype(np.float32)).numpy()
    noisy = (clean + 0.05 * rng.standard_normal(clean.shape)).astype(np.float32)
    lr = 0.5 * PIXELS / (2 * 0.25)
    result = lvr.denoise_by_projection(
        g, noisy, clipping="none", iterations=60, learning_rate=lr, seed=0, progress=False
    )
    w64 = w.astype(np.float64)
    projection = w64 @ np.linalg.pinv(w64)
    expected = (native(noisy).reshape(4, -1) @ projection.T).reshape(noisy.shape) / 2 + 0.5
    np.testing.assert_allclose(result.x_hat, expected, atol=1e-5)
    np.testing.assert_allclose(
        result.best_objective, np.mean((native(noisy) - native(expected)) ** 2, axis=(1, 2, 3)), rtol=1e-3
    )
    assert np.mean((result.x_hat - clean) ** 2) < np.mean((noisy - clean) ** 2)

    attribute = np.array([0.1, -0.05, 0.2], np.float32)
    sharp = lvr.denoise_with_sharpness_attribute(
        g, noisy, attribute, clipping="none", iterations=60, learning_rate=lr, seed=0, progress=False
    )
    shifted = np.clip(result.latents + attribute, -1, 1)
    np.testing.assert_allclose(sharp.latents, shifted, atol=1e-6)
    np.testing.assert_allclose(sharp.extras["recovered_latents"], result.latents, atol=1e-6)
    np.testing.assert_allclose(sharp.x_hat, (shifted @ w.T).reshape(noisy.shape) / 2 + 0.5, atol=1e-5)
    np.testing.assert_allclose(
        sharp.best_objective, np.mean((native(noisy) - native(sharp.x_hat)) ** 2, axis=(1, 2, 3)), rtol=1e-4
    )


# ----------------------------------------------------------------------------- bad input
def test_bad_input_raises_before_any_generator_call():
    g, _ = linear_generator(cls=CountingGenerator)
    CountingGenerator.calls = 0
    op = Identity(IMAGE_SHAPE)
    good = np.full((2,) + IMAGE_SHAPE, 0.5, np.float32)
    with pytest.raises(ValueError, match=r"\[batch, 4, 4, 1\]"):
        lvr.recover_latents(g, op, np.zeros((2, 4, 4), np.float32), progress=False)
    nan = good.copy()
    nan[0, 1, 1, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        lvr.recover_latents(g, op, nan, progress=False)
    with pytest.raises(ValueError, match="NaN"):
        lvr.denoise_by_projection(g, nan, progress=False)
    with pytest.raises(ValueError, match=r"\[batch, 4, 4, 1\]"):
        lvr.denoise_by_projection(g, good[:, :2], progress=False)
    with pytest.raises(ValueError, match="clipping"):
        lvr.recover_latents(g, op, good, clipping="soft", progress=False)
    with pytest.raises(ValueError, match="initial_latents"):
        lvr.recover_latents(g, op, good, initial_latents=np.zeros((2, 5)), progress=False)
    with pytest.raises(ValueError, match="batch-statistics"):
        lvr.recover_latents(g, op, good, batch_statistics=True, progress=False)
    with pytest.raises(ValueError, match="takes images of shape"):
        lvr.recover_latents(g, Identity((8, 8, 1)), np.zeros((2, 8, 8, 1), np.float32), progress=False)
    with pytest.raises(ValueError, match="iterations"):
        lvr.recover_latents(g, op, good, iterations=0, progress=False)
    masks = RandomPixelMask(image_shape=IMAGE_SHAPE, seed=0, batch_size=3)
    with pytest.raises(ValueError, match="per-example"):
        lvr.recover_latents(g, masks, good, progress=False)
    with pytest.raises(ValueError, match="seed"):
        lvr.recover_latents(g, op, good, seed=None, progress=False)
    assert CountingGenerator.calls == 0


def test_latent_conditioning_of_a_linear_generator_is_the_spectrum_of_its_matrix():
    from priors_for_tests import linear_generator

    generator = linear_generator(latent_dim=4, seed=3)
    weights = generator.network.layers[0].kernel.numpy().astype(np.float64)  # [4, pixels]: G(z) = W^T z + b
    expected = np.linalg.svd(weights.T, compute_uv=False)
    z = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    result = lvr.latent_conditioning(generator, z, small_fraction=0.5)
    for singular in result["singular_values"]:  # the Jacobian of a linear map is the same everywhere
        np.testing.assert_allclose(singular, expected, rtol=1e-5)
    np.testing.assert_allclose(result["condition_number"], expected[0] / expected[-1], rtol=1e-5)
    np.testing.assert_allclose(result["small_singular_fraction"], np.mean(expected < 0.5 * expected[0]))


def _jacobian_condition_numbers(generator, z):
    """cond(dG/dz) per latent from central differences and numpy's SVD (no autodiff)."""
    step = 1e-2
    columns = []
    for k in range(z.shape[1]):
        offset = np.zeros_like(z)
        offset[:, k] = step
        plus = np.asarray(generator(z + offset), np.float64).reshape(len(z), -1)
        minus = np.asarray(generator(z - offset), np.float64).reshape(len(z), -1)
        columns.append((plus - minus) / (2 * step))
    jacobians = np.stack(columns, axis=-1)  # [N, pixels, d]
    singular = np.linalg.svd(jacobians, compute_uv=False)
    return singular[:, 0] / singular[:, -1]


@pytest.mark.parametrize("name", sorted(SHIPPED_PRIORS))
def test_shipped_priors_load_with_their_layout(name):
    from tfinverse.pretrained import _LAYOUTS, load_prior

    generator = load_prior(name)
    layout = _LAYOUTS[name]
    assert generator.output_shape == (layout["resolution"], layout["resolution"], layout["channels"])
    assert generator.latent_dim == layout["latent_dim"]
    images = np.asarray(generator(generator.sample_latent(8, seed=1)))
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.std() > 0.1


def test_path_length_prior_is_better_conditioned_than_the_default_prior():
    from tfinverse.pretrained import load_prior

    z = np.random.default_rng(3).uniform(-1, 1, (4, 100)).astype(np.float32)
    default = _jacobian_condition_numbers(load_prior("dcgan_mnist28"), z)
    regularised = _jacobian_condition_numbers(load_prior("dcgan_mnist28_path_length"), z)
    # Measured on 32 latents: median 730 against 179 (REPRODUCTION.md, LVR section).
    assert np.median(regularised) < 0.5 * np.median(default)


def test_untrained_prior_has_the_shipped_layout_and_calibrated_batch_norm():
    import keras

    from tfinverse.pretrained import load_prior

    generator = load_prior("untrained:dcgan_mnist28")
    assert generator.output_shape == (28, 28, 1) and generator.latent_dim == 100
    z = generator.sample_latent(256, seed=99)
    inference = np.asarray(generator.native(z, training=False))
    batch_statistics = np.asarray(generator.native(z, training=False, batch_statistics=True))
    # Calibrated moving statistics: inference mode is close to the batch-statistics function.
    assert np.sqrt(np.mean((inference - batch_statistics) ** 2)) < 0.1 * np.std(batch_statistics)
    for layer in generator.network.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            assert not np.allclose(layer.moving_variance.numpy(), 1.0)  # moved away from the initial values
    with pytest.raises(KeyError, match="dcgan_mnist28"):
        load_prior("untrained:no_such_prior")
