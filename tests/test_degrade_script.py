"""End-to-end run of scripts/degrade.py on offline images."""

import csv
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from tfinverse import data, metrics
from tfinverse.utils.cli import run_script
import tfinverse.operators as ops

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "degrade.py"


@pytest.fixture(scope="module")
def degrade():
    spec = importlib.util.spec_from_file_location("degrade_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parse_spec(degrade):
    assert degrade.parse_spec("super_resolution:factor=8,kernel_a=-0.5") == (
        "super_resolution", {"factor": 8, "kernel_a": -0.5})
    assert degrade.parse_spec("identity") == ("identity", {})


def test_writes_grids_and_a_table_that_agrees_with_the_metrics(degrade, tmp_path):
    out = tmp_path / "run"
    degrade.main([
        "--operators", "identity", "super_resolution:factor=4", "subsampled_fourier:ratio=0.5",
        "--images", "mnist5k:3", "lfw_faces:1", "--image-size", "32", "--channels", "1",
        "--out", str(out),
    ])
    for name in ("identity", "super_resolution", "subsampled_fourier", "overview"):
        image = cv2.imread(str(out / f"{name}.png"))
        assert image is not None and image.shape[0] > 64
    with open(out / "degrade.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 6
    # Independent check of one entry: PSNR of the exact pseudo-inverse of 4x super-resolution.
    x = data.load_arrays("mnist5k", "test", image_size=32, channels=1)[3:4]
    A = ops.get("super_resolution", image_shape=(32, 32, 1), factor=4)
    expected = float(metrics.psnr(x, np.clip(A.pinv(A(x)).numpy(), 0, 1))[0])
    row = next(r for r in table if r["operator"] == "super_resolution" and r["image"] == "mnist5k[3]")
    assert float(row["psnr_pinv_db"]) == pytest.approx(expected, abs=1e-3)
    assert float(row["adjoint_rel_error"]) < 1e-4
    identity = next(r for r in table if r["operator"] == "identity")
    assert identity["psnr_pinv_db"] == "inf"


def test_refuses_a_non_empty_output_folder(degrade, tmp_path):
    (tmp_path / "keep.txt").write_text("user data")
    with pytest.raises(SystemExit, match="--overwrite"):
        degrade.main(["--operators", "identity", "--images", "mnist5k:0", "--out", str(tmp_path)])
    assert (tmp_path / "keep.txt").read_text() == "user data"


def one_line_error(degrade, capsys, argv):
    """Runs the script as its __main__ does; returns (exit status, stderr lines)."""
    status = run_script(degrade.main, argv)
    return status, capsys.readouterr().err.strip().splitlines()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["--operators", "no_such_op"], "unknown operator 'no_such_op'"),
        (["--operators", "super_resolution:factor=abc"], "factor must be an integer, got 'abc'"),
        (["--operators", "super_resolution:bogus=3"], "unknown parameter 'bogus'; valid: "),
        (["--operators", "compressed_sensing:ratio=0"], "ratio must be positive"),
        (["--operators", "super_resolution:factor=5"], "--operators super_resolution: "),
        (["--noise", "gaussian:sigma=nan"], "sigma must be a finite number"),
        (["--noise", "laplace"], "unknown noise model 'laplace'"),
        (["--images", "/nonexistent"], "/nonexistent does not exist"),
        (["--images", "mnist5k:abc"], "the index after ':' must be an integer"),
        (["--images", "mnist5k:100000"], "use an index from 0 to"),
        (["--images", "no_such_dataset:0"], "unknown dataset 'no_such_dataset'"),
    ],
)
def test_bad_input_is_one_line_and_exit_status_2(degrade, tmp_path, capsys, argv, expected):
    out = tmp_path / "run"
    status, lines = one_line_error(degrade, capsys, argv + ["--out", str(out), "--image-size", "12"])
    assert status == 2
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert not out.exists()  # refused before the output folder is made


def test_bad_files_name_the_file(degrade, tmp_path, capsys):
    text = tmp_path / "a.txt"
    text.write_text("not an image")
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    for argv, expected in [
        ([str(tmp_path / "missing.png")], f"image file {tmp_path / 'missing.png'} does not exist"),
        ([str(text)], f"{text} is not an image file"),
        ([str(corrupt)], f"cannot decode image file {corrupt}"),
    ]:
        status, lines = one_line_error(degrade, capsys, ["--images", *argv, "--out", str(tmp_path / "out")])
        assert status == 2 and len(lines) == 1 and expected in lines[0], lines
    # --debug shows the traceback instead.
    with pytest.raises(ValueError, match="is not an image file"):
        run_script(degrade.main, ["--images", str(text), "--out", str(tmp_path / "out"), "--debug"])


def test_operators_without_a_naive_reconstruction_write_every_output(degrade, tmp_path):
    # Overview rows of three cells under four column titles once killed the run before its table.
    out = tmp_path / "run"
    degrade.main(["--operators", "identity", "blur_uniform", "--images", "mnist5k:0", "--image-size", "16",
                  "--out", str(out)])
    for name in ("degrade.csv", "degrade.json", "degrade.md", "identity.png", "blur_uniform.png", "overview.png"):
        assert (out / name).is_file(), name


def test_a_figure_that_fails_costs_no_numbers(degrade, tmp_path, monkeypatch, capsys):
    from tfinverse.utils import results

    def broken(*args, **kwargs):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(results, "save_image_grid", broken)
    out = tmp_path / "run"
    assert run_script(degrade.main, ["--operators", "identity", "--images", "mnist5k:0", "--image-size", "16",
                                     "--out", str(out)]) == 0
    assert (out / "degrade.csv").is_file() and not (out / "overview.png").exists()
    assert "warning: could not write figure" in capsys.readouterr().err
