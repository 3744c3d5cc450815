"""train_ambient_vae_gan.py and deploy_ambient_vae_gan.py end to end on offline MNIST, at a tiny budget.

One ambient and one supervised run of a few steps (module fixture), then the deploy script
with all four methods; its tables are recomputed independently (scikit-image) from the saved
arrays. Bad inputs are one ``error:`` line before anything is written.
"""

import importlib.util
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from tfinverse.utils.cli import flag_table, run_script

from summaries import summary_tags

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
TRAIN = ["--steps", "4", "--batch-size", "8", "--best-every", "2", "--best-images", "8", "--num-samples", "4",
         "--checkpoint-every", "2", "--sample-every", "0", "--log-every", "2", "--measurement", "drop_patch:patch_size=10",
         "--quiet"]


def load(name):
    spec = importlib.util.spec_from_file_location(f"{name}_test", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trainer_script():
    return load("train_ambient_vae_gan")


@pytest.fixture(scope="module")
def deploy_script():
    return load("deploy_ambient_vae_gan")


@pytest.fixture(scope="module")
def runs(tmp_path_factory, trainer_script):
    root = tmp_path_factory.mktemp("ambient_runs")
    ambient = trainer_script.main([*TRAIN, "--out", str(root / "ambient")])
    supervised = trainer_script.main([*TRAIN, "--supervised", "--out", str(root / "supervised")])
    return root, ambient, supervised


def test_training_writes_checkpoints_best_export_and_its_record(runs):
    root, ambient, supervised = runs
    assert ambient["steps"] == 4 and set(ambient["optimizer_iterations"].values()) == {4}
    assert {"e_loss", "kl", "pixel_ll", "feature_ll", "g_loss", "d_loss"} <= set(ambient["final_losses"])
    assert ambient["best"]["criterion"] == "measurement" and ambient["best"]["step"] in (2, 4)
    assert (root / "ambient" / "best").is_dir() and (root / "ambient" / "enhancer" / "saved_model.pb").is_file()
    assert "learning_rate/encoder" in ambient["final_scalars"]
    # every evaluation of the best criterion is in TensorBoard at its own step, as in the run's record
    from tfinverse.evaluation.curves import read_scalars

    steps, values = read_scalars(root / "ambient" / "logs")["best/measurement_criterion"]
    history = ambient["best"]["history"]
    assert list(steps) == [record["step"] for record in history] == [2, 4]
    np.testing.assert_allclose(values, [record["value"] for record in history], rtol=1e-6)
    # TensorBoard: one image per grid column (the final samples), not one mosaic
    _, image_tags = summary_tags(root / "ambient" / "logs")
    assert {"samples/clean", "samples/lossy", "samples/reconstruction", "samples/prior_sample"} <= image_tags
    assert "samples" not in image_tags
    assert ambient["update_schedule"]["updates"][0]["phase"] == "encoder"
    stored = json.loads((root / "supervised" / "checkpoints" / "run_config.json").read_text())
    assert stored["supervised"] is True and stored["measurement_label"] == "drop_patch:patch_size=10"
    from tfinverse import hub

    enhancer = hub.load_image_model(str(root / "ambient" / "enhancer"))
    out = enhancer(np.zeros((2, 28, 28, 1), np.float32)).numpy()
    assert out.shape == (2, 28, 28, 1) and 0.0 <= out.min() and out.max() <= 1.0


def test_deploy_tables_match_an_independent_computation_from_the_saved_arrays(runs, deploy_script, tmp_path):
    root, _, _ = runs
    out = tmp_path / "deploy"
    report = deploy_script.main(["--ambient", str(root / "ambient"), "--supervised", str(root / "supervised"),
                                 "--num-images", "16", "--acsg-iterations", "3", "--acsg-snapshot", "2",
                                 "--out", str(out), "--quiet"])
    assert report["methods"] == ["ambient", "supervised", "acsg", "non-learned"]
    rows = {row["method"]: row for row in json.loads((out / "results.json").read_text())}
    arrays = np.load(out / "estimates.npz")
    x = arrays["x"]
    assert arrays["acsg_time_mse"].shape == (2, 3)
    for method, label in (("ambient", "Ambient VAE-GAN"), ("supervised", "supervised"), ("acsg", "ACSG"),
                          ("non_learned", "non-learned")):
        estimate = arrays[method]
        grid_x = np.concatenate([np.concatenate(list(x[r * 8:(r + 1) * 8]), axis=1) for r in range(2)], axis=0)
        grid_e = np.concatenate([np.concatenate(list(estimate[r * 8:(r + 1) * 8]), axis=1) for r in range(2)], axis=0)
        row = rows[label]
        np.testing.assert_allclose(row["grid_psnr"], peak_signal_noise_ratio(grid_x, grid_e, data_range=1.0), rtol=1e-4)
        np.testing.assert_allclose(row["grid_ssim"], structural_similarity(grid_x, grid_e, channel_axis=-1, data_range=2.0),
                                   atol=1e-4)
        psnr = [peak_signal_noise_ratio(a, b, data_range=1.0) for a, b in zip(x, estimate)]
        np.testing.assert_allclose(row["psnr_mean"], np.mean(psnr), rtol=1e-4)
        ssim = [structural_similarity(a, b, channel_axis=-1, data_range=1.0) for a, b in zip(x, estimate)]
        np.testing.assert_allclose(row["ssim_mean"], np.mean(ssim), atol=1e-4)
    for name in ("results.md", "results.csv", "orig.png", "lossy.png", "comparison.png", "deploy.json"):
        assert (out / name).is_file(), name
    assert report["speed"]["acsg_over_ambient"] > 0


def test_non_learned_median_window_on_one_channel_images(deploy_script, tmp_path):
    # The original's 3x3x3 window on a 1-channel image is two-thirds zero padding; "auto" takes 3x3 there.
    from scipy.signal import medfilt

    from tfinverse.inversion.baselines import non_learned_ambient

    out = tmp_path / "auto"
    deploy_script.main(["--methods", "non-learned", "--measurement", "add_noise", "--num-images", "16",
                        "--out", str(out), "--quiet"])
    arrays = np.load(out / "estimates.npz")
    x, y = arrays["x"], arrays["y"]
    plain = np.stack([np.clip(medfilt(image.astype(np.float64), (3, 3, 1)), 0, 1) for image in y])
    np.testing.assert_allclose(arrays["non_learned"], plain, atol=1e-6)
    original = non_learned_ambient(y, "median", median_size=(3, 3, 3)).x_hat
    np.testing.assert_allclose(original, np.stack([np.clip(medfilt(image.astype(np.float64), (3, 3, 3)), 0, 1)
                                                   for image in y]), atol=1e-6)
    assert np.mean((plain - x) ** 2) < 0.5 * np.mean((original - x) ** 2)
    assert np.mean(original) < 0.1 * np.mean(x)  # about 0 everywhere
    from tfinverse.tasks.ambient import median_window

    assert median_window("auto", 3) == (3, 3, 3) and median_window("3x3x3", 1) == (3, 3, 3)
    with pytest.raises(ValueError, match="median window"):
        median_window("5x5", 1)


def test_the_docstring_flag_tables_match_the_parsers(trainer_script, deploy_script):
    for module in (trainer_script, deploy_script):
        assert flag_table(module.build_parser()).strip() in module.__doc__


@pytest.mark.parametrize(
    "script, flags, expected",
    [
        ("train_ambient_vae_gan", ["--measurement", "drop_patch:patch_size=40"], "must be smaller than the image"),
        ("train_ambient_vae_gan", ["--measurement", "drop_independent:p=1.0"], "must be in [0, 1)"),
        ("train_ambient_vae_gan", ["--measurement", "super_resolution:factor=2"], "choose a measurement that keeps"),
        ("train_ambient_vae_gan", ["--dataset", "celeba", "--data-dir", "/nonexistent"], "/nonexistent"),
        ("deploy_ambient_vae_gan", ["--ambient", "/nonexistent"], "/nonexistent does not exist"),
        ("deploy_ambient_vae_gan", ["--methods", "acsg"], "need a model"),
    ],
)
def test_bad_inputs_are_one_line_before_any_work(script, flags, expected, tmp_path, capsys):
    out = tmp_path / "never"
    status = run_script(load(script).main, [*flags, "--steps", "1", "--out", str(out)] if script.startswith("train")
                        else [*flags, "--out", str(out)])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert not out.exists()


def test_deploy_refuses_a_run_of_another_configuration(runs, tmp_path, capsys):
    root, _, _ = runs
    out = tmp_path / "never"
    status = run_script(load("deploy_ambient_vae_gan").main,
                        ["--ambient", str(root / "ambient"), "--measurement", "drop_independent", "--out", str(out)])
    line = capsys.readouterr().err.strip().splitlines()[0]
    assert status == 2 and "is not the runs'" in line
    status = run_script(load("deploy_ambient_vae_gan").main,
                        ["--ambient", str(root / "supervised"), "--out", str(out)])
    assert status == 2 and "trained with --supervised" in capsys.readouterr().err
    # a resumed training run with another measurement is refused too
    status = run_script(load("train_ambient_vae_gan").main,
                        ["--out", str(root / "ambient"), "--resume", "--measurement", "drop_independent", "--steps", "6"])
    assert status == 2 and "measurement" in capsys.readouterr().err
    assert not out.exists()
