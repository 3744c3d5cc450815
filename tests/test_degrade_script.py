"""End-to-end run of scripts/degrade.py on offline images."""

import csv
import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from tfinverse import data, metrics
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


def test_unknown_operator_and_missing_file_fail_clearly(degrade, tmp_path):
    with pytest.raises(SystemExit, match="unknown operator"):
        degrade.main(["--operators", "no_such_op", "--out", str(tmp_path / "a")])
    with pytest.raises(SystemExit, match="does not exist"):
        degrade.main(["--operators", "identity", "--images", str(tmp_path / "missing.png"), "--out", str(tmp_path / "b")])
