"""End-to-end run of scripts/deploy_iagan.py with a small exported prior."""

import csv
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from tfinverse import data, hub, metrics
from tfinverse.models import DCGANGenerator
from tfinverse.utils.cli import run_script

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "deploy_iagan.py"


@pytest.fixture(scope="module")
def deploy():
    spec = importlib.util.spec_from_file_location("deploy_iagan_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def prior_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("prior") / "generator"
    hub.export_generator(DCGANGenerator(resolution=32, channels=1, base_filters=8, seed=0), str(path))
    return path


def test_parse_task(deploy):
    name, op, params, sigma = deploy.parse_task("cs-fourier:ratio=0.5,noise=0.04")
    assert (name, op, params, sigma) == ("cs-fourier", "subsampled_fourier", {"ratio": 0.5}, 0.04)
    assert deploy.parse_task("sr:factor=8.0").params == {"factor": 8}  # typed by the parameter's default
    assert deploy.parse_task("sr").params == {"factor": 4}
    with pytest.raises(KeyError, match="unknown task 'nope'"):
        deploy.parse_task("nope")


@pytest.mark.parametrize(
    "task, expected",
    [
        ("nope", "--tasks: unknown task 'nope'; valid: cs-fourier, cs-gaussian, deblur"),
        ("sr:factor=abc", "--tasks sr: factor must be an integer, got 'abc'"),
        ("sr:noise=nan", "--tasks sr: noise must be a finite number >= 0"),
        ("sr:noise=-0.1", "--tasks sr: noise must be a finite number >= 0"),
        ("sr:bogus=3", "--tasks sr: unknown parameter 'bogus'; valid: "),
        ("cs-gaussian:ratio=1.5", "--tasks cs-gaussian: the ratio must be in (0, 1]"),
        ("sr:factor", "expected key=value, got 'factor'"),
    ],
)
def test_bad_tasks_are_one_line_errors_before_any_work(deploy, tmp_path, capsys, task, expected):
    out = tmp_path / "run"
    assert run_script(deploy.main, ["--tasks", task, "--out", str(out)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert not out.exists()


def test_bad_images_and_priors_are_one_line_errors(deploy, prior_path, tmp_path, capsys):
    (tmp_path / "a.txt").write_text("text")
    good, folder = tmp_path / "good", tmp_path / "folder"
    for path in (good, folder):
        path.mkdir()
        (path / "good.png").write_bytes(cv2.imencode(".png", np.zeros((8, 8), np.uint8))[1].tobytes())
    (folder / "zz_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    for argv, expected in [
        (["--images", "/nonexistent"], "/nonexistent does not exist"),
        (["--images", str(tmp_path / "a.txt")], "a.txt is not a folder"),
        (["--images", "no_such_dataset"], "unknown dataset 'no_such_dataset'"),
        (["--images", str(folder), "--num-images", "2"], f"cannot decode image file {folder / 'zz_corrupt.png'}"),
        (["--images", str(good), "--num-images", "2"], "has 1 held-out images, 2 requested"),
        (["--prior", str(tmp_path / "missing")], "is neither a shipped prior"),
    ]:
        if "--prior" not in argv:
            argv = argv + ["--prior", str(prior_path)]
        status = run_script(deploy.main, argv + ["--tasks", "sr", "--out", str(tmp_path / "out")])
        lines = capsys.readouterr().err.strip().splitlines()
        assert status == 2 and len(lines) == 1 and expected in lines[0], (argv, lines)
        assert not (tmp_path / "out").exists()


def test_runs_end_to_end_and_the_table_agrees_with_the_metrics(deploy, prior_path, tmp_path):
    out = tmp_path / "run"
    deploy.main([
        "--prior", str(prior_path), "--tasks", "sr:factor=4", "deblur:kernel_size=9",
        "--methods", "csgm", "csgm-bp", "iagan", "iagan-bp", "bicubic",
        "--num-images", "2", "--csgm-iterations", "5", "--restarts", "2", "--iagan-iterations", "4",
        "--out", str(out),
    ])
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    sr = {r["method"] for r in rows if r["task"].startswith("sr")}
    deblur = {r["method"] for r in rows if r["task"].startswith("deblur")}
    assert sr == {"pinv", "bicubic", "csgm", "csgm-bp", "iagan", "iagan-bp"}
    # Noisy deblurring: no back-projection (it amplifies noise), no bicubic (not an SR task).
    assert deblur == {"observation", "csgm", "iagan"}
    assert (out / "00_sr.png").is_file() and (out / "01_deblur.png").is_file()
    # SR measurements are not images: the naive row is the exact pseudo-inverse; recompute it.
    import tfinverse.operators as ops

    x = data.load_arrays("mnist5k", "test", image_size=32, channels=1)[[0, 999]]  # evenly spaced picks
    A = ops.get("super_resolution", image_shape=(32, 32, 1), factor=4, seed=0)
    expected = float(metrics.dataset_psnr(x, np.clip(A.pinv(A(x)).numpy(), 0, 1)))
    row = next(r for r in rows if r["task"].startswith("sr") and r["method"] == "pinv")
    assert float(row["psnr_db"]) == pytest.approx(expected, abs=1e-3)


def test_missing_prior_fails_clearly(deploy, tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a shipped prior"):
        deploy.main(["--prior", str(tmp_path / "nothing"), "--out", str(tmp_path / "o")])


def test_misfit_table_and_noise_conventions_agree_with_recomputations(deploy, prior_path, tmp_path):
    import tensorflow as tf

    import tfinverse.operators as ops

    runs = {}
    for convention in ("image", "original"):
        out = tmp_path / convention
        deploy.main([
            "--prior", str(prior_path), "--tasks", "denoise:noise=0.2", "cs-gaussian:ratio=0.3",
            "--methods", "csgm", "--num-images", "2", "--csgm-iterations", "4", "--restarts", "1",
            "--noise-convention", convention, "--out", str(out),
        ])
        runs[convention] = out
        arrays = np.load(out / "estimates.npz")
        x = arrays["original"]
        with open(out / "misfit.csv") as f:
            misfit = list(csv.DictReader(f))
        # Task 0, denoising: the observation is x + sigma_applied N(0, 1), recomputed with the same seed.
        sigma = 0.2 * (0.5 if convention == "original" else 1.0)
        noisy = ops.get_noise("gaussian", sigma=sigma)(tf.constant(x), seed=0).numpy()
        np.testing.assert_allclose(arrays["00_denoise/observation"], np.clip(noisy, 0, 1), atol=1e-6)
        assert float(misfit[0]["sigma"]) == pytest.approx(sigma)
        assert float(misfit[0]["noise_energy"]) == pytest.approx(x[0].size * sigma**2, rel=1e-6)
        # The misfit CSGM reached, recomputed from its saved estimate: ||y - A x_csgm||^2 per image.
        for k, (task, op_name, params, noise) in enumerate([("denoise", "identity", {}, sigma),
                                                           ("cs-gaussian", "compressed_sensing", {"ratio": 0.3}, 0.0)]):
            operator = ops.get(op_name, image_shape=x.shape[1:], seed=k, **params)
            y = operator(tf.constant(x))
            if noise:
                y = ops.get_noise("gaussian", sigma=noise)(y, seed=k)
            estimate = arrays[f"{k:02d}_{task}/csgm"]
            expected = np.mean(np.sum((operator(tf.constant(estimate)).numpy() - y.numpy()) ** 2,
                                      axis=tuple(range(1, y.ndim))))
            assert float(misfit[k]["csgm_misfit"]) == pytest.approx(expected, rel=2e-3)
        assert float(misfit[1]["noise_energy"]) == 0.0 and misfit[1]["csgm_misfit_over_noise"] == ""
    with open(runs["original"] / "results.csv") as f:
        assert "[noise on [-1, 1]]" in next(csv.DictReader(f))["task"]


def test_paper_presets_per_task(deploy):
    import argparse

    from tfinverse.tasks.iagan import apply_preset

    args = deploy.build_parser().parse_args(["--preset", "paper-began"])
    cs, sr, blur = (apply_preset(args, deploy.parse_task(t)) for t in ("cs-fourier", "sr", "deblur"))
    assert (cs.csgm_iterations, cs.iagan_iterations, cs.iagan_lr_theta, cs.preset_applied) == (1600, 600, 1e-4, True)
    assert (sr.iagan_iterations, sr.preset_applied) == (500, True)
    assert blur.preset_applied is False and blur.iagan_iterations == args.iagan_iterations  # no paper setting
    pggan = apply_preset(deploy.build_parser().parse_args(["--preset", "paper-pggan"]), deploy.parse_task("sr"))
    assert (pggan.csgm_iterations, pggan.iagan_iterations, pggan.iagan_lr_theta) == (1800, 300, 1e-3)
    flags = apply_preset(args := deploy.build_parser().parse_args([]), deploy.parse_task("sr"))
    assert flags.iagan_iterations == args.iagan_iterations == 300 and isinstance(flags, argparse.Namespace)


def test_bfloat16_precision_runs_and_restores_the_policy(deploy, prior_path, tmp_path):
    import keras

    before = keras.mixed_precision.global_policy().name
    out = tmp_path / "bf16"
    deploy.main(["--prior", str(prior_path), "--tasks", "sr:factor=4", "--methods", "csgm", "iagan", "dip",
                 "--num-images", "2", "--csgm-iterations", "3", "--restarts", "1", "--iagan-iterations", "2",
                 "--dip-iterations", "2", "--dip-channels", "4", "--precision", "bfloat16", "--out", str(out)])
    assert keras.mixed_precision.global_policy().name == before
    arrays = np.load(out / "estimates.npz")
    for method in ("csgm", "iagan", "dip"):
        estimate = arrays[f"00_sr/{method}"]
        assert estimate.dtype == np.float32 and np.all(np.isfinite(estimate))
