"""Training curves read back from TensorBoard event files, smoothed and plotted."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from tfinverse.errors import InputError, MissingPathError, UnknownNameError
from tfinverse.evaluation import curves


def write_scalars(log_dir, points):
    writer = tf.summary.create_file_writer(str(log_dir))
    with writer.as_default():
        for tag, step, value in points:
            tf.summary.scalar(tag, value, step=step)
    writer.close()


def test_smoothing_is_tensorboards_debiased_average():
    # By hand, weight 0.5: m1 = .5*1 -> /(1-.5) = 1; m2 = .25 + .5*3 = 1.75 -> /(1-.25) = 7/3;
    # NaN passes through; m3 = .875 + .5*5 = 3.375 -> /(1-.125) = 27/7.
    out = curves.smooth([1.0, 3.0, np.nan, 5.0], 0.5)
    np.testing.assert_allclose(out[[0, 1, 3]], [1.0, 7 / 3, 27 / 7])
    assert np.isnan(out[2])
    np.testing.assert_allclose(curves.smooth(np.full(50, 2.5), 0.99), 2.5)  # debiased: no ramp from 0
    np.testing.assert_array_equal(curves.smooth([1.0, -4.0, 9.0], 0.0), [1.0, -4.0, 9.0])
    with pytest.raises(InputError, match=r"\[0, 1\)"):
        curves.smooth([1.0], 1.0)


def test_scalars_are_read_back_from_every_file_the_last_write_winning(tmp_path):
    logs = tmp_path / "logs"
    write_scalars(logs, [("train/loss", step, 1.0 / (step + 1)) for step in range(5)] + [("lr", 0, 0.1)])
    # A resumed run writes a second file that repeats steps 3 and 4 with other values.
    write_scalars(logs, [("train/loss", 3, -3.0), ("train/loss", 4, -4.0), ("train/loss", 5, -5.0)])
    series = curves.read_scalars(logs)
    assert set(series) == {"train/loss", "lr"}
    steps, values = series["train/loss"]
    np.testing.assert_array_equal(steps, np.arange(6))
    np.testing.assert_allclose(values, [1.0, 0.5, 1 / 3, -3.0, -4.0, -5.0], rtol=1e-6)
    np.testing.assert_allclose(series["lr"][1], [0.1], rtol=1e-6)
    with pytest.raises(MissingPathError):
        curves.read_scalars(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no TensorBoard event file"):
        curves.read_scalars(tmp_path / "empty")


def test_plot_and_table(tmp_path):
    import cv2

    write_scalars(tmp_path / "a", [("train/loss", s, float(s)) for s in range(10)])
    write_scalars(tmp_path / "b", [("train/loss", s, 2.0 * s) for s in range(10)] + [("train/other", 0, 1.0)])
    runs = {"a": curves.read_scalars(tmp_path / "a"), "b": curves.read_scalars(tmp_path / "b")}
    path = curves.plot_curves(runs, ["train/loss", "train/other"], tmp_path / "curves.png", smoothing=0.6)
    image = cv2.imread(str(path))
    assert image is not None and image.shape[0] > 100 and image.shape[1] > 300
    with pytest.raises(FileExistsError, match="--overwrite"):
        curves.plot_curves(runs, ["train/loss"], tmp_path / "curves.png")
    with pytest.raises(UnknownNameError, match="train/los'.*did you mean 'train/loss'"):
        curves.plot_curves(runs, ["train/los"], tmp_path / "other.png")
    rows = curves.curves_table(runs, ["train/loss", "train/other"])
    assert len(rows) == 10 + 10 + 1  # run a has no train/other
    assert rows[-1] == {"run": "b", "tag": "train/other", "step": 0, "value": 1.0}


def test_the_script_plots_labelled_runs_and_refuses_to_overwrite(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "plot_curves_test", Path(__file__).resolve().parents[1] / "scripts" / "plot_curves.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    write_scalars(tmp_path / "run1" / "logs", [("train/loss", s, float(s)) for s in range(4)])
    write_scalars(tmp_path / "run2" / "logs", [("train/loss", s, 1.0) for s in range(4)])
    out = tmp_path / "out"
    assert script.main(["--runs", f"first={tmp_path / 'run1'}", str(tmp_path / "run2"), "--out", str(out)]) == 0
    assert (out / "curves.png").is_file()
    lines = (out / "curves.csv").read_text().splitlines()
    assert lines[0] == "run,tag,step,value" and lines[1].startswith("first,train/loss,0,")
    assert lines[-1].startswith("run2,train/loss,3,")
    with pytest.raises(ValueError, match="--overwrite"):
        script.main(["--runs", str(tmp_path / "run1"), "--out", str(out)])
