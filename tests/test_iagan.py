"""IAGAN: joint (theta, z) adaptation beyond the generator's range, batching, untouched prior.

References: a linear generator ``G(z) = W z + b`` whose least-squares residual (numpy)
bounds what CSGM can reach and whose first joint Adam step has a closed form; numpy masks;
the paper's settings for the presets; sequential runs against batched runs.
"""

import keras
import numpy as np
import pytest

import tfinverse.operators as ops
import tfinverse.operators.inpainting  # noqa: F401  (registers the masking operators)
from tfinverse.inversion.csgm import csgm
from tfinverse.inversion.iagan import (
    AUTO_BATCHED_MIN_ITERATIONS,
    IAGAN_PRESETS,
    clear_solver_cache,
    csgm_then_iagan,
    estimate_batched_bytes,
    iagan,
    iagan_preset,
)
from tfinverse.models import DCGANGenerator, KerasGenerator

from priors_for_tests import SHAPE, linear_generator, mlp_generator  # noqa: E402


class ExplodingGenerator(KerasGenerator):
    """Fails if anything generates or copies: proves validation runs first."""

    def native(self, z, training=False):
        raise AssertionError("the generator was called before the input was validated")

    def copy(self):
        raise AssertionError("the generator was copied before the input was validated")


def snapshot(generator):
    return [np.array(v.numpy(), copy=True) for v in generator.variables]


def assert_bit_identical(before, generator):
    after = [v.numpy() for v in generator.variables]
    assert len(before) == len(after)
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new)


@pytest.fixture(scope="module")
def mask_operator():
    return ops.get("random_pixel_mask", image_shape=SHAPE, keep_fraction=0.6, seed=3)


@pytest.fixture(scope="module")
def outside_images():
    # Random textures: far outside the range of the small priors.
    return np.random.default_rng(0).uniform(0.1, 0.9, (3,) + SHAPE).astype(np.float32)


# ----------------------------------------------------------------------------- behaviour
def test_iagan_beats_csgm_outside_the_range_and_leaves_the_prior_untouched(mask_operator, outside_images):
    generator = mlp_generator()
    before = snapshot(generator)
    y = mask_operator(outside_images).numpy()
    first = csgm(generator, mask_operator, y, iterations=150, learning_rate=0.05, restarts=2, seed=0,
                 progress=False)
    second = iagan(generator, mask_operator, y, z_init=first.latents, iterations=60, lr_z=1e-2, lr_theta=1e-2,
                   progress=False)
    assert_bit_identical(before, generator)
    # IAGAN starts where CSGM stopped and goes far below it.
    np.testing.assert_allclose(second.extras["initial_objective"], first.best_objective, rtol=1e-4)
    assert np.all(second.best_objective < 0.2 * first.best_objective)
    # x_hat is the image whose objective is reported (numpy re-computation).
    mask = mask_operator.mask.numpy()
    refit = ((y - second.x_hat * mask) ** 2).reshape(3, -1).sum(axis=1)
    np.testing.assert_allclose(refit, second.best_objective, rtol=1e-4, atol=1e-7)
    # The measured pixels get closer to the truth than CSGM's.
    error_iagan = np.abs((second.x_hat - outside_images) * (mask > 0)).mean()
    error_csgm = np.abs((first.x_hat - outside_images) * (mask > 0)).mean()
    assert error_iagan < 0.5 * error_csgm


def test_linear_prior_goes_below_the_least_squares_bound():
    # No latent of G(z) = W z + b fits better than the least-squares residual; adapting W and b
    # does. That bound is computed with numpy, independently of the code.
    generator = linear_generator()
    kernel, bias = (v.numpy().astype(np.float64) for v in generator.trainable_variables)
    operator = ops.get("identity", image_shape=SHAPE)
    y = np.random.default_rng(5).uniform(0, 1, (2,) + SHAPE).astype(np.float32)
    targets = y.reshape(2, -1) - bias
    z_ls, *_ = np.linalg.lstsq(kernel.T, targets.T, rcond=None)
    bound = ((targets.T - kernel.T @ z_ls) ** 2).sum(axis=0)
    result = iagan(generator, operator, y, z_init=z_ls.T.astype(np.float32), iterations=40, lr_z=1e-3,
                   lr_theta=1e-2, progress=False)
    np.testing.assert_allclose(result.extras["initial_objective"], bound, rtol=1e-4)
    assert np.all(result.best_objective < 0.1 * bound)


def test_first_joint_step_matches_closed_form():
    # For G(z) = W z + b, A = I: grad_W = -2 z r^T (Keras kernel layout [d, n]), grad_b = -2 r,
    # grad_z = -2 W r with r = y - G(z); PyTorch Adam's first step moves every entry by
    # lr * g / (|g| + eps). Different learning rates for z and theta must be honoured.
    generator = linear_generator()
    kernel, bias = (v.numpy().astype(np.float64) for v in generator.trainable_variables)
    operator = ops.get("identity", image_shape=SHAPE)
    rng = np.random.default_rng(9)
    y = rng.uniform(0, 1, (2,) + SHAPE).astype(np.float32)
    z = rng.standard_normal((2, 4)).astype(np.float32)
    lr_z, lr_theta, eps = 0.05, 0.01, 1e-8
    expected = []
    for i in range(2):
        r = y[i].reshape(-1) - (z[i] @ kernel + bias)
        grads = {"kernel": -2 * np.outer(z[i], r), "bias": -2 * r, "z": -2 * kernel @ r}
        step = {name: g / (np.abs(g) + eps) for name, g in grads.items()}
        kernel_1 = kernel - lr_theta * step["kernel"]
        bias_1 = bias - lr_theta * step["bias"]
        z_1 = z[i] - lr_z * step["z"]
        expected.append(((y[i].reshape(-1) - (z_1 @ kernel_1 + bias_1)) ** 2).sum())
    result = iagan(generator, operator, y, z_init=z, iterations=1, lr_z=lr_z, lr_theta=lr_theta, progress=False)
    np.testing.assert_allclose(result.history[0], expected, rtol=1e-4)


def test_best_pair_is_kept_not_the_last(mask_operator, outside_images):
    generator = mlp_generator()
    y = mask_operator(outside_images[:2]).numpy()
    z0 = generator.sample_latent(2, seed=1)
    # A far too large step makes the objective bounce.
    result = iagan(generator, mask_operator, y, z_init=z0, iterations=30, lr_z=0.5, lr_theta=0.5,
                   progress=False, return_generators=True)
    everything = np.concatenate([result.extras["initial_objective"][None], result.history], axis=0)
    np.testing.assert_allclose(result.best_objective, everything.min(axis=0), rtol=1e-6)
    assert np.any(result.history[-1] > 1.5 * result.best_objective)
    picked = everything[result.extras["best_iteration"], np.arange(2)]
    np.testing.assert_allclose(picked, result.best_objective, rtol=1e-6)
    # The returned generators hold theta_best: G_theta_best(z_best) reproduces x_hat.
    for i, adapted in enumerate(result.extras["generators"]):
        np.testing.assert_allclose(adapted(result.latents[i:i + 1]).numpy()[0], result.x_hat[i], atol=1e-6)


@pytest.mark.parametrize("per_example", [False, True])
def test_batched_equals_sequential_and_chunked(outside_images, per_example):
    generator = mlp_generator(seed=4)
    before = snapshot(generator)
    if per_example:
        operator = ops.get("drop_independent", image_shape=SHAPE, seed=2, p=0.4, batch_size=3)
    else:
        operator = ops.get("random_pixel_mask", image_shape=SHAPE, keep_fraction=0.6, seed=3)
    y = operator(outside_images).numpy()
    z0 = generator.sample_latent(3, seed=2)
    options = dict(z_init=z0, iterations=25, lr_z=1e-2, lr_theta=1e-2, progress=False)
    batched = iagan(generator, operator, y, batched=True, **options)
    sequential = iagan(generator, operator, y, batched=False, **options)
    assert batched.extras["mode"] == "batched" and batched.extras["chunk_size"] == 3
    assert batched.extras["shared_trace"]
    assert sequential.extras["mode"] == "sequential" and sequential.extras["chunk_size"] == 1
    others = [sequential]
    if per_example:
        # A budget for two images per step: chunks of 2 and 1 (rows 0-1, then row 2, whose
        # per-example draw must still be draw 2).
        chunked = iagan(generator, operator, y, batched=True, max_batched_bytes=estimate_batched_bytes(generator, 2), **options)
        assert chunked.extras["chunk_size"] == 2
        others.append(chunked)
    for other in others:
        np.testing.assert_allclose(other.history, batched.history, rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(other.best_objective, batched.best_objective, rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(other.x_hat, batched.x_hat, atol=1e-5)
        np.testing.assert_allclose(other.latents, batched.latents, atol=1e-5)
    assert_bit_identical(before, generator)


def test_saved_model_prior_batched_traces_one_copy_for_all_images():
    # The shipped prior is a SavedModel: a batched chunk makes one generator copy, traces one
    # image's step and runs it for every image with that image's own variables swapped in.
    from tfinverse.pretrained import load_prior

    generator = load_prior("untrained:dcgan_mnist28")
    before = snapshot(generator)
    operator = ops.get("super_resolution", image_shape=generator.output_shape, factor=4)
    images = np.random.default_rng(2).uniform(0, 1, (3,) + generator.output_shape).astype(np.float32)
    y = operator(images).numpy()
    options = dict(z_init=generator.sample_latent(3, seed=1), iterations=6, lr_z=1e-2, lr_theta=1e-3,
                   progress=False, reuse_solver=False)
    copies = []
    original_copy = type(generator).copy

    def counting_copy(self):
        copies.append(1)
        return original_copy(self)

    type(generator).copy = counting_copy
    try:
        batched = iagan(generator, operator, y, batched=True, **options)
    finally:
        type(generator).copy = original_copy
    assert batched.extras["shared_trace"] and batched.extras["chunk_size"] == 3 and len(copies) == 1
    # Every image gets its own weights: equal to separate single-image runs.
    for i in range(3):
        single = iagan(generator, operator, y[i:i + 1], **{**options, "z_init": options["z_init"][i:i + 1]})
        np.testing.assert_allclose(batched.history[:, i], single.history[:, 0], rtol=1e-4, atol=1e-7)
        np.testing.assert_allclose(batched.x_hat[i], single.x_hat[0], atol=1e-5)
    assert_bit_identical(before, generator)


def test_solver_is_reused_across_calls_and_follows_the_generator():
    clear_solver_cache()
    generator = DCGANGenerator(16, 1, latent_dim=8, base_filters=4, seed=0)
    operator = ops.get("identity", image_shape=(16, 16, 1))
    y = np.random.default_rng(1).uniform(0, 1, (2, 16, 16, 1)).astype(np.float32)
    options = dict(z_init=generator.sample_latent(2, seed=4), iterations=5, lr_theta=1e-3, batched=True,
                   progress=False)
    first = iagan(generator, operator, y, **options)
    again = iagan(generator, operator, y, **options)
    assert not first.extras["reused_solver"] and again.extras["reused_solver"]
    np.testing.assert_array_equal(again.history, first.history)
    # A change of the prior's weights and batch-norm statistics reaches the reused solver.
    for variable in generator.variables:
        variable.assign(variable * 0.9 + 0.01)
    changed = iagan(generator, operator, y, **options)
    fresh = iagan(generator, operator, y, reuse_solver=False, **{k: v for k, v in options.items()})
    assert changed.extras["reused_solver"] and not fresh.extras["reused_solver"]
    np.testing.assert_allclose(changed.history, fresh.history, rtol=1e-5)
    assert not np.allclose(changed.history, first.history, rtol=1e-3)
    # Other settings or another operator build a new solver.
    other = ops.get("identity", image_shape=(16, 16, 1))
    assert not iagan(generator, other, y, **options).extras["reused_solver"]
    assert not iagan(generator, other, y, **{**options, "lr_z": 1e-3}).extras["reused_solver"]
    clear_solver_cache()
    assert not iagan(generator, other, y, **{**options, "lr_z": 1e-3}).extras["reused_solver"]


def test_auto_mode_batches_from_the_threshold():
    generator = mlp_generator()
    operator = ops.get("identity", image_shape=SHAPE)
    y = np.random.default_rng(3).uniform(0, 1, (2,) + SHAPE).astype(np.float32)
    modes = {}
    for images, iterations in ((2, AUTO_BATCHED_MIN_ITERATIONS - 1), (2, AUTO_BATCHED_MIN_ITERATIONS),
                               (1, AUTO_BATCHED_MIN_ITERATIONS)):
        result = iagan(generator, operator, y[:images], iterations=iterations, progress=False, reuse_solver=False)
        modes[images, iterations] = result.extras["mode"]
    assert modes == {(2, AUTO_BATCHED_MIN_ITERATIONS - 1): "sequential", (2, AUTO_BATCHED_MIN_ITERATIONS): "batched",
                     (1, AUTO_BATCHED_MIN_ITERATIONS): "sequential"}
    with pytest.raises(ValueError, match="auto"):
        iagan(generator, operator, y, iterations=2, batched="always", progress=False)
    # Below the threshold, a kept batched solver makes batching free of set-up: auto takes it.
    clear_solver_cache()
    iagan(generator, operator, y, iterations=3, batched=True, progress=False)
    short = iagan(generator, operator, y, iterations=3, progress=False)
    assert short.extras["mode"] == "batched" and short.extras["reused_solver"]
    clear_solver_cache()


def test_xla_and_eager_agree(mask_operator, outside_images):
    generator = mlp_generator()
    y = mask_operator(outside_images[:2]).numpy()
    options = dict(z_init=generator.sample_latent(2, seed=3), iterations=8, lr_z=1e-2, lr_theta=1e-2,
                   progress=False)
    reference = iagan(generator, mask_operator, y, batched=False, **options)
    for kwargs in ({"jit_compile": True}, {"run_eagerly": True}, {"jit_compile": True, "batched": True},
                   {"run_eagerly": True, "batched": True}):
        other = iagan(generator, mask_operator, y, **options, **kwargs)
        np.testing.assert_allclose(other.history, reference.history, rtol=1e-4, atol=1e-7)


def test_dcgan_prior_keeps_batch_norm_statistics_and_weights():
    generator = DCGANGenerator(16, 1, latent_dim=8, base_filters=4, seed=0)
    before = snapshot(generator)
    operator = ops.get("identity", image_shape=(16, 16, 1))
    y = np.random.default_rng(1).uniform(0, 1, (1, 16, 16, 1)).astype(np.float32)
    result = iagan(generator, operator, y, iterations=5, lr_theta=1e-3, seed=4, progress=False)
    assert_bit_identical(before, generator)
    assert result.history.shape == (5, 1) and result.latents.shape == (1, 8)
    assert np.all(result.best_objective <= result.extras["initial_objective"])
    # z_init=None draws from the prior with the seed.
    start = generator(generator.sample_latent(1, seed=4)).numpy()
    expected = ((y - start) ** 2).reshape(1, -1).sum(axis=1)
    np.testing.assert_allclose(result.extras["initial_objective"], expected, rtol=1e-5)


# ----------------------------------------------------------------------------- presets
def test_presets_follow_the_paper():
    assert iagan_preset("began", "cs") == {"iterations": 600, "lr_z": 1e-4, "lr_theta": 1e-4}
    assert iagan_preset("began", "super_resolution") == {"iterations": 500, "lr_z": 1e-4, "lr_theta": 1e-4}
    assert iagan_preset("pggan", "compressed_sensing") == {"iterations": 500, "lr_z": 1e-4, "lr_theta": 1e-3}
    assert iagan_preset("pggan", "sr") == {"iterations": 300, "lr_z": 1e-4, "lr_theta": 1e-3}
    for prior, task in IAGAN_PRESETS:
        halved = iagan_preset(prior, task, noisy=True)["iterations"]
        assert halved * 2 == IAGAN_PRESETS[(prior, task)]["iterations"]
    preset = iagan_preset("began", "cs")
    preset["iterations"] = 1
    assert IAGAN_PRESETS[("began", "cs")]["iterations"] == 600  # a copy is returned
    with pytest.raises(KeyError, match="tasks"):
        iagan_preset("began", "deblur")
    with pytest.raises(KeyError, match="priors"):
        iagan_preset("dcgan", "cs")


def test_csgm_then_iagan_pipeline(mask_operator, outside_images):
    generator = mlp_generator()
    y = mask_operator(outside_images[:2]).numpy()
    first, second = csgm_then_iagan(
        generator, mask_operator, y, prior="began", task="cs", noisy=True, seed=3, progress=False,
        csgm_options={"iterations": 40, "restarts": 2},
        iagan_options={"lr_z": 1e-2, "lr_theta": 1e-2},
    )
    # Explicit options override the preset; the noisy preset halves the paper's 600.
    assert first.history.shape == (40, 2) and second.history.shape == (300, 2)
    np.testing.assert_allclose(second.extras["initial_objective"], first.best_objective, rtol=1e-4)
    assert np.all(second.best_objective < first.best_objective)
    # The CSGM stage used the preset's learning rate (0.1) and the given seed.
    reference = csgm(generator, mask_operator, y, iterations=40, restarts=2, learning_rate=0.1, seed=3,
                     progress=False)
    np.testing.assert_allclose(first.latents, reference.latents, atol=1e-6)


# ----------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "y, kwargs, message",
    [
        (np.zeros((2, 8, 8), np.float32), {}, r"\[batch, 8, 8, 1\]"),
        (np.full((2, 8, 8, 1), np.nan, np.float32), {}, "NaN"),
        (np.zeros((2, 8, 8, 1), np.float32), {"z_init": np.zeros((3, 4), np.float32)}, r"\[2, 4\]"),
        (np.zeros((2, 8, 8, 1), np.float32), {"z_init": np.full((2, 4), np.inf, np.float32)}, "NaN or Inf"),
        (np.zeros((2, 8, 8, 1), np.float32), {"iterations": 0}, "iterations"),
        (np.zeros((2, 8, 8, 1), np.float32), {"lr_theta": 0.0}, "lr_theta"),
        (np.zeros((2, 8, 8, 1), np.float32), {"max_batched_bytes": 0}, "max_batched_bytes"),
    ],
)
def test_bad_input_raises_before_optimisation(y, kwargs, message):
    exploding = ExplodingGenerator(mlp_generator().network, 4, "uniform")
    operator = ops.get("identity", image_shape=SHAPE)
    kwargs.setdefault("z_init", np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match=message):
        iagan(exploding, operator, y, progress=False, **kwargs)


def test_pipeline_checks_the_measurement_first():
    exploding = ExplodingGenerator(mlp_generator().network, 4, "uniform")
    operator = ops.get("identity", image_shape=SHAPE)
    with pytest.raises(ValueError, match="NaN"):
        csgm_then_iagan(exploding, operator, np.full((1,) + SHAPE, np.nan, np.float32), progress=False)
    with pytest.raises(ValueError, match="task"):
        csgm_then_iagan(exploding, operator, np.zeros((1,) + SHAPE, np.float32), prior="began", progress=False)


def test_generator_operator_mismatch_raises():
    exploding = ExplodingGenerator(mlp_generator().network, 4, "uniform")
    operator = ops.get("identity", image_shape=(16, 16, 1))
    with pytest.raises(ValueError, match=r"\(16, 16, 1\)"):
        iagan(exploding, operator, np.zeros((1, 16, 16, 1), np.float32), z_init=np.zeros((1, 4), np.float32),
              progress=False)
