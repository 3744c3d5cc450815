"""igan tasks: settings, training/evaluation data and the metrics table."""

import cv2
import numpy as np
import pytest
import scipy.stats

from tfinverse.data import DatasetUnavailableError, splits
from tfinverse.data.offline import mnist5k_arrays, natural_patches
from tfinverse.data.toy2d import DEFAULT_MATRIX, DEFAULT_OFFSET
from tfinverse.tasks import igan_tasks

IMAGE_TASKS = ("unmixing_mnist_cifar", "unmixing_mnist_mnist", "denoising", "captcha", "derain")


def _first_batch(task, **kwargs):
    batch = next(iter(igan_tasks.training_batches(task, **kwargs)))
    return {key: value.numpy() for key, value in batch.items()}


def _psnr(reference, estimate):
    mse = np.mean((np.asarray(reference, np.float64) - np.asarray(estimate, np.float64)) ** 2, axis=(1, 2, 3))
    return np.mean(10 * np.log10(1.0 / mse)), 10 * np.log10(1.0 / np.mean(mse))


# --------------------------------------------------------------------------- settings


def test_task_settings_follow_the_original():
    tasks = {name: igan_tasks.get_task(name) for name in igan_tasks.TASK_NAMES}
    assert set(tasks) == {"unmixing_mnist_cifar", "unmixing_mnist_mnist", "denoising", "captcha", "toy2d",
                          "audio_captcha", "derain"}
    assert tasks["unmixing_mnist_cifar"].sample_shape == (64, 64, 3)
    assert tasks["unmixing_mnist_mnist"].sample_shape == (64, 64, 1)
    assert tasks["captcha"].sample_shape == (128, 128, 1)
    assert tasks["audio_captcha"].sample_shape == (128, 128, 1)
    assert tasks["derain"].sample_shape == (64, 64, 3)
    assert tasks["toy2d"].sample_shape == (2,) and tasks["toy2d"].is_points
    assert [n for n, t in tasks.items() if t.component_is_residual] == ["denoising"]
    assert {n for n, t in tasks.items() if t.add_input_mean} == {"unmixing_mnist_cifar", "unmixing_mnist_mnist",
                                                                 "denoising"}
    assert {"unmixing_mnist_cifar", "unmixing_mnist_mnist", "captcha"} <= {
        n for n, t in tasks.items() if t.extra_convs}
    assert [n for n, t in tasks.items() if t.paired_loss_min_over_permutations] == ["unmixing_mnist_mnist"]
    assert tasks["unmixing_mnist_mnist"].max_iters == 120000
    assert all(tasks[n].max_iters == 10000 for n in ("unmixing_mnist_cifar", "denoising", "captcha"))
    assert all(0 < t.short_iters <= t.max_iters for t in tasks.values())


def test_unknown_task_and_option_are_refused():
    with pytest.raises(ValueError, match="unmixing_mnist_cifar, unmixing_mnist_mnist, denoising"):
        igan_tasks.get_task("deblurring")
    with pytest.raises(ValueError, match="variant"):
        igan_tasks.get_task("toy2d", colour="red")
    with pytest.raises(ValueError, match="unknown igan task"):
        igan_tasks.training_batches("deblurring")


def test_options_have_defaults_and_overrides():
    task = igan_tasks.get_task("toy2d")
    assert task.option("variant") == "gaussian"
    banana = igan_tasks.get_task(task, variant="banana")
    assert banana.option("variant") == "banana" and banana.name == "toy2d"
    assert igan_tasks.get_task("derain", density=0.2).option("angle_degrees") == 10.0
    with pytest.raises(KeyError, match="variant"):
        task.option("density")
    with pytest.raises(ValueError, match="variant must be one of"):
        igan_tasks.get_task("toy2d", variant="moons")
    with pytest.raises(ValueError, match="density must be a finite number"):
        igan_tasks.get_task("derain", density="heavy")
    with pytest.raises(ValueError, match="thickness must be an integer"):
        igan_tasks.get_task("derain", thickness=1.5)
    with pytest.raises(ValueError, match="True or False"):
        igan_tasks.get_task("captcha", smooth_clean=1)
    # Integers are numbers: an int may set a float option.
    assert igan_tasks.get_task("denoising", noise_std=2).option("noise_std") == 2


@pytest.mark.parametrize(
    "kwargs, message",
    [({"batch_size": 0}, "batch_size"), ({"seed": -1}, "seed"), ({"split": "valid"}, "split")],
)
def test_bad_pipeline_arguments_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        igan_tasks.training_batches("denoising", **kwargs)


def test_offline_sources_are_used_without_local_copies(tmp_path):
    assert igan_tasks.data_sources("unmixing_mnist_cifar", data_dir=str(tmp_path)) == {
        "clean": "natural_patches", "component": "mnist5k"}
    assert igan_tasks.data_sources("derain")["component"] == "synthetic rain streaks"
    assert igan_tasks.data_sources("derain", data_dir=str(tmp_path))["clean"] == "rain_pairs (clean)"
    explicit = igan_tasks.get_task("unmixing_mnist_cifar", clean_source="cifar10")
    with pytest.raises(DatasetUnavailableError, match="cifar10"):
        igan_tasks.training_batches(explicit, data_dir=str(tmp_path))


def test_a_local_cifar10_copy_replaces_the_offline_photos(monkeypatch, caplog, tmp_path):
    # Stand-ins for a prepared tfds copy: CIFAR-10-sized photos of one colour each.
    colours = np.array([[200, 30, 90], [10, 250, 120], [60, 60, 180]], np.uint8)
    photos = np.broadcast_to(colours[:, None, None, :], (3, 32, 32, 3)).copy()
    monkeypatch.setattr(igan_tasks, "_tfds_prepared", lambda name, data_dir: name == "cifar10")
    monkeypatch.setattr(igan_tasks, "_tfds_array", lambda name, split, root: photos)
    assert igan_tasks.data_sources("unmixing_mnist_cifar", str(tmp_path))["clean"] == "cifar10"
    with caplog.at_level("INFO", logger=igan_tasks.__name__):
        batch = _first_batch("unmixing_mnist_cifar", batch_size=3, seed=0, data_dir=str(tmp_path))
    assert "clean from cifar10" in caplog.text
    # Resizing a flat 32x32 photo to 64x64 keeps its colour: each x is one of the colours.
    centre = batch["x"][:, 32, 32, :]
    distances = np.abs(centre[:, None, :] - colours[None] / 255.0).max(axis=2)
    assert distances.min(axis=1).max() < 1e-5
    np.testing.assert_allclose(batch["x"], batch["x"][:, :1, :1, :] * np.ones_like(batch["x"]), atol=1e-5)


# --------------------------------------------------------------------------- training data


@pytest.mark.parametrize("name", IMAGE_TASKS)
def test_image_batches_have_the_documented_layout(name):
    task = igan_tasks.get_task(name)
    batch = _first_batch(task, batch_size=3, seed=0)
    assert set(batch) == {"y", "x", "component", "x2", "x3"}
    for value in batch.values():
        assert value.shape == (3,) + task.sample_shape and value.dtype == np.float32
    for key in ("x", "x2", "x3"):
        assert batch[key].min() >= 0 and batch[key].max() <= 1
    np.testing.assert_allclose(batch["y"], batch["x"] + batch["component"], atol=1e-6)
    # x2 (D1's real batch) and x3 (the dual mapping's) are independent clean samples
    for first, second in (("x2", "x"), ("x3", "x"), ("x3", "x2")):
        assert not np.array_equal(batch[first], batch[second])
    assert not np.array_equal(batch["x3"], np.roll(batch["x2"], 1, axis=0))


def test_observation_ranges_per_task():
    mixed = _first_batch("unmixing_mnist_cifar", batch_size=4, seed=1)
    assert mixed["y"].max() > 1.0 and mixed["y"].max() <= 2.0  # a sum of two [0, 1] images
    digit = mixed["component"]
    np.testing.assert_array_equal(digit[..., 0], digit[..., 2])  # a grey digit on 3 channels
    assert not np.array_equal(mixed["x"][..., 0], mixed["x"][..., 2])  # colour photos
    rain = _first_batch("derain", batch_size=4, seed=1)
    assert rain["component"].min() >= 0 and rain["y"].max() <= 1.0
    captcha = _first_batch("captcha", batch_size=4, seed=1)
    assert captcha["y"].min() >= 0 and captcha["y"].max() <= 1
    component = captcha["component"]
    assert -1 <= component.min() and component.max() <= 1
    # The dots and arc are drawn in the ink colour: the component is mostly positive.
    assert component[component > 0].sum() > 3 * -component[component < 0].sum()


def test_batches_are_deterministic_per_seed():
    first = igan_tasks.training_batches("unmixing_mnist_mnist", batch_size=2, seed=5).take(3)
    again = igan_tasks.training_batches("unmixing_mnist_mnist", batch_size=2, seed=5).take(3)
    other = igan_tasks.training_batches("unmixing_mnist_mnist", batch_size=2, seed=6).take(3)
    batches = [b["y"].numpy() for b in first]
    for a, b in zip(batches, [b["y"].numpy() for b in again]):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(batches[0], batches[1])  # the stream moves on
    assert not np.array_equal(batches[0], next(iter(other))["y"].numpy())
    test_batch = _first_batch("unmixing_mnist_mnist", batch_size=2, seed=5, split="test")
    assert not np.array_equal(batches[0], test_batch["y"])


def test_denoising_noise_is_standard_normal():
    batch = _first_batch("denoising", batch_size=8, seed=2)
    noise = batch["component"].ravel()
    assert abs(noise.mean()) < 0.02 and noise.std() == pytest.approx(1.0, abs=0.02)
    assert scipy.stats.kstest(noise[:5000], "norm").pvalue > 1e-3
    half = _first_batch(igan_tasks.get_task("denoising", noise_std=0.5), batch_size=8, seed=2)
    assert half["component"].std() == pytest.approx(0.5, abs=0.01)


def test_toy2d_points_are_source_and_affine_target():
    batch = _first_batch("toy2d", batch_size=64, seed=0)
    matrix, offset = np.array(DEFAULT_MATRIX), np.array(DEFAULT_OFFSET)
    for value in batch.values():
        assert value.shape == (64, 2) and value.dtype == np.float32
    np.testing.assert_allclose(batch["x"], batch["y"] @ matrix.T + offset, atol=1e-5)
    np.testing.assert_allclose(batch["y"], batch["x"] + batch["component"], atol=1e-5)
    # x2 is a target point of another draw, not the image of y: unpaired.
    assert np.mean(np.linalg.norm(batch["x2"] - batch["x"], axis=1)) > 0.5
    assert np.mean(np.linalg.norm(batch["x3"] - batch["x2"], axis=1)) > 0.5
    banana = _first_batch(igan_tasks.get_task("toy2d", variant="banana"), batch_size=512, seed=0)
    # Banana: v = 0.5 (u^2 - 1) + noise, so v correlates with u^2, unlike the Gaussian.
    u, v = banana["y"][:, 0], banana["y"][:, 1]
    assert np.corrcoef(u**2, v)[0, 1] > 0.8


# --------------------------------------------------------------------------- evaluation data


def _mnist5k_test_digits_at_64():
    images, labels = mnist5k_arrays()
    digits = images[splits.mnist5k_indices("test", labels)].astype(np.float32) / 255.0
    return np.stack([cv2.resize(d[..., 0], (64, 64), interpolation=cv2.INTER_LINEAR) for d in digits])


def _match_distance(images, pool):
    """For each image, the smallest max-abs difference to any image of the pool."""
    flat_pool = pool.reshape(len(pool), -1)
    return np.array([np.abs(flat_pool - image.ravel()).max(axis=1).min() for image in images])


def test_unmixing_evaluation_data_come_from_the_test_splits(tmp_path):
    data = igan_tasks.evaluation_batches("unmixing_mnist_cifar", n=6, seed=0, data_dir=str(tmp_path))
    assert set(data) == {"y", "x", "component"}
    digits = _mnist5k_test_digits_at_64()
    assert _match_distance(data["component"][..., 0], digits).max() < 1e-5  # bilinear, as the original
    patches = natural_patches("test", patch_size=32).astype(np.float32) / 255.0
    photos = np.clip([cv2.resize(p, (64, 64), interpolation=cv2.INTER_CUBIC) for p in patches], 0, 1)
    assert _match_distance(data["x"], photos).max() < 1e-5  # bicubic, as the original
    again = igan_tasks.evaluation_batches("unmixing_mnist_cifar", n=6, seed=0, data_dir=str(tmp_path))
    np.testing.assert_array_equal(data["y"], again["y"])


def test_denoising_input_psnr_is_below_0_01_db():
    from tfinverse import metrics

    data = igan_tasks.evaluation_batches("denoising", n=1000, seed=0)
    assert data["y"].shape == (1000, 64, 64, 1)
    input_psnr = float(metrics.dataset_psnr(data["x"], data["y"]))
    expected = -10 * np.log10(np.mean(data["component"].astype(np.float64) ** 2))
    assert input_psnr == pytest.approx(expected, abs=1e-4)
    # igan: "PSNR less than 0.01 dB"; an N(0, 1) noise gives about 0 dB.
    assert -0.05 < input_psnr < 0.01
    assert float(np.mean(metrics.psnr(data["x"], data["y"]))) < 0.01


# --------------------------------------------------------------------------- scores


def _rows(rows):
    return {(r["method"], r["target"]): r for r in rows}


def test_perfect_estimates_and_the_observation_baseline():
    data = igan_tasks.evaluation_batches("unmixing_mnist_cifar", n=4, seed=3)
    y, x, z = data["y"], data["x"], data["component"]
    perfect = _rows(igan_tasks.evaluate("unmixing_mnist_cifar", y, x, z, x, z))
    for target in ("clean", "component"):
        assert perfect[("igan", target)]["psnr"] == np.inf
        assert perfect[("igan", target)]["dataset_psnr"] == np.inf
        assert perfect[("igan", target)]["ssim"] == pytest.approx(1.0, abs=1e-6)
        assert perfect[("igan", target)]["n"] == 4
    psnr_mean, psnr_set = _psnr(x, y)
    assert perfect[("observation", "clean")]["psnr"] == pytest.approx(psnr_mean, abs=1e-4)
    assert perfect[("observation", "clean")]["dataset_psnr"] == pytest.approx(psnr_set, abs=1e-4)
    assert perfect[("observation", "component")]["psnr"] == pytest.approx(_psnr(z, 0 * z)[0], abs=1e-4)
    # Estimating "nothing happened" scores exactly like the observation row.
    trivial = _rows(igan_tasks.evaluate("unmixing_mnist_cifar", y, x, z, y, np.zeros_like(y)))
    for target in ("clean", "component"):
        assert trivial[("igan", target)] == {**trivial[("observation", target)], "method": "igan"}


def test_two_digit_unmixing_scores_ignore_the_order_of_the_outputs():
    data = igan_tasks.evaluation_batches("unmixing_mnist_mnist", n=4, seed=0)
    y, x, z = data["y"], data["x"], data["component"]
    swapped = _rows(igan_tasks.evaluate("unmixing_mnist_mnist", y, x, z, z, x))
    assert swapped[("igan", "clean")]["psnr"] == np.inf
    noisy_x = x + 0.1 * np.random.default_rng(0).standard_normal(x.shape).astype(np.float32)
    straight = _rows(igan_tasks.evaluate("unmixing_mnist_mnist", y, x, z, noisy_x, z))
    crossed = _rows(igan_tasks.evaluate("unmixing_mnist_mnist", y, x, z, z, noisy_x))
    assert straight[("igan", "clean")] == crossed[("igan", "clean")]
    assert straight[("igan", "clean")]["psnr"] == pytest.approx(_psnr(x, noisy_x)[0], abs=1e-4)


def test_captcha_median_filter_baseline():
    data = igan_tasks.evaluation_batches("captcha", n=3, seed=0)
    y, x, z = data["y"], data["x"], data["component"]
    assert y.shape == (3, 128, 128, 1)
    rows = _rows(igan_tasks.evaluate("captcha", y, x, z, x, z))
    filtered = np.stack([cv2.medianBlur(image[..., 0], 3) for image in y])[..., None]
    psnr_mean, psnr_set = _psnr(x, filtered)
    assert rows[("median filter", "clean")]["psnr"] == pytest.approx(psnr_mean, abs=1e-4)
    assert rows[("median filter", "clean")]["dataset_psnr"] == pytest.approx(psnr_set, abs=1e-4)
    assert rows[("median filter", "component")]["psnr"] == pytest.approx(_psnr(z, y - filtered)[0], abs=1e-4)
    assert rows[("igan", "clean")]["psnr"] == np.inf


def test_toy2d_scores():
    data = igan_tasks.evaluation_batches("toy2d", n=300, seed=0)
    y, x, z = data["y"], data["x"], data["component"]
    rows = _rows(igan_tasks.evaluate("toy2d", y, x, z, x, z))
    assert rows[("igan", "clean")]["mse"] == 0 and rows[("igan", "clean")]["energy_distance"] == 0
    assert rows[("observation", "clean")]["mse"] == pytest.approx(np.mean((y - x) ** 2.0), rel=1e-6)
    assert rows[("observation", "clean")]["energy_distance"] > 1.0


def test_energy_distance_matches_scipy_in_one_dimension():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=200), rng.normal(0.7, 1.5, size=150)
    expected = scipy.stats.energy_distance(a, b)
    assert igan_tasks.energy_distance(a[:, None], b[:, None]) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(ValueError, match=r"\[n, d\]"):
        igan_tasks.energy_distance(a, b)


def test_evaluate_refuses_mismatched_or_bad_arrays():
    image = np.zeros((2, 64, 64, 1), np.float32)
    with pytest.raises(ValueError, match=r"\[n, height, width, channels\]"):
        igan_tasks.evaluate("denoising", image, image, image, image, image[:1])
    with pytest.raises(ValueError, match=r"\[n, 2\]"):
        igan_tasks.evaluate("toy2d", image, image, image, image, image)
    bad = image.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        igan_tasks.evaluate("denoising", image, image, image, bad, image)


# --------------------------------------------------------------------------- derain folders


def _write_rain_folder(root, n_pairs=10, side=96):
    for sub in ("rainy", "clean"):
        (root / sub).mkdir(parents=True)
    for k in range(n_pairs):
        level = 20 + 15 * k  # one grey level per pair; the rainy image is 40 levels brighter
        cv2.imwrite(str(root / "clean" / f"{k:02d}.png"), np.full((side, side, 3), level, np.uint8))
        cv2.imwrite(str(root / "rainy" / f"{k:02d}.png"), np.full((side, side, 3), level + 40, np.uint8))


def test_derain_reads_pairs_from_a_folder(tmp_path):
    _write_rain_folder(tmp_path / "rain")
    batch = _first_batch("derain", batch_size=3, seed=0, data_dir=str(tmp_path / "rain"))
    assert batch["y"].shape == (3, 64, 64, 3)
    np.testing.assert_allclose(batch["component"], 40 / 255, atol=1e-5)  # rainy matched to its clean
    np.testing.assert_allclose(batch["y"], batch["x"] + batch["component"], atol=1e-6)
    assert set(batch) == {"y", "x", "component", "x2", "x3"}  # x2, x3: other passes, own orders
    assert batch["x3"].shape == batch["x2"].shape and not np.array_equal(batch["x3"], batch["x2"])
    test = igan_tasks.evaluation_batches("derain", n=5, data_dir=str(tmp_path / "rain"))
    # Sorted-path rule: only the tenth pair (position 9) is test.
    assert test["x"].shape == (1, 64, 64, 3)
    np.testing.assert_allclose(test["x"], (20 + 15 * 9) / 255, atol=1e-6)


def test_missing_derain_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetUnavailableError, match="no folder"):
        igan_tasks.training_batches("derain", data_dir=str(tmp_path / "missing"))
    with pytest.raises(DatasetUnavailableError, match="no folder"):
        igan_tasks.evaluation_batches("derain", data_dir=str(tmp_path / "missing"))


# --------------------------------------------------------------------------- figure


def test_plot_toy_mapping_draws_the_clouds(tmp_path):
    data = igan_tasks.evaluation_batches("toy2d", n=200, seed=0)
    path = igan_tasks.plot_toy_mapping(data["y"], data["x"], data["x"] + 0.05, tmp_path / "fig" / "toy.png")
    image = cv2.imread(path)
    assert image is not None and image.shape[0] > 100
    blue, green, red = (image[..., c].astype(int) for c in range(3))
    assert np.sum((green > red + 60) & (green > blue + 40)) > 50  # green source points
    assert np.sum((red > green + 80) & (red > blue + 80)) > 50  # red target points
    with pytest.raises(ValueError, match=r"\[n, 2\]"):
        igan_tasks.plot_toy_mapping(data["y"][:, :1], data["x"], data["x"], tmp_path / "bad.png")
