#!/usr/bin/env python
"""Plots the training curves of one or more runs from their TensorBoard scalars.

Every training script writes its losses, learning rates and schedule values under
``<out>/logs``; this draws them without TensorBoard, one panel per tag and one line per
run (raw values faint, TensorBoard's debiased exponential smoothing on top), and writes::

    curves.png            the figure
    curves.csv|json|md    every point drawn (run, tag, step, value)

A run is ``LABEL=FOLDER`` or just ``FOLDER`` (labelled by the folder's name); the folder is
a run's output folder (its ``logs`` sub-folder is read) or a log folder itself. Without
``--tags`` the tags under ``train/`` of the first run are drawn.

Examples::

    python scripts/plot_curves.py --runs runs/igan_denoising
    python scripts/plot_curves.py --runs unpaired=runs/igan_denoising paired=runs/igan_denoising_paired \\
        --tags train/d1_loss train/d2_loss train/g_loss --smoothing 0.9 --out results/igan_curves
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def build_parser() -> argparse.ArgumentParser:
    """The script's command-line flags."""
    from tfinverse.utils.cli import add_run_flags

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", nargs="+", required=True, metavar="[LABEL=]FOLDER",
                        help="run output folders (or log folders), optionally labelled")
    parser.add_argument("--tags", nargs="+", default=None, metavar="TAG",
                        help="scalar tags to draw (default: the first run's train/* tags)")
    parser.add_argument("--smoothing", type=float, default=0.6,
                        help="exponential smoothing weight in [0, 1), as TensorBoard's slider (0: none)")
    parser.add_argument("--columns", type=int, default=3, help="panels per row")
    parser.add_argument("--title", default="", help="figure title")
    parser.add_argument("--out", default="results/curves", help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files in --out")
    add_run_flags(parser)
    return parser


def parse_runs(specs):
    """``[LABEL=]FOLDER`` specs -> ``{label: log folder}`` (a run folder's ``logs`` when it has one)."""
    from tfinverse.errors import InputError

    runs = {}
    for spec in specs:
        label, _, folder = spec.rpartition("=")
        path = Path(folder)
        label = label or path.name or str(path)
        if label in runs:
            raise InputError(f"--runs: label {label!r} is given twice; name the runs LABEL=FOLDER")
        runs[label] = path / "logs" if (path / "logs").is_dir() else path
    return runs


def main(argv=None) -> int:
    from tfinverse.utils.cli import configure_run

    args = build_parser().parse_args(argv)
    configure_run(args)
    from tfinverse.evaluation.curves import curves_table, plot_curves, read_scalars
    from tfinverse.utils.cli import prepare_output_dir
    from tfinverse.utils.results import write_table

    runs = {label: read_scalars(folder) for label, folder in parse_runs(args.runs).items()}
    tags = args.tags or sorted(tag for tag in next(iter(runs.values())) if tag.startswith("train/"))
    rows = curves_table(runs, tags)  # checks the tags before anything is written
    out = prepare_output_dir(args.out, args.overwrite)
    write_table(out, "curves", rows, columns=["run", "tag", "step", "value"], overwrite=args.overwrite)
    path = plot_curves(runs, tags, out / "curves.png", smoothing=args.smoothing, columns=args.columns,
                       title=args.title, overwrite=args.overwrite)
    print(f"{len(tags)} tags of {len(runs)} run(s) -> {path}")
    return 0


if __name__ == "__main__":
    from tfinverse.utils.cli import run_script

    sys.exit(run_script(main))
