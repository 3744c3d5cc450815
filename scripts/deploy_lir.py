#!/usr/bin/env python
"""Denoises full-size held-out images with a trained LIR restorer, BM3D and DIP, and scores them against the noisy input.

Test images, by ``--noise``:

* ``gaussian`` / ``poisson``: clean held-out photographs (default: scikit-image's chelsea
  and coffee, never seen in training; or ``--images`` FOLDER), made noisy with the noise of
  the run (Gaussian ``--sigma``/255 clipped, or Poisson peak 256) from ``--seed`` (the
  original's test seed 10), then stored as 8-bit values, as the original's noisy test files.
* ``ct``: held-out offline CT phantoms (low-dose FBP input, full-dose FBP reference, in the
  display window), ``--ct-count`` of them.

Methods (``--methods``): ``noisy`` (the input itself), ``lir`` (the restorer of ``--model``:
a train_lir.py run folder or its ``restorer`` export; full-size images padded to a multiple
of 4 and cropped back, output clipped to [0, 1]), ``bm3d`` (an optional extra: without the
bm3d package it is skipped with a note; Gaussian noise: BM3D given the true sigma; Poisson:
BM3D in the Anscombe domain, ``tfinverse.inversion.bm3d_poisson_denoise``, given the peak;
CT, whose FBP noise has no known level: BM3D given each slice's noise level as
scikit-image's ``estimate_sigma`` measures it, or ``--bm3d-sigma``) and ``dip`` (Deep Image Prior, ``tfinverse.inversion.get("dip")``,
``--dip-iterations`` Adam steps of a ``--dip-channels`` wide network per image).

Scores, per image and averaged (``results.csv|json|md``, per image in ``per_image.*``):
photographs in the original's convention (8-bit files: PSNR data range 255, SSIM
multichannel 7x7 with data range 255) and on floats (data range 1); CT in the original's
convention (PSNR data range 1, SSIM data range 2 on [0, 1] slices) and SSIM data range 1.
``arrays.npz`` holds every image scored; ``grid.png`` shows clean | noisy | each method
(figures are written last). ``run.json`` holds the settings, timings and notes.

A model trained for another noise kind or channel count is refused (one line) unless the
flags match it.

Examples::

    python scripts/deploy_lir.py --model runs/lir_g50 --out runs/lir_g50_test
    python scripts/deploy_lir.py --model runs/lir_ct --noise ct --methods noisy lir dip
    python scripts/deploy_lir.py --noise gaussian --sigma 25 --methods noisy dip --images my_clean_photos

Flags:

| flag               | default              | help                                                                                                                                                                                                                                                                   |
| ------------------ | -------------------- | ---------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------- |
| `--model`          |                      | a train_lir.py run folder or its restorer/ export (needed by lir)                                                                                                                                                                                                      |
| `--noise`          |                      | test noise (default: the model's, else gaussian) (one of: gaussian, poisson, ct)                                                                                                                                                                                       |
| `--sigma`          |                      | Gaussian sigma in 8-bit units (default: the model's, else the original's 50)                                                                                                                                                                                           |
| `--methods`        | `noisy lir bm3d dip` | methods to score (one of: noisy, lir, bm3d, dip)                                                                                                                                                                                                                       |
| `--images`         |                      | folder of clean held-out images (default: scikit-image's chelsea and coffee)                                                                                                                                                                                           |
| `--num-images`     |                      | score only the first N test images                                                                                                                                                                                                                                     |
| `--ct-count`       | `8`                  | CT: held-out phantoms                                                                                                                                                                                                                                                  |
| `--ct-size`        | `128`                | CT: slice side                                                                                                                                                                                                                                                         |
| `--dip-iterations` | `500`                | DIP Adam steps per image (DIP's 2000 / 4 under noise, as IAGAN ran it)                                                                                                                                                                                                 |
| `--dip-channels`   | `128`                | DIP network width (DIP's 128)                                                                                                                                                                                                                                          |
| `--bm3d-sigma`     |                      | CT: BM3D's noise level on the [0, 1] slices (default: estimated per slice)                                                                                                                                                                                             |
| `--grid-images`    | `2`                  | images in grid.png (0: none)                                                                                                                                                                                                                                           |
| `--precision`      | `float32`            | numeric precision: float32, or 16-bit compute with float32 variables (mixed_bfloat16 is ~4x faster on CPUs with AMX-BF16; float16 is for GPUs, with loss scaling); applies to DIP's network; the LIR SavedModel computes as saved (one of: float32, bfloat16, float16) |
| `--out`            | `results/deploy_lir` | output folder for images, tables and checkpoints                                                                                                                                                                                                                       |
| `--seed`           | `10`                 | random seed of every draw in the run                                                                                                                                                                                                                                   |
| `--data-dir`       |                      | folder of local dataset copies (default: $TFINVERSE_DATA_DIR, else each loader's own default)                                                                                                                                                                          |
| `--log-dir`        |                      | TensorBoard log folder (default: <out>/logs)                                                                                                                                                                                                                           |
| `--overwrite`      | `off`                | write into a non-empty output folder and replace existing files                                                                                                                                                                                                        |
| `--quiet`          | `off`                | no progress bars                                                                                                                                                                                                                                                       |
| `--verbose`        | `off`                | show TensorFlow's start-up log                                                                                                                                                                                                                                         |
| `--debug`          | `off`                | show the full traceback of an error                                                                                                                                                                                                                                    |
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

from tfinverse.evaluation.lir import DEFAULT_CT_TEST_COUNT  # noqa: E402
from tfinverse.tasks import lir as settings  # noqa: E402
from tfinverse.utils.cli import add_common_flags, docstring_parser, parse_common_args  # noqa: E402

METHODS = ("noisy", "lir", "bm3d", "dip")
_TITLES = {"clean": "clean", "noisy": "noisy", "lir": "LIR", "bm3d": "BM3D", "dip": "DIP"}


def build_parser() -> argparse.ArgumentParser:
    """The script's flags."""
    parser = docstring_parser(__doc__)
    group = parser.add_argument_group("LIR deployment")
    group.add_argument("--model", default=None, help="a train_lir.py run folder or its restorer/ export (needed by lir)")
    group.add_argument("--noise", default=None, choices=("gaussian", "poisson", "ct"),
                       help="test noise (default: the model's, else gaussian)")
    group.add_argument("--sigma", type=float, default=None,
                       help="Gaussian sigma in 8-bit units (default: the model's, else the original's 50)")
    group.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS, help="methods to score")
    group.add_argument("--images", default=None,
                       help="folder of clean held-out images (default: scikit-image's chelsea and coffee)")
    group.add_argument("--num-images", type=int, default=None, help="score only the first N test images")
    group.add_argument("--ct-count", type=int, default=DEFAULT_CT_TEST_COUNT, help="CT: held-out phantoms")
    group.add_argument("--ct-size", type=int, default=settings.CT_IMAGE_SIZE, help="CT: slice side")
    group.add_argument("--dip-iterations", type=int, default=500,
                       help="DIP Adam steps per image (DIP's 2000 / 4 under noise, as IAGAN ran it)")
    group.add_argument("--dip-channels", type=int, default=128, help="DIP network width (DIP's 128)")
    group.add_argument("--bm3d-sigma", type=float, default=None,
                       help="CT: BM3D's noise level on the [0, 1] slices (default: estimated per slice)")
    group.add_argument("--grid-images", type=int, default=2, help="images in grid.png (0: none)")
    from tfinverse.utils.precision import add_precision_flag

    add_precision_flag(parser, help_suffix="; applies to DIP's network; the LIR SavedModel computes as saved")
    add_common_flags(parser, out_default="results/deploy_lir")
    parser.set_defaults(seed=settings.TEST_SEED)
    return parser


def _restorer_dir(model: str) -> Path:
    path = Path(model).expanduser()
    return path / "restorer" if (path / "restorer").is_dir() else path


def model_description(args) -> dict:
    """The export's stored description (``extra`` settings), or {} without ``--model``."""
    from tfinverse.errors import InputError, MissingPathError

    if args.model is None:
        return {}
    path = _restorer_dir(args.model)
    if not path.exists():
        raise MissingPathError(f"--model {args.model} does not exist")
    metadata_file = path / "assets" / "tfinverse_restorer.json"
    if not metadata_file.is_file():
        raise InputError(f"--model {args.model} is not an LIR restorer (no restorer/assets/tfinverse_restorer.json); "
                         "give a train_lir.py run folder")
    return dict(json.loads(metadata_file.read_text()).get("extra", {}), channels=json.loads(metadata_file.read_text())["channels"])


def resolve(args, described: dict) -> None:
    """Fills in ``--noise`` / ``--sigma`` from the model; refuses a model of another configuration."""
    from tfinverse.errors import InputError

    trained = described.get("noise")
    if args.noise is None:
        args.noise = trained if trained in ("gaussian", "poisson", "ct") else "gaussian"
    if trained is not None and trained != "given" and trained != args.noise:
        raise InputError(f"--model {args.model} was trained for --noise {trained}, not {args.noise}; "
                         "use a model trained for this noise")
    channels = 1 if args.noise == "ct" else 3
    if described and int(described.get("channels", channels)) != channels and args.images is None:
        raise InputError(f"--model {args.model} restores {described['channels']}-channel images, the "
                         f"{args.noise} test images have {channels}")
    if args.sigma is None:
        args.sigma = float(described.get("sigma") or settings.DEFAULT_SIGMA_255)
    if "lir" in args.methods and args.model is None:
        raise InputError("--methods lir needs --model (a train_lir.py run folder)")
    for flag in ("dip_iterations", "dip_channels", "ct_count", "ct_size"):
        if getattr(args, flag) < 1:
            raise InputError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.bm3d_sigma is not None and not (args.noise == "ct" and args.bm3d_sigma > 0):
        raise InputError(f"--bm3d-sigma is for --noise ct and must be positive, got {args.bm3d_sigma}")
    if args.noise == "gaussian" and not args.sigma > 0:
        raise InputError(f"--sigma must be positive, got {args.sigma}")


def parse_args(argv=None):
    """Parses the flags (before TensorFlow loads) and checks them against the model."""
    args = parse_common_args(build_parser(), argv)
    resolve(args, model_description(args))
    return args


# ----------------------------------------------------------------------------- data
def test_images(args):
    """``(names, clean, noisy)``: lists of float32 ``[H, W, C]`` images in [0, 1]."""
    from tfinverse.evaluation.lir import held_out_pairs

    return held_out_pairs(args.noise, args.sigma, seed=args.seed, images=args.images, num_images=args.num_images,
                          ct_count=args.ct_count, ct_size=args.ct_size)


def _bm3d_note(args):
    try:
        import bm3d  # noqa: F401
    except ImportError:
        return "BM3D skipped: the bm3d package is not installed (pip install bm3d)"
    return None


def bm3d_estimate(noisy, args):
    """BM3D of one image under the test noise (see the module docstring), clipped to [0, 1]."""
    from tfinverse import inversion

    if args.noise == "poisson":
        result = inversion.bm3d_poisson_denoise(noisy[None], settings.SKIMAGE_POISSON_PEAK, progress=False)
    else:
        if args.noise == "ct":
            from skimage.restoration import estimate_sigma

            sigma = args.bm3d_sigma or float(estimate_sigma(noisy[..., 0]))
        else:
            sigma = args.sigma / 255.0
        result = inversion.bm3d_denoise(noisy[None], sigma, progress=False)
    return np.clip(result.x_hat[0], 0, 1)


def run_method(name, args, noisy_images, restorer):
    """Estimates of one method for every image, and the seconds per image (None if skipped)."""
    from tfinverse import inversion
    from tfinverse.operators.identity import Identity

    outputs = []
    started = time.perf_counter()
    for index, noisy in enumerate(noisy_images):
        if name == "noisy":
            outputs.append(noisy)
        elif name == "lir":
            outputs.append(np.asarray(restorer(noisy[None]))[0])
        elif name == "bm3d":
            outputs.append(bm3d_estimate(noisy, args))
        elif name == "dip":
            method = inversion.get("dip", iterations=args.dip_iterations, channels=args.dip_channels,
                                   noisy_iteration_factor=1)
            result = method(Identity(noisy.shape), noisy[None], seed=args.seed + index, progress=not args.quiet)
            outputs.append(np.clip(np.asarray(result.x_hat)[0], 0, 1))
    return outputs, (time.perf_counter() - started) / max(1, len(noisy_images))


def main(argv=None) -> dict:
    """Scores every method on the held-out images; writes tables, arrays, then the grid."""
    args = parse_args(argv)
    from tfinverse.utils.precision import precision_policy

    with precision_policy(args.precision):
        from tfinverse.evaluation.lir import restoration_scores
        from tfinverse.utils.cli import output_dir_or_exit
        from tfinverse.utils.results import atomic_write_bytes, atomic_write_text, npz_bytes, reported_figure, save_image_grid, write_table

        names, clean, noisy = test_images(args)  # data errors before the output folder
        restorer = None
        if "lir" in args.methods:
            from tfinverse import hub

            restorer = hub.load_restorer(str(_restorer_dir(args.model)))
        out = output_dir_or_exit(args)
        ct = args.noise == "ct"
        notes, estimates, seconds = [], {}, {}
        for name in [m for m in METHODS if m in args.methods]:
            if name == "bm3d":
                note = _bm3d_note(args)
                if note:
                    print(note, flush=True)
                    notes.append(note)
                    continue
            estimates[name], seconds[name] = run_method(name, args, noisy, restorer)
        per_image, rows = [], []
        for name, images in estimates.items():
            values = [restoration_scores(estimate, reference, ct) for estimate, reference in zip(images, clean)]
            for image_name, value in zip(names, values):
                per_image.append({"method": name, "image": image_name, **value})
            rows.append({"method": name, **{key: float(np.mean([v[key] for v in values])) for key in values[0]},
                         "seconds_per_image": round(seconds[name], 3)})
        for note in notes:
            rows.append({"method": "bm3d", "note": note})
        columns = ["method", "psnr_original", "ssim_original", "psnr_float", "ssim_float", "seconds_per_image", "note"]
        table = write_table(out, "results", rows, columns, overwrite=args.overwrite)
        write_table(out, "per_image", per_image, overwrite=args.overwrite)
        arrays = {f"clean_{i}": c for i, c in enumerate(clean)}
        for name, images in estimates.items():
            arrays.update({f"{name}_{i}": image for i, image in enumerate(images)})
        atomic_write_bytes(out / "arrays.npz", npz_bytes(arrays), overwrite=args.overwrite)
        convention = ("CT: PSNR data range 1, SSIM data range 2 on [0, 1] slices (the original's)" if ct else
                      "photographs: 8-bit PSNR (range 255) and SSIM (7x7, multichannel), the original's")
        run = {"script": "deploy_lir.py", "flags": {k: v for k, v in vars(args).items() if isinstance(v, (str, int, float, bool, list, type(None)))},
               "images": names, "model": args.model, "noise": args.noise, "sigma": args.sigma if args.noise == "gaussian" else None,
               "convention": convention, "notes": notes, "results": rows}
        atomic_write_text(out / "run.json", json.dumps(run, indent=2, default=str) + "\n", overwrite=True)
        print(table, flush=True)
        for note in notes:
            print(note, flush=True)
        count = min(args.grid_images, len(names))
        if count > 0:
            with reported_figure(out / "grid.png"):
                columns_shown = ["clean"] + list(estimates)
                grid_rows = [[clean[i]] + [estimates[m][i] for m in estimates] for i in range(count)]
                save_image_grid(out / "grid.png", grid_rows, row_labels=names[:count],
                                col_labels=[_TITLES[c] for c in columns_shown], overwrite=True)
        return run


if __name__ == "__main__":
    from tfinverse.utils.cli import run_script

    sys.exit(run_script(main))
