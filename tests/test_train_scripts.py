"""End-to-end runs of scripts/train_dcgan.py, train_began.py and train_pggan.py on mnist5k.

Each script trains a tiny model for 3 steps into tmp_path and must leave checkpoints, sample
grids, TensorBoard summaries, run.json and a SavedModel whose generator equals the one in
the last checkpoint. The mirrored-strategy run happens in a subprocess whose TensorFlow
runtime is split into two logical CPU devices before it starts.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import cv2
import numpy as np
import pytest
import tensorflow as tf

from tfinverse import hub
from tfinverse.training import variables_by_path
from tfinverse.utils.cli import run_script

from summaries import summary_tags

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"

TINY = {
    "dcgan": ["--image-size", "16", "--channels", "1", "--batch-size", "8", "--base-filters", "8", "--latent-dim", "16"],
    "began": ["--image-size", "16", "--channels", "1", "--batch-size", "8", "--num-filters", "8", "--latent-dim", "8"],
    # two levels (4x4, 8x8) starting at the top one: growth itself is tested in test_training.py
    "pggan": ["--image-size", "8", "--channels", "1", "--batch-size", "8", "--fmap-base", "32", "--fmap-max", "8",
              "--latent-dim", "8", "--start-level", "1"],
}
OUTPUT = ["--sample-every", "2", "--checkpoint-every", "2", "--log-every", "1", "--num-samples", "4"]
METRICS = {
    "dcgan": ("d_loss", "g_loss", "d_loss_real", "d_loss_fake"),
    "began": ("d_loss", "g_loss", "k_t", "m_global"),
    "pggan": ("d_loss", "g_loss", "wasserstein", "gradient_penalty"),
}


def _load_script(name):
    spec = importlib.util.spec_from_file_location(f"train_{name}_script", SCRIPTS / f"train_{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def scripts():
    return {name: _load_script(name) for name in TINY}


def _assert_export_matches_checkpoint(script, argv, out):
    """The SavedModel's generator equals a fresh generator restored from the last checkpoint."""
    args = script.build_parser().parse_args(argv)
    fresh = script.build_trainer(args)
    latest = tf.train.latest_checkpoint(str(out / "checkpoints"))
    tf.train.Checkpoint(generator=variables_by_path(fresh.generator_network)).restore(latest).expect_partial()
    loaded = hub.load_generator(str(out / "generator"))
    z = fresh.generator.sample_latent(4, seed=11)
    exported = loaded(z).numpy()
    assert exported.shape == (4, *fresh.generator.output_shape)
    assert exported.min() >= 0.0 and exported.max() <= 1.0
    np.testing.assert_allclose(exported, fresh.generator(z).numpy(), atol=1e-5)
    return loaded


@pytest.mark.parametrize("name", ["dcgan", "began", "pggan"])
def test_script_trains_checkpoints_samples_and_exports(scripts, name, tmp_path, capsys):
    script = scripts[name]
    out = tmp_path / name
    argv = [*TINY[name], "--steps", "3", *OUTPUT, "--out", str(out)]
    run = script.main(argv)

    printed = capsys.readouterr().out
    assert "mnist5k images are 28x28x1; the data layer resizes them to" in printed
    assert json.loads((out / "run.json").read_text()) == run
    assert run["steps"] == 3 and run["start_step"] == 0 and run["data"]["resized"]
    assert all(np.isfinite(run["final_losses"][metric]) for metric in METRICS[name])
    assert run["ms_per_step"] > 0 and run["wall_time_seconds"] > 0
    assert run["flags"]["lr"] == script.DEFAULTS.learning_rate
    # checkpoints every 2 steps and at the end; sample grids likewise
    assert sorted(p.name for p in (out / "checkpoints").glob("*.index")) == ["ckpt-2.index", "ckpt-3.index"]
    for grid in ("samples/step_0000002.png", "samples/step_0000003.png", "samples.png"):
        image = cv2.imread(str(out / grid))
        assert image is not None and image.shape[0] >= 2 * 64, grid  # a 2x2 grid of enlarged cells
    scalars, images = summary_tags(out / "logs")
    assert {f"train/{metric}" for metric in METRICS[name]} <= scalars
    assert {"learning_rate/generator", "learning_rate/discriminator"} <= scalars
    assert "samples" in images
    if name == "pggan":
        assert {"pggan/alpha", "pggan/resolution"} <= scalars
        assert run["final_scalars"]["pggan/resolution"] == 8.0 and run["compiled_step_functions"] == 1
    loaded = _assert_export_matches_checkpoint(script, argv, out)
    assert loaded.latent_dim == int(argv[argv.index("--latent-dim") + 1])

    if name == "began":  # the cheapest model to trace
        # a killed run resumes: same step count and optimizer state as one longer run
        # (the stored settings are the defaults of a resumed run: no need to repeat them)
        resumed = script.main(["--out", str(out), "--resume", "--steps", "5"])
        assert (resumed["start_step"], resumed["steps"]) == (3, 5)
        assert resumed["optimizer_iterations"] == {"discriminator": 5, "generator": 5}
        assert resumed["data_position"] == {"epoch": 0, "batch_in_epoch": 5}
        assert resumed["resumed_from"].endswith("ckpt-3")
        assert {k: v for k, v in resumed["flags"].items() if k != "steps"} == {
            k: v for k, v in run["flags"].items() if k not in ("steps", "resume")
        } | {"resume": True}
        kept = sorted(p.name for p in (out / "checkpoints").glob("*.index"))
        assert kept == ["ckpt-3.index", "ckpt-4.index", "ckpt-5.index"]  # --keep-checkpoints 3
        _assert_export_matches_checkpoint(script, argv, out)


def test_script_refuses_a_folder_holding_another_runs_checkpoint(scripts, tmp_path, capsys):
    out = tmp_path / "taken"
    (out / "checkpoints").mkdir(parents=True)
    step = tf.Variable(7, dtype=tf.int64)
    tf.train.CheckpointManager(tf.train.Checkpoint(step=step), str(out / "checkpoints"), 1).save(7)
    before = sorted(p.name for p in out.rglob("*"))
    assert run_script(scripts["began"].main, [*TINY["began"], "--steps", "1", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and len(error.strip().splitlines()) == 1
    assert "holds the checkpoint of another run" in error and "--resume" in error and "--overwrite" in error
    assert sorted(p.name for p in out.rglob("*")) == before
    argv = [*TINY["began"], "--steps", "1", "--out", str(tmp_path / "empty"), "--resume"]
    assert run_script(scripts["began"].main, argv) == 2
    assert "no checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize(
    "name, flags, message",
    [
        ("pggan", ["--image-size", "48"], "power of two"),
        ("pggan", ["--image-size", "8", "--batch-size", "6"], "minibatch-stddev group"),
        ("began", ["--image-size", "24"], "8 \\* 2\\^k"),
        ("dcgan", ["--image-size", "15"], "must be even"),
        ("dcgan", ["--channels", "2"], "invalid choice"),
        ("dcgan", ["--dataset", "no_such_set"], "unknown dataset"),
        ("dcgan", ["--path-length-weight", "-1"], "--path-length-weight must be >= 0"),
        ("dcgan", ["--path-length-decay", "0"], "--path-length-decay must be in \\(0, 1\\]"),
        ("began", ["--batch-size", "0"], "--batch-size must be >= 1"),
    ],
)
def test_script_refuses_impossible_requests(scripts, tmp_path, capsys, name, flags, message):
    out = tmp_path / "never"
    try:
        status = run_script(scripts[name].main, [*flags, "--steps", "1", "--out", str(out)])
    except SystemExit as exit:  # argparse's own usage errors exit from the parser
        status = exit.code
    assert status == 2
    error = capsys.readouterr().err
    assert re.search(message, error)
    if "invalid choice" not in message:  # argparse's own usage errors keep their usage line
        assert error.startswith("error: ") and len(error.strip().splitlines()) == 1, error
    assert not out.exists()


def test_help_and_defaults_follow_the_originals(scripts):
    common = ("--steps", "--batch-size", "--image-size", "--channels", "--dataset", "--data-dir", "--lr",
              "--resume", "--overwrite", "--jit-compile", "--precision", "--strategy", "--log-dir",
              "--sample-every", "--checkpoint-every", "--keep-checkpoints", "Examples")
    for script in scripts.values():
        text = script.build_parser().format_help()
        assert all(flag in text for flag in common)
        assert script.build_parser().description.startswith("Trains")
    dcgan = scripts["dcgan"].build_parser().parse_args([])
    assert (dcgan.lr, dcgan.beta1, dcgan.batch_size, dcgan.generator_steps, dcgan.epochs) == (2e-4, 0.5, 64, 2, 25)
    assert (dcgan.image_size, dcgan.channels, dcgan.latent_dim, dcgan.dataset) == (64, 3, 100, "mnist5k")
    began = scripts["began"].build_parser().parse_args([])
    assert (began.lr, began.gamma, began.lambda_k, began.k_initial, began.batch_size) == (1e-4, 0.5, 1e-3, 0.0, 16)
    assert (began.image_size, began.latent_dim, began.num_filters) == (128, 64, 64)
    pggan = scripts["pggan"].build_parser().parse_args([])
    assert (pggan.lr, pggan.beta1, pggan.beta2, pggan.gp_weight, pggan.drift_weight) == (1e-3, 0.0, 0.99, 10.0, 1e-3)
    assert (pggan.latent_dim, pggan.image_size, pggan.kimg_per_phase, pggan.keep_checkpoints) == (512, 1024, 600.0, 3)
    assert "--kimg-per-phase" in scripts["pggan"].build_parser().format_help()


MIRRORED_RUN = textwrap.dedent(
    """
    import importlib.util, json, sys
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

    import numpy as np
    from tfinverse import hub
    from tfinverse.training import EpochBatchStream, dataset_factory, make_strategy, train

    script_path, out, argv = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    spec = importlib.util.spec_from_file_location("train_began_script", script_path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    args = script.build_parser().parse_args(argv)

    # how one global batch of the run is laid out over the replicas
    strategy = make_strategy("mirrored")
    batch = next(EpochBatchStream(dataset_factory(args), strategy))
    local_shapes = [list(t.shape) for t in strategy.experimental_local_results(batch)]

    run = script.main(argv)
    try:  # XLA cannot span logical CPU devices: refused before anything is written
        script.main(argv[:-1] + [out + "_jit", "--jit-compile"])
        jit_refused = False
    except ValueError:  # TrainingSetupError, before anything is written
        jit_refused = not __import__("os").path.exists(out + "_jit")

    # the same two steps on one device, on the same batches, without compilation
    reference = script.build_trainer(args)
    train(reference, EpochBatchStream(dataset_factory(args)), 2, global_batch_size=args.batch_size, run_eagerly=True)
    exported = hub.load_generator(out + "/generator")
    z = reference.generator.sample_latent(8, seed=5)
    difference = float(np.max(np.abs(exported(z).numpy() - reference.generator(z).numpy())))
    print(json.dumps({
        "replicas": strategy.num_replicas_in_sync,
        "local_shapes": local_shapes,
        "run": run,
        "difference": difference,
        "k": [float(reference.k.numpy()), run["final_losses"]["k_t"]],
        "jit_refused": jit_refused,
    }))
    """
)


def test_mirrored_strategy_on_two_logical_cpus_equals_one_device(tmp_path):
    out = tmp_path / "mirrored"
    argv = [*TINY["began"], "--steps", "2", "--sample-every", "0", "--checkpoint-every", "0", "--log-every", "1",
            "--num-samples", "4", "--strategy", "mirrored", "--out", str(out)]
    completed = subprocess.run(
        [sys.executable, "-c", MIRRORED_RUN, str(SCRIPTS / "train_began.py"), str(out), json.dumps(argv)],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["replicas"] == 2
    assert result["local_shapes"] == [[4, 16, 16, 1], [4, 16, 16, 1]]  # the global batch of 8, split
    assert result["run"]["replicas"] == 2 and result["run"]["per_replica_batch_size"] == 4
    assert result["run"]["steps"] == 2
    # gradients summed over replicas of per-replica means / 2 = the single-device gradient
    assert result["difference"] < 1e-5
    assert result["k"][0] == pytest.approx(result["k"][1], abs=1e-6)
    assert result["jit_refused"]
