#!/usr/bin/env python
"""Tests Ambient VAE-GAN and its three baselines as the original did: PSNR / SSIM of one 8x8 grid, and per image.

The test set is 64 held-out images (``--num-images``; evenly spaced through the test split of
the offline datasets, the first ones of CelebA's validation split as the original), measured
once (``--seed``). Methods (``--methods``, default every one that has a model):

* ``ambient``: the encoder-decoder of ``--ambient`` (a run folder of train_ambient_vae_gan.py),
  its "best" or "last" checkpoint (``--checkpoint``);
* ``supervised``: the same for ``--supervised`` (a run trained with ``--supervised``);
* ``acsg``: Adam on z matching discriminator features of re-measured G(z) (100 iterations,
  lr 0.1, the iteration-90 image), with the ``--ambient`` run's decoder and discriminator;
* ``non-learned``: a 5x5 Gaussian blur (drop models; a channel without a hole is kept) or a
  median (add_noise) of the lossy image: the original's 3x3x3 window (``scipy.signal.medfilt``
  over height, width and channels) on colour images; on 1-channel images (MNIST) that window
  is two-thirds zero padding and returns about 0 everywhere, so ``--median-window auto`` (the
  default) uses a 3x3 window there; ``3x3x3`` forces the original's.

The learned methods return the decoded posterior MEAN by default (deterministic); ``--output
sample`` decodes one posterior sample, the original's test output. Batch norm uses the
test batch's statistics (``--batch-norm batch``, the original's) or the population statistics
stored with the checkpoint (``population``). Scores: the original's, on the 64 images tiled
into one 8x8 grid (no spacing) on ``[0, 1]``: PSNR with data range 1 and SSIM (7x7 uniform
window, sample covariance) with data range 2 as the old scikit-image defaults gave it; and
per image: PSNR mean and standard deviation, the dataset PSNR 10 log10(1 / mean MSE) and SSIM
with data range 1. The "lossy" row scores the measurement itself (clipped). Times: one
compiled forward pass of the whole batch for the encoder-decoders (traced first), the
optimisation for ACSG (tracing excluded), the filter for the non-learned baseline.

Flags:

| flag                | default                   | help                                                                                                                                                                                                                                                                                                   |
| ------------------- | ------------------------- | ------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------ |
| `--ambient`         |                           | run folder of train_ambient_vae_gan.py (the ambient and ACSG rows)                                                                                                                                                                                                                                     |
| `--supervised`      |                           | run folder of train_ambient_vae_gan.py --supervised                                                                                                                                                                                                                                                    |
| `--methods`         |                           | comma-separated subset of ambient,supervised,acsg,non-learned (default: all that have a model)                                                                                                                                                                                                         |
| `--checkpoint`      | `best`                    | which checkpoint of the runs (one of: best, last)                                                                                                                                                                                                                                                      |
| `--measurement`     |                           | forward model (default: the runs'; must match them); without runs: drop_independent                                                                                                                                                                                                                    |
| `--noise`           |                           | noise model after the linear part, as given to training                                                                                                                                                                                                                                                |
| `--dataset`         |                           | default: the runs' (mnist without runs) (one of: mnist, mnist_tfds, lfw_faces, celeba, celeb_a)                                                                                                                                                                                                        |
| `--num-images`      | `64`                      | test images (the original's 64 make the 8x8 grid)                                                                                                                                                                                                                                                      |
| `--output`          | `mean`                    | decoded posterior mean (deterministic) or one posterior sample (the original's) (one of: mean, sample)                                                                                                                                                                                                 |
| `--batch-norm`      | `batch`                   | normalise by the test batch's statistics (the original's) or the stored population statistics (one of: batch, population)                                                                                                                                                                              |
| `--median-window`   | `auto`                    | non-learned median for add_noise: 3x3x3 (the original's, mixes channels), 3x3, or auto (3x3x3 on colour, 3x3 on 1-channel images) (one of: 3x3x3, 3x3, auto)                                                                                                                                           |
| `--acsg-iterations` | `100`                     | ACSG Adam steps                                                                                                                                                                                                                                                                                        |
| `--acsg-lr`         | `0.1`                     | ACSG learning rate                                                                                                                                                                                                                                                                                     |
| `--acsg-snapshot`   | `90`                      | ACSG returns the image after this (0-based) iteration's update                                                                                                                                                                                                                                         |
| `--precision`       | `float32`                 | numeric precision: float32, or 16-bit compute with float32 variables (mixed_bfloat16 is ~4x faster on CPUs with AMX-BF16; float16 is for GPUs, with loss scaling); applies to networks rebuilt from checkpoints (ACSG's); a SavedModel enhancer computes as saved (one of: float32, bfloat16, float16) |
| `--out`             | `results/ambient_vae_gan` | output folder for images, tables and checkpoints                                                                                                                                                                                                                                                       |
| `--seed`            | `0`                       | random seed of every draw in the run                                                                                                                                                                                                                                                                   |
| `--data-dir`        |                           | folder of local dataset copies (default: $TFINVERSE_DATA_DIR, else each loader's own default)                                                                                                                                                                                                          |
| `--log-dir`         |                           | TensorBoard log folder (default: <out>/logs)                                                                                                                                                                                                                                                           |
| `--overwrite`       | `off`                     | write into a non-empty output folder and replace existing files                                                                                                                                                                                                                                        |
| `--quiet`           | `off`                     | no progress bars                                                                                                                                                                                                                                                                                       |
| `--verbose`         | `off`                     | show TensorFlow's start-up log                                                                                                                                                                                                                                                                         |
| `--debug`           | `off`                     | show the full traceback of an error                                                                                                                                                                                                                                                                    |

Writes into ``--out`` (tables and arrays before any figure)::

    results.csv|json|md   per method: grid PSNR / SSIM, per-image PSNR mean / std, dataset PSNR,
                          SSIM mean, MSE on [0, 1] and in the networks' range, seconds
    estimates.npz         x, y, mask, every method's estimates, acsg_time_mse (2 x iterations:
                          cumulative seconds, MSE on [0, 1])
    deploy.json           settings, runs and checkpoints used, speed ratio of ACSG to one
                          encoder-decoder pass
    orig.png, lossy.png, <method>.png   the 8x8 grids (as the original's)
    comparison.png        the grids side by side: original | lossy | each method
    mse_vs_time.png       MSE against seconds: ACSG's curve, the other methods as points

Examples::

    python scripts/deploy_ambient_vae_gan.py --ambient runs/ambient_drop --supervised runs/sup_drop --out results/drop
    python scripts/deploy_ambient_vae_gan.py --methods non-learned --measurement drop_patch --out results/patch_nl
    python scripts/deploy_ambient_vae_gan.py --ambient runs/ambient_drop --output sample --checkpoint last
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from tfinverse.tasks import ambient as settings  # noqa: E402

METHODS = ("ambient", "supervised", "acsg", "non-learned")
_LABELS = {"ambient": "Ambient VAE-GAN", "supervised": "supervised", "acsg": "ACSG", "non-learned": "non-learned",
           "lossy": "lossy (input)"}


def _methods(text: str):
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in METHODS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"--methods takes a comma-separated list of {', '.join(METHODS)}; got {text!r}")
    return names


def build_parser() -> argparse.ArgumentParser:
    """The script's flags (the original's test settings as defaults)."""
    from tfinverse.utils.cli import add_common_flags, docstring_parser

    parser = docstring_parser(__doc__)
    parser.add_argument("--ambient", default=None, help="run folder of train_ambient_vae_gan.py (the ambient and ACSG rows)")
    parser.add_argument("--supervised", default=None, help="run folder of train_ambient_vae_gan.py --supervised")
    parser.add_argument("--methods", type=_methods, default=None,
                        help="comma-separated subset of ambient,supervised,acsg,non-learned (default: all that have a model)")
    parser.add_argument("--checkpoint", default="best", choices=("best", "last"), help="which checkpoint of the runs")
    parser.add_argument("--measurement", default=None,
                        help="forward model (default: the runs'; must match them); without runs: drop_independent")
    parser.add_argument("--noise", default=None, help="noise model after the linear part, as given to training")
    parser.add_argument("--dataset", default=None, choices=tuple(settings.DATASETS), help="default: the runs' (mnist without runs)")
    parser.add_argument("--num-images", type=int, default=settings.TEST_IMAGES, help="test images (the original's 64 make the 8x8 grid)")
    parser.add_argument("--output", default="mean", choices=("mean", "sample"),
                        help="decoded posterior mean (deterministic) or one posterior sample (the original's)")
    parser.add_argument("--batch-norm", default="batch", choices=("batch", "population"),
                        help="normalise by the test batch's statistics (the original's) or the stored population statistics")
    parser.add_argument("--median-window", default="auto", choices=tuple(settings.MEDIAN_WINDOWS),
                        help="non-learned median for add_noise: 3x3x3 (the original's, mixes channels), 3x3, or auto "
                             "(3x3x3 on colour, 3x3 on 1-channel images)")
    parser.add_argument("--acsg-iterations", type=int, default=settings.ACSG_ITERATIONS, help="ACSG Adam steps")
    parser.add_argument("--acsg-lr", type=float, default=settings.ACSG_LEARNING_RATE, help="ACSG learning rate")
    parser.add_argument("--acsg-snapshot", type=int, default=settings.ACSG_SNAPSHOT_ITERATION,
                        help="ACSG returns the image after this (0-based) iteration's update")
    from tfinverse.utils.precision import add_precision_flag

    add_precision_flag(parser, help_suffix="; applies to networks rebuilt from checkpoints (ACSG's); a SavedModel "
                                           "enhancer computes as saved")
    add_common_flags(parser, out_default="results/ambient_vae_gan")
    return parser


# ----------------------------------------------------------------------------- runs
def read_run(path, flag: str) -> dict:
    """The stored settings of a training run folder.

    Raises:
      InputError: no run there, or not an Ambient VAE-GAN run.
    """
    from tfinverse.errors import InputError
    from tfinverse.training.checkpointing import read_run_config

    folder = Path(path)
    if not folder.is_dir():
        raise InputError(f"{flag} {path} does not exist (give a run folder of train_ambient_vae_gan.py)")
    stored = read_run_config(folder)
    if not stored or "measurement_label" not in stored:
        raise InputError(f"{flag} {path} is not an Ambient VAE-GAN run (no checkpoints/run_config.json with its measurement)")
    return stored


def resolve(args):
    """``(methods, runs, dataset, measurement spec, noise)`` with every check done before any work."""
    from tfinverse.errors import InputError

    runs = {}
    if args.ambient:
        runs["ambient"] = read_run(args.ambient, "--ambient")
    if args.supervised:
        runs["supervised"] = read_run(args.supervised, "--supervised")
        if not runs["supervised"].get("supervised"):
            raise InputError(f"--supervised {args.supervised} was trained without --supervised")
    if "ambient" in runs and runs["ambient"].get("supervised"):
        raise InputError(f"--ambient {args.ambient} was trained with --supervised; pass it as --supervised")
    available = (["ambient"] if "ambient" in runs else []) + (["supervised"] if "supervised" in runs else []) + (
        ["acsg"] if "ambient" in runs else []) + ["non-learned"]
    methods = args.methods or available
    missing = [m for m in methods if m not in available]
    if missing:
        raise InputError(f"--methods {','.join(missing)} need a model: give --ambient (ambient, acsg) or --supervised")
    keys = ("dataset", "measurement_label", "noise", "image_shape", "latent_dim", "layout")
    reference = None
    for name, stored in runs.items():
        if reference is None:
            reference = (name, stored)
            continue
        differing = [k for k in keys[:-2] if stored.get(k) != reference[1].get(k)]
        if differing:
            raise InputError(f"the {name} run differs from the {reference[0]} run in " + ", ".join(
                f"{k} ({stored.get(k)!r} vs {reference[1].get(k)!r})" for k in differing))
    dataset = args.dataset or (reference[1]["dataset"] if reference else "mnist")
    measurement = args.measurement or (reference[1]["measurement"] if reference else "drop_independent")
    noise = args.noise if args.noise is not None else (reference[1].get("noise") if reference else None)
    _, chosen = settings.dataset_source(dataset)
    config = chosen.config
    if reference:
        if dataset != reference[1]["dataset"]:
            raise InputError(f"--dataset {dataset}: the runs were trained on {reference[1]['dataset']}")
        import dataclasses

        config = dataclasses.replace(config, latent_dim=int(reference[1]["latent_dim"]))
    measure = settings.build_measurement(measurement, config.image_shape, noise, noise_std=chosen.add_noise_std,
                                         zero_level=config.zero_level)
    if reference and measure.name != reference[1]["measurement_label"]:
        raise InputError(f"--measurement {measurement} is not the runs' ({reference[1]['measurement_label']}): "
                         "a model is tested on the forward model it was trained with")
    if args.num_images < 1 or args.acsg_iterations < 1 or not args.acsg_lr > 0:
        raise InputError("--num-images and --acsg-iterations must be >= 1 and --acsg-lr positive")
    if not 0 <= args.acsg_snapshot < args.acsg_iterations:
        raise InputError(f"--acsg-snapshot must be in [0, --acsg-iterations), got {args.acsg_snapshot}")
    return methods, runs, dataset, config, measure


def load_networks(run_dir, config, which: str, flag: str):
    """The run's networks from its best or last checkpoint.

    Raises:
      InputError: no such checkpoint, or one of another configuration.
    """
    import tensorflow as tf

    from tfinverse.errors import InputError
    from tfinverse.models.ambient import AmbientNetworks
    from tfinverse.training.checkpointing import checkpoint_dir, variables_by_path

    folder = Path(run_dir) / "best" if which == "best" else checkpoint_dir(run_dir)
    prefix = tf.train.latest_checkpoint(str(folder))
    if prefix is None:
        raise InputError(f"{flag} {run_dir} has no {which} checkpoint in {folder}")
    networks = AmbientNetworks.build(config, seed=None)
    items = {name: variables_by_path(getattr(networks, name)) for name in ("encoder", "decoder", "discriminator")}
    try:
        status = tf.train.Checkpoint(**items).restore(prefix)
        status.expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as error:
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"{flag}: checkpoint {prefix} does not match the configuration {config}: {first}") from None
    return networks, prefix


# ----------------------------------------------------------------------------- methods
def run_enhancer(networks, y, output: str, batch_norm: str, seed: int):
    """``(x_hat, seconds)``: one compiled pass of the whole batch (traced before the clock)."""
    import tensorflow as tf

    from tfinverse.models.ambient import set_batch_statistics

    population = batch_norm == "population"
    for network in (networks.encoder, networks.decoder):
        set_batch_statistics(network, not population)
    sample_seed = tf.constant([int(seed), 0x5E11], tf.int64)
    forward = tf.function(lambda batch: networks.enhance(batch, sample=output == "sample", seed=sample_seed))
    batch = tf.constant(y)
    forward(batch)  # trace
    tick = time.perf_counter()
    x_hat = forward(batch).numpy()
    seconds = time.perf_counter() - tick
    for network in (networks.encoder, networks.decoder):
        set_batch_statistics(network, True)
    return np.clip(x_hat.astype(np.float32), 0.0, 1.0), seconds


def grid(images: np.ndarray, columns: int = settings.TEST_GRID[1]) -> np.ndarray:
    """The images tiled with no spacing into rows of ``columns`` (the original's 8x8)."""
    from tfinverse.training.samples import tile_images

    return tile_images(np.clip(np.asarray(images, np.float32), 0.0, 1.0), columns)


def scores(x: np.ndarray, x_hat: np.ndarray, scale: float) -> dict:
    """The original's grid PSNR / SSIM and the per-image scores (images on [0, 1])."""
    from tfinverse.metrics import ambient_vae_gan_ssim

    x_hat = np.clip(x_hat, 0.0, 1.0).astype(np.float32)
    grid_x, grid_hat = grid(x), grid(x_hat)
    grid_mse = float(np.mean((grid_x.astype(np.float64) - grid_hat) ** 2))
    mse = np.mean((x.astype(np.float64) - x_hat) ** 2, axis=(1, 2, 3))
    psnr = 10.0 * np.log10(settings.PSNR_DATA_RANGE**2 / np.maximum(mse, 1e-20))
    ssim = np.asarray(ambient_vae_gan_ssim(x, x_hat, data_range=1.0, win_size=settings.SSIM_WINDOW))
    grid_ssim = float(np.asarray(ambient_vae_gan_ssim(grid_x[None], grid_hat[None], data_range=settings.SSIM_DATA_RANGE,
                                                      win_size=settings.SSIM_WINDOW))[0])
    return {
        "grid_psnr": 10.0 * np.log10(settings.PSNR_DATA_RANGE**2 / max(grid_mse, 1e-20)),
        "grid_ssim": grid_ssim,
        "psnr_mean": float(np.mean(psnr)),
        "psnr_std": float(np.std(psnr, ddof=1)) if len(psnr) > 1 else 0.0,
        "dataset_psnr": float(10.0 * np.log10(1.0 / max(float(np.mean(mse)), 1e-20))),
        "ssim_mean": float(np.mean(ssim)),
        "mse": float(np.mean(mse)),
        "mse_network_range": float(np.mean(mse)) * scale,
    }


def plot_mse_vs_time(path, points: dict, acsg_curve, overwrite: bool):
    """MSE against seconds: ACSG's curve and the other methods as points (matplotlib imported here)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tfinverse.utils.results import atomic_write_bytes

    figure, axes = plt.subplots(figsize=(5.0, 3.6), dpi=110)
    if acsg_curve is not None:
        axes.plot(acsg_curve[0], acsg_curve[1], color="tab:blue", label="ACSG (per iteration)")
    markers = {"ambient": ("tab:red", "*"), "supervised": ("tab:green", "s"), "acsg": ("tab:blue", "o"),
               "non-learned": ("0.3", "^")}
    for name, (seconds, mse) in points.items():
        color, marker = markers.get(name, ("k", "x"))
        axes.scatter([seconds], [mse], color=color, marker=marker, s=70, zorder=3, label=_LABELS[name])
    axes.set_xscale("symlog", linthresh=1e-3)
    axes.set_xlabel("seconds (whole test batch)")
    axes.set_ylabel("MSE on [0, 1]")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
    figure.tight_layout()
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite)


def run(args) -> dict:
    """Tests as the parsed flags say; returns the contents of ``deploy.json``."""
    import tensorflow as tf

    from tfinverse.inversion.acsg import acsg
    from tfinverse.inversion.baselines import non_learned_ambient
    from tfinverse.utils.cli import prepare_output_dir
    from tfinverse.utils.results import atomic_write_bytes, atomic_write_text, npz_bytes, reported_figure, save_image_grid
    from tfinverse.utils.results import save_png, write_table

    methods, runs, dataset, config, measure = resolve(args)
    x, indices, split = settings.held_out_images(dataset, args.num_images, "test", data_dir=args.data_dir)
    networks, checkpoints = {}, {}
    for name, flag in (("ambient", "--ambient"), ("supervised", "--supervised")):
        if name in runs and (name in methods or (name == "ambient" and "acsg" in methods)):
            networks[name], checkpoints[name] = load_networks(getattr(args, name), config, args.checkpoint, flag)
    try:
        out = prepare_output_dir(args.out, args.overwrite)
    except ValueError as error:
        from tfinverse.errors import InputError

        raise InputError(str(error)) from None

    seed = tf.constant([int(args.seed), 0x7E57], tf.int64)
    y = np.asarray(measure(x, seed), np.float32)
    mask = np.asarray(measure.mask(x, seed), np.float32)
    low, high = config.network_range
    scale = (high - low) ** 2
    estimates, seconds, extras = {}, {}, {}
    for method in methods:
        if method in ("ambient", "supervised"):
            estimates[method], seconds[method] = run_enhancer(networks[method], y, args.output, args.batch_norm, args.seed)
        elif method == "acsg":
            trained = networks["ambient"]
            result = acsg(trained.generator(), trained, measure, y, iterations=args.acsg_iterations,
                          learning_rate=args.acsg_lr, snapshot_iteration=args.acsg_snapshot, reference=x,
                          seed=args.seed, progress=not args.quiet)
            estimates[method] = np.clip(result.x_hat, 0.0, 1.0)
            curve = result.extras["time_mse"]
            seconds[method] = float(curve[0][args.acsg_snapshot])
            extras["acsg_time_mse"] = curve
        else:
            kind = settings.NON_LEARNED_FILTERS.get(measure.name.split(":")[0], "blur")
            tick = time.perf_counter()
            result = non_learned_ambient(y, kind, mask=mask if kind == "blur" else None, zero_level=config.zero_level,
                                         median_size=settings.median_window(args.median_window, y.shape[-1]))
            seconds[method] = time.perf_counter() - tick
            estimates[method] = result.x_hat

    rows = [{"method": _LABELS["lossy"], **scores(x, np.clip(y, 0.0, 1.0), scale), "seconds": 0.0}]
    for method in methods:
        rows.append({"method": _LABELS[method], **scores(x, estimates[method], scale), "seconds": seconds[method],
                     "seconds_per_image": seconds[method] / len(x)})
    table = write_table(out, "results", rows, overwrite=args.overwrite)
    arrays = {"x": x, "y": y, "mask": mask, "indices": np.asarray(indices),
              **{name.replace("-", "_"): value for name, value in estimates.items()}, **extras}
    atomic_write_bytes(out / "estimates.npz", npz_bytes(arrays), overwrite=args.overwrite)

    by_method = {row["method"]: row for row in rows}
    speed = None
    if "acsg" in estimates and "ambient" in estimates:
        curve = extras["acsg_time_mse"]
        target = by_method[_LABELS["ambient"]]["mse"]
        reached = np.nonzero(curve[1] <= target)[0]
        speed = {
            "ambient_seconds": seconds["ambient"],
            "acsg_seconds": seconds["acsg"],
            "acsg_over_ambient": seconds["acsg"] / max(seconds["ambient"], 1e-12),
            "acsg_seconds_to_ambient_mse": float(curve[0][reached[0]]) if len(reached) else None,
        }
    report = {
        "dataset": dataset,
        "held_out_split": split,
        "test_indices": [int(i) for i in indices],
        "measurement": measure.name,
        "methods": methods,
        "output": args.output,
        "batch_norm": args.batch_norm,
        "checkpoint": args.checkpoint,
        "checkpoints": checkpoints,
        "runs": {name: str(getattr(args, name)) for name in runs},
        "seed": args.seed,
        "speed": speed,
        "mse_scale_note": f"mse is on [0, 1]; mse_network_range = mse x {scale:g} (the networks' range {config.network_range})",
    }
    atomic_write_text(out / "deploy.json", json.dumps(report, indent=2, default=str) + "\n", overwrite=args.overwrite)

    failures = []
    with reported_figure(out / "orig.png", failures):
        save_png(out / "orig.png", grid(x), overwrite=args.overwrite)
        save_png(out / "lossy.png", grid(y), overwrite=args.overwrite)
        for method in methods:
            save_png(out / f"{method}.png", grid(estimates[method]), overwrite=args.overwrite)
    with reported_figure(out / "comparison.png", failures):
        cells = [grid(x), grid(y)] + [grid(estimates[m]) for m in methods]
        labels = ["original", "lossy"] + [_LABELS[m] for m in methods]
        captions = [[None, f"{by_method[_LABELS['lossy']]['grid_psnr']:.2f} dB"]
                    + [f"{by_method[_LABELS[m]]['grid_psnr']:.2f} dB / {by_method[_LABELS[m]]['grid_ssim']:.2f}"
                       for m in methods]]
        save_image_grid(out / "comparison.png", [cells], col_labels=labels, captions=captions, scale=1,
                        overwrite=args.overwrite)
    with reported_figure(out / "mse_vs_time.png", failures):
        points = {m: (seconds[m], by_method[_LABELS[m]]["mse"]) for m in methods}
        curve = extras.get("acsg_time_mse")
        plot_mse_vs_time(out / "mse_vs_time.png", points, curve, args.overwrite)
    if failures:
        report["figure_failures"] = failures
        atomic_write_text(out / "deploy.json", json.dumps(report, indent=2, default=str) + "\n", overwrite=True)
    print(table, flush=True)
    return report


def main(argv=None) -> dict:
    """Parses ``argv`` (before TensorFlow loads), tests, writes; returns deploy.json's contents."""
    from tfinverse.utils.cli import parse_common_args

    args = parse_common_args(build_parser(), argv)
    from tfinverse.utils.precision import precision_policy

    with precision_policy(args.precision):
        return run(args)


if __name__ == "__main__":
    from tfinverse.utils.cli import run_script

    sys.exit(run_script(main))
