#!/usr/bin/env python
"""Runs a trained igan estimator on a task's held-out samples and scores it.

Loads the estimator from a training checkpoint (``--checkpoint``: a checkpoint folder or
prefix written by ``train_igan.py``), from its SavedModel (``--saved-model``) or, with
neither, the estimator that ships with tfinverse for the task (where one does), runs it in
inference mode on ``--num-samples`` held-out samples (1000, as the original's deploy.py)
and writes into ``--out``::

    grids/grid_<k>.png   per sample: input y, estimated component z, estimated clean x,
                         true component, true clean (the original's PNGs, as grids)
    metrics.csv/.json/.md  the scores of tfinverse.tasks.igan_tasks.evaluate: PSNR/SSIM of
                         the estimates and of naive baselines (the observation itself; a
                         median filter for CAPTCHAs); SDR/SIR/SAR for audio_captcha,
                         with the true magnitudes under the mixture's phase as the ceiling
    audio/<k>_{mixture,speech_est,noise_est,speech_true,noise_true}.wav   audio_captcha:
                         8 kHz 16-bit WAVs (estimates use the mixture's phase); the grids
                         are the spectrograms (each scaled to its peak, low
                         frequencies at the bottom)
    toy2d.png            toy2d: source, target and mapped points
    deploy.json          settings and data sources

The grids show their columns as training's sample grids and TensorBoard do
(``tfinverse.training.igan.task_display``): observations that leave [0, 1] (a sum, a noisy
image) and signed components stretched to their own range, clean images clipped to [0, 1];
CAPTCHA images inverted back to dark characters on white, as the original saved them.

Examples::

    python scripts/deploy_igan.py --task denoising     # the shipped estimator
    python scripts/deploy_igan.py --task denoising --checkpoint runs/igan_denoising/checkpoints
    python scripts/deploy_igan.py --task denoising --saved-model runs/igan_denoising/estimator \\
        --num-samples 100 --out results/igan_denoising_test
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

# Task settings that fix the estimator; a checkpoint of another task differs in one of them.
_SHAPE_FIELDS = ("name", "image_size", "channels", "component_is_residual", "add_input_mean", "extra_convs")


def build_parser() -> argparse.ArgumentParser:
    """The script's command-line flags."""
    from tfinverse.tasks import TASK_NAMES
    from tfinverse.utils.cli import add_common_flags
    from tfinverse.utils.precision import add_precision_flag

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="unmixing_mnist_cifar", choices=TASK_NAMES, help="the igan task")
    parser.add_argument(
        "--task-option", action="append", default=[], metavar="NAME=VALUE",
        help="a data option of the task (repeatable), as given to train_igan.py",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--checkpoint", help="a checkpoint folder (its newest checkpoint) or checkpoint prefix")
    source.add_argument("--saved-model", help="the estimator SavedModel folder written by train_igan.py "
                                              "(default, with no --checkpoint: the estimator shipped for --task)")
    parser.add_argument("--num-samples", type=int, default=1000, help="held-out samples to run on")
    parser.add_argument("--batch-size", type=int, default=50, help="samples per inference batch")
    parser.add_argument("--grid-rows", type=int, default=10, help="samples per grid PNG")
    parser.add_argument("--max-grids", type=int, default=None, help="write at most this many grids (default: all)")
    parser.add_argument("--sample-rate", type=int, default=8000, help="audio sample rate; audio_captcha needs 8000")
    parser.add_argument("--max-audio-files", type=int, default=20, help="audio_captcha: clips written as WAV")
    add_precision_flag(parser, help_suffix="; applies to an estimator rebuilt from --checkpoint (a SavedModel "
                                           "computes as saved)")
    add_common_flags(parser, out_default="results/igan_deploy")
    return parser


def _check_metadata(metadata, task, where: str) -> None:
    if not metadata:
        return
    from tfinverse.models.igan import task_metadata

    expected = task_metadata(task)
    differences = [f"{key} {metadata.get(key)!r} (task {task.name}: {expected[key]!r})"
                   for key in _SHAPE_FIELDS if key in metadata and metadata.get(key) != expected[key]]
    if differences:
        raise ValueError(
            f"{where} does not match task {task.name}: it was trained with " + ", ".join(differences)
            + f"; pass --task {metadata.get('name', '?')} or another model"
        )


def load_estimator(args, task):
    """``(separate, description)``: ``separate(y) -> (component, clean)`` numpy, inference mode.

    Raises:
      FileNotFoundError: no checkpoint or SavedModel at the path.
      ValueError: a model of another task.
    """
    import tensorflow as tf

    from tfinverse.models.igan import build_estimator_for_task, load_igan_export, read_igan_metadata

    saved_model, description = args.saved_model, f"SavedModel {args.saved_model}"
    if not saved_model and not args.checkpoint:
        from tfinverse.pretrained import shipped_igan_estimator_path

        saved_model = str(shipped_igan_estimator_path(task.name))
        description = f"shipped estimator {task.name}"
    if saved_model:
        separate, metadata = load_igan_export(saved_model)
        _check_metadata(metadata, task, description)
        expected = list(build_input_shape(task))
        stored = (metadata or {}).get("input_shape")
        if stored is not None and list(stored) != expected:
            raise ValueError(f"{description} takes inputs {stored}, task {task.name} has {expected}")
        return separate, description

    path = Path(args.checkpoint)
    if path.is_dir():
        prefix = tf.train.latest_checkpoint(str(path))
        metadata_dir = path
    else:
        prefix = str(path) if Path(str(path) + ".index").is_file() else None
        metadata_dir = path.parent
    if prefix is None:
        raise FileNotFoundError(f"no checkpoint at {path} (give a checkpoint folder or a ckpt-<step> prefix)")
    _check_metadata(read_igan_metadata(metadata_dir), task, f"checkpoint {prefix}")
    estimator = build_estimator_for_task(task)
    try:
        status = tf.train.Checkpoint(estimator=estimator.network).restore(prefix)
        status.expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        raise ValueError(f"checkpoint {prefix} does not match task {task.name}: {error}") from None
    forward = tf.function(lambda y: estimator.separate(y, training=False), reduce_retracing=True)

    def separate(y):
        z, x = forward(tf.convert_to_tensor(np.asarray(y, np.float32)))
        return z.numpy(), x.numpy()

    return separate, f"checkpoint {prefix}"


def build_input_shape(task):
    """The estimator's input shape for a task (without the batch axis)."""
    return (2,) if task.image_size == 0 else (task.image_size, task.image_size, task.channels)


def _in_batches(separate, y: np.ndarray, batch_size: int):
    components, cleans = [], []
    for start in range(0, len(y), batch_size):
        z, x = separate(y[start : start + batch_size])
        components.append(z)
        cleans.append(x)
    return np.concatenate(components), np.concatenate(cleans)


def write_grids(out: Path, task, arrays, grid_rows: int, max_grids, overwrite: bool):
    """The original's per-sample PNGs as grids: one row per sample."""
    from tfinverse.training.igan import task_display
    from tfinverse.utils.results import save_image_grid

    columns = ["input y", "estimated z", "estimated x", "true z", "true x"]
    keys = ["y", "component_est", "x_est", "component", "x"]
    roles = ["observation", "component", "clean", "component", "clean"]
    shown = {key: task_display(task.name, arrays[key], role) for key, role in zip(keys, roles)}
    folder = out / "grids"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    n = len(arrays["y"])
    for index, start in enumerate(range(0, n, grid_rows)):
        if max_grids is not None and index >= max_grids:
            break
        rows = [[shown[key][i] for key in keys] for i in range(start, min(start + grid_rows, n))]
        labels = [f"#{i}" for i in range(start, min(start + grid_rows, n))]
        written.append(str(save_image_grid(folder / f"grid_{index:03d}.png", rows, row_labels=labels,
                                           col_labels=columns, overwrite=overwrite)))
    return written


def write_audio(out: Path, task, reference, x_est, z_est, count: int, overwrite: bool):
    """WAVs of mixture, estimated speech and noise (mixture phase) and the true sources."""
    import soundfile

    from tfinverse.tasks.audio import SAMPLE_RATE, istft_with_phase

    settings = {key: task.option(key) for key in ("n_fft", "hop_length", "log_gain")}
    count = min(int(count), len(x_est))
    if count <= 0:
        return []
    length = reference["mixture_waveform"].shape[1]
    phase = reference["phase"][:count]
    tracks = {
        "mixture": reference["mixture_waveform"][:count],
        "speech_est": istft_with_phase(x_est[:count], phase, length=length, **settings),
        "noise_est": istft_with_phase(z_est[:count], phase, length=length, **settings),
        "speech_true": reference["speech_waveform"][:count],
        "noise_true": reference["noise_waveform"][:count],
    }
    folder = out / "audio"
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for i in range(count):
        for name, waves in tracks.items():
            path = folder / f"{i:05d}_{name}.wav"
            if path.exists() and not overwrite:
                raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
            soundfile.write(str(path), np.clip(waves[i], -1.0, 1.0), SAMPLE_RATE, subtype="PCM_16")
            written.append(str(path))
    return written


def write_summaries(log_dir, task, rows, y, x_true, x_est, z_est, max_images: int = 8) -> None:
    """TensorBoard: every numeric metric of the table as a scalar, and the first images.

    Scalars are ``<metric>/<method>[/<target>]`` at step 0; image tasks also log
    ``images/observation``, ``images/clean``, ``images/estimate`` and ``images/component_estimate``.
    """
    import numbers

    from tfinverse.utils.cli import summary_images, summary_scalar, summary_writer

    writer = summary_writer(log_dir)
    with writer.as_default():
        for row in rows:
            name = "/".join(str(row[key]).replace(" ", "_") for key in ("method", "target") if row.get(key))
            for key, value in row.items():
                if isinstance(value, numbers.Real) and not isinstance(value, bool) and np.isfinite(value):
                    summary_scalar(f"{key}/{name}", float(value), step=0)
        if task.image_size:
            for tag, images in (("observation", y), ("clean", x_true), ("estimate", x_est),
                                ("component_estimate", z_est)):
                images = np.asarray(images[:max_images], np.float32)
                if images.ndim == 4 and images.shape[-1] in (1, 3, 4):
                    summary_images(f"images/{tag}", images, step=0, max_outputs=max_images)
    writer.close()


def run(args) -> dict:
    """Deploys as the parsed flags say; returns the contents of ``deploy.json``."""
    from tfinverse.tasks.igan_tasks import data_sources, evaluate, evaluation_batches, get_task
    from tfinverse.utils.cli import prepare_output_dir
    from tfinverse.utils.cli import parse_name_values
    from tfinverse.utils.results import atomic_write_bytes, atomic_write_text, npz_bytes, reported_figure, write_table

    task = get_task(args.task, **parse_name_values(args.task_option))
    for flag in ("num_samples", "batch_size", "grid_rows"):
        if getattr(args, flag) < 1:
            raise ValueError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if task.name == "audio_captcha":
        from tfinverse.tasks.audio import check_sample_rate

        check_sample_rate(args.sample_rate)

    separate, model_description = load_estimator(args, task)
    reference = evaluation_batches(task, n=args.num_samples, seed=args.seed, data_dir=args.data_dir)
    out = prepare_output_dir(args.out, args.overwrite)

    y, x_true, z_true = reference["y"], reference["x"], reference["component"]
    z_est, x_est = (a.astype(np.float32) for a in _in_batches(separate, y, args.batch_size))
    if task.image_size == 0:
        z_est = (y - x_est).astype(np.float32)  # toy2d's component is source - target, not (M, b)

    extra = {"audio_reference": reference} if task.name == "audio_captcha" else {}
    rows = evaluate(task, y, x_true, z_true, x_est, z_est, sample_rate=args.sample_rate, **extra)
    table = write_table(out, "metrics", rows, overwrite=args.overwrite)

    write_summaries(args.log_dir, task, rows, y, x_true, x_est, z_est)
    # Arrays after the table and before any figure: a figure that fails costs no results.
    arrays = {"y": y, "x": x_true, "component": z_true, "x_est": x_est, "component_est": z_est}
    files = {"arrays": str(atomic_write_bytes(out / "estimates.npz", npz_bytes(arrays), overwrite=args.overwrite))}
    figure_failures = []
    if task.image_size == 0:
        from tfinverse.tasks.igan_tasks import plot_toy_mapping

        with reported_figure(out / "toy2d.png", figure_failures):
            files["figure"] = plot_toy_mapping(y, x_true, x_est, out / "toy2d.png", title=f"igan {task.name}")
    else:
        with reported_figure(out / "grids", figure_failures):
            files["grids"] = write_grids(out, task, arrays, args.grid_rows, args.max_grids, args.overwrite)
    if task.name == "audio_captcha":
        files["audio"] = write_audio(out, task, reference, x_est, z_est, args.max_audio_files, args.overwrite)

    report = {
        "task": task.name,
        "task_options": dict(task.options),
        "model": model_description,
        "num_samples": int(len(y)),
        "seed": args.seed,
        "data_sources": data_sources(task, args.data_dir),
        "files": files,
        "metrics_table": str(out / "metrics.md"),
        "figure_failures": figure_failures,
    }
    atomic_write_text(out / "deploy.json", json.dumps(report, indent=2, default=str) + "\n", overwrite=args.overwrite)
    print(table, flush=True)
    return report


def main(argv=None) -> int:
    from tfinverse.utils.cli import parse_common_args

    args = parse_common_args(build_parser(), argv)  # before anything heavy: --help answers at once
    from tfinverse.utils.precision import precision_policy

    # Networks built in the run (DIP, IAGAN copies, Keras priors) take the policy.
    with precision_policy(args.precision):
        from tfinverse.data import DatasetUnavailableError

        try:
            run(args)
        except (ValueError, FileNotFoundError, FileExistsError, DatasetUnavailableError) as error:
            raise SystemExit(f"error: {error}") from None
        return 0


if __name__ == "__main__":
    from tfinverse.utils.cli import run_script

    sys.exit(run_script(main))
