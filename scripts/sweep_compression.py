#!/usr/bin/env python
"""Sweeps the compression ratio m/n of Gaussian compressed sensing: the IAGAN paper's Figure 2.

Held-out images are measured without noise as ``y = A x`` with ``A_ij ~ N(0, 1/m)`` at each
ratio m/n, and recovered by CSGM, CSGM-BP, IAGAN and IAGAN-BP (the method runner of deploy_iagan.py,
``tfinverse.evaluation.iagan.run_task``); the pseudo-inverse ``A^+ y`` is the
naive baseline. The paper (BEGAN, 128x128 CelebA) reports that CSGM reaches a plateau at a
small m while IAGAN keeps improving as m grows, and that back-projection lifts CSGM-BP off
CSGM's plateau.

With no arguments it runs the shipped MNIST DCGAN prior on 16 held-out MNIST-5000 digits
(evenly spaced through the test split) at m/n = 0.02, 0.05, 0.1, 0.2, 0.3 and 0.5. Every
ratio uses the same ``--seed``: the measurement matrices are then nested (the rows of a
smaller one are the first rows of a larger one, up to the 1/sqrt(m) scale) and CSGM starts
from the same latents, so the curves differ by m alone.

It writes into ``--out``::

    results.csv|json|md   per ratio and method: MSE per pixel (images in [0, 1]) mean and
                          standard deviation over the images (ddof 1), per-image PSNR mean
                          and standard deviation, the papers' dataset PSNR
                          10 log10(1 / mean MSE), mean SSIM, seconds per image
    compression_sweep.png MSE against m/n on a log scale, one line per method and the
                          A^+ y baseline; error bars are one standard error of the mean
    estimates.npz         "x" (the held-out images), "ratios", and every estimate as
                          "<method>@<ratio>" ([N, H, W, C], clipped to [0, 1])
    logs/                 TensorBoard scalars mse/<method>, step = index of the ratio
    run.json              command, settings, prior, measurement counts, wall times

Flags ("paper" is the IAGAN paper's BEGAN setting; "shortened" marks a budget cut so that
the default runs in a few minutes on 2 CPU cores):

| flag                 | default                       | help                                                                                                                                                                                                                                                                                                                                                                                          |
| -------------------- | ----------------------------- | --------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------- |
| `--ratios`           | `0.02 0.05 0.1 0.2 0.3 0.5`   | compression ratios m/n in (0, 1] (paper: its range up to nearly 1; Figure 1 shows 0.122 and 0.61)                                                                                                                                                                                                                                                                                             |
| `--methods`          | `csgm csgm-bp iagan iagan-bp` | methods; A^+ y is always included (one of: csgm, csgm-bp, iagan, iagan-bp)                                                                                                                                                                                                                                                                                                                    |
| `--prior`            | `dcgan_mnist28`               | a shipped prior's name, or a SavedModel / TF-Hub-format directory / .keras / .pth                                                                                                                                                                                                                                                                                                             |
| `--images`           | `mnist5k`                     | a registered dataset (its held-out test split) or a folder of images                                                                                                                                                                                                                                                                                                                          |
| `--num-images`       | `16`                          | held-out images, evenly spaced through the split (paper: 20 CelebA images in the text, 100 in the caption; shortened)                                                                                                                                                                                                                                                                         |
| `--csgm-iterations`  | `500`                         | CSGM Adam steps (paper: 1600; shortened)                                                                                                                                                                                                                                                                                                                                                      |
| `--csgm-lr`          | `0.1`                         | CSGM learning rate (paper: 0.1)                                                                                                                                                                                                                                                                                                                                                               |
| `--restarts`         | `5`                           | CSGM random restarts, the best kept (IAGAN original code: 5; the paper does not say)                                                                                                                                                                                                                                                                                                          |
| `--iagan-iterations` | `600`                         | IAGAN joint steps (paper: 600 for compressed sensing)                                                                                                                                                                                                                                                                                                                                         |
| `--iagan-lr-z`       | `0.0001`                      | IAGAN latent learning rate (paper: 1e-4)                                                                                                                                                                                                                                                                                                                                                      |
| `--iagan-lr-theta`   | `0.0001`                      | IAGAN weight learning rate (paper: 1e-4 with BEGAN)                                                                                                                                                                                                                                                                                                                                           |
| `--jit-compile`      | `off`                         | compile the optimisation steps with XLA (for GPUs; slower on CPUs)                                                                                                                                                                                                                                                                                                                            |
| `--preset`           | `flags`                       | iteration counts and learning rates: from these flags, or the paper's per task for its BEGAN or PGGAN prior (no paper setting for deblurring: the flags' then) (one of: flags, paper-began, paper-pggan)                                                                                                                                                                                      |
| `--precision`        | `float32`                     | numeric precision: float32, or 16-bit compute with float32 variables (mixed_bfloat16 is ~4x faster on CPUs with AMX-BF16; float16 is for GPUs, with loss scaling); applies to the networks the run builds (DIP; the prior and IAGAN's weight copies: a shipped prior is rebuilt as its Keras network, another SavedModel prior computes as it was saved) (one of: float32, bfloat16, float16) |
| `--noise-convention` | `image`                       | what a task's noise=sigma means: sigma on [0, 1] images (image), or the IAGAN code's sigma on [-1, 1] images, i.e. sigma/2 on [0, 1] (original; the paper's tables) (one of: image, original)                                                                                                                                                                                                 |
| `--out`              | `runs/sweep_compression`      | output folder for images, tables and checkpoints                                                                                                                                                                                                                                                                                                                                              |
| `--seed`             | `0`                           | random seed of every draw in the run                                                                                                                                                                                                                                                                                                                                                          |
| `--data-dir`         |                               | folder of local dataset copies (default: $TFINVERSE_DATA_DIR, else each loader's own default)                                                                                                                                                                                                                                                                                                 |
| `--log-dir`          |                               | TensorBoard log folder (default: <out>/logs)                                                                                                                                                                                                                                                                                                                                                  |
| `--overwrite`        | `off`                         | write into a non-empty output folder and replace existing files                                                                                                                                                                                                                                                                                                                               |
| `--quiet`            | `off`                         | no progress bars                                                                                                                                                                                                                                                                                                                                                                              |
| `--verbose`          | `off`                         | show TensorFlow's start-up log                                                                                                                                                                                                                                                                                                                                                                |
| `--debug`            | `off`                         | show the full traceback of an error                                                                                                                                                                                                                                                                                                                                                           |

Examples::

    python scripts/sweep_compression.py
    python scripts/sweep_compression.py --ratios 0.05 0.1 0.3 0.6 0.9 --num-images 20 \\
        --csgm-iterations 1600 --out runs/figure2
"""

from __future__ import annotations

import argparse
import io
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

__all__ = [
    "METHODS",
    "DEFAULT_RATIOS",
    "compression_ratio",
    "build_parser",
    "plot_sweep",
    "main",
]

#: Methods of the sweep, in the order of the paper's legend.
METHODS = ("csgm", "csgm-bp", "iagan", "iagan-bp")
#: Default compression ratios m/n.
DEFAULT_RATIOS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.5)
# Table row of the naive baseline, as deploy_iagan names it for operators whose measurements are not images.
BASELINE = "pinv"
_LEGEND = {"pinv": "$A^{+} y$", "csgm": "CSGM", "csgm-bp": "CSGM-BP", "iagan": "IAGAN", "iagan-bp": "IAGAN-BP"}
_STYLE = {
    "pinv": {"color": "0.55", "linestyle": "--", "marker": ""},
    "csgm": {"color": "tab:blue", "linestyle": "-", "marker": "o"},
    "csgm-bp": {"color": "tab:blue", "linestyle": ":", "marker": "s"},
    "iagan": {"color": "tab:red", "linestyle": "-", "marker": "o"},
    "iagan-bp": {"color": "tab:red", "linestyle": ":", "marker": "s"},
}


def compression_ratio(text: str) -> float:
    """Parses one ``--ratios`` value: a number in (0, 1].

    Args:
      text: the command-line text.

    Returns:
      The ratio as a float.

    Raises:
      argparse.ArgumentTypeError: for text that is not a number in (0, 1].
    """
    try:
        ratio = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"a compression ratio must be a number in (0, 1], got {text!r}") from None
    if not 0.0 < ratio <= 1.0:
        raise argparse.ArgumentTypeError(f"a compression ratio m/n must be in (0, 1], got {text}")
    return ratio


def build_parser() -> argparse.ArgumentParser:
    """The script's command-line flags (the table in the module docstring lists them)."""
    from tfinverse.tasks.iagan import add_inversion_flags
    from tfinverse.utils.cli import add_common_flags, docstring_parser

    parser = docstring_parser(__doc__)
    parser.add_argument("--ratios", nargs="+", type=compression_ratio, default=list(DEFAULT_RATIOS),
                        metavar="M_OVER_N",
                        help="compression ratios m/n in (0, 1] (paper: its range up to nearly 1; Figure 1 "
                             "shows 0.122 and 0.61)")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS,
                        help="methods; A^+ y is always included")
    add_inversion_flags(
        parser,
        num_images=16,
        num_images_help="held-out images, evenly spaced through the split (paper: 20 CelebA images in the text, "
                        "100 in the caption; shortened)",
        iagan_iterations=600,
        iagan_iterations_help="IAGAN joint steps (paper: 600 for compressed sensing)",
    )
    add_common_flags(parser, out_default="runs/sweep_compression")
    return parser


def plot_sweep(rows, num_images: int, title: str) -> bytes:
    """MSE against m/n on a log scale, one line per method, as PNG bytes.

    Args:
      rows: the table rows (``m_over_n``, ``method``, ``mse_mean``, ``mse_std``).
      num_images: images behind each mean (error bars are ``mse_std / sqrt(num_images)``).
      title: the figure title.

    Returns:
      The PNG file content.
    """
    # Object-oriented matplotlib: no pyplot state, no global backend change.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(5.2, 3.8), dpi=100)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot(1, 1, 1)
    methods = list(dict.fromkeys(row["method"] for row in rows))
    for method in methods:
        points = sorted((row["m_over_n"], row["mse_mean"], row["mse_std"]) for row in rows if row["method"] == method)
        ratios, means, stds = (np.array(values, np.float64) for values in zip(*points))
        sem = np.nan_to_num(stds) / math.sqrt(num_images)
        # On a log axis a bar may not reach zero: the lower half stops at a tenth of the mean.
        lower = np.minimum(sem, 0.9 * means)
        axes.errorbar(ratios, means, yerr=np.stack([lower, sem]), label=_LEGEND.get(method, method), capsize=2,
                      markersize=4, linewidth=1.4, **_STYLE.get(method, {}))
    axes.set_yscale("log")
    axes.set_xlabel("compression ratio m/n")
    axes.set_ylabel("MSE per pixel (images in [0, 1])")
    axes.set_title(title, fontsize=9)
    axes.grid(True, which="both", linewidth=0.3, alpha=0.6)
    axes.legend(fontsize=8, loc="lower left", title="bars: 1 s.e.m.", title_fontsize=7)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def main(argv=None) -> int:
    """Runs the sweep as the flags say and writes its outputs.

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
        import tfinverse.operators as ops
        from tfinverse import data
        from tfinverse.pretrained import load_prior
        from tfinverse.evaluation.iagan import error_summary, run_task, write_task_summaries
        from tfinverse.tasks.iagan import InversionTask
        from tfinverse.utils.results import atomic_write_bytes, atomic_write_text, npz_bytes, reported_figure, write_table

        if len(set(args.ratios)) != len(args.ratios):
            parser.error(f"argument --ratios: each ratio may appear once, got {args.ratios}")
        args.ratios = sorted(args.ratios)
        args.methods = [m for m in METHODS if m in args.methods]  # the legend's order, no repeats
        generator = load_prior(args.prior)
        shape = tuple(generator.output_shape)
        # Building every operator first checks every ratio against the image size before any work.
        try:
            operators = [ops.get("compressed_sensing", image_shape=shape, ratio=r, seed=args.seed) for r in args.ratios]
        except ValueError as error:
            raise SystemExit(f"error: --ratios: {error}") from None
        set_global_seed(args.seed)
        x = data.held_out_images(args.images, args.num_images, shape, args.data_dir)
        out = output_dir_or_exit(args)
        n = int(np.prod(shape))
        print(f"prior {args.prior}: latent {generator.latent_dim} ({generator.latent_distribution}), images {shape}; "
              f"{len(x)} held-out images from {args.images}; m/n {' '.join(f'{r:g}' for r in args.ratios)}")

        rows, arrays, timings = [], {"x": x, "ratios": np.asarray(args.ratios)}, []
        writer = summary_writer(args.log_dir)
        for k, (ratio, operator) in enumerate(zip(progress(args.ratios, desc="m/n"), operators)):
            ratio_started = time.perf_counter()
            spec = InversionTask("cs-gaussian", "compressed_sensing", {"ratio": ratio}, 0.0)
            outcome = run_task(generator, spec, x, args, seed=args.seed)
            results = outcome.by_method()
            write_task_summaries(writer, k, f"ratio_{ratio:g}", outcome)
            for method in [BASELINE] + args.methods:
                method_row, estimate = results[method]
                arrays[f"{method}@{ratio:g}"] = estimate.astype(np.float32)
                row = {"ratio": ratio, "m": operator.m, "m_over_n": operator.m / n, "method": method}
                row.update(error_summary(x, estimate))
                row.update(ssim=method_row["ssim"], seconds_per_image=method_row["seconds_per_image"], images=len(x))
                rows.append(row)
                with writer.as_default():
                    summary_scalar(f"mse/{method}", row["mse_mean"], step=k)
            timings.append({"ratio": ratio, "m": operator.m, "seconds": round(time.perf_counter() - ratio_started, 3)})
            done = {r["method"]: r["dataset_psnr_db"] for r in rows if r["ratio"] == ratio}
            print(f"m/n {ratio:g} (m = {operator.m}): " + ", ".join(f"{m} {v:.2f} dB" for m, v in done.items()),
                  flush=True)
        writer.flush()

        table = write_table(out, "results", rows, floatfmt={
            "m_over_n": ".4f", "mse_mean": ".3e", "mse_std": ".3e", "psnr_mean_db": ".2f", "psnr_std_db": ".2f",
            "dataset_psnr_db": ".2f", "ssim": ".3f", "seconds_per_image": ".2f"}, overwrite=args.overwrite)
        atomic_write_bytes(out / "estimates.npz", npz_bytes(arrays), overwrite=args.overwrite)
        report = {
            "command": " ".join(["sweep_compression.py", *(argv if argv is not None else sys.argv[1:])]),
            "settings": {key: value for key, value in vars(args).items()},
            "prior": {"latent_dim": int(generator.latent_dim), "latent_distribution": generator.latent_distribution,
                      "output_shape": list(shape)},
            "images": len(x),
            "pixels_n": n,
            "per_ratio": timings,
            "wall_time_seconds": round(time.perf_counter() - started, 3),
            "outputs": ["results.csv", "results.json", "results.md", "compression_sweep.png", "estimates.npz", "logs/"],
        }
        atomic_write_text(out / "run.json", json.dumps(report, indent=2, default=str) + "\n", overwrite=args.overwrite)
        # The figure last: a plotting problem costs no numbers.
        title = f"noiseless Gaussian CS, prior {Path(args.prior).name}, {len(x)} images"
        with reported_figure(out / "compression_sweep.png"):
            atomic_write_bytes(out / "compression_sweep.png", plot_sweep(rows, len(x), title), overwrite=args.overwrite)
        print(table)
        print(f"wrote results.csv|json|md, compression_sweep.png, estimates.npz and run.json to {out} "
              f"in {report['wall_time_seconds']:.0f} s")
        return 0


if __name__ == "__main__":
    from tfinverse.utils.cli import run_script

    sys.exit(run_script(main))
