"""scripts/train_lir.py and scripts/deploy_lir.py end to end at tiny sizes, tables recomputed
from the saved arrays, and bad inputs as one-line errors before any output."""

import importlib.util
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from tfinverse.models.lir import VGG_UNAVAILABLE_MESSAGE
from tfinverse.utils.cli import flag_table, run_script

from extras import HAVE_BM3D
from summaries import summary_tags

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
TINY = ["--width", "2", "--dis-width", "4", "--num-res", "1", "--batch-size", "2", "--num-samples", "2",
        "--sample-every", "0", "--checkpoint-every", "0", "--log-every", "1", "--quiet"]


def load(name):
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("lir") / "run"
    train = load("train_lir")
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        run = train.main(["--noise", "gaussian", "--steps", "2", "--out", str(out), *TINY])
    return out, run, buffer.getvalue()


def test_training_writes_run_restorer_and_says_vgg_is_off_once(trained):
    out, run, stdout = trained
    assert run["steps"] == 2 and (out / "restorer" / "saved_model.pb").is_file()
    assert stdout.count(VGG_UNAVAILABLE_MESSAGE) == 1 and run["perceptual_term"] is False
    stored = json.loads((out / "run.json").read_text())
    assert stored["update_schedule"]["noise"]["sigma"] == pytest.approx(50 / 255)
    assert set(stored["final_losses"]) >= {"content_d_loss", "d_loss", "g_loss", "g_background"}
    assert stored["optimizer_iterations"] == {"content_discriminator": 8, "image_discriminators": 2, "generators": 2}
    assert (out / "samples.png").is_file()
    _, image_tags = summary_tags(out / "logs")
    assert {"samples/noisy", "samples/restored"} <= image_tags and "samples" not in image_tags


def test_deploy_tables_match_scores_recomputed_from_the_arrays(trained, tmp_path):
    out, _, _ = trained
    deploy = load("deploy_lir")
    report = deploy.main(["--model", str(out), "--methods", "noisy", "lir", "bm3d", "dip", "--dip-iterations", "2",
                          "--dip-channels", "4", "--num-images", "1", "--out", str(tmp_path / "d"), "--quiet"])
    rows = {row["method"]: row for row in json.loads((tmp_path / "d" / "results.json").read_text())}
    arrays = np.load(tmp_path / "d" / "arrays.npz")
    clean = arrays["clean_0"]
    assert clean.shape[:2] == (300, 451)  # full-size chelsea, not a multiple of 4
    for method in ("noisy", "lir", "dip"):
        estimate = arrays[f"{method}_0"]
        assert estimate.shape == clean.shape
        # float64 before scaling, as the table: float32 products can land on the other side of .5
        e8, c8 = (np.round(np.clip(a.astype(np.float64), 0, 1) * 255).astype(np.uint8) for a in (estimate, clean))
        assert rows[method]["psnr_original"] == pytest.approx(peak_signal_noise_ratio(c8, e8, data_range=255), abs=1e-6)
        assert rows[method]["ssim_original"] == pytest.approx(
            structural_similarity(c8, e8, data_range=255, win_size=7, channel_axis=-1), abs=1e-6)
        assert rows[method]["psnr_float"] == pytest.approx(
            peak_signal_noise_ratio(clean.astype(np.float64), np.clip(estimate, 0, 1).astype(np.float64), data_range=1),
            abs=1e-6)
    # the noisy input: sigma 50 gives about 14-15 dB (clipped)
    assert 12 < rows["noisy"]["psnr_original"] < 17
    if "note" in rows.get("bm3d", {}):
        assert "bm3d" in rows["bm3d"]["note"]
    assert report["noise"] == "gaussian" and (tmp_path / "d" / "grid.png").is_file()


def test_deploy_bm3d_under_ct_noise_uses_each_slices_estimated_noise_level(tmp_path, capsys):
    # FBP noise has no known level: BM3D gets scikit-image's estimate of each slice's.
    deploy = load("deploy_lir")
    deploy.main(["--noise", "ct", "--methods", "noisy", "bm3d", "--ct-count", "1", "--ct-size", "128",
                 "--grid-images", "0", "--out", str(tmp_path / "d"), "--quiet"])
    rows = {row["method"]: row for row in json.loads((tmp_path / "d" / "results.json").read_text())}
    assert "--bm3d-sigma is for --noise ct" in _error(
        deploy.main, ["--noise", "gaussian", "--bm3d-sigma", "0.1", "--methods", "noisy", "--out", str(tmp_path / "e")], capsys)
    assert not (tmp_path / "e").exists()
    if not HAVE_BM3D:
        assert "pip install bm3d" in rows["bm3d"]["note"]
        return
    from skimage.restoration import estimate_sigma

    from tfinverse.inversion import bm3d_denoise

    arrays = np.load(tmp_path / "d" / "arrays.npz")
    noisy, clean = arrays["noisy_0"], arrays["clean_0"]
    expected = np.clip(bm3d_denoise(noisy[None], float(estimate_sigma(noisy[..., 0])), progress=False).x_hat[0], 0, 1)
    np.testing.assert_allclose(arrays["bm3d_0"], expected, atol=1e-6)
    # the original's CT convention: PSNR with data range 1 on [0, 1] slices
    assert rows["bm3d"]["psnr_original"] == pytest.approx(
        peak_signal_noise_ratio(clean[..., 0].astype(np.float64), expected[..., 0].astype(np.float64), data_range=1),
        abs=1e-6)
    assert rows["bm3d"]["psnr_original"] > rows["noisy"]["psnr_original"] + 2.0


def _error(main, argv, capsys):
    status = run_script(main, argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_held_out_evaluation_ends_at_the_deployed_score_and_reaches_tensorboard(trained, tmp_path):
    from tfinverse.evaluation.curves import read_scalars

    out, run, _ = trained
    # --eval-every 500 on a 2-step run: one evaluation, after the last step
    assert [record["step"] for record in run["evaluation"]] == [2]
    deploy = load("deploy_lir")
    deploy.main(["--model", str(out), "--methods", "noisy", "lir", "--out", str(tmp_path / "d"), "--quiet"])
    rows = {row["method"]: row for row in json.loads((tmp_path / "d" / "results.json").read_text())}
    # the trained networks in memory against their SavedModel export, both images, 8-bit scores
    assert run["evaluation"][0]["psnr"] == pytest.approx(rows["lir"]["psnr_original"], abs=0.01)
    assert run["evaluation"][0]["ssim"] == pytest.approx(rows["lir"]["ssim_original"], abs=1e-3)
    scalars = read_scalars(str(out / "logs"))
    steps, values = scalars["eval/psnr"]
    assert list(steps) == [2] and values[0] == pytest.approx(run["evaluation"][0]["psnr"], abs=1e-4)
    steps, values = scalars["eval/psnr_noisy_input"]
    assert list(steps) == [0] and values[0] == pytest.approx(rows["noisy"]["psnr_original"], abs=1e-4)


def test_bad_inputs_are_one_line_errors_before_any_output(trained, tmp_path, capsys):
    train = load("train_lir").main
    deploy = load("deploy_lir").main
    out = tmp_path / "never"
    folder = tmp_path / "imgs"
    folder.mkdir()
    import cv2

    cv2.imwrite(str(folder / "a.png"), np.zeros((80, 80, 3), np.uint8))
    assert "same folder" in _error(train, ["--noisy-dir", str(folder), "--clean-dir", str(folder), "--out", str(out)], capsys)
    clean = tmp_path / "clean"
    clean.mkdir()
    cv2.imwrite(str(clean / "b.png"), np.full((40, 90, 3), 7, np.uint8))
    assert "smaller than the 64x64 crop" in _error(
        train, ["--noisy-dir", str(folder), "--clean-dir", str(clean), "--out", str(out)], capsys)
    # a weights file of another architecture
    import keras

    other = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    other.save_weights(str(tmp_path / "other.weights.h5"))
    assert "not a VGG19 weights file" in _error(
        train, ["--vgg-weights", str(tmp_path / "other.weights.h5"), "--out", str(out)], capsys)
    # a model of another configuration
    run_dir, _, _ = trained
    assert "trained for --noise gaussian" in _error(
        deploy, ["--model", str(run_dir), "--noise", "ct", "--out", str(out)], capsys)
    # resuming with another model size
    assert "differ" in _error(train, ["--out", str(run_dir), "--resume", "--width", "4", "--steps", "3"], capsys)
    assert not out.exists()


def test_docstring_flag_tables_match_the_parsers():
    for name in ("train_lir", "deploy_lir"):
        module = load(name)
        assert flag_table(module.build_parser()).strip() in module.__doc__
