#!/usr/bin/env python
"""Super-resolves vertically misaligned images: the IAGAN paper's mode-collapse demonstration.

Held-out images are moved down by s pixels, downscaled 4x with the bicubic kernel (without
noise by default) and recovered by CSGM and IAGAN (the method runner of deploy_iagan.py,
``tfinverse.evaluation.iagan.run_task``), with bicubic up-sampling as the baseline. Scores
are against the shifted image, which is the image being measured. The paper (BEGAN, 100
CelebA images, "vertically translated by a few pixels", shift not published) reports PSNR
19.18 dB for CSGM and 26.73 dB for IAGAN: CSGM suffers from what the prior cannot
represent, IAGAN is robust.

The shift is a translation with zero fill by default (rows that leave at the bottom are
dropped, the rows that enter at the top are 0, the MNIST background); ``--fill roll`` wraps
them around instead. The paper does not say which it used.

With no arguments it runs the shipped MNIST DCGAN prior on 16 held-out MNIST-5000 digits
(evenly spaced through the test split) at shifts of 0 to 4 pixels. Every shift uses the same
``--seed``, so CSGM starts from the same latents and only the shift changes.

It writes into ``--out``::

    results.csv|json|md   per shift and method: the papers' dataset PSNR
                          10 log10(1 / mean MSE), per-image PSNR mean and standard deviation
                          (ddof 1), mean MSE per pixel, mean SSIM, seconds per image
    misaligned_sr.png     rows = shift (x --grid-images examples): shifted original,
                          low-res observation, then every method with its PSNR
    psnr_vs_shift.png     dataset PSNR against the shift, one line per method
    estimates.npz         per shift s: "x@s" (shifted originals), "y@s" (observations),
                          "pinv@s" (A^+ y) and "<method>@s" (estimates), [N, H, W, C]
    logs/                 TensorBoard scalars psnr/<method>, step = shift
    run.json              command, settings, prior, wall times

Flags ("paper" is the IAGAN paper's BEGAN setting; "shortened" marks a budget cut so that
the default runs in a few minutes on 2 CPU cores):

| flag                 | default              | help                                                                                                                                                                                                                                                                                                                                                                                          |
| -------------------- | -------------------- | --------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------- |
| `--shifts`           | `0 1 2 3 4`          | vertical shifts, in pixels downwards (paper: "a few pixels", not published)                                                                                                                                                                                                                                                                                                                   |
| `--fill`             | `zero`               | rows entering at the top: zero (a translation) or roll (wrapped); not published (one of: zero, roll)                                                                                                                                                                                                                                                                                          |
| `--factor`           | `4`                  | super-resolution scale factor (paper: 4)                                                                                                                                                                                                                                                                                                                                                      |
| `--noise`            | `0.0`                | Gaussian noise sigma, [0, 1] image units (paper: none); with noise IAGAN runs half its steps, no BP                                                                                                                                                                                                                                                                                           |
| `--methods`          | `bicubic csgm iagan` | methods (paper: bicubic, CSGM, IAGAN) (one of: bicubic, csgm, csgm-bp, iagan, iagan-bp)                                                                                                                                                                                                                                                                                                       |
| `--grid-images`      | `2`                  | images shown per shift in misaligned_sr.png, evenly spaced through the set                                                                                                                                                                                                                                                                                                                    |
| `--prior`            | `dcgan_mnist28`      | a shipped prior's name, or a SavedModel / TF-Hub-format directory / .keras / .pth                                                                                                                                                                                                                                                                                                             |
| `--images`           | `mnist5k`            | a registered dataset (its held-out test split) or a folder of images                                                                                                                                                                                                                                                                                                                          |
| `--num-images`       | `16`                 | held-out images, evenly spaced through the split (paper: 100 CelebA images; shortened)                                                                                                                                                                                                                                                                                                        |
| `--csgm-iterations`  | `500`                | CSGM Adam steps (paper: 1600; shortened)                                                                                                                                                                                                                                                                                                                                                      |
| `--csgm-lr`          | `0.1`                | CSGM learning rate (paper: 0.1)                                                                                                                                                                                                                                                                                                                                                               |
| `--restarts`         | `5`                  | CSGM random restarts, the best kept (IAGAN original code: 5; the paper does not say)                                                                                                                                                                                                                                                                                                          |
| `--iagan-iterations` | `500`                | IAGAN joint steps without noise (paper: 500 for super-resolution)                                                                                                                                                                                                                                                                                                                             |
| `--iagan-lr-z`       | `0.0001`             | IAGAN latent learning rate (paper: 1e-4)                                                                                                                                                                                                                                                                                                                                                      |
| `--iagan-lr-theta`   | `0.0001`             | IAGAN weight learning rate (paper: 1e-4 with BEGAN)                                                                                                                                                                                                                                                                                                                                           |
| `--jit-compile`      | `off`                | compile the optimisation steps with XLA (for GPUs; slower on CPUs)                                                                                                                                                                                                                                                                                                                            |
| `--preset`           | `flags`              | iteration counts and learning rates: from these flags, or the paper's per task for its BEGAN or PGGAN prior (no paper setting for deblurring: the flags' then) (one of: flags, paper-began, paper-pggan)                                                                                                                                                                                      |
| `--precision`        | `float32`            | numeric precision: float32, or 16-bit compute with float32 variables (mixed_bfloat16 is ~4x faster on CPUs with AMX-BF16; float16 is for GPUs, with loss scaling); applies to the networks the run builds (DIP; the prior and IAGAN's weight copies: a shipped prior is rebuilt as its Keras network, another SavedModel prior computes as it was saved) (one of: float32, bfloat16, float16) |
| `--noise-convention` | `image`              | what a task's noise=sigma means: sigma on [0, 1] images (image), or the IAGAN code's sigma on [-1, 1] images, i.e. sigma/2 on [0, 1] (original; the paper's tables) (one of: image, original)                                                                                                                                                                                                 |
| `--out`              | `runs/misaligned_sr` | output folder for images, tables and checkpoints                                                                                                                                                                                                                                                                                                                                              |
| `--seed`             | `0`                  | random seed of every draw in the run                                                                                                                                                                                                                                                                                                                                                          |
| `--data-dir`         |                      | folder of local dataset copies (default: $TFINVERSE_DATA_DIR, else each loader's own default)                                                                                                                                                                                                                                                                                                 |
| `--log-dir`          |                      | TensorBoard log folder (default: <out>/logs)                                                                                                                                                                                                                                                                                                                                                  |
| `--overwrite`        | `off`                | write into a non-empty output folder and replace existing files                                                                                                                                                                                                                                                                                                                               |
| `--quiet`            | `off`                | no progress bars                                                                                                                                                                                                                                                                                                                                                                              |
| `--verbose`          | `off`                | show TensorFlow's start-up log                                                                                                                                                                                                                                                                                                                                                                |
| `--debug`            | `off`                | show the full traceback of an error                                                                                                                                                                                                                                                                                                                                                           |

Examples::

    python scripts/misaligned_sr.py
    python scripts/misaligned_sr.py --shifts 0 2 4 6 --fill roll --noise 0.0392 --out runs/misaligned_noisy
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np

__all__ = [
    "METHODS",
    "DEFAULT_METHODS",
    "DEFAULT_SHIFTS",
    "FILLS",
    "shift_vertically",
    "shift_pixels",
    "noise_level",
    "build_parser",
    "plot_psnr_vs_shift",
    "main",
]

#: Methods the script can run (bicubic is the baseline; BP variants only without noise).
METHODS = ("bicubic", "csgm", "csgm-bp", "iagan", "iagan-bp")
#: The paper's comparison: bicubic, CSGM and IAGAN.
DEFAULT_METHODS = ("bicubic", "csgm", "iagan")
#: Default vertical shifts in pixels.
DEFAULT_SHIFTS = (0, 1, 2, 3, 4)
#: How the rows that leave the image are handled.
FILLS = ("zero", "roll")
_LEGEND = {"bicubic": "bicubic", "csgm": "CSGM", "csgm-bp": "CSGM-BP", "iagan": "IAGAN", "iagan-bp": "IAGAN-BP"}
_STYLE = {
    "bicubic": {"color": "0.55", "linestyle": "--", "marker": "^"},
    "csgm": {"color": "tab:blue", "linestyle": "-", "marker": "o"},
    "csgm-bp": {"color": "tab:blue", "linestyle": ":", "marker": "s"},
    "iagan": {"color": "tab:red", "linestyle": "-", "marker": "o"},
    "iagan-bp": {"color": "tab:red", "linestyle": ":", "marker": "s"},
}


def shift_vertically(images, pixels: int, fill: str = "zero") -> np.ndarray:
    """Moves images down by ``pixels`` rows.

    Args:
      images: ``[batch, height, width, channels]``.
      pixels: rows to move down, ``0 <= pixels < height`` (0 returns a copy).
      fill: ``"zero"``: a translation; the bottom ``pixels`` rows are dropped and the top
        ``pixels`` rows become 0. ``"roll"``: the bottom rows re-enter at the top.

    Returns:
      The shifted images, same shape and dtype.

    Raises:
      ValueError: for images that are not rank 4, a shift outside ``[0, height)``, or an
        unknown ``fill``.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must have shape [batch, height, width, channels], got {list(images.shape)}")
    height = images.shape[1]
    if isinstance(pixels, bool) or int(pixels) != pixels or not 0 <= int(pixels) < height:
        raise ValueError(f"the shift must be an integer number of pixels in [0, {height}), got {pixels!r}")
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {', '.join(FILLS)}, got {fill!r}")
    pixels = int(pixels)
    if fill == "roll":
        return np.roll(images, pixels, axis=1)
    shifted = np.zeros_like(images)
    shifted[:, pixels:] = images[:, :height - pixels]
    return shifted


def shift_pixels(text: str) -> int:
    """Parses one ``--shifts`` value: a non-negative integer.

    Args:
      text: the command-line text.

    Returns:
      The shift in pixels.

    Raises:
      argparse.ArgumentTypeError: for anything else.
    """
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a shift must be a whole number of pixels, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"a shift must be a non-negative number of pixels (downwards), got {value}")
    return value


def noise_level(text: str) -> float:
    """Parses ``--noise``: a Gaussian noise standard deviation in [0, 1] image units.

    Args:
      text: the command-line text.

    Returns:
      The standard deviation.

    Raises:
      argparse.ArgumentTypeError: for anything else.
    """
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"the noise level must be a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"the noise level must be in [0, 1] (image units), got {text}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The script's command-line flags (the table in the module docstring lists them)."""
    from tfinverse.tasks.iagan import add_inversion_flags
    from tfinverse.utils.cli import add_common_flags, docstring_parser, positive_int

    parser = docstring_parser(__doc__)
    parser.add_argument("--shifts", nargs="+", type=shift_pixels, default=list(DEFAULT_SHIFTS), metavar="PIXELS",
                        help="vertical shifts, in pixels downwards (paper: \"a few pixels\", not published)")
    parser.add_argument("--fill", default="zero", choices=FILLS,
                        help="rows entering at the top: zero (a translation) or roll (wrapped); not published")
    parser.add_argument("--factor", type=positive_int, default=4, help="super-resolution scale factor (paper: 4)")
    parser.add_argument("--noise", type=noise_level, default=0.0,
                        help="Gaussian noise sigma, [0, 1] image units (paper: none); with noise IAGAN runs "
                             "half its steps, no BP")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=METHODS,
                        help="methods (paper: bicubic, CSGM, IAGAN)")
    parser.add_argument("--grid-images", type=positive_int, default=2,
                        help="images shown per shift in misaligned_sr.png, evenly spaced through the set")
    add_inversion_flags(
        parser,
        num_images=16,
        num_images_help="held-out images, evenly spaced through the split (paper: 100 CelebA images; shortened)",
        iagan_iterations=500,
        iagan_iterations_help="IAGAN joint steps without noise (paper: 500 for super-resolution)",
    )
    add_common_flags(parser, out_default="runs/misaligned_sr")
    return parser


def plot_psnr_vs_shift(rows, title: str) -> bytes:
    """Dataset PSNR against the shift, one line per method, as PNG bytes.

    Args:
      rows: the table rows (``shift``, ``method``, ``dataset_psnr_db``).
      title: the figure title.

    Returns:
      The PNG file content.
    """
    # Object-oriented matplotlib: no pyplot state, no global backend change.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(4.4, 3.2), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    for method in dict.fromkeys(row["method"] for row in rows):
        points = sorted((row["shift"], row["dataset_psnr_db"]) for row in rows if row["method"] == method)
        shifts, values = zip(*points)
        axes.plot(shifts, values, label=_LEGEND.get(method, method), markersize=4, linewidth=1.4,
                  **_STYLE.get(method, {}))
    axes.set_xlabel("vertical shift (pixels)")
    axes.set_ylabel("PSNR (dB)")
    axes.set_xticks(sorted({row["shift"] for row in rows}))
    axes.set_title(title, fontsize=9)
    axes.grid(True, linewidth=0.3, alpha=0.6)
    axes.legend(fontsize=8, loc="best")
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def main(argv=None) -> int:
    """Runs the experiment as the flags say and writes its outputs.

    Args:
      argv: the command line without the program name; default ``sys.argv[1:]``.

    Returns:
      0 on success. Bad flags exit with a message before any output is written.
    """
    started = time.perf_counter()
    from tfinverse.utils.cli import (
        output_dir_or_exit, parse_common_args, progress, set_global_seed, summary_scalar, summary_writer,
    )

    parser = build_parser()
    args = parse_common_args(parser, argv)  # before anything heavy: --help and flag errors answer at once
    from tfinverse.utils.precision import precision_policy

    # Networks built in the run (DIP, IAGAN copies, Keras priors) take the policy.
    with precision_policy(args.precision):
        import tensorflow as tf

        import tfinverse.operators as ops
        from tfinverse import data, metrics
        from tfinverse.evaluation.iagan import error_summary, run_task, write_task_summaries
        from tfinverse.tasks.iagan import InversionTask
        from tfinverse.pretrained import load_prior
        from tfinverse.utils.results import (
            atomic_write_bytes, atomic_write_text, npz_bytes, reported_figure, save_image_grid, write_table,
        )

        if len(set(args.shifts)) != len(args.shifts):
            parser.error(f"argument --shifts: each shift may appear once, got {args.shifts}")
        args.shifts = sorted(args.shifts)
        args.methods = [m for m in METHODS if m in args.methods]  # a fixed column order, no repeats
        generator = load_prior(args.prior)
        shape = tuple(generator.output_shape)
        if args.shifts[-1] >= shape[0]:
            raise SystemExit(f"error: --shifts: a shift must be smaller than the image height {shape[0]}, "
                             f"got {args.shifts[-1]}")
        try:
            operator = ops.get("super_resolution", image_shape=shape, factor=args.factor, seed=args.seed)
        except ValueError as error:
            raise SystemExit(f"error: --factor: {error}") from None
        set_global_seed(args.seed)
        x = data.held_out_images(args.images, args.num_images, shape, args.data_dir)
        out = output_dir_or_exit(args)
        noisy = args.noise > 0
        # Held-out sets are often ordered by class: spread the grid's examples over the whole set.
        grid_picks = np.unique(np.linspace(0, len(x) - 1, min(args.grid_images, len(x))).round().astype(int))
        shown = [m for m in args.methods if not (noisy and m.endswith("-bp"))]  # BP is noiseless only
        print(f"prior {args.prior}: latent {generator.latent_dim} ({generator.latent_distribution}), images {shape}; "
              f"{len(x)} held-out images from {args.images}; SR x{args.factor}, noise {args.noise:g}, "
              f"shifts {' '.join(map(str, args.shifts))} ({args.fill} fill)")

        rows, grid, row_labels, captions, timings = [], [], [], [], []
        arrays = {"shifts": np.asarray(args.shifts)}
        writer = summary_writer(args.log_dir)
        spec = InversionTask("sr", "super_resolution", {"factor": args.factor}, args.noise)
        for shift in progress(args.shifts, desc="shift"):
            shift_started = time.perf_counter()
            x_shifted = shift_vertically(x, shift, args.fill)
            outcome = run_task(generator, spec, x_shifted, args, seed=args.seed)
            results = outcome.by_method()
            write_task_summaries(writer, shift, f"shift_{shift}", outcome)
            # The observation the methods saw, measured as run_task measures it.
            y = operator(tf.constant(x_shifted))
            if noisy:
                y = ops.get_noise("gaussian", sigma=args.noise)(y, seed=args.seed)
            y = np.asarray(y, np.float32)
            arrays.update({f"x@{shift}": x_shifted, f"y@{shift}": y, f"pinv@{shift}": results["pinv"][1]})
            for method in shown:
                method_row, estimate = results[method]
                arrays[f"{method}@{shift}"] = estimate.astype(np.float32)
                row = {"shift": shift, "method": method}
                summary = error_summary(x_shifted, estimate)
                row.update({key: summary[key] for key in ("dataset_psnr_db", "psnr_mean_db", "psnr_std_db", "mse_mean")})
                row.update(ssim=method_row["ssim"], seconds_per_image=method_row["seconds_per_image"], images=len(x))
                rows.append(row)
                with writer.as_default():
                    summary_scalar(f"psnr/{method}", row["dataset_psnr_db"], step=shift)
            for i in grid_picks:
                estimates = [arrays[f"{method}@{shift}"][i] for method in shown]
                grid.append([x_shifted[i], np.clip(y[i], 0.0, 1.0)] + estimates)
                row_labels.append(f"shift {shift}" + (f" #{i}" if len(grid_picks) > 1 else ""))
                captions.append(["", ""] + [f"{float(metrics.psnr(x_shifted[i:i + 1], e[None])[0]):.2f} dB"
                                            for e in estimates])
            timings.append({"shift": shift, "seconds": round(time.perf_counter() - shift_started, 3)})
            done = {r["method"]: r["dataset_psnr_db"] for r in rows if r["shift"] == shift}
            print(f"shift {shift}: " + ", ".join(f"{m} {v:.2f} dB" for m, v in done.items()), flush=True)
        writer.flush()

        table = write_table(out, "results", rows, floatfmt={
            "dataset_psnr_db": ".2f", "psnr_mean_db": ".2f", "psnr_std_db": ".2f", "mse_mean": ".3e", "ssim": ".3f",
            "seconds_per_image": ".2f"}, overwrite=args.overwrite)
        atomic_write_bytes(out / "estimates.npz", npz_bytes(arrays), overwrite=args.overwrite)
        report = {
            "command": " ".join(["misaligned_sr.py", *(argv if argv is not None else sys.argv[1:])]),
            "settings": dict(vars(args)),
            "prior": {"latent_dim": int(generator.latent_dim), "latent_distribution": generator.latent_distribution,
                      "output_shape": list(shape)},
            "images": len(x),
            "observation_shape": list(operator.out_shape),
            "methods_shown": shown,
            "per_shift": timings,
            "wall_time_seconds": round(time.perf_counter() - started, 3),
            "outputs": ["results.csv", "results.json", "results.md", "misaligned_sr.png", "psnr_vs_shift.png",
                        "estimates.npz", "logs/"],
        }
        atomic_write_text(out / "run.json", json.dumps(report, indent=2, default=str) + "\n", overwrite=args.overwrite)
        # Figures last: a plotting problem costs no numbers.
        col_labels = ["shifted original", f"low-res x{args.factor}"] + [_LEGEND[m] for m in shown]
        with reported_figure(out / "misaligned_sr.png"):
            save_image_grid(out / "misaligned_sr.png", grid, row_labels=row_labels, col_labels=col_labels,
                            captions=captions, min_cell_size=72, overwrite=args.overwrite)
        noise_text = f", noise {args.noise:g}" if noisy else ", no noise"
        title = f"SR x{args.factor}{noise_text}, prior {Path(args.prior).name}, {len(x)} images"
        with reported_figure(out / "psnr_vs_shift.png"):
            atomic_write_bytes(out / "psnr_vs_shift.png", plot_psnr_vs_shift(rows, title), overwrite=args.overwrite)
        print(table)
        print(f"wrote results.csv|json|md, misaligned_sr.png, psnr_vs_shift.png, estimates.npz and run.json to {out} "
              f"in {report['wall_time_seconds']:.0f} s")
        return 0


if __name__ == "__main__":
    from tfinverse.utils.cli import run_script

    sys.exit(run_script(main))
