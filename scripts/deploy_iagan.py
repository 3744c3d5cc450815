#!/usr/bin/env python
"""Reconstructs held-out images with generative priors: CSGM, IAGAN, back-projection, DIP
and classical baselines, on the IAGAN paper's tasks (the role of the original's main.py).

With no arguments it runs the embedded default on 2 cores in a few minutes: the shipped
MNIST DCGAN prior on held-out MNIST-5000 digits, across Gaussian compressed sensing
(m/n = 0.1, noiseless), subsampled Fourier sampling at 30 % and 50 % (noise 10/255, as the
paper's Table 1), 4x super-resolution (noiseless, Table 2) and 9x9 uniform deblurring
(noise 10/255, Table 4). It writes, per task, a grid per batch of images (original,
observation or naive reconstruction, every method with its PSNR), and for the run a table
of the papers' dataset PSNR, mean SSIM and seconds per image as CSV, JSON and markdown.

Examples::

    python scripts/deploy_iagan.py
    python scripts/deploy_iagan.py --tasks sr:factor=8 cs-fourier:ratio=0.3,noise=0.0392 \\
        --methods csgm iagan iagan-bp bicubic --num-images 16 --out runs/iagan
    python scripts/deploy_iagan.py --prior path/to/saved_model --images path/to/folder
"""

from __future__ import annotations

import argparse
import ast
import os
import sys
import time

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the output

#: task name -> (registered operator, its default parameters, default noise sigma)
TASKS = {
    "cs-gaussian": ("compressed_sensing", {"ratio": 0.1}, 0.0),
    "cs-fourier": ("subsampled_fourier", {"ratio": 0.3}, 10 / 255),
    "sr": ("super_resolution", {"factor": 4}, 0.0),
    "deblur": ("blur_uniform", {"kernel_size": 9}, 10 / 255),
    "inpaint": ("random_pixel_mask", {"keep_fraction": 0.3}, 0.0),
    "denoise": ("identity", {}, 0.1),
}
DEFAULT_TASKS = [
    "cs-gaussian:ratio=0.1",
    "cs-fourier:ratio=0.3",
    "cs-fourier:ratio=0.5",
    "sr:factor=4",
    "deblur:kernel_size=9",
]
METHODS = ("csgm", "csgm-bp", "iagan", "iagan-bp", "dip", "bicubic", "ifft", "bm3d")
DEFAULT_METHODS = ("csgm", "csgm-bp", "iagan", "iagan-bp", "dip", "bicubic", "ifft")


def parse_task(spec: str):
    """``task:key=value,...`` -> (task, operator name, operator params, noise sigma)."""
    name, _, rest = spec.partition(":")
    if name not in TASKS:
        raise SystemExit(f"error: unknown task {name!r}; tasks: {', '.join(TASKS)}")
    op_name, defaults, sigma = TASKS[name]
    params = dict(defaults)
    for item in filter(None, rest.split(",")):
        key, eq, value = item.partition("=")
        if not eq:
            raise SystemExit(f"error: expected key=value in {spec!r}, got {item!r}")
        value = ast.literal_eval(value.strip())
        if key.strip() == "noise":
            sigma = float(value)
        else:
            params[key.strip()] = value
    return name, op_name, params, sigma


def task_label(name, params, sigma) -> str:
    parts = [f"{k}={v}" for k, v in params.items()]
    if sigma:
        parts.append(f"noise={sigma * 255:.0f}/255")
    return name + (" (" + ", ".join(parts) + ")" if parts else "")

def add_inversion_flags(
    parser: argparse.ArgumentParser,
    num_images: int,
    num_images_help: str,
    iagan_iterations: int,
    iagan_iterations_help: str,
) -> argparse.ArgumentParser:
    """Adds the prior, held-out image and CSGM/IAGAN flags that ``deploy_iagan.run_task`` reads.

    Args:
      parser: the script's parser.
      num_images: default of ``--num-images``.
      num_images_help: its help text (say whether the default is the paper's).
      iagan_iterations: default of ``--iagan-iterations``.
      iagan_iterations_help: its help text.

    Returns:
      ``parser``.
    """
    from tfinverse.utils.cli import positive_float, positive_int

    parser.add_argument("--prior", default="dcgan_mnist28",
                        help="a shipped prior's name, or a SavedModel / TF-Hub-format directory / .keras / .pth")
    parser.add_argument("--images", default="mnist5k",
                        help="a registered dataset (its held-out test split) or a folder of images")
    parser.add_argument("--num-images", type=positive_int, default=num_images, help=num_images_help)
    parser.add_argument("--csgm-iterations", type=positive_int, default=500,
                        help="CSGM Adam steps (paper: 1600; shortened)")
    parser.add_argument("--csgm-lr", type=positive_float, default=0.1, help="CSGM learning rate (paper: 0.1)")
    parser.add_argument("--restarts", type=positive_int, default=5,
                        help="CSGM random restarts, the best kept (IAGAN original code: 5; the paper does not say)")
    parser.add_argument("--iagan-iterations", type=positive_int, default=iagan_iterations,
                        help=iagan_iterations_help)
    parser.add_argument("--iagan-lr-z", type=positive_float, default=1e-4,
                        help="IAGAN latent learning rate (paper: 1e-4)")
    parser.add_argument("--iagan-lr-theta", type=positive_float, default=1e-4,
                        help="IAGAN weight learning rate (paper: 1e-4 with BEGAN)")
    parser.add_argument("--jit-compile", action="store_true", help="compile the optimisation steps with XLA")
    return parser


def build_parser() -> argparse.ArgumentParser:
    from tfinverse.utils.cli import add_common_flags, docstring_parser, positive_int

    parser = docstring_parser(__doc__)
    parser.add_argument("--tasks", nargs="+", default=DEFAULT_TASKS, metavar="TASK[:k=v,...]",
                        help=f"tasks ({', '.join(TASKS)}) with operator parameters and noise=sigma")
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
    parser.add_argument("--dip-levels", type=int, default=None,
                        help="DIP encoder-decoder depth (DIP: 5); default the deepest, up to 5, that the image size allows")
    add_common_flags(parser, out_default="outputs/deploy_iagan")
    return parser


def load_images(spec: str, n: int, shape, data_dir=None) -> np.ndarray:
    """``tfinverse.data.held_out_images``, with a source too small for ``n`` as a clean exit."""
    from tfinverse import data

    try:
        return data.held_out_images(spec, n, shape, data_dir)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None


def dip_levels_for(side: int, most: int = 5) -> int:
    """The deepest DIP network, up to ``most`` levels, whose coarsest map is >= 2 pixels."""
    levels, size = 0, side
    while levels < most and -(-size // 2) >= 2:
        size = -(-size // 2)
        levels += 1
    return max(levels, 1)


def run_task(generator, spec, x, args, seed):
    """Runs every applicable method on one task; returns (rows, grid columns)."""
    import tensorflow as tf

    import tfinverse.operators as ops
    from tfinverse import metrics
    from tfinverse.inversion import baselines
    from tfinverse.inversion.back_projection import back_project, has_approximate_pinv
    from tfinverse.inversion.csgm import csgm
    from tfinverse.inversion.dip import dip, dip_iterations
    from tfinverse.inversion.iagan import iagan

    name, op_name, params, sigma = spec
    shape = x.shape[1:]
    operator = ops.get(op_name, image_shape=shape, seed=seed, **params)
    y = operator(tf.constant(x))
    if sigma:
        y = ops.get_noise("gaussian", sigma=sigma)(y, seed=seed)
    noisy = sigma > 0
    label = task_label(name, params, sigma)
    estimates, seconds = {}, {}

    def keep(method, result):
        estimates[method] = np.clip(np.asarray(result.x_hat), 0.0, 1.0)
        seconds[method] = result.seconds_per_image

    # The naive reconstruction shown as the observation column, and the classical baselines.
    same_shape = tuple(operator.out_shape) == tuple(operator.in_shape)
    naive = baselines.observation_baseline(operator, y, mode="observation" if same_shape else "pinv")
    if "bicubic" in args.methods and hasattr(operator, "bicubic_upsample"):
        keep("bicubic", baselines.bicubic_upsampling(operator, y))
    if "ifft" in args.methods and hasattr(operator, "zero_filled_ifft"):
        keep("ifft", baselines.zero_filled_ifft(operator, y))
    if "bm3d" in args.methods and op_name == "identity" and noisy:
        keep("bm3d", baselines.bm3d_denoise(y, sigma, progress=False))
    csgm_result = None
    if {"csgm", "csgm-bp", "iagan", "iagan-bp"} & set(args.methods):
        csgm_result = csgm(generator, operator, y, iterations=args.csgm_iterations, learning_rate=args.csgm_lr,
                           restarts=args.restarts, seed=seed, jit_compile=args.jit_compile, progress=True)
        keep("csgm", csgm_result)
    if {"iagan", "iagan-bp"} & set(args.methods):
        iterations = max(1, args.iagan_iterations // 2) if noisy else args.iagan_iterations
        result = iagan(generator, operator, y, z_init=csgm_result.latents, iterations=iterations,
                       lr_z=args.iagan_lr_z, lr_theta=args.iagan_lr_theta, seed=seed,
                       jit_compile=args.jit_compile, progress=True)
        keep("iagan", result)
        seconds["iagan"] += seconds["csgm"]  # IAGAN starts from CSGM: count both
    # Back-projection amplifies noise; the paper applies it to noiseless measurements only.
    for base in ("csgm", "iagan"):
        if f"{base}-bp" in args.methods and base in estimates and not noisy:
            start = time.perf_counter()
            x_bp = back_project(operator, estimates[base], y, approximate=has_approximate_pinv(operator)
                                and op_name == "super_resolution")
            estimates[f"{base}-bp"] = np.clip(np.asarray(x_bp), 0.0, 1.0)
            seconds[f"{base}-bp"] = seconds[base] + (time.perf_counter() - start) / len(x)
    if "dip" in args.methods:
        levels = args.dip_levels or dip_levels_for(min(shape[:2]))
        keep("dip", dip(operator, y, iterations=dip_iterations(args.dip_iterations, noisy), levels=levels,
                        channels=args.dip_channels, seed=seed, progress=True, jit_compile=args.jit_compile))
    if "csgm" not in args.methods:
        estimates.pop("csgm", None)

    rows = []
    observation = np.clip(np.asarray(naive.x_hat), 0.0, 1.0)
    for method, estimate in [("observation" if same_shape else "pinv", observation)] + list(estimates.items()):
        rows.append({
            "task": label,
            "method": method,
            "psnr_db": float(metrics.dataset_psnr(x, estimate)),
            "ssim": float(np.mean(metrics.ssim(x, estimate))),
            "seconds_per_image": seconds.get(method, 0.0),
            "images": len(x),
        })
    columns = [("original", x), ("observation" if same_shape else "A^+ y", observation)] + list(estimates.items())
    return rows, columns


def main(argv=None) -> int:
    from tfinverse import metrics
    from tfinverse.pretrained import load_prior
    from tfinverse.utils.cli import output_dir_or_exit, parse_common_args, set_global_seed
    from tfinverse.utils.results import save_image_grid, write_table

    parser = build_parser()
    args = parse_common_args(parser, argv)
    specs = [parse_task(t) for t in args.tasks]
    out = output_dir_or_exit(args)
    set_global_seed(args.seed)
    generator = load_prior(args.prior)
    x = load_images(args.images, args.num_images, generator.output_shape, args.data_dir)
    print(f"prior {args.prior}: latent {generator.latent_dim} ({generator.latent_distribution}), "
          f"images {generator.output_shape}; {len(x)} held-out images from {args.images}")
    all_rows = []
    for k, spec in enumerate(specs):
        print(f"task {task_label(*spec[:1], spec[2], spec[3])}")
        rows, columns = run_task(generator, spec, x, args, seed=args.seed + k)
        all_rows.extend(rows)
        grid = [[images[i] for _, images in columns] for i in range(len(x))]
        captions = [[""] + [f"PSNR {float(metrics.psnr(x[i:i + 1], images[i:i + 1])[0]):.2f}"
                            for _, images in columns[1:]] for i in range(len(x))]
        slug = f"{k:02d}_{spec[0]}"
        save_image_grid(out / f"{slug}.png", grid, col_labels=[c for c, _ in columns], captions=captions,
                        overwrite=args.overwrite)
    table = write_table(out, "results", all_rows, floatfmt={"psnr_db": ".2f", "ssim": ".3f",
                                                             "seconds_per_image": ".2f"}, overwrite=args.overwrite)
    print(table)
    print(f"wrote grids and results.csv|json|md to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
