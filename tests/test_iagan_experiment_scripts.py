"""End-to-end runs of scripts/sweep_compression.py and scripts/misaligned_sr.py with a small prior.

References: numpy recomputations of every MSE/PSNR in the tables from the saved arrays,
the closed form 10 log10(1 / mean MSE), numpy's pseudo-inverse of the explicit measurement
matrices, the separable bicubic downscaling matrices, ``scipy.ndimage.shift`` for the
vertical shift, and held-out images loaded independently of the scripts.
"""

import csv
import importlib.util
import json
import math
from pathlib import Path

import cv2
import numpy as np
import pytest
import scipy.ndimage

import priors_for_tests
from tfinverse import data, hub
from tfinverse.operators import get as get_operator
from tfinverse.operators.super_resolution import downsampling_matrix
from tfinverse.utils.cli import flag_table

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
# The tables carry SSIM, and tf.image.ssim needs images of at least 11 x 11 pixels.
SIDE = 16
RATIOS = (0.1, 0.5)
SHIFTS = (0, 2)
SEED = 3
TINY_BUDGET = ["--num-images", "2", "--csgm-iterations", "5", "--restarts", "2", "--iagan-iterations", "4"]
SWEEP_COLUMNS = ["ratio", "m", "m_over_n", "method", "mse_mean", "mse_std", "psnr_mean_db", "psnr_std_db",
                 "dataset_psnr_db", "ssim", "seconds_per_image", "images"]
MISALIGNED_COLUMNS = ["shift", "method", "dataset_psnr_db", "psnr_mean_db", "psnr_std_db", "mse_mean", "ssim",
                      "seconds_per_image", "images"]


def load_script(name):
    spec = importlib.util.spec_from_file_location(f"{name}_under_test", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def held_out_images():
    """The two evenly spaced held-out digits the scripts should pick (first and last)."""
    arrays = data.load_arrays("mnist5k", "test", image_size=SIDE, channels=1)
    return arrays[[0, len(arrays) - 1]].astype(np.float64)


def per_image_mse(x, estimate):
    return np.mean((np.asarray(x, np.float64) - np.asarray(estimate, np.float64)) ** 2, axis=(1, 2, 3))


@pytest.fixture(scope="module")
def sweep():
    return load_script("sweep_compression")


@pytest.fixture(scope="module")
def misaligned():
    return load_script("misaligned_sr")


@pytest.fixture(scope="module")
def prior_path(tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(priors_for_tests, "SHAPE", (SIDE, SIDE, 1))
        generator = priors_for_tests.mlp_generator(latent_dim=4, hidden=16)
    path = tmp_path_factory.mktemp("prior") / "generator"
    hub.export_generator(generator, str(path))
    return path


@pytest.fixture(scope="module")
def sweep_run(sweep, prior_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "run"
    # Ratios given out of order: the script sorts them.
    assert sweep.main(["--prior", str(prior_path), "--ratios", *map(str, RATIOS[::-1]), "--seed", str(SEED),
                       *TINY_BUDGET, "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def misaligned_run(misaligned, prior_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("misaligned") / "run"
    assert misaligned.main(["--prior", str(prior_path), "--shifts", *map(str, SHIFTS), "--seed", str(SEED),
                            *TINY_BUDGET, "--out", str(out)]) == 0
    return out


# ----------------------------------------------------------------------------- sweep_compression


def test_sweep_writes_its_outputs_with_one_row_per_ratio_and_method(sweep_run):
    for name in ("results.csv", "results.json", "results.md", "compression_sweep.png", "estimates.npz", "run.json"):
        assert (sweep_run / name).is_file(), name
    assert any((sweep_run / "logs").iterdir())
    rows = read_csv(sweep_run / "results.csv")
    assert list(rows[0]) == SWEEP_COLUMNS
    methods = ["pinv", "csgm", "csgm-bp", "iagan", "iagan-bp"]
    assert [(float(r["ratio"]), r["method"]) for r in rows] == [(ratio, m) for ratio in RATIOS for m in methods]
    n = SIDE * SIDE
    for row in rows:
        assert int(row["m"]) == round(float(row["ratio"]) * n)
        assert float(row["m_over_n"]) == pytest.approx(int(row["m"]) / n)
        assert int(row["images"]) == 2
    as_json = json.loads((sweep_run / "results.json").read_text())
    assert [(r["ratio"], r["method"]) for r in as_json] == [(float(r["ratio"]), r["method"]) for r in rows]
    markdown = (sweep_run / "results.md").read_text().strip().splitlines()
    assert len(markdown) == 2 + len(rows) and markdown[0].split("|")[1].strip() == "ratio"
    report = json.loads((sweep_run / "run.json").read_text())
    assert report["settings"]["ratios"] == list(RATIOS) and report["images"] == 2
    assert [entry["m"] for entry in report["per_ratio"]] == [round(r * n) for r in RATIOS]
    figure = cv2.imread(str(sweep_run / "compression_sweep.png"))
    assert figure is not None and figure.shape[0] > 200 and figure.shape[1] > 300


def test_sweep_table_equals_a_numpy_recomputation_from_the_saved_arrays(sweep_run):
    rows = read_csv(sweep_run / "results.csv")
    arrays = np.load(sweep_run / "estimates.npz")
    x = held_out_images()
    np.testing.assert_allclose(arrays["x"], x, atol=1e-6)
    np.testing.assert_allclose(arrays["ratios"], RATIOS)
    for row in rows:
        mse = per_image_mse(x, arrays[f"{row['method']}@{float(row['ratio']):g}"])
        assert float(row["mse_mean"]) == pytest.approx(mse.mean(), rel=1e-4)
        assert float(row["mse_std"]) == pytest.approx(np.std(mse, ddof=1), rel=1e-3, abs=1e-7)
        assert float(row["psnr_mean_db"]) == pytest.approx(np.mean(10 * np.log10(1 / mse)), abs=1e-3)
        # The papers' dataset PSNR is a closed form of the table's own mean MSE.
        assert float(row["dataset_psnr_db"]) == pytest.approx(10 * math.log10(1 / float(row["mse_mean"])), abs=1e-3)


def test_sweep_baseline_is_the_pseudo_inverse_of_the_explicit_gaussian_matrix(sweep_run):
    arrays = np.load(sweep_run / "estimates.npz")
    x = held_out_images().reshape(2, -1)
    for ratio in RATIOS:
        matrix = get_operator("compressed_sensing", image_shape=(SIDE, SIDE, 1), ratio=ratio, seed=SEED).matrix
        matrix = np.asarray(matrix, np.float64)
        assert matrix.shape == (round(ratio * SIDE * SIDE), SIDE * SIDE)
        expected = np.clip(x @ matrix.T @ np.linalg.pinv(matrix).T, 0, 1).reshape(2, SIDE, SIDE, 1)
        np.testing.assert_allclose(arrays[f"pinv@{ratio:g}"], expected, atol=2e-4)


@pytest.mark.parametrize(
    "ratios, message",
    [(["0"], "(0, 1]"), (["0.2", "1.5"], "(0, 1]"), (["-0.1"], "(0, 1]"), (["a"], "number"),
     (["0.2", "0.2"], "once")],
)
def test_sweep_bad_ratios_fail_before_any_work(sweep, tmp_path, capsys, ratios, message):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as raised:
        sweep.main(["--ratios", *ratios, "--out", str(out)])
    assert raised.value.code == 2
    error = capsys.readouterr().err
    assert "--ratios" in error and message in error
    assert not out.exists()


def test_compression_ratio_accepts_the_whole_half_open_interval(sweep):
    import argparse

    assert sweep.compression_ratio("1") == 1.0 and sweep.compression_ratio("0.001") == 0.001
    with pytest.raises(argparse.ArgumentTypeError, match=r"\(0, 1\]"):
        sweep.compression_ratio("1.0001")


# ----------------------------------------------------------------------------- misaligned_sr


@pytest.mark.parametrize("shift", [0, 1, 3, 7])
def test_zero_fill_shift_is_an_exact_vertical_translation(misaligned, shift):
    images = np.random.default_rng(shift).random((3, 8, 5, 2)).astype(np.float32)
    expected = scipy.ndimage.shift(images, (0, shift, 0, 0), order=0, mode="constant", cval=0.0)
    shifted = misaligned.shift_vertically(images, shift)
    np.testing.assert_array_equal(shifted, expected)
    assert shifted.dtype == images.dtype
    np.testing.assert_array_equal(shifted[:, shift:], images[:, :8 - shift])  # columns never move


@pytest.mark.parametrize("shift", [0, 2, 7])
def test_roll_shift_wraps_rows_around(misaligned, shift):
    images = np.random.default_rng(10 + shift).random((2, 8, 4, 1))
    rows_read = (np.arange(8) - shift) % 8
    np.testing.assert_array_equal(misaligned.shift_vertically(images, shift, fill="roll"), images[:, rows_read])


@pytest.mark.parametrize(
    "images, shift, fill, message",
    [((2, 8, 8, 1), -1, "zero", r"\[0, 8\)"), ((2, 8, 8, 1), 8, "zero", r"\[0, 8\)"),
     ((2, 8, 8, 1), 1.5, "zero", "integer"), ((8, 8, 1), 1, "zero", "batch, height"),
     ((2, 8, 8, 1), 1, "mirror", "fill")],
)
def test_shift_rejects_bad_input(misaligned, images, shift, fill, message):
    with pytest.raises(ValueError, match=message):
        misaligned.shift_vertically(np.zeros(images), shift, fill)


def test_misaligned_writes_its_outputs_with_one_row_per_shift_and_method(misaligned_run):
    for name in ("results.csv", "results.json", "results.md", "misaligned_sr.png", "psnr_vs_shift.png",
                 "estimates.npz", "run.json"):
        assert (misaligned_run / name).is_file(), name
    rows = read_csv(misaligned_run / "results.csv")
    assert list(rows[0]) == MISALIGNED_COLUMNS
    assert [(int(r["shift"]), r["method"]) for r in rows] == [(s, m) for s in SHIFTS for m in ("bicubic", "csgm",
                                                                                                   "iagan")]
    as_json = json.loads((misaligned_run / "results.json").read_text())
    assert len(as_json) == len(rows) and set(as_json[0]) == set(MISALIGNED_COLUMNS)
    report = json.loads((misaligned_run / "run.json").read_text())
    assert report["settings"]["shifts"] == list(SHIFTS) and report["observation_shape"] == [SIDE // 4, SIDE // 4, 1]
    grid = cv2.imread(str(misaligned_run / "misaligned_sr.png"))
    plot = cv2.imread(str(misaligned_run / "psnr_vs_shift.png"))
    assert grid is not None and plot is not None
    # Rows: 2 shifts x 2 grid images, each cell at least 72 pixels high.
    assert grid.shape[0] >= 4 * 72 and grid.shape[1] >= 5 * 72


def test_misaligned_images_observations_and_table_agree_with_numpy(misaligned_run):
    rows = read_csv(misaligned_run / "results.csv")
    arrays = np.load(misaligned_run / "estimates.npz")
    x = held_out_images()
    down = downsampling_matrix(SIDE, 4)
    lift = np.linalg.pinv(np.kron(down, down))  # A^+ of the separable operator on a flattened image
    for shift in SHIFTS:
        expected_x = scipy.ndimage.shift(x, (0, shift, 0, 0), order=0, mode="constant", cval=0.0)
        np.testing.assert_allclose(arrays[f"x@{shift}"], expected_x, atol=1e-6)
        # The stored observation is the noiseless bicubic downscaling of the shifted image ...
        expected_y = np.einsum("ij,bjkc,lk->bilc", down, expected_x, down)
        np.testing.assert_allclose(arrays[f"y@{shift}"], expected_y, atol=1e-5)
        # ... and the one the methods saw: its pseudo-inverse is the runner's A^+ y.
        pinv = np.clip(expected_y.reshape(2, -1) @ lift.T, 0, 1).reshape(2, SIDE, SIDE, 1)
        np.testing.assert_allclose(arrays[f"pinv@{shift}"], pinv, atol=1e-4)
    for row in rows:
        shift = int(row["shift"])
        mse = per_image_mse(arrays[f"x@{shift}"], arrays[f"{row['method']}@{shift}"])
        assert float(row["mse_mean"]) == pytest.approx(mse.mean(), rel=1e-4)
        assert float(row["dataset_psnr_db"]) == pytest.approx(10 * np.log10(1 / mse.mean()), abs=1e-3)
        assert float(row["psnr_mean_db"]) == pytest.approx(np.mean(10 * np.log10(1 / mse)), abs=1e-3)
        assert float(row["psnr_std_db"]) == pytest.approx(np.std(10 * np.log10(1 / mse), ddof=1), abs=1e-3)


@pytest.mark.parametrize(
    "flags, message",
    [(["--shifts", "-1"], "non-negative"), (["--shifts", "1", "x"], "whole number"),
     (["--shifts", "1", "1"], "once"), (["--noise", "-0.1"], "[0, 1]"), (["--num-images", "0"], "positive")],
)
def test_misaligned_bad_flags_fail_before_any_work(misaligned, tmp_path, capsys, flags, message):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as raised:
        misaligned.main([*flags, "--out", str(out)])
    assert raised.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_misaligned_shift_beyond_the_image_fails_before_any_work(misaligned, prior_path, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(SystemExit, match=f"smaller than the image height {SIDE}"):
        misaligned.main(["--prior", str(prior_path), "--shifts", "1", str(SIDE), "--out", str(out)])
    assert not out.exists()


# ----------------------------------------------------------------------------- both


@pytest.mark.parametrize("name", ["sweep_compression", "misaligned_sr"])
def test_docstring_flag_table_matches_the_parser_and_help_shows_it(name, capsys):
    module = load_script(name)
    table = flag_table(module.build_parser())
    assert table.strip() in module.__doc__
    with pytest.raises(SystemExit) as raised:
        module.main(["--help"])
    assert raised.value.code == 0
    assert "| flag" in capsys.readouterr().out
