#!/usr/bin/env python
"""Trains LIR ("Learning Invariant Representation for Unsupervised Image Restoration") on unpaired noisy and clean images.

Domain A is noisy, B clean; the two sets share no image (the method is unpaired). One step
is the original's iteration: 3 content-discriminator updates, one image-discriminator
update (which also steps the content discriminator), one generator update with every term
of the original (``tfinverse.training.lir``). Data, by ``--noise``:

* ``gaussian`` (sigma ``--sigma``/255, clipped; 50 is the original's) or ``poisson``
  (scikit-image's ``random_noise('poisson')``, peak 256): the noise is drawn per step on
  the noisy set's images. Offline default: scikit-image's photographs, split by source
  image (``tfinverse.data.unpaired``: 677 noisy-set and 616 clean-set 64 px patches in
  colour); or ``--noisy-dir`` / ``--clean-dir`` (two disjoint folders of clean images; the
  noisy folder's images get the noise).
* ``ct``: low-dose CT. Offline default: simulated phantoms (``tfinverse.data.ct``: 64
  low-dose and 64 full-dose FBP slices of disjoint phantoms, 128 px, in the original's
  display window); or ``--noisy-dir`` / ``--clean-dir`` holding ``.npy`` slices.
* ``given`` (the default with ``--noisy-dir``): the noisy folder holds really noisy images,
  used as they are.

Random ``--crop-size`` crops and horizontal flips of each set, batches of ``--batch-size``
from each. Without ``--vgg-weights`` (a Keras VGG19 weights file; ImageNet weights cannot
be downloaded here) the perceptual term is off and the run says so in one line.
``--width`` below the original's 64 makes a smaller model (cost ~ width^2) that trains on a
CPU in minutes. Writes into ``--out``::

    samples/step_<step>.png   noisy | restored | clean of fixed held-out images
    checkpoints/              ckpt-<step> (newest --keep-checkpoints) and run_config.json
    restorer/                 SavedModel noisy -> clean (any size: padded to a multiple of 4
                              inside and cropped back; output clipped to [0, 1]);
                              tfinverse.hub.load_restorer reads it, deploy_lir.py --model uses it
    logs/                     TensorBoard: every loss, learning rates, the sample grid, and
                              eval/psnr, eval/ssim on deploy_lir.py's held-out test images
                              every --eval-every steps (the noisy input's at step 0)
    run.json, samples.png     settings, data, timing, final losses, the update schedule,
                              the held-out evaluations

``--resume`` continues the run in ``--out`` with its settings (the budget, logging, hardware
and precision may change).

Examples::

    python scripts/train_lir.py --noise gaussian --sigma 50 --out runs/lir_g50
    python scripts/train_lir.py --noise gaussian --width 16 --batch-size 8 --steps 2000 \\
        --precision bfloat16 --out runs/lir_small
    python scripts/train_lir.py --noise ct --out runs/lir_ct
    python scripts/train_lir.py --noisy-dir data/noisy --clean-dir data/clean --vgg-weights vgg19.h5
    python scripts/train_lir.py --out runs/lir_g50 --resume --steps 400000

Flags:

| flag                 | default       | help                                                                                                                                                                                                                                                    |
| -------------------- | ------------- | ------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------- |
| `--steps`            |               | training steps (iterations) to reach in total; a resumed run continues up to it                                                                                                                                                                         |
| `--batch-size`       | `16`          | global batch size (split over replicas and workers)                                                                                                                                                                                                     |
| `--lr`               | `0.0001`      | learning rate of both networks                                                                                                                                                                                                                          |
| `--sample-every`     | `500`         | save a sample grid every N steps (0: only at the end)                                                                                                                                                                                                   |
| `--num-samples`      | `4`           | size of the fixed latent batch of the sample grids                                                                                                                                                                                                      |
| `--log-every`        | `50`          | write TensorBoard scalars every N steps                                                                                                                                                                                                                 |
| `--checkpoint-every` | `1000`        | save a checkpoint every N steps (0: only at the end)                                                                                                                                                                                                    |
| `--keep-checkpoints` | `3`           | how many checkpoints to keep                                                                                                                                                                                                                            |
| `--resume`           | `off`         | continue the run in --out from its last checkpoint                                                                                                                                                                                                      |
| `--progress`         | `off`         | show the progress bar even when not on a terminal                                                                                                                                                                                                       |
| `--strategy`         | `default`     | 'mirrored': data-parallel over all GPUs (or all logical CPUs) of this machine; 'multi_worker': over the machines of the TF_CONFIG environment variable (run the same command on each; the chief writes --out) (one of: default, mirrored, multi_worker) |
| `--jit-compile`      | `off`         | compile the training step with XLA                                                                                                                                                                                                                      |
| `--precision`        | `float32`     | numeric precision: float32, or 16-bit compute with float32 variables (mixed_bfloat16 is ~4x faster on CPUs with AMX-BF16; float16 is for GPUs, with loss scaling) (one of: float32, bfloat16, float16)                                                  |
| `--out`              | `results/lir` | output folder for images, tables and checkpoints                                                                                                                                                                                                        |
| `--seed`             | `0`           | random seed of every draw in the run                                                                                                                                                                                                                    |
| `--data-dir`         |               | folder of local dataset copies (default: $TFINVERSE_DATA_DIR, else each loader's own default)                                                                                                                                                           |
| `--log-dir`          |               | TensorBoard log folder (default: <out>/logs)                                                                                                                                                                                                            |
| `--overwrite`        | `off`         | write into a non-empty output folder and replace existing files                                                                                                                                                                                         |
| `--quiet`            | `off`         | no progress bars                                                                                                                                                                                                                                        |
| `--verbose`          | `off`         | show TensorFlow's start-up log                                                                                                                                                                                                                          |
| `--debug`            | `off`         | show the full traceback of an error                                                                                                                                                                                                                     |
| `--noise`            |               | noisy domain: gaussian / poisson drawn per step, ct (low-dose CT), given (a folder of noisy images); default gaussian, or given with --noisy-dir (one of: gaussian, poisson, ct, given)                                                                 |
| `--sigma`            | `50.0`        | Gaussian noise standard deviation in 8-bit units (the original's 50; also 25)                                                                                                                                                                           |
| `--noisy-dir`        |               | folder of the noisy domain (images; .npy slices for --noise ct)                                                                                                                                                                                         |
| `--clean-dir`        |               | folder of the clean domain, disjoint from --noisy-dir                                                                                                                                                                                                   |
| `--channels`         |               | image channels (default 3, 1 for --noise ct) (one of: 1, 3)                                                                                                                                                                                             |
| `--crop-size`        | `64`          | random training crop side (64)                                                                                                                                                                                                                          |
| `--config`           | `noise2clear` | image discriminators: noise2clear (3 scales, width 64) or noise2self (1 scale, 256) (one of: noise2clear, noise2self)                                                                                                                                   |
| `--width`            | `64`          | generator width (the original's 64; codes have 4x as many channels); smaller trains faster                                                                                                                                                              |
| `--dis-width`        |               | first-layer width of the image discriminators (default: the config's)                                                                                                                                                                                   |
| `--num-res`          | `4`           | ResBlocks per encoder and decoder (4)                                                                                                                                                                                                                   |
| `--vgg-weights`      |               | Keras VGG19 weights file (.h5) for the perceptual term; without it the term is off                                                                                                                                                                      |
| `--ct-count`         | `64`          | offline CT: phantoms per training set                                                                                                                                                                                                                   |
| `--ct-size`          | `128`         | offline CT: slice side in pixels                                                                                                                                                                                                                        |
| `--eval-every`       | `500`         | score the restorer on deploy_lir.py's held-out test images every N steps and after the last (TensorBoard eval/psnr, eval/ssim; monitoring only, nothing is selected by it; 0: off; off with --noisy-dir, which has no clean test images)                |
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Light imports only: --help and flag errors answer before TensorFlow loads.
from tfinverse.tasks import lir as settings  # noqa: E402
from tfinverse.training.flags import (  # noqa: E402
    TrainingDefaults,
    TrainingSetupError,
    TrainingSpec,
    add_training_flags,
    parse_training_args,
)
from tfinverse.utils.cli import docstring_parser  # noqa: E402

DEFAULTS = TrainingDefaults(
    batch_size=settings.BATCH_SIZE,
    image_size=None,  # random crops: --crop-size
    channels=None,
    learning_rate=settings.LEARNING_RATE,
    steps=None,  # the original's 300000
    out="results/lir",
    sample_every=500,
    checkpoint_every=1000,
    log_every=50,
    num_samples=4,
)

_VGG_CACHE: dict = {}


def build_parser() -> argparse.ArgumentParser:
    """The shared training flags plus LIR's data, noise and model flags."""
    parser = docstring_parser(__doc__)
    add_training_flags(parser, DEFAULTS)
    lir = parser.add_argument_group("LIR")
    lir.add_argument("--noise", default=None, choices=settings.NOISE_KINDS,
                     help="noisy domain: gaussian / poisson drawn per step, ct (low-dose CT), given (a folder of "
                          "noisy images); default gaussian, or given with --noisy-dir")
    lir.add_argument("--sigma", type=float, default=settings.DEFAULT_SIGMA_255,
                     help="Gaussian noise standard deviation in 8-bit units (the original's 50; also 25)")
    lir.add_argument("--noisy-dir", default=None, help="folder of the noisy domain (images; .npy slices for --noise ct)")
    lir.add_argument("--clean-dir", default=None, help="folder of the clean domain, disjoint from --noisy-dir")
    lir.add_argument("--channels", type=int, default=None, choices=(1, 3),
                     help="image channels (default 3, 1 for --noise ct)")
    lir.add_argument("--crop-size", type=int, default=settings.CROP_SIZE, help="random training crop side (64)")
    lir.add_argument("--config", default="noise2clear", choices=settings.CONFIGS,
                     help="image discriminators: noise2clear (3 scales, width 64) or noise2self (1 scale, 256)")
    lir.add_argument("--width", type=int, default=64,
                     help="generator width (the original's 64; codes have 4x as many channels); smaller trains faster")
    lir.add_argument("--dis-width", type=int, default=None, help="first-layer width of the image discriminators "
                     "(default: the config's)")
    lir.add_argument("--num-res", type=int, default=4, help="ResBlocks per encoder and decoder (4)")
    lir.add_argument("--vgg-weights", default=None,
                     help="Keras VGG19 weights file (.h5) for the perceptual term; without it the term is off")
    lir.add_argument("--ct-count", type=int, default=64, help="offline CT: phantoms per training set")
    lir.add_argument("--ct-size", type=int, default=settings.CT_IMAGE_SIZE, help="offline CT: slice side in pixels")
    lir.add_argument("--eval-every", type=int, default=500,
                     help="score the restorer on deploy_lir.py's held-out test images every N steps and after the last "
                     "(TensorBoard eval/psnr, eval/ssim; monitoring only, nothing is selected by it; 0: off; "
                     "off with --noisy-dir, which has no clean test images)")
    return parser


def resolve_noise(args) -> str:
    """``--noise`` with its default filled in (gaussian; given with --noisy-dir)."""
    if args.noise is None:
        args.noise = "given" if args.noisy_dir else "gaussian"
    return args.noise


def channels_of(args) -> int:
    return int(args.channels or (1 if args.noise == "ct" else 3))


def vgg_loss(args):
    """The perceptual loss of ``--vgg-weights`` (built once; InputError for another architecture)."""
    from tfinverse.models.lir import lir_perceptual_loss

    key = args.vgg_weights
    if key not in _VGG_CACHE:
        _VGG_CACHE[key] = lir_perceptual_loss(key)
    return _VGG_CACHE[key]


def validate(args) -> None:
    """Refuses settings LIR cannot be trained with (before anything is written)."""
    resolve_noise(args)
    if bool(args.noisy_dir) != bool(args.clean_dir):
        raise TrainingSetupError("--noisy-dir and --clean-dir go together (LIR needs both domains)")
    if args.noise == "given" and not args.noisy_dir:
        raise TrainingSetupError("--noise given needs --noisy-dir and --clean-dir (a folder of noisy images)")
    if args.precision == "float16":
        raise TrainingSetupError("LIR does not support --precision float16 (its gradient clipping); use bfloat16")
    if args.noise == "gaussian" and not args.sigma > 0:
        raise TrainingSetupError(f"--sigma must be positive, got {args.sigma}")
    if args.crop_size < 36 or args.crop_size % 4:
        raise TrainingSetupError(f"--crop-size must be a multiple of 4 and >= 36 (the content discriminator's four stride-2 convs), "
                                 f"got {args.crop_size}")
    for flag in ("width", "num_res", "ct_count", "ct_size", "eval_every"):
        if getattr(args, flag) < (0 if flag in ("num_res", "eval_every") else 1):
            raise TrainingSetupError(f"--{flag.replace('_', '-')} must be positive, got {getattr(args, flag)}")
    if args.noise == "ct" and args.channels == 3:
        raise TrainingSetupError("--noise ct works on grey slices: --channels 1")
    if args.noise == "ct" and not args.noisy_dir and args.ct_size < args.crop_size:
        raise TrainingSetupError(f"--ct-size {args.ct_size} is smaller than the {args.crop_size} px crop")
    if args.vgg_weights is not None:
        vgg_loss(args)  # a file of another architecture is refused here, as one line


def _photo_sets(args):
    from tfinverse.data.unpaired import lir_photos

    channels = channels_of(args)
    return lir_photos("noisy", channels=channels), lir_photos("clean", channels=channels)


def _ct_sets(args, split_noisy="noisy", split_clean="clean", count=None):
    from tfinverse.data.ct import ct_phantoms

    count = args.ct_count if count is None else count
    return (ct_phantoms(split_noisy, count=count, image_size=args.ct_size, train_count=args.ct_count),
            ct_phantoms(split_clean, count=count, image_size=args.ct_size, train_count=args.ct_count))


def describe_data(args) -> dict:
    """Checks the data (folders, sizes) before anything is written; says where it comes from."""
    from tfinverse.data.unpaired import check_unpaired_folders

    noise = args.noise
    if args.noisy_dir:
        if noise == "ct":
            from tfinverse.data.ct import ct_npy

            ct_npy("noisy", noisy_dir=args.noisy_dir, clean_dir=args.clean_dir, crop_size=args.crop_size)
            ct_npy("clean", noisy_dir=args.noisy_dir, clean_dir=args.clean_dir, crop_size=args.crop_size)
            noisy, clean = check_unpaired_folders(args.noisy_dir, args.clean_dir, crop_size=0, extensions=(".npy",))
        else:
            noisy, clean = check_unpaired_folders(args.noisy_dir, args.clean_dir, crop_size=args.crop_size)
        source = "folders"
        counts = {"noisy": len(noisy), "clean": len(clean)}
        what = f"{len(noisy)} noisy-domain files in {args.noisy_dir}, {len(clean)} clean in {args.clean_dir}"
    elif noise == "ct":
        noisy, clean = _ct_sets(args)
        source = "ct_phantoms"
        counts = {"noisy": len(noisy), "clean": len(clean)}
        what = f"offline CT phantoms: {len(noisy)} low-dose and {len(clean)} full-dose slices of {args.ct_size} px"
    else:
        noisy, clean = _photo_sets(args)
        source = "lir_photos"
        counts = {"noisy": len(noisy), "clean": len(clean)}
        what = (f"scikit-image photographs: {len(noisy)} noisy-set and {len(clean)} clean-set patches of "
                f"{noisy.shape[1]} px")
    spec = settings.noise_spec(noise, args.sigma)
    how = {"gaussian": f"Gaussian sigma {args.sigma:g}/255 clipped, drawn per step",
           "poisson": "Poisson (peak 256, clipped), drawn per step"}.get(noise, "noisy data used as it is")
    return {"message": f"LIR --noise {noise}: {what}; {how}; crops {args.crop_size} px",
            "source": source, "counts": counts, "noise": noise, "noise_model": spec}


def make_dataset(args):
    """``epoch -> dataset`` of ``(noisy, clean)`` batches: two independently shuffled streams."""
    from tfinverse.data.unpaired import unpaired_stream
    from tfinverse.training.batch_stream import epoch_seed

    channels = channels_of(args)
    if args.noisy_dir:
        def for_epoch(epoch):
            seed = epoch_seed(args.seed, epoch)
            if args.noise == "ct":
                from tfinverse.data.ct import ct_npy

                sources = [ct_npy(split, noisy_dir=args.noisy_dir, clean_dir=args.clean_dir, shuffle_seed=seed + i)
                           for i, split in enumerate(("noisy", "clean"))]
                return unpaired_stream(*sources, batch_size=args.batch_size, crop_size=args.crop_size, seed=seed,
                                       repeat=False)
            from tfinverse.data.unpaired import unpaired_folders

            noisy, clean = unpaired_folders("train", noisy_dir=args.noisy_dir, clean_dir=args.clean_dir,
                                            crop_size=args.crop_size, channels=channels, shuffle_seed=seed)
            return tf_zip_batches(noisy, clean, args.batch_size)

        return for_epoch
    noisy, clean = _ct_sets(args) if args.noise == "ct" else _photo_sets(args)

    def for_epoch(epoch):
        return unpaired_stream(noisy, clean, batch_size=args.batch_size, crop_size=args.crop_size,
                               seed=epoch_seed(args.seed, epoch), repeat=False)

    return for_epoch


def tf_zip_batches(noisy, clean, batch_size):
    """Two streams of single images -> zipped complete batches."""
    import tensorflow as tf

    streams = [ds.batch(int(batch_size), drop_remainder=True) for ds in (noisy, clean)]
    return tf.data.Dataset.zip(tuple(streams)).prefetch(tf.data.AUTOTUNE)


def fixed_samples(args, noise_model):
    """Held-out noisy/clean images of the sample grids (noise from the test seed)."""
    import numpy as np

    count = args.num_samples
    if args.noisy_dir:
        from tfinverse.data.folders import read_image
        from tfinverse.data.unpaired import check_unpaired_folders

        if args.noise == "ct":
            paths = check_unpaired_folders(args.noisy_dir, args.clean_dir, 0, extensions=(".npy",))[0][:count]
            images = [np.load(p).astype(np.float32).reshape(np.load(p).shape[0], -1, 1) for p in paths]
        else:
            paths = check_unpaired_folders(args.noisy_dir, args.clean_dir, 0)[0][:count]
            images = [read_image(p) for p in paths]
        side = args.crop_size
        crops = []
        for image in images:
            image = np.asarray(image, np.float32)
            if image.shape[-1] != channels_of(args):
                image = image.mean(-1, keepdims=True) if channels_of(args) == 1 else np.repeat(image, 3, -1)
            top, left = (image.shape[0] - side) // 2, (image.shape[1] - side) // 2
            crops.append(image[top:top + side, left:left + side])
        noisy, clean = np.stack(crops), None
    elif args.noise == "ct":
        noisy, clean = _ct_sets(args, "test_noisy", "test_clean", count=count)
    else:
        from tfinverse.data.unpaired import lir_photos

        clean = lir_photos("test", channels=channels_of(args))[:count]
        noisy = clean
    if noise_model is not None:
        noisy = np.asarray(noise_model(np.asarray(noisy, np.float32), seed=settings.TEST_SEED))
    return {"noisy": np.asarray(noisy, np.float32), "clean": None if clean is None else np.asarray(clean, np.float32)}


def build_trainer(args):
    """The compiled LIRTrainer of the flags, with its fixed held-out sample images."""
    from tfinverse.models.lir import VGG_UNAVAILABLE_MESSAGE, build_lir_networks
    from tfinverse.operators.noise import get_noise
    from tfinverse.training.lir import LIRTrainer, lir_optimizers

    spec = settings.noise_spec(args.noise, args.sigma)
    noise_model = None if spec is None else get_noise(**spec)
    networks = build_lir_networks(channels_of(args), args.config, seed=args.seed, width=args.width,
                                  dis_width=args.dis_width, num_res=args.num_res)
    perceptual = None
    if args.vgg_weights is None:
        print(VGG_UNAVAILABLE_MESSAGE, flush=True)
    else:
        perceptual = vgg_loss(args)
    trainer = LIRTrainer(networks, noise=noise_model, perceptual=perceptual, seed=args.seed)
    trainer.compile(lir_optimizers(args.lr))
    trainer.fixed_samples = fixed_samples(args, noise_model)
    if args.eval_every and not args.noisy_dir:
        from tfinverse.evaluation.lir import held_out_pairs

        names, clean, noisy = held_out_pairs(args.noise, args.sigma, ct_size=args.ct_size)
        if clean[0].shape[-1] == channels_of(args):  # a grey run on the colour photos: no evaluation
            trainer.configure_evaluation(noisy, clean, args.eval_every, ct=args.noise == "ct")
            print(f"held-out evaluation every {args.eval_every} steps on {', '.join(names)} "
                  "(TensorBoard eval/psnr, eval/ssim; deploy_lir.py's test set)", flush=True)
    return trainer


def default_steps(args, batches_per_epoch) -> int:
    """The original's 300000 iterations."""
    return settings.MAX_ITERATIONS


def export(trainer, out_dir: Path, metadata: dict, args) -> dict:
    """The restorer SavedModel in ``<out>/restorer`` (deploy_lir.py --model)."""
    from tfinverse.training.lir import export_restorer

    extra = {**metadata, "noise": args.noise, "sigma": args.sigma if args.noise == "gaussian" else None,
             "channels": channels_of(args), "width": args.width, "dis_width": args.dis_width,
             "num_res": args.num_res, "config": args.config, "crop_size": args.crop_size,
             "precision": args.precision, "perceptual_term": trainer.perceptual_active}
    path = Path(out_dir) / "restorer"
    export_restorer(trainer.nets, path, channels_of(args), overwrite=True, extra_metadata=extra)
    return {"restorer_export": str(path), "perceptual_term": trainer.perceptual_active,
            "evaluation": list(trainer.evaluation_history)}


SPEC = TrainingSpec(
    name="lir",
    validate=validate,
    build_trainer=build_trainer,
    default_steps=default_steps,
    describe_data=describe_data,
    make_dataset=make_dataset,
    export=export,
)


def main(argv=None) -> dict:
    """Parses ``argv``, trains, exports; returns the contents of run.json."""
    parser = build_parser()
    args = parse_training_args(parser, argv)  # before anything heavy: --help and flag errors answer at once
    from tfinverse.training import run_training

    return run_training(args, SPEC, argv)


if __name__ == "__main__":
    from tfinverse.utils.cli import run_script

    sys.exit(run_script(main))
