#!/usr/bin/env python
"""Runs the experiments of "Correction by Projection" (LVR): precise recovery of latent
vectors with three clipping rules, and denoising by projection onto a generator's range
(LVR and LVR-SA) against BM3D.

With no arguments it runs both experiments on the shipped MNIST DCGAN prior in a few
minutes on 2 cores:

* ``recovery``: draws ``--num-images`` latents from the prior, generates their images and
  recovers the latents from the clean images (or noisy copies, ``--recovery-noise-variance``)
  with each clipping rule (no clipping, projected gradient, stochastic clipping), all from
  the same initial guesses. A vector counts as recovered at precision ``p`` once the mean
  squared error of its components falls below ``p`` at some iteration, as the original
  checked every iteration (the rates of the last iterate are in run.json). Writes
  ``recovery.csv|json|md`` (rows: clipping rule; columns: success rate per precision, mean
  latent error and image residual (the objective, on the generator's native range) of the
  last iterate, PSNR of its image against the clean one, seconds per image),
  ``recovery.png`` (success rate against precision, and the mean latent error along the
  descent) and ``recovery_latents.npz``.
* ``denoising``: for every noise variance (on the ``[-1, 1]`` scale, as the original;
  the ``[0, 1]`` sigma is half its square root; noisy images are clipped), estimates the
  sharpness attribute on ``--sa-images`` other generated images and saves it to
  ``attributes/``, then denoises ``--num-images`` generated images and as many held-out
  real images with BM3D (given the sigma), LVR (stochastic clipping, no knowledge of the
  noise) and LVR-SA (LVR's latents plus the attribute). Writes ``denoising.csv|json|md``
  (rows: variance; columns: PSNR and SSIM per image set and method, the noisy input
  included), ``sharpness.csv|json|md`` (the paper's Table 2: LVR against LVR-SA on the
  images the attribute was estimated on and on other generated images, with the
  attribute's norm and the norm its sampling noise alone would have),
  ``denoising_gen.png`` and ``denoising_real.png`` (clean, noisy, BM3D, LVR, LVR-SA for a
  few variances) and ``denoising_arrays.npz`` (every image scored, and LVR's latents).

PSNR is the dataset PSNR, ``10 log10(1 / mean MSE)`` on ``[0, 1]`` images, estimates
clipped to ``[0, 1]``; SSIM is the mean of per-image SSIMs. Without the bm3d package the
BM3D columns stay empty and the table and run.json say so. ``run.json`` holds the
settings, timings and notes; ``logs/`` TensorBoard scalars.

Examples::

    python scripts/deploy_lvr.py
    python scripts/deploy_lvr.py --experiments recovery --recovery-iterations 20000 \\
        --num-images 64 --out runs/lvr_recovery
    python scripts/deploy_lvr.py --experiments denoising --variances 0.1 0.5 1 \\
        --prior path/to/saved_model --images path/to/folder

Flags (defaults marked "original" are those of the original code; the iteration and image
counts are chosen here so that the default run fits a few minutes on 2 cores):

| flag                        | default                             | help                                                                                                                                                                                                                                                                                                                                     |
| --------------------------- | ----------------------------------- | ---------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------- |
| `--experiments`             | `recovery denoising`                | experiments to run (one of: recovery, denoising)                                                                                                                                                                                                                                                                                         |
| `--prior`                   | `dcgan_mnist28`                     | a shipped prior's name, untrained:<name> (its layout, fresh weights, calibrated batch norm: a well-conditioned reference for recovery), or a SavedModel / TF-Hub-format directory / .keras / .pth                                                                                                                                        |
| `--images`                  | `mnist5k`                           | real images: a registered dataset (its held-out test split) or a folder of images                                                                                                                                                                                                                                                        |
| `--num-images`              | `8`                                 | images per set: generated latents to recover, generated and real images to denoise (ours, for time)                                                                                                                                                                                                                                      |
| `--sa-images`               | `64`                                | generated images the sharpness attribute of each variance is estimated on (original: its batch, 64)                                                                                                                                                                                                                                      |
| `--variances`               | `0.001 0.005 0.01 0.05 0.1 0.5 1.0` | noise variances on the [-1, 1] scale (the original's)                                                                                                                                                                                                                                                                                    |
| `--clipping-modes`          | `stochastic projected none`         | clipping rules of the recovery experiment (one of: stochastic, projected, none)                                                                                                                                                                                                                                                          |
| `--precisions`              | `0.1 0.01 0.001 0.0001 1e-05`       | success thresholds on the mean squared latent error (the original's)                                                                                                                                                                                                                                                                     |
| `--recovery-iterations`     | `3000`                              | gradient steps of the recovery experiment (ours, for time; the original halves its step only every 50000 steps)                                                                                                                                                                                                                          |
| `--recovery-noise-variance` | `0.0`                               | noise variance ([-1, 1] scale) added to the images whose latents are recovered: 0 recovers from clean images (the precise-recovery test), > 0 is the paper's Table 1 setting                                                                                                                                                             |
| `--denoise-iterations`      | `1000`                              | gradient steps of LVR and of the attribute estimation (ours, for time)                                                                                                                                                                                                                                                                   |
| `--learning-rate`           | `1.0`                               | step size of the gradient descent on z (original: 1.0)                                                                                                                                                                                                                                                                                   |
| `--lr-halving-steps`        | `50000`                             | the step size halves after every this many steps (original: 50000)                                                                                                                                                                                                                                                                       |
| `--early-stop-threshold`    | `0.005`                             | noisy runs stop once the summed error is below this times the batch (original: 0.005; the latent error when the true latents are known, else the objective); 0 disables                                                                                                                                                                  |
| `--batch-statistics`        | `off`                               | run the generator's batch norm on the statistics of the batch of guesses, as the original (needs a generator with that mode; the shipped prior is a SavedModel without it)                                                                                                                                                               |
| `--grid-variances`          |                                     | variances shown in the grids (default: up to three spread over --variances)                                                                                                                                                                                                                                                              |
| `--grid-images`             |                                     | images per variance in the grids (default: 2, or --num-images if fewer); 0 writes no grid                                                                                                                                                                                                                                                |
| `--jit-compile`             | `off`                               | compile the descent steps with XLA                                                                                                                                                                                                                                                                                                       |
| `--precision`               | `float32`                           | numeric precision: float32, or 16-bit compute with float32 variables (mixed_bfloat16 is ~4x faster on CPUs with AMX-BF16; float16 is for GPUs, with loss scaling); applies to networks the run builds (a shipped prior is rebuilt as its Keras network; another SavedModel prior computes as saved) (one of: float32, bfloat16, float16) |
| `--out`                     | `runs/deploy_lvr`                   | output folder for images, tables and checkpoints                                                                                                                                                                                                                                                                                         |
| `--seed`                    | `0`                                 | random seed of every draw in the run                                                                                                                                                                                                                                                                                                     |
| `--data-dir`                |                                     | folder of local dataset copies (default: $TFINVERSE_DATA_DIR, else each loader's own default)                                                                                                                                                                                                                                            |
| `--log-dir`                 |                                     | TensorBoard log folder (default: <out>/logs)                                                                                                                                                                                                                                                                                             |
| `--overwrite`               | `off`                               | write into a non-empty output folder and replace existing files                                                                                                                                                                                                                                                                          |
| `--quiet`                   | `off`                               | no progress bars                                                                                                                                                                                                                                                                                                                         |
| `--verbose`                 | `off`                               | show TensorFlow's start-up log                                                                                                                                                                                                                                                                                                           |
| `--debug`                   | `off`                               | show the full traceback of an error                                                                                                                                                                                                                                                                                                      |
"""

from __future__ import annotations

import argparse
import io
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

__all__ = [
    "EXPERIMENTS",
    "IMAGE_SETS",
    "DENOISERS",
    "build_parser",
    "parse_args",
    "sub_seed",
    "best_latent_errors",
    "success_rates",
    "run_recovery",
    "run_denoising",
    "main",
]

EXPERIMENTS = ("recovery", "denoising")
#: image set key -> what it is (the key names the table columns and files).
IMAGE_SETS = {"gen": "generated images", "real": "held-out real images"}
#: denoisers in table and grid order; "noisy" is the input itself.
DENOISERS = ("noisy", "bm3d", "lvr", "lvr_sa")
_GRID_TITLES = {"noisy": "noisy", "bm3d": "BM3D", "lvr": "LVR", "lvr_sa": "LVR-SA"}
_MAX_SEED = 2**31 - 1
_DEFAULT_GRID_VARIANCES = 3
_DEFAULT_GRID_IMAGES = 2
_SCRIPT_NAME = "deploy_lvr.py"


# ----------------------------------------------------------------------------- flags
def _positive_float(text: str, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{what} must be a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{what} must be a finite number > 0, got {text}")
    return value


def _variance(text: str) -> float:
    return _positive_float(text, "variance")


def _precision(text: str) -> float:
    return _positive_float(text, "precision")


def _learning_rate(text: str) -> float:
    return _positive_float(text, "learning rate")


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text}")
    return value


def _int_at_least(minimum: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an integer >= {minimum}, got {value}")
        return value

    return parse


def build_parser() -> argparse.ArgumentParser:
    """The script's command-line flags.

    Returns:
      The parser; its epilog is the module docstring without the flag table.
    """
    from tfinverse.tasks.lvr import CLIPPING_MODES, ORIGINAL_NOISE_VARIANCES, ORIGINAL_PRECISIONS
    from tfinverse.utils.precision import add_precision_flag
    from tfinverse.utils.cli import add_common_flags

    description, rest = __doc__.split("\n\n", 1)
    parser = argparse.ArgumentParser(
        description=description, epilog=rest.split("\nFlags (")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS), choices=EXPERIMENTS,
                        help="experiments to run")
    parser.add_argument("--prior", default="dcgan_mnist28",
                        help="a shipped prior's name, untrained:<name> (its layout, fresh weights, calibrated batch "
                             "norm: a well-conditioned reference for recovery), or a SavedModel / TF-Hub-format "
                             "directory / .keras / .pth")
    parser.add_argument("--images", default="mnist5k",
                        help="real images: a registered dataset (its held-out test split) or a folder of images")
    parser.add_argument("--num-images", type=_int_at_least(1), default=8,
                        help="images per set: generated latents to recover, generated and real images to "
                             "denoise (ours, for time)")
    parser.add_argument("--sa-images", type=_int_at_least(1), default=64,
                        help="generated images the sharpness attribute of each variance is estimated on "
                             "(original: its batch, 64)")
    parser.add_argument("--variances", nargs="+", type=_variance, default=list(ORIGINAL_NOISE_VARIANCES),
                        help="noise variances on the [-1, 1] scale (the original's)")
    parser.add_argument("--clipping-modes", nargs="+", default=list(CLIPPING_MODES), choices=CLIPPING_MODES,
                        help="clipping rules of the recovery experiment")
    parser.add_argument("--precisions", nargs="+", type=_precision, default=list(ORIGINAL_PRECISIONS),
                        help="success thresholds on the mean squared latent error (the original's)")
    parser.add_argument("--recovery-iterations", type=_int_at_least(1), default=3000,
                        help="gradient steps of the recovery experiment (ours, for time; the original halves its "
                             "step only every 50000 steps)")
    parser.add_argument("--recovery-noise-variance", type=_non_negative_float, default=0.0,
                        help="noise variance ([-1, 1] scale) added to the images whose latents are recovered: 0 "
                             "recovers from clean images (the precise-recovery test), > 0 is the paper's Table 1 "
                             "setting")
    parser.add_argument("--denoise-iterations", type=_int_at_least(1), default=1000,
                        help="gradient steps of LVR and of the attribute estimation (ours, for time)")
    parser.add_argument("--learning-rate", type=_learning_rate, default=1.0,
                        help="step size of the gradient descent on z (original: 1.0)")
    parser.add_argument("--lr-halving-steps", type=_int_at_least(1), default=50000,
                        help="the step size halves after every this many steps (original: 50000)")
    parser.add_argument("--early-stop-threshold", type=_non_negative_float, default=0.005,
                        help="noisy runs stop once the summed error is below this times the batch (original: "
                             "0.005; the latent error when the true latents are known, else the objective); "
                             "0 disables")
    parser.add_argument("--batch-statistics", action="store_true",
                        help="run the generator's batch norm on the statistics of the batch of guesses, as the "
                             "original (needs a generator with that mode; the shipped prior is a SavedModel "
                             "without it)")
    parser.add_argument("--grid-variances", nargs="+", type=_variance, default=None,
                        help="variances shown in the grids (default: up to three spread over --variances)")
    parser.add_argument("--grid-images", type=_int_at_least(0), default=None,
                        help=f"images per variance in the grids (default: {_DEFAULT_GRID_IMAGES}, or --num-images if "
                             "fewer); 0 writes no grid")
    parser.add_argument("--jit-compile", action="store_true", help="compile the descent steps with XLA")
    add_precision_flag(parser, help_suffix="; applies to networks the run builds (a shipped prior is rebuilt as its "
                                           "Keras network; another SavedModel prior computes as saved)")
    add_common_flags(parser, out_default="runs/deploy_lvr")
    return parser


def parse_args(argv=None) -> argparse.Namespace:
    """Parses and cross-checks the flags; every error exits before any work starts.

    Args:
      argv: the arguments; default ``sys.argv[1:]``.

    Returns:
      The namespace, with ``experiments``, ``clipping_modes`` and ``precisions`` de-duplicated
      and ``grid_variances`` filled in.

    Raises:
      SystemExit: for a bad flag (argparse's usage error, exit status 2).
    """
    from tfinverse.utils.cli import parse_common_args

    parser = build_parser()
    args = parse_common_args(parser, argv)
    args.experiments = list(dict.fromkeys(args.experiments))
    args.clipping_modes = list(dict.fromkeys(args.clipping_modes))
    args.precisions = list(dict.fromkeys(args.precisions))
    if len(set(args.variances)) != len(args.variances):
        parser.error(f"argument --variances: each variance at most once, got {args.variances}")
    if args.grid_images is None:
        args.grid_images = min(_DEFAULT_GRID_IMAGES, args.num_images)
    if args.grid_images > args.num_images:
        parser.error(f"argument --grid-images: at most --num-images ({args.num_images}), got {args.grid_images}")
    if args.grid_variances is None:
        count = min(_DEFAULT_GRID_VARIANCES, len(args.variances))
        picks = np.linspace(0, len(args.variances) - 1, count).round().astype(int)
        args.grid_variances = [args.variances[i] for i in dict.fromkeys(picks.tolist())]
    else:
        unknown = [v for v in args.grid_variances if v not in args.variances]
        if unknown:
            parser.error(f"argument --grid-variances: {unknown} not among --variances {args.variances}")
    return args


# ----------------------------------------------------------------------------- helpers
def sub_seed(seed: int, *keys: int) -> int:
    """An independent seed for one draw of the run, derived from ``--seed`` and ``keys``.

    Each draw has its own key path, so the numbers of one experiment do not depend on which
    other experiments run.

    Args:
      seed: the run's seed.
      *keys: non-negative integers naming the draw.

    Returns:
      An int in ``[0, 2**31 - 1)``.
    """
    state = np.random.SeedSequence([int(seed), *(int(k) for k in keys)]).generate_state(1)[0]
    return int(state % _MAX_SEED)


def best_latent_errors(result) -> np.ndarray:
    """Per vector, the smallest mean squared latent error over the descent, last iterate included.

    Args:
      result: an :class:`~tfinverse.inversion.base.InversionResult` of
        :func:`~tfinverse.inversion.lvr.recover_latents` run with ``z_true``.

    Returns:
      float64 ``[N]``.
    """
    history = np.asarray(result.extras["latent_error_history"], np.float64)
    final = np.asarray(result.extras["latent_error"], np.float64)
    return np.minimum(history.min(axis=0), final)


def success_rates(errors, precisions) -> dict:
    """Fraction of vectors whose error is strictly below each precision (the original's test).

    Args:
      errors: ``[N]`` mean squared latent errors.
      precisions: the thresholds.

    Returns:
      ``{precision: fraction}``.
    """
    errors = np.asarray(errors, np.float64)
    return {float(p): float(np.mean(errors < p)) for p in precisions}


def _success_column(precision: float) -> str:
    return f"success@{precision:.0e}"


def _generate(generator, z, call_kwargs) -> np.ndarray:
    import tensorflow as tf

    return np.asarray(generator(tf.constant(z, tf.float32), **call_kwargs), np.float32)


def _call_kwargs(args) -> dict:
    return {"batch_statistics": True} if args.batch_statistics else {}


def _descent_options(args) -> dict:
    return {
        "learning_rate": args.learning_rate,
        "lr_halving_steps": args.lr_halving_steps,
        "batch_statistics": True if args.batch_statistics else None,
        "progress": True,
        "jit_compile": args.jit_compile,
    }


def _bm3d_unavailable_reason(image_shape):
    """Why BM3D cannot run here, or None if it can."""
    height, width = image_shape[:2]
    if min(height, width) < 8 or (height, width) == (8, 8):
        return f"BM3D skipped: it needs images with both sides >= 8 pixels and not exactly 8x8, got {height}x{width}"
    try:
        import bm3d  # noqa: F401
    except ImportError:
        return "BM3D skipped: the bm3d package is not installed (pip install bm3d)"
    return None


def _json_ready(value):
    """Plain JSON values: numpy scalars and arrays converted, non-finite floats as strings."""
    if isinstance(value, dict):
        return {str(k): _json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_ready(v) for v in value]
    if isinstance(value, np.ndarray):
        return _json_ready(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _write_png_figure(figure, path: Path, overwrite: bool) -> Path:
    from tfinverse.utils.results import atomic_write_bytes

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite)


# ----------------------------------------------------------------------------- recovery
def _plot_recovery(path: Path, rows, curves, precisions, overwrite: bool) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(9.5, 3.6))
    for row in rows:
        rates = [100.0 * row[_success_column(p)] for p in precisions]
        left.plot(precisions, rates, marker="o", label=row["clipping"])
    left.set_xscale("log")
    left.invert_xaxis()  # finer precision to the right
    left.set_ylim(-5, 105)
    left.set_xlabel("precision (mean squared latent error)")
    left.set_ylabel("vectors recovered (%)")
    left.set_title("recovery success")
    left.grid(True, alpha=0.3)
    left.legend()
    for mode, curve in curves.items():
        right.plot(np.arange(1, len(curve) + 1), curve, label=mode)
    right.set_yscale("log")
    right.set_xlabel("iteration")
    right.set_ylabel("mean squared latent error")
    right.set_title("latent error along the descent (mean)")
    right.grid(True, alpha=0.3)
    right.legend()
    figure.tight_layout()
    try:
        return _write_png_figure(figure, path, overwrite)
    finally:
        plt.close(figure)


def run_recovery(generator, args, out: Path, writer=None, figure_failures=None) -> dict:
    """Recovers the latents of generated images with each clipping rule.

    The targets are the clean images, or with ``--recovery-noise-variance`` noisy copies
    (clipped to ``[0, 1]``; the paper's Table 1 setting), for which ``--early-stop-threshold``
    applies to the latent error as in the original's noisy runs. PSNR is always measured
    against the clean images.

    Args:
      generator: the prior.
      args: the parsed flags.
      out: the output folder.
      writer: optional TensorBoard writer for the latent-error curves.

    Returns:
      A summary for run.json (the table rows, last-iterate success rates, re-draw counts).
    """
    from tfinverse import metrics
    from tfinverse.inversion import lvr
    from tfinverse.operators.identity import Identity
    from tfinverse.utils.cli import summary_scalar
    from tfinverse.utils.results import atomic_write_bytes, npz_bytes, reported_figure, write_table

    call_kwargs = _call_kwargs(args)
    z_true = np.asarray(generator.sample_latent(args.num_images, np.random.default_rng(sub_seed(args.seed, 0))),
                        np.float32)
    clean = _generate(generator, z_true, call_kwargs)
    variance = args.recovery_noise_variance
    targets, early_stop = clean, None
    if variance > 0:
        import tensorflow as tf

        from tfinverse.operators.noise import GaussianNoise

        sigma = lvr.noise_sigma_from_variance(variance)
        targets = np.asarray(GaussianNoise(sigma=sigma, clip=True)(tf.constant(clean), sub_seed(args.seed, 6)),
                             np.float32)
        early_stop = args.early_stop_threshold or None
    operator = Identity(image_shape=tuple(generator.output_shape))
    descent_seed = sub_seed(args.seed, 1)  # one seed for every rule: the same initial guesses
    rows, curves, details = [], {}, {}
    arrays = {"z_true": z_true, "clean": clean, "targets": targets}
    for mode in args.clipping_modes:
        print(f"recovery: {mode} clipping, {args.num_images} vectors, {args.recovery_iterations} iterations, "
              f"noise variance {variance:g}", flush=True)
        result = lvr.recover_latents(
            generator, operator, targets, clipping=mode, iterations=args.recovery_iterations, z_true=z_true,
            early_stop_threshold=early_stop, seed=descent_seed, **_descent_options(args),
        )
        best = best_latent_errors(result)
        rates = success_rates(best, args.precisions)
        final_rates = lvr.recovery_success_rate(z_true, result.latents, args.precisions)
        x_hat = np.clip(result.x_hat, 0.0, 1.0)
        row = {"clipping": mode}
        row.update({_success_column(p): rate for p, rate in rates.items()})
        row.update({
            "mean_latent_mse": float(np.mean(result.extras["latent_error"])),
            "mean_residual": float(np.mean(result.best_objective)),
            "psnr_db": float(metrics.dataset_psnr(clean, x_hat)),
            "seconds_per_image": result.seconds_per_image,
            "noise_variance": variance,
            "iterations": args.recovery_iterations,
            "images": args.num_images,
        })
        rows.append(row)
        curve = np.asarray(result.extras["latent_error_history"], np.float64).mean(axis=1)
        curves[mode] = curve
        details[mode] = {
            "last_iterate_success_rates": {f"{p:g}": r for p, r in final_rates.items()},
            "best_latent_mse": best.tolist(),
            "redrawn_components": np.asarray(result.extras["redrawn"]).tolist(),
            "early_stop_iteration": result.extras["early_stop_iteration"],
            "seconds": result.seconds,
        }
        arrays[f"{mode}_z_hat"] = np.asarray(result.latents, np.float32)
        arrays[f"{mode}_x_hat"] = x_hat
        arrays[f"{mode}_best_latent_mse"] = best
        arrays[f"{mode}_residual"] = np.asarray(result.best_objective, np.float32)
        if writer is not None:
            with writer.as_default():
                for step in range(0, len(curve), max(1, len(curve) // 200)):
                    summary_scalar(f"recovery/{mode}/mean_latent_mse", curve[step], step=step)
    columns = ["clipping", *(_success_column(p) for p in args.precisions), "mean_latent_mse", "mean_residual",
               "psnr_db", "seconds_per_image", "noise_variance", "iterations", "images"]
    floatfmt = {_success_column(p): ".2f" for p in args.precisions}
    floatfmt.update({"mean_latent_mse": ".3g", "mean_residual": ".3g", "psnr_db": ".2f", "seconds_per_image": ".3f",
                     "noise_variance": "g"})
    table = write_table(out, "recovery", rows, columns=columns, floatfmt=floatfmt, overwrite=args.overwrite)
    print(table, flush=True)
    # Why recovery succeeds or not: the spectrum of dG/dz at the true latents.
    conditioning = lvr.latent_conditioning(generator, z_true, call_kwargs)
    arrays["jacobian_singular_values"] = conditioning["singular_values"].astype(np.float32)
    condition = {
        "median_condition_number": float(np.median(conditioning["condition_number"])),
        "min_condition_number": float(np.min(conditioning["condition_number"])),
        "max_condition_number": float(np.max(conditioning["condition_number"])),
        "median_fraction_of_singular_values_below_10_percent": float(
            np.median(conditioning["small_singular_fraction"])),
        "latent_dim": int(conditioning["singular_values"].shape[1]),
    }
    print(f"Jacobian dG/dz at the true latents: condition number median {condition['median_condition_number']:.1f} "
          f"(range {condition['min_condition_number']:.1f}-{condition['max_condition_number']:.1f}); median "
          f"{100 * condition['median_fraction_of_singular_values_below_10_percent']:.0f} % of the "
          f"{condition['latent_dim']} singular values below 10 % of the largest", flush=True)
    atomic_write_bytes(out / "recovery_latents.npz", npz_bytes(arrays), overwrite=args.overwrite)
    with reported_figure(out / "recovery.png", figure_failures):
        _plot_recovery(out / "recovery.png", rows, curves, args.precisions, args.overwrite)
    return {"rows": rows, "details": details, "conditioning": condition}


# ----------------------------------------------------------------------------- denoising
def _scores(clean, estimate):
    from tfinverse import metrics

    return float(metrics.dataset_psnr(clean, estimate)), float(np.mean(metrics.ssim(clean, estimate)))


def _estimate_attribute(generator, sigma, variance, args, k, out: Path) -> dict:
    """Estimates, saves and reloads the attribute of one noise level; returns its summary."""
    from tfinverse.inversion import lvr

    seed = sub_seed(args.seed, 4, k)
    started = time.perf_counter()
    attribute, details = lvr.estimate_sharpness_attribute(
        generator, sigma, n=args.sa_images, seed=seed, iterations=args.denoise_iterations,
        early_stop_threshold=args.early_stop_threshold or None, return_details=True, **_descent_options(args),
    )
    seconds = time.perf_counter() - started
    result = details["result"]
    difference = details["z_true"] - result.latents
    # The attribute is a mean of n differences; their spread alone gives it this expected norm.
    if args.sa_images > 1:
        sampling_noise_norm = float(np.sqrt(np.sum(np.var(difference, axis=0, ddof=1)) / args.sa_images))
    else:
        sampling_noise_norm = float("nan")
    path = out / "attributes" / f"sharpness_attribute_var{variance:g}.npz"
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and args.overwrite:
        path.unlink()  # save_attribute never replaces a file; --overwrite allows it here
    metadata = {
        "noise_variance": variance, "noise_sigma_unit_range": sigma, "images": args.sa_images, "seed": seed,
        "iterations": args.denoise_iterations, "learning_rate": args.learning_rate, "prior": args.prior,
        "early_stop_iteration": result.extras["early_stop_iteration"],
        "mean_latent_mse": float(np.mean(result.extras["latent_error"])),
    }
    lvr.save_attribute(path, attribute, metadata)
    loaded, _ = lvr.load_attribute(path)
    call_kwargs = _call_kwargs(args)
    same_lvr = np.clip(np.asarray(result.x_hat), 0.0, 1.0)
    same_sa = _generate(generator, lvr.apply_sharpness_attribute(result.latents, loaded), call_kwargs)
    return {
        "attribute": loaded,
        "path": path,
        "seconds": seconds,
        "attribute_norm": float(np.linalg.norm(loaded)),
        "sampling_noise_norm": sampling_noise_norm,
        "sa_latent_mse": metadata["mean_latent_mse"],
        "psnr_same_lvr": _scores(details["clean"], same_lvr)[0],
        "psnr_same_lvr_sa": _scores(details["clean"], np.clip(same_sa, 0.0, 1.0))[0],
    }


def _denoise_set(generator, clean, sigma, attribute, bm3d_note, args, noise_seed, lvr_seed) -> dict:
    """Noisy input, BM3D, LVR and LVR-SA estimates of one image set at one noise level."""
    import tensorflow as tf

    from tfinverse.inversion import baselines, lvr
    from tfinverse.operators.noise import GaussianNoise

    # The original clipped noisy images to the valid range.
    noisy = np.asarray(GaussianNoise(sigma=sigma, clip=True)(tf.constant(clean), noise_seed), np.float32)
    estimates, seconds = {"noisy": noisy}, {}
    if bm3d_note is None:
        result = baselines.bm3d_denoise(noisy, sigma, progress=False)
        estimates["bm3d"], seconds["bm3d"] = np.clip(result.x_hat, 0.0, 1.0), result.seconds_per_image
    result = lvr.denoise_by_projection(
        generator, noisy, iterations=args.denoise_iterations, seed=lvr_seed,
        early_stop_threshold=args.early_stop_threshold or None, **_descent_options(args),
    )
    estimates["lvr"], seconds["lvr"] = np.clip(result.x_hat, 0.0, 1.0), result.seconds_per_image
    # LVR-SA adds the attribute to the latents LVR recovered (the paper's procedure), so both
    # share one descent.
    started = time.perf_counter()
    shifted = lvr.apply_sharpness_attribute(result.latents, attribute)
    estimates["lvr_sa"] = np.clip(_generate(generator, shifted, _call_kwargs(args)), 0.0, 1.0)
    seconds["lvr_sa"] = seconds["lvr"] + (time.perf_counter() - started) / len(clean)
    return {"estimates": estimates, "seconds": seconds, "latents": np.asarray(result.latents, np.float32),
            "early_stop_iteration": result.extras["early_stop_iteration"]}


def _save_grid(path: Path, clean, per_variance, grid_variances, grid_images, overwrite: bool) -> Path:
    from tfinverse import metrics
    from tfinverse.utils.results import save_image_grid

    methods = [m for m in DENOISERS if any(m in per_variance[v]["estimates"] for v in grid_variances)]
    # Evenly spaced picks, so that a class-ordered set shows different digits.
    picks = sorted(set(np.linspace(0, len(clean) - 1, grid_images).round().astype(int).tolist()))
    rows, labels, captions = [], [], []
    for variance in grid_variances:
        estimates = per_variance[variance]["estimates"]
        for i in picks:
            row, caption = [clean[i]], [""]
            for method in methods:
                image = estimates.get(method)
                row.append(None if image is None else image[i])
                value = None if image is None else float(metrics.psnr(clean[i:i + 1], image[i:i + 1])[0])
                caption.append("" if value is None else f"PSNR {value:.2f}")
            rows.append(row)
            captions.append(caption)
            labels.append(f"var {variance:g}")
    return save_image_grid(path, rows, row_labels=labels, col_labels=["clean"] + [_GRID_TITLES[m] for m in methods],
                           captions=captions, overwrite=overwrite)


def run_denoising(generator, real, args, out: Path, writer=None, figure_failures=None) -> dict:
    """Denoises generated and real images at every noise variance with BM3D, LVR and LVR-SA.

    Args:
      generator: the prior.
      real: held-out real images ``[num_images, *generator.output_shape]``.
      args: the parsed flags.
      out: the output folder.
      writer: optional TensorBoard writer for the PSNRs.

    Returns:
      A summary for run.json (both tables, timings, notes, attribute files).
    """
    from tfinverse.inversion import lvr
    from tfinverse.utils.cli import progress, summary_scalar
    from tfinverse.utils.results import atomic_write_bytes, npz_bytes, reported_figure, write_table

    bm3d_note = _bm3d_unavailable_reason(generator.output_shape)
    if bm3d_note:
        print(bm3d_note, flush=True)
    z_gen = np.asarray(generator.sample_latent(args.num_images, np.random.default_rng(sub_seed(args.seed, 2))),
                       np.float32)
    clean_sets = {"gen": _generate(generator, z_gen, _call_kwargs(args)), "real": real}
    arrays = {"variances": np.asarray(args.variances, np.float64), "gen_z_true": z_gen}
    arrays.update({f"{name}_clean": images for name, images in clean_sets.items()})
    rows, sharpness_rows, per_set = [], [], {name: {} for name in IMAGE_SETS}
    seconds = {name: {} for name in IMAGE_SETS}
    for k, variance in enumerate(progress(args.variances, desc="noise variances")):
        sigma = lvr.noise_sigma_from_variance(variance)
        print(f"denoising: variance {variance:g} (sigma {sigma:.4f} on [0, 1]); attribute from "
              f"{args.sa_images} generated images", flush=True)
        attribute = _estimate_attribute(generator, sigma, variance, args, k, out)
        row = {"variance": variance, "sigma": sigma}
        ssim_row = {}
        for j, (name, clean) in enumerate(clean_sets.items()):
            outcome = _denoise_set(generator, clean, sigma, attribute["attribute"], bm3d_note, args,
                                   noise_seed=sub_seed(args.seed, 3, k, j), lvr_seed=sub_seed(args.seed, 5, k, j))
            per_set[name][variance] = outcome
            arrays[f"{name}_v{k}_lvr_latents"] = outcome["latents"]
            for method in DENOISERS:
                estimate = outcome["estimates"].get(method)
                psnr, ssim = (None, None) if estimate is None else _scores(clean, estimate)
                row[f"psnr_{name}_{method}"] = psnr
                ssim_row[f"ssim_{name}_{method}"] = ssim
                if estimate is not None:
                    arrays[f"{name}_v{k}_{method}"] = estimate
                    if writer is not None:
                        with writer.as_default():
                            summary_scalar(f"denoising/{name}/{method}_psnr", psnr, step=k)
            for method, value in outcome["seconds"].items():
                seconds[name].setdefault(method, []).append(value)
        row.update(ssim_row)
        if bm3d_note:
            row["note"] = bm3d_note
        rows.append(row)
        sharpness_rows.append({
            "variance": variance,
            "attribute_norm": attribute["attribute_norm"],
            "sampling_noise_norm": attribute["sampling_noise_norm"],
            "sa_latent_mse": attribute["sa_latent_mse"],
            "psnr_same_lvr": attribute["psnr_same_lvr"],
            "psnr_same_lvr_sa": attribute["psnr_same_lvr_sa"],
            "psnr_different_lvr": row["psnr_gen_lvr"],
            "psnr_different_lvr_sa": row["psnr_gen_lvr_sa"],
            "psnr_real_lvr": row["psnr_real_lvr"],
            "psnr_real_lvr_sa": row["psnr_real_lvr_sa"],
            "estimation_seconds": attribute["seconds"],
            "file": str(attribute["path"].relative_to(out)),
        })

    columns = ["variance", "sigma"]
    columns += [f"{metric}_{name}_{method}"
                for metric in ("psnr", "ssim") for name in IMAGE_SETS for method in DENOISERS]
    if bm3d_note:
        columns.append("note")
    floatfmt = {c: (".2f" if c.startswith("psnr") else ".3f") for c in columns}
    floatfmt.update({"variance": "g", "sigma": ".4f"})
    table = write_table(out, "denoising", rows, columns=columns, floatfmt=floatfmt, overwrite=args.overwrite)
    print(table, flush=True)
    sharpness_format = {c: ".2f" for c in sharpness_rows[0] if c.startswith("psnr")}
    sharpness_format.update({"variance": "g", "attribute_norm": ".3f", "sampling_noise_norm": ".3f",
                             "sa_latent_mse": ".3f", "estimation_seconds": ".1f"})
    sharpness = write_table(out, "sharpness", sharpness_rows, floatfmt=sharpness_format, overwrite=args.overwrite)
    print(sharpness, flush=True)
    atomic_write_bytes(out / "denoising_arrays.npz", npz_bytes(arrays), overwrite=args.overwrite)
    if args.grid_images:
        for name, clean in clean_sets.items():
            with reported_figure(out / f"denoising_{name}.png", figure_failures):
                _save_grid(out / f"denoising_{name}.png", clean, per_set[name], args.grid_variances,
                           args.grid_images, args.overwrite)
    return {
        "rows": rows,
        "sharpness": sharpness_rows,
        "seconds_per_image": {name: {m: float(np.mean(v)) for m, v in by_method.items()}
                              for name, by_method in seconds.items()},
        "early_stop_iterations": {name: {f"{v:g}": outcome["early_stop_iteration"] for v, outcome in by_var.items()}
                                  for name, by_var in per_set.items()},
        "bm3d_note": bm3d_note,
    }


# ----------------------------------------------------------------------------- main
def _supports_batch_statistics(generator) -> bool:
    import inspect

    try:
        return "batch_statistics" in inspect.signature(generator.__call__).parameters
    except (TypeError, ValueError):
        return False


def main(argv=None) -> int:
    """Parses the flags, runs the selected experiments and writes the results.

    Args:
      argv: the arguments; default ``sys.argv[1:]``.

    Returns:
      0 on success.

    Raises:
      SystemExit: for bad flags, a prior that cannot be loaded, too few real images or an
        output folder that is not empty without ``--overwrite``; all before any descent runs.
    """
    started = time.perf_counter()
    args = parse_args(argv)
    from tfinverse.utils.precision import precision_policy

    # Networks built in the run (DIP, IAGAN copies, Keras priors) take the policy.
    with precision_policy(args.precision):
        from tfinverse.pretrained import load_prior
        from tfinverse.utils.cli import output_dir_or_exit, set_global_seed, summary_writer
        from tfinverse.utils.results import atomic_write_text

        try:
            generator = load_prior(args.prior)
        except (FileNotFoundError, KeyError, ValueError) as error:
            raise SystemExit(f"error: --prior: {error}") from None
        if args.batch_statistics and not _supports_batch_statistics(generator):
            raise SystemExit(f"error: --batch-statistics: the prior ({type(generator).__name__}) has no batch-statistics "
                             "mode; use a DCGANGenerator or leave the flag off")
        real = None
        if "denoising" in args.experiments:
            from tfinverse import data

            real = data.held_out_images(args.images, args.num_images, generator.output_shape, args.data_dir)
        out = output_dir_or_exit(args)
        set_global_seed(args.seed)
        writer = summary_writer(args.log_dir)
        print(f"prior {args.prior}: latent {generator.latent_dim} ({generator.latent_distribution}), images "
              f"{tuple(generator.output_shape)}; experiments: {', '.join(args.experiments)}", flush=True)

        report = {
            "command": " ".join([_SCRIPT_NAME, *(argv if argv is not None else sys.argv[1:])]),
            "settings": {key: value for key, value in vars(args).items()},
            "prior": {"name_or_path": args.prior, "latent_dim": generator.latent_dim,
                      "latent_distribution": generator.latent_distribution,
                      "image_shape": list(generator.output_shape)},
            "psnr": "dataset PSNR 10 log10(1 / mean MSE) on [0, 1] images, estimates clipped to [0, 1]",
            "notes": [],
            "versions": {"python": platform.python_version(), "numpy": np.__version__},
        }
        import tensorflow as tf

        report["versions"]["tensorflow"] = tf.__version__
        if not args.batch_statistics:
            report["notes"].append("generator batch norm uses its moving averages (the original used the batch's "
                                   "statistics; see --batch-statistics)")
        if "recovery" in args.experiments:
            t0 = time.perf_counter()
            report["recovery"] = run_recovery(generator, args, out, writer, report["notes"])
            report["recovery"]["wall_time_seconds"] = round(time.perf_counter() - t0, 2)
            report["recovery"]["success"] = ("a vector counts as recovered at precision p once its mean squared "
                                             "component error is below p at some iteration")
        if "denoising" in args.experiments:
            t0 = time.perf_counter()
            report["denoising"] = run_denoising(generator, real, args, out, writer, report["notes"])
            report["denoising"]["wall_time_seconds"] = round(time.perf_counter() - t0, 2)
            report["denoising"]["real_images"] = args.images
            if report["denoising"]["bm3d_note"]:
                report["notes"].append(report["denoising"]["bm3d_note"])
        writer.flush()
        report["wall_time_seconds"] = round(time.perf_counter() - started, 2)
        atomic_write_text(out / "run.json", json.dumps(_json_ready(report), indent=2, allow_nan=False) + "\n",
                          overwrite=args.overwrite)
        print(f"wrote {', '.join(f'{e}.csv|json|md' for e in args.experiments)}, PNGs and run.json to {out} "
              f"in {report['wall_time_seconds']:.0f} s", flush=True)
        return 0


if __name__ == "__main__":
    from tfinverse.utils.cli import run_script

    sys.exit(run_script(main))
