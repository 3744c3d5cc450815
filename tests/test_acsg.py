"""ACSG (Ambient VAE-GAN's latent-optimisation baseline) on tiny problems.

The objective is recomputed with numpy from the returned latents and the masks of the
documented per-iteration seeds; the redraw is observed by recording every mask the
compiled step applies.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import tfinverse.operators as ops
from tfinverse import inversion
from tfinverse.inversion.acsg import acsg, iteration_seed
from tfinverse.models.ambient import AmbientNetworks
from tfinverse.tasks.ambient import AmbientConfig, build_measurement

from priors_for_tests import SHAPE, linear_generator

N = 3


@pytest.fixture(scope="module")
def generator():
    return linear_generator()  # images vary strongly with z: a start far from the solution


@pytest.fixture(scope="module")
def features():
    """A fixed conv feature map on [0, 1] images (a stand-in discriminator)."""
    layer = keras.layers.Conv2D(4, 3, strides=2, padding="same",
                                kernel_initializer=keras.initializers.GlorotUniform(seed=5))
    layer.build((None,) + SHAPE)
    return lambda x: layer(x)


def make_problem(generator, spec):
    """A measurement of images the prior can make, and the clean images."""
    measure = build_measurement(spec, SHAPE)
    x = generator(generator.sample_latent(N, 11)).numpy()
    return measure, measure(x, 99).numpy(), x


@pytest.fixture(scope="module")
def problem(generator):
    return make_problem(generator, "drop_independent:p=0.5")


@pytest.mark.parametrize("spec, drop", [("add_noise:std=0.05", 0.1), ("drop_patch:patch_size=2", 0.5)])
def test_acsg_lowers_its_loss_and_the_error(generator, features, spec, drop):
    measure, y, x = make_problem(generator, spec)
    result = acsg(generator, features, measure, y, iterations=100, reference=x, seed=0, progress=False)
    # Each iteration sees a fresh draw, so the objective has a floor; far above it at the start.
    objective = result.extras["objective"]
    assert objective[-10:].mean() < drop * objective[:10].mean()
    mse = result.extras["mse"]
    assert mse[-10:].mean() < drop * mse[0]
    assert result.history.shape == (100, N) and result.x_hat.shape == (N,) + SHAPE
    assert result.extras["snapshot_iteration"] == 90
    seconds = result.extras["cumulative_seconds"]
    assert np.all(np.diff(seconds) > 0) and seconds[-1] <= result.seconds
    np.testing.assert_array_equal(result.extras["time_mse"], np.stack([seconds, mse]))


def test_objective_is_the_originals_formula(generator, features, problem):
    measure, y, _ = problem
    result = acsg(generator, features, measure, y, iterations=2, snapshot_iteration=0, seed=4, progress=False)
    z0 = result.extras["initial_latents"]
    x0 = generator(z0).numpy()
    mask = measure.mask(x0, iteration_seed(4, 0)).numpy()
    predicted, target = features(mask * x0).numpy(), features(y).numpy()
    expected = 5.0 * np.mean((predicted - target) ** 2, axis=(1, 2, 3)) + 0.001 * np.sum(z0**2, axis=1)
    np.testing.assert_allclose(result.history[0], expected, rtol=1e-5)
    # The snapshot after iteration 0's step is evaluated with iteration 1's draw: row 1.
    np.testing.assert_allclose(result.best_objective, result.history[1], rtol=1e-6)
    np.testing.assert_allclose(result.x_hat, generator(result.latents).numpy(), atol=1e-6)
    assert not np.allclose(result.latents, z0)


def test_the_measurement_is_redrawn_every_iteration(generator, features, problem):
    _, y, _ = problem
    operator = ops.get("drop_independent", image_shape=SHAPE, p=0.5, seed=0)
    iterations = 4
    masks = tf.Variable(tf.zeros((iterations + 1, N) + SHAPE))
    calls = tf.Variable(0)

    def recording(x, seed):  # records the mask every call applies, also inside the compiled step
        masks.scatter_nd_update([[calls]], operator(tf.ones_like(x), seed=seed)[None])
        calls.assign_add(1)
        return operator(x, seed=seed)

    result = acsg(generator, features, recording, y, iterations=iterations, snapshot_iteration=None, seed=3,
                  progress=False)
    assert int(calls.numpy()) == iterations + 1  # every step, plus the snapshot's evaluation
    seen = masks.numpy() != 0
    for t in range(iterations):
        assert not np.array_equal(seen[t], seen[t + 1])
        expected = operator(np.ones((N,) + SHAPE, np.float32), seed=iteration_seed(3, t)).numpy() != 0
        np.testing.assert_array_equal(seen[t], expected)
    assert result.history.shape == (iterations, N)


def test_snapshot_differs_from_the_last_iterate(generator, features, problem):
    measure, y, _ = problem
    result = acsg(generator, features, measure, y, iterations=12, snapshot_iteration=5, seed=1, progress=False)
    assert not np.allclose(result.latents, result.extras["final_latents"])
    np.testing.assert_allclose(result.extras["final_x_hat"], generator(result.extras["final_latents"]).numpy(),
                               atol=1e-6)
    assert "mse" not in result.extras and np.all(np.isnan(result.extras["time_mse"][1]))


@pytest.mark.parametrize("config, spec", [
    (AmbientConfig(8, 1, 3, "mnist"), "drop_patch"),
    (AmbientConfig(16, 3, 7, "celeba"), "add_noise"),
])
def test_runs_on_the_ambient_networks_for_any_latent_size(config, spec):
    nets = AmbientNetworks.build(config, seed=0)
    g = nets.generator()
    measure = build_measurement(spec, config.image_shape, zero_level=config.zero_level)
    x = g(g.sample_latent(2, 0)).numpy()
    result = acsg(g, nets, measure, measure(x, 5).numpy(), iterations=3, snapshot_iteration=1, reference=x,
                  seed=0, progress=False)
    assert result.x_hat.shape == (2,) + config.image_shape and result.latents.shape == (2, config.latent_dim)
    assert np.all(np.isfinite(result.history)) and np.all((result.x_hat >= 0) & (result.x_hat <= 1))


def test_bad_input_is_refused_before_any_work(generator, features, problem):
    measure, y, x = problem
    with pytest.raises(ValueError, match="snapshot_iteration"):
        acsg(generator, features, measure, y, iterations=10, snapshot_iteration=10, progress=False)
    with pytest.raises(ValueError, match="measurement y must have shape"):
        acsg(generator, features, measure, y[:, :4], iterations=2, progress=False)
    with pytest.raises(ValueError, match="reference"):
        acsg(generator, features, measure, y, iterations=2, snapshot_iteration=None, reference=x[:2],
             progress=False)
    with pytest.raises(ValueError, match="NaN"):
        acsg(generator, features, measure, np.full_like(y, np.nan), iterations=2, snapshot_iteration=None,
             progress=False)
    with pytest.raises(ValueError, match="z_init"):
        acsg(generator, features, measure, y, iterations=2, snapshot_iteration=None,
             z_init=np.zeros((N, 9), np.float32), progress=False)


def test_registered_method_matches_the_function(generator, features, problem):
    measure, y, _ = problem
    method = inversion.get("acsg")
    assert {k: method.settings[k] for k in ("iterations", "learning_rate", "feature_weight", "latent_weight",
                                            "snapshot_iteration")} == {
        "iterations": 100, "learning_rate": 0.1, "feature_weight": 5.0, "latent_weight": 0.001,
        "snapshot_iteration": 90}
    assert "acsg" in inversion.available_methods(model_specific=True)
    assert "acsg" not in inversion.available_methods()
    operator = measure.operator
    tiny = inversion.get("acsg", iterations=3, snapshot_iteration=2)
    with pytest.raises(ValueError, match="needs the discriminator"):
        tiny(operator, y, generator=generator, progress=False)
    ours = tiny(operator, y, generator=generator, discriminator=features, seed=2, progress=False)
    theirs = acsg(generator, features, operator, y, iterations=3, snapshot_iteration=2, seed=2, progress=False)
    np.testing.assert_array_equal(ours.x_hat, theirs.x_hat)
    np.testing.assert_array_equal(ours.history, theirs.history)
    assert ours.extras["method"] == "acsg"
    # Under noise every draw adds fresh noise of that level, so the objective changes.
    noisy = tiny(operator, y, generator=generator, discriminator=features, seed=2, progress=False, noise_sigma=0.1)
    assert not np.allclose(noisy.history, ours.history)
    shrink = ops.get("super_resolution", image_shape=SHAPE, factor=2)
    assert not tiny.applies_to(shrink) and "does not output images" in tiny.applies_to(shrink).reason
