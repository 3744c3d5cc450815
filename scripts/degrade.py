#!/usr/bin/env python
"""Applies forward operators to images and shows what each observation and its
pseudo-inverse look like, with PSNRs: the whole operator library at a glance.

With no arguments it runs every registered operator on four offline images (a natural
photo patch, a face, the Shepp-Logan phantom and a handwritten digit, all held-out test
images) at 64x64 RGB and writes:

* ``overview.png``: one row per operator (first image): original, observation, ``A^+ y``
  and, where the literature uses one, the naive reconstruction (bicubic up-sampling for
  super-resolution, zero-filled IFFT for Fourier sampling);
* ``<operator>.png``: the same columns for every image;
* ``degrade.csv|json|md``: PSNRs, timings and each operator's adjoint error.

Examples::

    python scripts/degrade.py
    python scripts/degrade.py --operators super_resolution:factor=8 blur_uniform:kernel_size=9 \\
        --noise gaussian:sigma=0.04 --images photo.png natural_patches:3 --out runs/degrade
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
from pathlib import Path

import numpy as np

# A textured photo patch (a cat's eye), a face, a phantom and a digit, all from test splits.
DEFAULT_IMAGES = ["natural_patches:9", "lfw_faces:0", "shepp_logan:0", "mnist5k:0"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def parse_spec(spec: str, flag: str = "--operators"):
    """``name:key=value,key=value`` -> (name, params); values are numbers, booleans or text."""
    from tfinverse.utils.cli import parse_spec as parse

    return parse(spec, flag)


def build_parser() -> argparse.ArgumentParser:
    from tfinverse.utils.cli import add_common_flags, docstring_parser

    parser = docstring_parser(__doc__)
    parser.add_argument(
        "--operators", nargs="+", default=None, metavar="NAME[:k=v,...]",
        help="operators with optional parameters, e.g. super_resolution:factor=8 (default: every registered one)",
    )
    parser.add_argument(
        "--images", nargs="+", default=DEFAULT_IMAGES, metavar="SOURCE[:INDEX]|FILE",
        help="offline dataset test images as source:index, or image files",
    )
    parser.add_argument("--image-size", type=int, default=64, help="side of the square images")
    parser.add_argument("--channels", type=int, default=3, choices=(1, 3), help="1 (grey) or 3 (RGB)")
    parser.add_argument(
        "--noise", default=None, metavar="NAME[:k=v,...]",
        help="noise added to every observation, e.g. gaussian:sigma=0.04 or poisson:peak=30 (default: none)",
    )
    add_common_flags(parser, out_default="outputs/degrade")
    return parser


def load_images(specs, size: int, channels: int, data_dir=None):
    """Loads the requested images as float32 [N, size, size, channels] and their labels.

    Raises:
      InputError: a missing or unreadable file, a file that is not an image, an unknown
        dataset or an index out of range (the message names the --images entry).
    """
    from tfinverse import data
    from tfinverse.data.folders import read_image
    from tfinverse.errors import InputError

    images, labels = [], []
    for spec in specs:
        path = Path(spec)
        if path.suffix.lower() in IMAGE_SUFFIXES:
            if not path.is_file():
                raise InputError(f"--images: image file {path} does not exist")
            image = data.resize_images(read_image(str(path))[None], size, channels)[0]
            labels.append(path.stem)
        elif path.is_file():
            raise InputError(
                f"--images: {path} is not an image file ({', '.join(IMAGE_SUFFIXES)}); "
                "give image files or SOURCE[:INDEX] of an offline dataset"
            )
        else:
            name, _, index_text = spec.partition(":")
            try:
                index = int(index_text or 0)
            except ValueError:
                raise InputError(f"--images {spec!r}: the index after ':' must be an integer") from None
            source = data.info(name)
            options = {"data_dir": data_dir} if data_dir and not source.offline else {}
            if "patch_size" in inspect.signature(source.fn).parameters:
                options["patch_size"] = size  # cut patches at the requested size, not resized ones
            arrays = data.load_arrays(name, split="test", image_size=size, channels=channels, **options)
            if not 0 <= index < len(arrays):
                raise InputError(
                    f"--images {spec!r}: the {name} test split has {len(arrays)} images; use an index "
                    f"from 0 to {len(arrays) - 1}"
                )
            image = arrays[index]
            labels.append(f"{name}[{index}]")
        images.append(image)
    return np.stack(images).astype(np.float32), labels


def for_display(t: np.ndarray) -> np.ndarray:
    """Scales an observation that leaves [0, 1] (a sum of two images) back into view."""
    t = np.asarray(t, np.float32)
    peak = float(t.max()) if t.size else 1.0
    return np.clip(t / peak if peak > 1.0 else t, 0.0, 1.0)


def normalise(t: np.ndarray) -> np.ndarray:
    lo, hi = float(t.min()), float(t.max())
    return (t - lo) / (hi - lo) if hi > lo else np.zeros_like(t)


def naive_reconstruction(op, y):
    """The literature's cheap approximate inverse, where the operator has one."""
    for method in ("bicubic_upsample", "zero_filled_ifft"):
        if hasattr(op, method):
            return method, getattr(op, method)(y)
    return None, None


def adjoint_error(op, seed: int) -> float:
    import tensorflow as tf

    x = op.random_input(2, seed)
    y = op.random_measurement(2, seed + 1)
    lhs = tf.reduce_sum(tf.cast(op(x), tf.float64) * tf.cast(y, tf.float64))
    rhs = tf.reduce_sum(tf.cast(x, tf.float64) * tf.cast(op.adjoint(y), tf.float64))
    return abs(float(lhs - rhs)) / float(np.linalg.norm(op(x)) * np.linalg.norm(y))


def build_operators(specs, shape, seed: int):
    """Parsed ``--operators`` entries -> operators, with typed and checked parameters."""
    import tfinverse.operators as ops
    from tfinverse.errors import InputError
    from tfinverse.operators import operator_class
    from tfinverse.utils.cli import coerce_parameters

    built = []
    for k, (name, params) in enumerate(specs):
        what = f"--operators {name}"
        params = coerce_parameters(what, params, operator_class(name), skip=("image_shape", "seed", "dtype"))
        try:
            built.append(ops.get(name, image_shape=shape, seed=seed + k, **params))
        except (ValueError, TypeError) as error:
            if isinstance(error, InputError):
                raise
            raise InputError(f"{what}: {error}") from None
    return built


def build_noise(spec):
    """``--noise NAME[:k=v,...]`` -> a noise model, or None."""
    if not spec:
        return None
    import tfinverse.operators as ops
    from tfinverse.errors import InputError
    from tfinverse.operators import noise_class
    from tfinverse.utils.cli import coerce_parameters

    name, params = parse_spec(spec, "--noise")
    params = coerce_parameters(f"--noise {name}", params, noise_class(name), skip=("dtype",))
    try:
        return ops.get_noise(name, **params)
    except (ValueError, TypeError) as error:
        if isinstance(error, InputError):
            raise
        raise InputError(f"--noise {name}: {error}") from None


def run(args) -> list:
    import tensorflow as tf

    import tfinverse.operators as ops
    from tfinverse import metrics
    from tfinverse.utils.cli import output_dir_or_exit, progress
    from tfinverse.utils.results import reported_figure, save_image_grid, write_table

    specs = [parse_spec(s) for s in (args.operators or ops.available())]
    images, labels = load_images(args.images, args.image_size, args.channels, args.data_dir)
    shape = images.shape[1:]
    operators = build_operators(specs, shape, args.seed)
    noise = build_noise(args.noise)
    out = output_dir_or_exit(args)

    rows, figures = [], []
    for (name, params), op in zip(specs, progress(operators, desc="operators", force=True)):
        n_sources = op.in_shape[-1] // shape[-1]
        # Operators on several sources (superposition) mix each image with the next ones.
        x = np.concatenate([np.roll(images, -j, axis=0) for j in range(n_sources)], axis=-1)
        x = tf.constant(x)
        start = time.perf_counter()
        y = op(x)
        forward_ms = 1e3 * (time.perf_counter() - start) / len(images)
        if noise is not None:
            y = noise(y, seed=args.seed)
        start = time.perf_counter()
        x_dag = op.pinv(y)
        pinv_ms = 1e3 * (time.perf_counter() - start) / len(images)
        naive_name, x_naive = naive_reconstruction(op, y)
        is_image = len(op.out_shape) == 3 and op.out_shape[-1] == shape[-1]
        observation = y.numpy() if is_image else normalise(op.adjoint(y).numpy())
        same_size = is_image and tuple(op.out_shape) == tuple(shape)
        adj_err = adjoint_error(op, args.seed)
        psnr_dag = metrics.psnr(x, tf.clip_by_value(x_dag, 0.0, 1.0)).numpy()
        psnr_obs = metrics.psnr(x[..., : shape[-1]], tf.clip_by_value(y, 0.0, 1.0)).numpy() if same_size else None
        psnr_naive = (
            metrics.psnr(x, tf.clip_by_value(x_naive, 0.0, 1.0)).numpy() if x_naive is not None else None
        )
        grid, captions = [], []
        for i, label in enumerate(labels):
            cells = [images[i], for_display(observation[i][..., : shape[-1]] if same_size else observation[i]),
                     np.clip(x_dag.numpy()[i][..., : shape[-1]], 0, 1)]
            caps = ["", "A^T y (not an image)" if not is_image else
                    (f"PSNR {psnr_obs[i]:.2f} dB" if psnr_obs is not None else "low resolution"),
                    f"PSNR {psnr_dag[i]:.2f} dB"]
            if x_naive is not None:
                cells.append(np.clip(x_naive.numpy()[i][..., : shape[-1]], 0, 1))
                caps.append(f"PSNR {psnr_naive[i]:.2f} dB")
            grid.append(cells)
            captions.append(caps)
            rows.append({
                "operator": name,
                "params": ",".join(f"{k}={v}" for k, v in params.items()),
                "image": label,
                "measurements": int(np.prod(op.out_shape)),
                "psnr_observation_db": None if psnr_obs is None else float(psnr_obs[i]),
                "psnr_pinv_db": float(psnr_dag[i]),
                "naive": naive_name,
                "psnr_naive_db": None if psnr_naive is None else float(psnr_naive[i]),
                "forward_ms": forward_ms,
                "pinv_ms": pinv_ms,
                "adjoint_rel_error": adj_err,
            })
        titles = ["original", "observation", "A^+ y"] + ([naive_name.replace("_", " ")] if naive_name else [])
        if n_sources > 1:
            titles[0] = f"original (1st of {n_sources})"
            titles[2] = f"A^+ y (1st of {n_sources})"
        figures.append((name, grid, captions, titles))

    # The table first: a figure that fails afterwards costs no numbers.
    table = write_table(out, "degrade", rows, floatfmt=".3g", overwrite=args.overwrite)
    print(table)
    for name, grid, captions, titles in figures:
        with reported_figure(out / f"{name}.png"):
            save_image_grid(out / f"{name}.png", grid, row_labels=labels, col_labels=titles, captions=captions,
                            overwrite=args.overwrite)
    # Overview: the first image of each operator; operators without a naive reconstruction
    # leave the last column blank.
    width = max(len(grid[0]) for _, grid, _, _ in figures)
    overview = [grid[0] + [None] * (width - len(grid[0])) for _, grid, _, _ in figures]
    overview_captions = [captions[0] for _, _, captions, _ in figures]
    with reported_figure(out / "overview.png"):
        save_image_grid(out / "overview.png", overview, row_labels=[name for name, *_ in figures],
                        col_labels=["original", "observation", "A^+ y", "naive"][:width],
                        captions=overview_captions, overwrite=args.overwrite)
    print(f"wrote degrade.csv|json|md, overview.png and one grid per operator in {out}")
    return rows


def main(argv=None) -> int:
    from tfinverse.utils.cli import parse_common_args

    args = parse_common_args(build_parser(), argv)
    run(args)
    return 0


if __name__ == "__main__":
    from tfinverse.utils.cli import run_script

    sys.exit(run_script(main))
