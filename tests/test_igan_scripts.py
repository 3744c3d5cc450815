"""End-to-end runs of scripts/train_igan.py and scripts/deploy_igan.py on offline tasks."""

import csv
import importlib.util
import json
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from tfinverse.tasks.igan_tasks import evaluation_batches, get_task
from tfinverse.training.flags import TrainingSetupError

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def load_script(name):
    spec = importlib.util.spec_from_file_location(f"{name}_script", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def train():
    return load_script("train_igan")


@pytest.fixture(scope="module")
def deploy():
    return load_script("deploy_igan")


@pytest.fixture(scope="module")
def toy_run(train, tmp_path_factory):
    out = tmp_path_factory.mktemp("toy") / "run"
    train.main(["--task", "toy2d", "--max-iters", "3", "--batch-size", "16", "--sample-every", "2", "--log-every", "1",
                "--out", str(out)])
    return out


def read_csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def saved_model_outputs(path, y):
    outputs = tf.saved_model.load(str(path)).signatures["serving_default"](y=tf.constant(y))
    return outputs["component"].numpy(), outputs["clean"].numpy()


def test_toy2d_train_then_deploy(train, deploy, toy_run, tmp_path):
    report = json.loads((toy_run / "run.json").read_text())
    assert report["steps"] == 3 and report["settings"]["gan_model"] == "vanilla"
    assert report["settings"]["dual_mapping"] is True and report["settings"]["paired_loss"] is False
    assert report["update_schedule"]["kind"] == "adaptive_rounds" and report["model"] == "igan"
    assert report["optimizer_iterations"]["estimator"] == 3
    assert report["optimizer_iterations"]["d1"] == report["schedule"]["discriminator_rounds"]
    assert (toy_run / "checkpoints" / "ckpt-3.index").is_file()
    assert (toy_run / "samples" / "step_0000002.png").is_file() and (toy_run / "samples.png").is_file()
    assert (toy_run / "estimator" / "saved_model.pb").is_file()
    scalars = {
        value.tag
        for path in (toy_run / "logs").glob("events.out.tfevents.*")
        for event in tf.compat.v1.train.summary_iterator(str(path))
        for value in event.summary.value
    }
    assert {"train/d1_loss", "train/g_loss", "schedule/mm", "learning_rate/estimator"} <= scalars

    out = tmp_path / "deploy"
    deploy.main(["--task", "toy2d", "--checkpoint", str(toy_run / "checkpoints"), "--num-samples", "8",
                 "--out", str(out)])
    rows = read_csv(out / "metrics.csv")
    assert {r["method"] for r in rows} == {"igan", "observation"}
    # independent check: the exported estimator on the same held-out points
    test = evaluation_batches(get_task("toy2d"), n=8, seed=0)
    _, mapped = saved_model_outputs(toy_run / "estimator", test["y"])
    igan_row = next(r for r in rows if r["method"] == "igan")
    assert float(igan_row["mse"]) == pytest.approx(np.mean((mapped - test["x"]) ** 2), rel=1e-4)
    assert (out / "toy2d.png").is_file()


def test_resume_continues_the_step_count(train, toy_run, tmp_path):
    run = tmp_path / "run"
    import shutil

    shutil.copytree(toy_run, run)
    with pytest.raises(TrainingSetupError, match="differ"):
        train.main(["--task", "toy2d", "--gan-model", "ls", "--batch-size", "16", "--out", str(run), "--resume"])
    with pytest.raises(TrainingSetupError, match="task-options"):
        train.main(["--task", "toy2d", "--task-option", "variant=banana", "--out", str(run), "--resume"])
    # the stored settings are the defaults of a resumed run
    train.main(["--max-iters", "4", "--out", str(run), "--resume"])
    report = json.loads((run / "run.json").read_text())
    assert report["start_step"] == 3 and report["steps"] == 4 and report["resumed_from"].endswith("ckpt-3")
    assert report["data_position"]["batch_in_epoch"] == 4 + report["schedule"]["discriminator_rounds"]
    assert (run / "checkpoints" / "ckpt-4.index").is_file()
    with pytest.raises(TrainingSetupError, match="--resume"):
        train.main(["--task", "toy2d", "--max-iters", "4", "--out", str(run)])


def test_denoising_train_then_deploy(train, deploy, tmp_path):
    run = tmp_path / "run"
    train.main(["--task", "denoising", "--max-iters", "3", "--batch-size", "2", "--sample-every", "2",
                "--checkpoint-every", "2", "--bn-recalibration-batches", "2", "--num-samples", "2", "--out", str(run)])
    assert (run / "samples" / "step_0000002.png").is_file()
    assert sorted(p.name for p in (run / "checkpoints").glob("*.index")) == ["ckpt-2.index", "ckpt-3.index"]
    assert json.loads((run / "checkpoints" / "igan.json").read_text())["name"] == "denoising"
    report = json.loads((run / "run.json").read_text())
    assert report["finish"]["batch_norm_recalibration_batches"] == 2
    assert json.loads((run / "estimator" / "igan.json").read_text())["batch_norm_recalibration_batches"] == 2

    out = tmp_path / "deploy"
    deploy.main(["--task", "denoising", "--saved-model", str(run / "estimator"), "--num-samples", "8",
                 "--grid-rows", "4", "--out", str(out)])
    assert sorted(p.name for p in (out / "grids").iterdir()) == ["grid_000.png", "grid_001.png"]
    rows = read_csv(out / "metrics.csv")
    assert {(r["method"], r["target"]) for r in rows} == {
        ("igan", "clean"), ("igan", "component"), ("observation", "clean"), ("observation", "component")}
    # independent PSNRs from numpy: estimate and the do-nothing baseline
    test = evaluation_batches(get_task("denoising"), n=8, seed=0)
    _, clean = saved_model_outputs(run / "estimator", test["y"])

    def mean_psnr(a, b):
        mse = np.mean((a.astype(np.float64) - b) ** 2, axis=(1, 2, 3))
        return float(np.mean(10 * np.log10(1.0 / mse)))

    igan_clean = next(r for r in rows if r["method"] == "igan" and r["target"] == "clean")
    baseline = next(r for r in rows if r["method"] == "observation" and r["target"] == "clean")
    assert float(igan_clean["psnr"]) == pytest.approx(mean_psnr(clean, test["x"]), abs=1e-3)
    assert float(baseline["psnr"]) == pytest.approx(mean_psnr(test["y"], test["x"]), abs=1e-3)
    assert float(baseline["psnr"]) < 0.5  # N(0, 1) noise: input PSNR about 0 dB
    assert (out / "metrics.md").read_text().startswith("| task")

    # the checkpoint restores into the same estimator as the SavedModel
    args = deploy.build_parser().parse_args(["--task", "denoising", "--checkpoint", str(run / "checkpoints" / "ckpt-3")])
    separate, description = deploy.load_estimator(args, get_task("denoising"))
    z_ckpt, clean_ckpt = separate(test["y"][:2])
    np.testing.assert_allclose(clean_ckpt, clean[:2], atol=1e-5)
    assert description.endswith("ckpt-3")
    # a checkpoint of another task is refused
    with pytest.raises(SystemExit, match="does not match task"):
        deploy.main(["--task", "unmixing_mnist_mnist", "--checkpoint", str(run / "checkpoints"),
                     "--num-samples", "2", "--out", str(tmp_path / "wrong")])


def test_deploy_without_a_model_runs_the_shipped_estimator(deploy, tmp_path):
    from tfinverse.pretrained import shipped_igan_estimator_path

    out = tmp_path / "shipped"
    assert deploy.main(["--task", "denoising", "--num-samples", "10", "--max-grids", "1", "--out", str(out)]) == 0
    recorded = json.loads((out / "deploy.json").read_text())
    assert recorded["model"] == "shipped estimator denoising"
    rows = read_csv(out / "metrics.csv")
    test = evaluation_batches(get_task("denoising"), n=10, seed=0)
    _, clean = saved_model_outputs(shipped_igan_estimator_path("denoising"), test["y"])
    mse = np.mean((clean.astype(np.float64) - test["x"]) ** 2)
    igan_clean = next(r for r in rows if r["method"] == "igan" and r["target"] == "clean")
    assert float(igan_clean["dataset_psnr"]) == pytest.approx(10 * np.log10(1.0 / mse), abs=1e-3)
    assert float(igan_clean["dataset_psnr"]) > 10.0  # the input is about 0 dB


def test_clear_errors(train, deploy, toy_run, tmp_path, capsys):
    with pytest.raises(SystemExit):
        train.main(["--task", "colorization", "--out", str(tmp_path / "a")])
    assert "invalid choice" in capsys.readouterr().err
    with pytest.raises(TrainingSetupError, match="no folder"):
        train.main(["--task", "derain", "--data-dir", str(tmp_path / "nowhere"), "--out", str(tmp_path / "b")])
    assert not (tmp_path / "b").exists()
    with pytest.raises(SystemExit, match="8000"):
        deploy.main(["--task", "audio_captcha", "--sample-rate", "16000", "--checkpoint", str(toy_run / "checkpoints"),
                     "--out", str(tmp_path / "c")])
    with pytest.raises(SystemExit, match="does not match task denoising"):
        deploy.main(["--task", "denoising", "--checkpoint", str(toy_run / "checkpoints"), "--out", str(tmp_path / "d")])
    with pytest.raises(SystemExit, match="no checkpoint"):
        deploy.main(["--task", "toy2d", "--checkpoint", str(tmp_path / "missing"), "--out", str(tmp_path / "e")])
    with pytest.raises(SystemExit, match="no igan estimator ships for task 'toy2d'"):
        deploy.main(["--task", "toy2d", "--out", str(tmp_path / "e2")])  # no model and none shipped
    assert not (tmp_path / "e2").exists()
    with pytest.raises(TrainingSetupError, match="--overwrite"):
        train.main(["--task", "toy2d", "--max-iters", "1", "--out", str(toy_run)])
    with pytest.raises(TrainingSetupError, match="NAME=VALUE"):
        train.main(["--task", "denoising", "--task-option", "noise_std", "--out", str(tmp_path / "f")])
    with pytest.raises(TrainingSetupError, match="no option"):
        train.main(["--task", "denoising", "--task-option", "variant=banana", "--out", str(tmp_path / "g")])
    with pytest.raises(TrainingSetupError, match="resume"):
        train.main(["--task", "toy2d", "--resume", "--overwrite", "--out", str(tmp_path / "h")])


@pytest.mark.parametrize("task_name", ["captcha", "audio_captcha", "denoising"])
def test_deploy_grids_show_columns_as_training_does(deploy, tmp_path, monkeypatch, task_name):
    from tfinverse.training.igan import task_display
    from tfinverse.utils import results

    captured = []
    monkeypatch.setattr(results, "save_image_grid", lambda path, rows, **kwargs: captured.append(rows) or path)
    rng = np.random.default_rng(1)
    keys = ("y", "component_est", "x_est", "component", "x")
    arrays = {key: rng.uniform(-0.2, 1.3, (3, 8, 8, 1)).astype(np.float32) for key in keys}
    deploy.write_grids(tmp_path, get_task(task_name), arrays, grid_rows=2, max_grids=None, overwrite=False)
    assert [len(rows) for rows in captured] == [2, 1]
    rows = captured[0] + captured[1]
    roles = ("observation", "component", "clean", "component", "clean")
    for column, (key, role) in enumerate(zip(keys, roles)):
        np.testing.assert_array_equal(np.stack([row[column] for row in rows]), task_display(task_name, arrays[key], role))


def test_audio_outputs_are_8khz_wavs_of_the_right_tracks(deploy, tmp_path):
    import soundfile

    from tfinverse.tasks.audio import istft_with_phase

    task = get_task("audio_captcha")
    reference = evaluation_batches(task, n=1, seed=3)
    # stand-in estimates: speech = the true speech image, noise = half the noise image
    x_est, z_est = reference["x"], 0.5 * reference["component"]
    files = deploy.write_audio(tmp_path, task, reference, x_est, z_est, count=5, overwrite=False)
    assert len(files) == 5  # one clip, five tracks
    step = 1.0 / 32768  # 16-bit PCM
    mixture, rate = soundfile.read(tmp_path / "audio" / "00000_mixture.wav")
    assert rate == 8000 and mixture.shape == (reference["mixture_waveform"].shape[1],)
    np.testing.assert_allclose(mixture, reference["mixture_waveform"][0], atol=step)
    speech, _ = soundfile.read(tmp_path / "audio" / "00000_speech_est.wav")
    expected = istft_with_phase(x_est, reference["phase"], length=mixture.shape[0])[0]
    np.testing.assert_allclose(speech, np.clip(expected, -1, 1), atol=step)
    noise, _ = soundfile.read(tmp_path / "audio" / "00000_noise_est.wav")
    expected = istft_with_phase(z_est, reference["phase"], length=mixture.shape[0])[0]
    np.testing.assert_allclose(noise, np.clip(expected, -1, 1), atol=step)
    with pytest.raises(FileExistsError, match="--overwrite"):
        deploy.write_audio(tmp_path, task, reference, x_est, z_est, count=1, overwrite=False)


MIRRORED_IGAN = """
import json, runpy, sys
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.argv = [sys.argv[1], *json.loads(sys.argv[2])]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_igan_trains_under_the_mirrored_strategy(tmp_path):
    """The one loop runs igan on two replicas (two logical CPUs, in a fresh process): the
    round's losses are averaged over replicas before the mm rule, the counts match."""
    import subprocess
    import sys

    out = tmp_path / "mirrored"
    argv = ["--task", "toy2d", "--steps", "3", "--batch-size", "8", "--sample-every", "0", "--strategy", "mirrored",
            "--out", str(out)]
    completed = subprocess.run([sys.executable, "-c", MIRRORED_IGAN, str(SCRIPTS / "train_igan.py"), json.dumps(argv)],
                               capture_output=True, text=True, timeout=300, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert completed.returncode == 0, completed.stderr[-3000:]
    report = json.loads((out / "run.json").read_text())
    assert report["replicas"] == 2 and report["per_replica_batch_size"] == 4 and report["steps"] == 3
    assert all(np.isfinite(report["final_losses"][k]) for k in ("d1_loss", "d2_loss", "g_loss"))
    assert report["optimizer_iterations"]["d1"] == report["schedule"]["discriminator_rounds"] >= 1
    assert (out / "estimator" / "saved_model.pb").is_file()
