"""The inversion-method registry: one call signature, presets, applicability, dependencies.

Every registered method runs on a tiny problem (8 x 8 images, a small MLP prior, a few
iterations) and must give what the function it wraps gives with the same settings and seed,
bit for bit (the methods call those functions unchanged; CPU runs with a fixed seed are
deterministic). A method registered without a direct call in :func:`direct` fails the
equality test, so new methods get tested. bm3d's tests skip where the extra is missing.
"""

import argparse
import dataclasses

import numpy as np
import pytest

import tfinverse.operators as ops
import tfinverse.operators.inpainting  # noqa: F401  (registers the masking operators)
from tfinverse import inversion
from tfinverse.errors import UnknownNameError
from tfinverse.inversion import baselines
from tfinverse.inversion.back_projection import back_project_result
from tfinverse.inversion.base import InversionResult
from tfinverse.inversion.csgm import CSGM_PRESETS, csgm
from tfinverse.inversion.dip import dip
from tfinverse.inversion.iagan import iagan, iagan_preset
from tfinverse.inversion.methods import dip_levels_for

from extras import requires_bm3d
from priors_for_tests import SHAPE, mlp_generator

N = 2
BM3D_SHAPE = (16, 16, 1)  # BM3D needs sides >= 8 and not exactly 8 x 8
# Tiny settings: a few iterations keep every test at seconds.
TINY = {
    "csgm": dict(iterations=5, learning_rate=0.05, restarts=2),
    "iagan": dict(iterations=3, lr_z=1e-2, lr_theta=1e-2),
    "dip": dict(iterations=3, channels=4, skip_channels=2, input_channels=4),
}
SEED = 7


@pytest.fixture(scope="module")
def generator():
    return mlp_generator()


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.uniform(0.1, 0.9, (N,) + SHAPE).astype(np.float32)


def operator_for(name):
    """A small operator each method applies to (bm3d: denoising, a larger image)."""
    if name == "bicubic":
        return ops.get("super_resolution", image_shape=SHAPE, factor=2)
    if name == "ifft":
        return ops.get("subsampled_fourier", image_shape=SHAPE, ratio=0.5, seed=1)
    if name in ("observation", "dip"):
        return ops.get("identity", image_shape=SHAPE)
    if name == "bm3d":
        return ops.get("identity", image_shape=BM3D_SHAPE)
    return ops.get("random_pixel_mask", image_shape=SHAPE, keep_fraction=0.6, seed=3)


def problem_for(name):
    """``(operator, y, noise_sigma)``: noisy for bm3d, which needs noise, noiseless otherwise."""
    operator = operator_for(name)
    x = np.random.default_rng(1).uniform(0.1, 0.9, (N,) + tuple(operator.in_shape)).astype(np.float32)
    y = operator(x).numpy()
    sigma = 0.0
    if name == "bm3d":
        sigma = 0.1
        y = (y + sigma * np.random.default_rng(2).standard_normal(y.shape)).astype(np.float32)
    return operator, y, sigma


def run_with_dependencies(name, generator, operator, y, sigma):
    """Runs ``name`` (tiny settings) after the methods it starts from; all the results."""
    methods = [inversion.get(n, **TINY.get(n, {})) for n in inversion.with_dependencies([name])]
    return inversion.run_methods(methods, operator, y, generator=generator, seed=SEED, progress=False,
                                 noise_sigma=sigma)


def direct(name, generator, operator, y, sigma):
    """What calling the wrapped function directly with the same settings and seed gives."""
    if name == "observation":  # the naive column: y for image-shaped measurements
        return baselines.observation_baseline(operator, y, mode="observation")
    if name == "bicubic":
        return baselines.bicubic_upsampling(operator, y)
    if name == "ifft":
        return baselines.zero_filled_ifft(operator, y)
    if name == "bm3d":
        return baselines.bm3d_denoise(y, sigma, progress=False)
    first = csgm(generator, operator, y, seed=SEED, progress=False, **TINY["csgm"])
    if name == "csgm":
        return first
    if name == "csgm-bp":  # the method back-projects the estimate the base reports, clipped
        clipped = dataclasses.replace(first, x_hat=np.clip(first.x_hat, 0, 1))
        return back_project_result(operator, clipped, y)
    second = iagan(generator, operator, y, z_init=first.latents, seed=SEED, progress=False, **TINY["iagan"])
    if name == "iagan":
        return second
    if name == "iagan-bp":
        return back_project_result(operator, dataclasses.replace(second, x_hat=np.clip(second.x_hat, 0, 1)), y)
    if name == "dip":
        return dip(operator, y, seed=SEED, progress=False, levels=dip_levels_for(SHAPE[0]), **TINY["dip"])
    raise AssertionError(f"no direct call for {name!r}: add one for the newly registered method")


def registered():
    """Every registered method as a test parameter; bm3d skips where the extra is missing."""
    return [pytest.param(name, marks=requires_bm3d) if name == "bm3d" else name
            for name in inversion.available_methods()]


# ---------------------------------------------------------------- every registered method
@pytest.mark.parametrize("name", registered())
def test_every_method_returns_an_inversion_result_of_the_right_shape(name, generator):
    operator, y, sigma = problem_for(name)
    method = inversion.get(name, **TINY.get(name, {}))
    assert method.name == name and isinstance(method, inversion.InversionMethod)
    assert method.applies_to(operator, sigma), method.applies_to(operator, sigma).reason
    result = run_with_dependencies(name, generator, operator, y, sigma)[name]
    assert isinstance(result, InversionResult)
    assert result.x_hat.shape == (N,) + tuple(operator.in_shape) and result.x_hat.dtype == np.float32
    assert np.all(np.isfinite(result.x_hat))
    assert result.best_objective.shape == (N,) and result.seconds >= 0
    assert result.history.ndim == 2 and result.history.shape[1] == N
    assert result.extras["method"] == name


@pytest.mark.parametrize("name", registered())
def test_get_equals_the_wrapped_function_bit_for_bit(name, generator):
    operator, y, sigma = problem_for(name)
    ours = run_with_dependencies(name, generator, operator, y, sigma)[name]
    theirs = direct(name, generator, operator, y, sigma)
    # Same settings, same seed, same CPU code path: identical numbers.
    np.testing.assert_array_equal(ours.x_hat, theirs.x_hat)
    np.testing.assert_array_equal(ours.history, theirs.history)
    np.testing.assert_array_equal(ours.best_objective, theirs.best_objective)
    if theirs.latents is None:
        assert ours.latents is None
    else:
        np.testing.assert_array_equal(ours.latents, theirs.latents)


def test_the_deploy_scripts_methods_are_registered():
    from tfinverse.tasks.iagan import DEFAULT_METHODS, METHODS

    assert set(METHODS) | set(DEFAULT_METHODS) <= set(inversion.available_methods())


# ---------------------------------------------------------------- applicability
@pytest.mark.parametrize(
    "name, operator, sigma, reason",
    [
        ("bicubic", lambda: ops.get("blur_uniform", image_shape=SHAPE, kernel_size=3), 0.0, "super-resolution"),
        ("ifft", lambda: ops.get("compressed_sensing", image_shape=SHAPE, ratio=0.5, seed=0), 0.0,
         "subsampled Fourier"),
        ("csgm-bp", lambda: ops.get("identity", image_shape=SHAPE), 0.05, "amplifies noise"),
        ("iagan-bp", lambda: ops.get("super_resolution", image_shape=SHAPE, factor=2), 0.05, "amplifies noise"),
        ("bm3d", lambda: ops.get("identity", image_shape=BM3D_SHAPE), 0.0, "noiseless"),
        ("bm3d", lambda: ops.get("blur_uniform", image_shape=BM3D_SHAPE, kernel_size=3), 0.1, "identity"),
    ],
)
def test_applies_to_is_false_with_a_reason_and_calling_anyway_raises_it(name, operator, sigma, reason):
    operator = operator()
    method = inversion.get(name)
    applicability = method.applies_to(operator, sigma)
    assert not applicability and reason in applicability.reason
    y = np.zeros((1,) + tuple(operator.out_shape), np.float32)
    with pytest.raises(ValueError, match="does not apply"):
        method(operator, y, noise_sigma=sigma, previous=InversionResult(np.zeros((1,) + SHAPE, np.float32),
                                                                        np.zeros((0, 1)), np.zeros(1)))


@pytest.mark.parametrize(
    "name, operator, sigma",
    [
        ("bicubic", lambda: ops.get("super_resolution", image_shape=SHAPE, factor=2), 0.1),
        ("ifft", lambda: ops.get("subsampled_fourier", image_shape=SHAPE, ratio=0.5, seed=0), 0.1),
        ("csgm-bp", lambda: ops.get("compressed_sensing", image_shape=SHAPE, ratio=0.5, seed=0), 0.0),
        ("bm3d", lambda: ops.get("identity", image_shape=BM3D_SHAPE), 0.1),
        ("csgm", lambda: ops.get("blur_uniform", image_shape=SHAPE, kernel_size=3), 0.1),
        ("dip", lambda: ops.get("blur_uniform", image_shape=SHAPE, kernel_size=3), 0.1),
    ],
)
def test_applies_to_is_true_where_the_method_runs(name, operator, sigma):
    applicability = inversion.get(name).applies_to(operator(), sigma)
    assert applicability and applicability.reason == ""


def test_run_methods_skips_what_does_not_apply_and_says_why(generator, images):
    operator = ops.get("random_pixel_mask", image_shape=SHAPE, keep_fraction=0.6, seed=3)
    y = operator(images).numpy() + np.float32(0.05)
    methods = [inversion.get(n, **TINY.get(n, {})) for n in ("bicubic", "csgm", "csgm-bp")]
    skipped = {}
    results = inversion.run_methods(methods, operator, y, generator=generator, seed=0, progress=False,
                                    noise_sigma=0.05, skipped=skipped)
    assert list(results) == ["csgm"]
    assert set(skipped) == {"bicubic", "csgm-bp"} and "amplifies noise" in skipped["csgm-bp"]


# ---------------------------------------------------------------- names and settings
def test_unknown_method_names_list_the_valid_ones():
    with pytest.raises(UnknownNameError) as error:
        inversion.get("cgsm")
    message = str(error.value)
    assert "unknown inversion method 'cgsm'" in message and "did you mean 'csgm'" in message
    assert all(name in message for name in inversion.available_methods())
    assert isinstance(error.value, KeyError) and isinstance(error.value, ValueError)


@pytest.mark.parametrize("name", inversion.available_methods())
def test_unknown_settings_list_the_valid_ones(name):
    with pytest.raises(UnknownNameError) as error:
        inversion.get(name, no_such_setting=1)
    message = str(error.value)
    assert f"inversion method {name}: unknown setting 'no_such_setting'" in message
    assert all(key in message for key in inversion.get(name).settings)


def test_settings_are_the_wrapped_functions_keywords_and_the_presets_fill_them():
    assert inversion.get("csgm").settings == {"iterations": 1600, "learning_rate": 0.1, "restarts": 5,
                                              "z_prior_weight": 0.0, "jit_compile": False, "run_eagerly": False}
    began = inversion.get("csgm", **inversion.presets("csgm")["began"]).settings
    assert {k: began[k] for k in CSGM_PRESETS["began"]} == CSGM_PRESETS["began"]
    assert inversion.presets("iagan")["pggan-sr"] == iagan_preset("pggan", "sr")
    assert inversion.get("iagan", **iagan_preset("began", "cs")).settings["iterations"] == 600
    assert inversion.presets("dip") == {}
    # The settings are a copy: changing it does not change the method.
    method = inversion.get("dip")
    method.settings["iterations"] = 1
    assert method.settings["iterations"] == 2000


def test_generator_methods_say_so_and_refuse_to_run_without_one():
    assert {n for n in inversion.available_methods() if inversion.get(n).needs_generator} == {"csgm", "iagan"}
    operator = ops.get("identity", image_shape=SHAPE)
    with pytest.raises(ValueError, match="needs a generative prior"):
        inversion.get("csgm")(operator, np.zeros((1,) + SHAPE, np.float32))


# ---------------------------------------------------------------- dependencies and noise
def test_dependencies_come_first_and_iagan_starts_from_csgms_latents(generator, images):
    assert inversion.with_dependencies(["iagan-bp", "bicubic"]) == ["bicubic", "csgm", "iagan", "iagan-bp"]
    assert inversion.get("iagan").requires == "csgm" and inversion.get("iagan-bp").requires == "iagan"
    operator = ops.get("random_pixel_mask", image_shape=SHAPE, keep_fraction=0.6, seed=3)
    y = operator(images).numpy()
    results = run_with_dependencies("iagan-bp", generator, operator, y, 0.0)
    assert list(results) == ["csgm", "iagan", "iagan-bp"]
    first, second, third = results["csgm"], results["iagan"], results["iagan-bp"]
    # IAGAN's start is CSGM's best latent: its initial objective is CSGM's best one.
    np.testing.assert_allclose(second.extras["initial_objective"], first.best_objective, rtol=1e-4)
    # Seconds count what a method cannot run without.
    assert second.seconds >= first.seconds and second.extras["seconds_of_requires"] == first.seconds
    assert third.seconds >= second.seconds
    # The BP of an exact-pinv mask fits the measurements exactly.
    np.testing.assert_allclose(third.best_objective, 0.0, atol=1e-10)


def test_a_missing_or_wrong_previous_result_is_refused(generator, images):
    operator = ops.get("identity", image_shape=SHAPE)
    y = operator(images).numpy()
    with pytest.raises(ValueError, match="starts from the result of 'csgm'"):
        inversion.get("iagan")(operator, y, generator=generator)
    dip_result = inversion.get("dip", **TINY["dip"])(operator, y, progress=False)
    with pytest.raises(ValueError, match="got one from 'dip'"):
        inversion.get("iagan")(operator, y, generator=generator, previous=dip_result)
    with pytest.raises(ValueError, match="put a 'csgm' method before it"):
        inversion.run_methods([inversion.get("iagan"), inversion.get("csgm")], operator, y, generator=generator)
    with pytest.raises(ValueError, match="may appear once"):
        inversion.run_methods([inversion.get("ifft"), inversion.get("ifft")], operator, y)


def test_noise_halves_iagan_and_quarters_dip_as_the_paper(generator, images):
    operator = ops.get("identity", image_shape=SHAPE)
    y = operator(images).numpy()
    first = inversion.get("csgm", **TINY["csgm"])(operator, y, generator=generator, progress=False)
    noisy = inversion.get("iagan", iterations=4)(operator, y, generator=generator, previous=first,
                                                 noise_sigma=0.1, progress=False)
    assert noisy.history.shape == (2, N)
    kept = inversion.get("iagan", iterations=4, noisy_iteration_factor=1)(
        operator, y, generator=generator, previous=first, noise_sigma=0.1, progress=False)
    assert kept.history.shape == (4, N)
    dip_noisy = inversion.get("dip", **{**TINY["dip"], "iterations": 8})(operator, y, noise_sigma=0.1, progress=False)
    assert dip_noisy.history.shape == (2, N)


# ---------------------------------------------------------------- the deploy scripts' flags
def flags(**overrides):
    values = dict(methods=["iagan", "bicubic"], csgm_iterations=7, csgm_lr=0.2, restarts=3, iagan_iterations=9,
                  iagan_lr_z=2e-4, iagan_lr_theta=3e-4, jit_compile=False)
    values.update(overrides)
    return argparse.Namespace(**values)


def test_methods_from_flags_configures_the_methods_and_adds_their_dependencies():
    from tfinverse.tasks.iagan import methods_from_flags

    methods = methods_from_flags(flags())  # no DIP flags needed when DIP is not asked for
    assert [m.name for m in methods] == ["bicubic", "csgm", "iagan"]
    assert {k: methods[1].settings[k] for k in ("iterations", "learning_rate", "restarts")} == {
        "iterations": 7, "learning_rate": 0.2, "restarts": 3}
    assert {k: methods[2].settings[k] for k in ("iterations", "lr_z", "lr_theta")} == {
        "iterations": 9, "lr_z": 2e-4, "lr_theta": 3e-4}
    dip_method = methods_from_flags(flags(methods=["dip"], dip_iterations=5, dip_channels=6, dip_levels=None))[0]
    assert {k: dip_method.settings[k] for k in ("iterations", "channels", "levels")} == {
        "iterations": 5, "channels": 6, "levels": None}
    with pytest.raises(UnknownNameError, match="unknown inversion method 'nope'"):
        methods_from_flags(flags(methods=["nope"]))


def test_run_task_reports_the_asked_for_methods_in_run_order():
    from tfinverse.evaluation.iagan import run_task
    from tfinverse.models import DCGANGenerator
    from tfinverse.tasks.iagan import parse_task

    # 16 x 16: SSIM's 11 x 11 window needs more than the other tests' 8 x 8.
    generator = DCGANGenerator(resolution=16, channels=1, base_filters=8, seed=0)
    images = np.random.default_rng(0).uniform(0, 1, (N, 16, 16, 1)).astype(np.float32)
    args = flags(methods=["csgm-bp", "iagan"], csgm_iterations=3, iagan_iterations=2)
    outcome = run_task(generator, parse_task("inpaint"), images, args, seed=0)
    # CSGM runs (both start from it) but is not reported; BP has no history of its own.
    assert [row["method"] for row in outcome.rows] == ["observation", "iagan", "csgm-bp"]
    assert [title for title, _ in outcome.columns] == ["original", "observation", "iagan", "csgm-bp"]
    assert list(outcome.histories) == ["iagan"] and outcome.histories["iagan"].shape == (2,)
    for _, estimate in outcome.columns[1:]:
        assert estimate.shape == images.shape and estimate.min() >= 0 and estimate.max() <= 1
