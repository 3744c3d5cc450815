#!/usr/bin/env python
"""Reconstructs held-out images with generative priors: CSGM, IAGAN, back-projection, DIP
and classical baselines, on the IAGAN paper's tasks (the role of the original's main.py).

With no arguments it runs the embedded default on 2 cores in a few minutes: the shipped
MNIST DCGAN prior on held-out MNIST-5000 digits, across Gaussian compressed sensing
(m/n = 0.1, noiseless), subsampled Fourier sampling at 30 % and 50 % (noise 10/255, as the
paper's Table 1), 4x super-resolution (noiseless, Table 2) and 9x9 uniform deblurring
(noise 10/255, Table 4). It writes, per task, a grid per batch of images (original,
observation or naive reconstruction, every method with its PSNR), and for the run a table
of the papers' dataset PSNR, mean SSIM and seconds per image as CSV, JSON and markdown
(rewritten after every task, so an interrupted run keeps the tasks it finished), a table of
each task's noise energy m sigma^2 beside the data misfit ||y - A x||^2 that CSGM and IAGAN
reached (``misfit.csv|json|md``), every estimate (``estimates.npz``: ``original`` and
``<task>/<method>``), and TensorBoard logs: each method's objective per
iteration, PSNR/SSIM per task and the grids. ``--preset paper-began`` runs the paper's
per-task iteration counts and learning rates; ``--noise-convention original`` reads a task's
``noise=sigma`` as the IAGAN code did (on [-1, 1] images, i.e. sigma/2 on [0, 1]).

Examples::

    python scripts/deploy_iagan.py
    python scripts/deploy_iagan.py --tasks sr:factor=8 cs-fourier:ratio=0.3,noise=0.0392 \\
        --methods csgm iagan iagan-bp bicubic --num-images 16 --out runs/iagan
    python scripts/deploy_iagan.py --prior path/to/saved_model --images path/to/folder
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from tfinverse.tasks.iagan import (  # light: no TensorFlow before the flags are parsed
    DEFAULT_METHODS,
    DEFAULT_TASKS,
    METHODS,
    TASKS,
    add_inversion_flags,
    parse_task,
)


def build_parser() -> argparse.ArgumentParser:
    from tfinverse.utils.cli import add_common_flags, docstring_parser, positive_int

    parser = docstring_parser(__doc__)
    parser.add_argument("--tasks", nargs="+", default=list(DEFAULT_TASKS), metavar="TASK[:k=v,...]",
                        help=f"tasks ({', '.join(TASKS)}) with operator parameters and noise=sigma; "
                             "sampling ratios must be in (0, 1]")
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), choices=METHODS,
                        help="methods; those that do not apply to a task are skipped")
    add_inversion_flags(
        parser, num_images=8,
        num_images_help="how many held-out images, evenly spaced through the split (so every class appears)",
        iagan_iterations=300,
        iagan_iterations_help="IAGAN steps without noise; halved under noise as the paper (paper: 600 CS, 500 SR)",
    )
    parser.add_argument("--dip-iterations", type=positive_int, default=500,
                        help="DIP steps without noise; a quarter under noise as the paper")
    parser.add_argument("--dip-channels", type=positive_int, default=32, help="DIP channels per level (DIP: 128)")
    parser.add_argument("--dip-levels", type=positive_int, default=None,
                        help="DIP encoder-decoder depth (DIP: 5); default the deepest, up to 5, that the image size allows")
    add_common_flags(parser, out_default="outputs/deploy_iagan")
    return parser


def misfit_row(misfit: dict) -> dict:
    """One row of ``misfit.csv``: a task's noise energy beside CSGM's and IAGAN's data misfit."""
    row = {"task": misfit["task"], "measurements": misfit["measurements"], "sigma": misfit["sigma"],
           "noise_energy": misfit["noise_energy"]}
    for method in ("csgm", "iagan"):
        if f"{method}_misfit" in misfit:
            row[f"{method}_misfit"] = misfit[f"{method}_misfit"]
    if misfit.get("csgm_misfit") is not None and misfit["noise_energy"] > 0:
        row["csgm_misfit_over_noise"] = misfit["csgm_misfit"] / misfit["noise_energy"]
    return row


def main(argv=None) -> int:
    from tfinverse.utils.cli import output_dir_or_exit, parse_common_args, progress, set_global_seed, summary_writer

    parser = build_parser()
    args = parse_common_args(parser, argv)  # before anything heavy: --help and flag errors answer at once
    from tfinverse.utils.precision import precision_policy

    # Networks built in the run (DIP, IAGAN copies, Keras priors) take the policy.
    with precision_policy(args.precision):
        from tfinverse import data, metrics
        from tfinverse.evaluation.iagan import run_task, write_task_summaries
        from tfinverse.pretrained import load_prior
        from tfinverse.utils.results import atomic_write_bytes, npz_bytes, reported_figure, save_image_grid, write_table

        tasks = [parse_task(t) for t in args.tasks]
        set_global_seed(args.seed)
        generator = load_prior(args.prior)
        x = data.held_out_images(args.images, args.num_images, generator.output_shape, args.data_dir)
        out = output_dir_or_exit(args)
        print(f"prior {args.prior}: latent {generator.latent_dim} ({generator.latent_distribution}), "
              f"images {generator.output_shape}; {len(x)} held-out images from {args.images}")
        writer = summary_writer(args.log_dir)
        all_rows, misfit_rows, figures, arrays = [], [], [], {"original": np.asarray(x, np.float32)}
        for k, task in enumerate(progress(tasks, desc="tasks", force=True)):
            print(f"task {task.label}", flush=True)
            outcome = run_task(generator, task, x, args, seed=args.seed + k)
            all_rows.extend(outcome.rows)
            slug = f"{k:02d}_{task.name}"
            write_task_summaries(writer, k, slug, outcome)
            figures.append((slug, outcome.columns))
            arrays.update({f"{slug}/{title}": np.asarray(images, np.float32) for title, images in outcome.columns[1:]})
            misfit_rows.append(misfit_row(outcome.misfit))
            # The tables so far after every task: a late failure keeps the finished tasks.
            table = write_table(out, "results", all_rows, overwrite=bool(k) or args.overwrite,
                                floatfmt={"psnr_db": ".2f", "ssim": ".3f", "seconds_per_image": ".2f"})
            misfits = write_table(out, "misfit", misfit_rows, overwrite=bool(k) or args.overwrite, floatfmt=".4g")
        writer.close()
        atomic_write_bytes(out / "estimates.npz", npz_bytes(arrays), overwrite=args.overwrite)
        print(table)
        print("Data misfit ||y - A x||^2 per image against the noise energy m sigma^2 (misfit above it: the prior "
              "cannot explain y and image adaptation can help; at or below it, adapting fits noise):\n")
        print(misfits)
        for slug, columns in figures:
            grid = [[images[i] for _, images in columns] for i in range(len(x))]
            captions = [[""] + [f"PSNR {float(metrics.psnr(x[i:i + 1], images[i:i + 1])[0]):.2f}"
                                for _, images in columns[1:]] for i in range(len(x))]
            with reported_figure(out / f"{slug}.png"):
                save_image_grid(out / f"{slug}.png", grid, col_labels=[c for c, _ in columns], captions=captions,
                                overwrite=args.overwrite)
        print(f"wrote results.csv|json|md, misfit.csv|json|md, estimates.npz, a grid per task and TensorBoard logs "
              f"({args.log_dir}) to {out}")
        return 0


if __name__ == "__main__":
    from tfinverse.utils.cli import run_script

    sys.exit(run_script(main))
