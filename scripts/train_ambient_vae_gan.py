#!/usr/bin/env python
"""Trains Ambient VAE-GAN (seed 001): an encoder-decoder that restores lossy images, learned from lossy images only.

Each step draws a batch of training images, measures it (``--measurement``), and updates the
encoder, then the decoder, then the discriminator, as the original (``vaegan.py``; see
``tfinverse.training.ambient``): three measurement draws per step (data, reconstruction,
prior sample), the KL, Gaussian log-likelihood pixel and feature terms (alpha 10, beta 1,
l2_w 1e-6), D labels 0.75 / 0 and G targets 0.375, three TF1-RMSProp optimisers on
3e-4 x 0.98^(step / 1e4) with the floor 5e-5. ``--supervised`` trains the original's
supervised baseline (reconstructions compared with the clean images). The defaults are the
original's (batch 64, 600000 steps, a "last" checkpoint every 2000 steps with 3 kept, a
"best" evaluation every 500, seed 1); the datasets are offline MNIST (default), the offline
LFW faces, and CelebA from a local copy.

"Best" checkpoint: the original kept the networks with the lowest MSE against CLEAN
validation images, which an unsupervised method cannot have. The default
``--best-criterion measurement`` needs no clean image: each held-out scene is measured twice
independently, the enhancer restores the first measurement and its estimate is re-measured
with the second one's operator and compared with it (an unbiased, rescaled estimate of the
clean MSE for drop_independent and add_noise). ``--best-criterion clean`` is the original's.
The selection images are held-out images that the deploy script's test set does not use.

Flags:

| flag                 | default                | help                                                                                                                                                                                                                                                    |
| -------------------- | ---------------------- | ------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------------- |
| `--steps`            | `600000`               | training steps (iterations) to reach in total; a resumed run continues up to it                                                                                                                                                                         |
| `--batch-size`       | `64`                   | global batch size (split over replicas and workers)                                                                                                                                                                                                     |
| `--sample-every`     | `500`                  | save a sample grid every N steps (0: only at the end)                                                                                                                                                                                                   |
| `--num-samples`      | `16`                   | size of the fixed latent batch of the sample grids                                                                                                                                                                                                      |
| `--log-every`        | `50`                   | write TensorBoard scalars every N steps                                                                                                                                                                                                                 |
| `--checkpoint-every` | `2000`                 | save a checkpoint every N steps (0: only at the end)                                                                                                                                                                                                    |
| `--keep-checkpoints` | `3`                    | how many checkpoints to keep                                                                                                                                                                                                                            |
| `--resume`           | `off`                  | continue the run in --out from its last checkpoint                                                                                                                                                                                                      |
| `--progress`         | `off`                  | show the progress bar even when not on a terminal                                                                                                                                                                                                       |
| `--strategy`         | `default`              | 'mirrored': data-parallel over all GPUs (or all logical CPUs) of this machine; 'multi_worker': over the machines of the TF_CONFIG environment variable (run the same command on each; the chief writes --out) (one of: default, mirrored, multi_worker) |
| `--jit-compile`      | `off`                  | compile the training step with XLA                                                                                                                                                                                                                      |
| `--precision`        | `float32`              | numeric precision: float32, or 16-bit compute with float32 variables (mixed_bfloat16 is ~4x faster on CPUs with AMX-BF16; float16 is for GPUs, with loss scaling) (one of: float32, bfloat16, float16)                                                  |
| `--out`              | `runs/ambient_vae_gan` | output folder for images, tables and checkpoints                                                                                                                                                                                                        |
| `--seed`             | `1`                    | random seed of every draw in the run                                                                                                                                                                                                                    |
| `--data-dir`         |                        | folder of local dataset copies (default: $TFINVERSE_DATA_DIR, else each loader's own default)                                                                                                                                                           |
| `--log-dir`          |                        | TensorBoard log folder (default: <out>/logs)                                                                                                                                                                                                            |
| `--overwrite`        | `off`                  | write into a non-empty output folder and replace existing files                                                                                                                                                                                         |
| `--quiet`            | `off`                  | no progress bars                                                                                                                                                                                                                                        |
| `--verbose`          | `off`                  | show TensorFlow's start-up log                                                                                                                                                                                                                          |
| `--debug`            | `off`                  | show the full traceback of an error                                                                                                                                                                                                                     |
| `--dataset`          | `mnist`                | mnist: offline MNIST-5000; lfw_faces: offline LFW faces (24x24); celeba: a local CelebA folder (--data-dir); celeb_a / mnist_tfds: local tensorflow-datasets copies (one of: mnist, mnist_tfds, lfw_faces, celeba, celeb_a)                             |
| `--download`         | `off`                  | let tensorflow-datasets download a missing copy                                                                                                                                                                                                         |
| `--measurement`      | `drop_independent`     | drop_independent[:p=0.9], drop_patch[:patch_size=k] (default half the side), add_noise[:std=...,blur=true], or a registered operator with parameters (name:key=value,...)                                                                               |
| `--noise`            |                        | a noise model after the measurement's linear part, e.g. gaussian:sigma=0.05 (not with add_noise)                                                                                                                                                        |
| `--supervised`       | `off`                  | the supervised baseline: reconstructions and prior samples are compared with clean images                                                                                                                                                               |
| `--latent-dim`       |                        | latent size (default: the preset's, 20 for mnist, 128 for celeba)                                                                                                                                                                                       |
| `--gamma`            | `0`                    | pixel target: 0 LL(x~, y) (the code's default), 1 LL(y~, y) (the README's algorithm) (one of: 0, 1)                                                                                                                                                     |
| `--alpha`            | `10.0`                 | weight of the pixel log-likelihood                                                                                                                                                                                                                      |
| `--beta`             | `1.0`                  | weight of the feature log-likelihood                                                                                                                                                                                                                    |
| `--l2-weight`        | `1e-06`                | weight of -L in the decoder's loss                                                                                                                                                                                                                      |
| `--lr`               | `0.0003`               | RMSProp learning rate at step 0                                                                                                                                                                                                                         |
| `--lr-decay-rate`    | `0.98`                 | learning-rate factor per --lr-decay-steps (continuous)                                                                                                                                                                                                  |
| `--lr-decay-steps`   | `10000`                | steps per factor                                                                                                                                                                                                                                        |
| `--lr-floor`         | `5e-05`                | the rate where the decay stops                                                                                                                                                                                                                          |
| `--max-iters`        |                        | the original's name of --steps                                                                                                                                                                                                                          |
| `--best-criterion`   | `measurement`          | 'best' checkpoint: measurement = held-out measurement fit through a second, independent measurement (no clean images; default); clean = MSE against clean images (the original's) (one of: measurement, clean)                                          |
| `--best-every`       | `500`                  | evaluate the best criterion every N steps (and after the last)                                                                                                                                                                                          |
| `--best-images`      | `64`                   | held-out images of the best criterion (not the deploy test images)                                                                                                                                                                                      |

Writes into ``--out``::

    checkpoints/        ckpt-<step> ("last": every --checkpoint-every steps, --keep-checkpoints kept)
                        and run_config.json (the settings deploy_ambient_vae_gan.py checks)
    best/               ckpt-<step>: the networks of the best criterion value
    enhancer/           SavedModel y -> x (decoded posterior mean, float32 NHWC [0, 1];
                        tfinverse.hub.load_image_model), batch norm on population statistics
    samples/step_*.png  clean | lossy | reconstruction | prior sample of fixed held-out images
    logs/               TensorBoard: every loss term, learning rates, best criterion, sample grids
    run.json, samples.png

Examples::

    python scripts/train_ambient_vae_gan.py --steps 3000 --precision bfloat16 --out runs/ambient_mnist_drop
    python scripts/train_ambient_vae_gan.py --measurement drop_patch --supervised --steps 3000 --out runs/sup_patch
    python scripts/train_ambient_vae_gan.py --measurement add_noise:std=0.2,blur=true --out runs/ambient_noise
    python scripts/train_ambient_vae_gan.py --measurement blur_gaussian:sigma=2 --noise gaussian:sigma=0.05
    python scripts/train_ambient_vae_gan.py --dataset celeba --data-dir ~/data/celeba --out runs/ambient_celeba
    python scripts/train_ambient_vae_gan.py --out runs/ambient_mnist_drop --resume --steps 5000
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a file: make the repository importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

# Light imports only: --help and flag errors answer before TensorFlow loads.
from tfinverse.tasks import ambient as settings  # noqa: E402
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
    image_size=None,  # fixed by --dataset's preset
    channels=None,
    learning_rate=None,  # --lr below, with its decay
    steps=settings.MAX_ITERS,
    out="runs/ambient_vae_gan",
    sample_every=settings.BEST_CHECKPOINT_EVERY,
    checkpoint_every=settings.LAST_CHECKPOINT_EVERY,
    log_every=50,
    num_samples=16,
)

#: Lossy training images whose statistics set the exported enhancer's batch norm.
CALIBRATION_IMAGES = 1000


def build_parser() -> argparse.ArgumentParser:
    """The shared training flags and Ambient VAE-GAN's data, measurement, losses and checkpoints."""
    parser = docstring_parser(__doc__)
    add_training_flags(parser, DEFAULTS)
    parser.set_defaults(seed=settings.ORIGINAL_SEED, keep_checkpoints=settings.LAST_CHECKPOINTS_KEPT)
    data = parser.add_argument_group("data")
    data.add_argument("--dataset", default="mnist", choices=tuple(settings.DATASETS),
                      help="mnist: offline MNIST-5000; lfw_faces: offline LFW faces (24x24); celeba: a local CelebA "
                      "folder (--data-dir); celeb_a / mnist_tfds: local tensorflow-datasets copies")
    data.add_argument("--download", action="store_true", help="let tensorflow-datasets download a missing copy")
    ambient = parser.add_argument_group("Ambient VAE-GAN")
    ambient.add_argument("--measurement", default="drop_independent",
                         help="drop_independent[:p=0.9], drop_patch[:patch_size=k] (default half the side), "
                         "add_noise[:std=...,blur=true], or a registered operator with parameters (name:key=value,...)")
    ambient.add_argument("--noise", default=None,
                         help="a noise model after the measurement's linear part, e.g. gaussian:sigma=0.05 (not with add_noise)")
    ambient.add_argument("--supervised", action="store_true",
                         help="the supervised baseline: reconstructions and prior samples are compared with clean images")
    ambient.add_argument("--latent-dim", type=int, default=None, help="latent size (default: the preset's, 20 for mnist, 128 for celeba)")
    ambient.add_argument("--gamma", type=int, default=settings.GAMMA, choices=settings.GAMMA_CHOICES,
                         help="pixel target: 0 LL(x~, y) (the code's default), 1 LL(y~, y) (the README's algorithm)")
    ambient.add_argument("--alpha", type=float, default=settings.ALPHA, help="weight of the pixel log-likelihood")
    ambient.add_argument("--beta", type=float, default=settings.BETA, help="weight of the feature log-likelihood")
    ambient.add_argument("--l2-weight", type=float, default=settings.L2_WEIGHT, help="weight of -L in the decoder's loss")
    ambient.add_argument("--lr", type=float, default=settings.LEARNING_RATE, help="RMSProp learning rate at step 0")
    ambient.add_argument("--lr-decay-rate", type=float, default=settings.LEARNING_RATE_DECAY_RATE,
                         help="learning-rate factor per --lr-decay-steps (continuous)")
    ambient.add_argument("--lr-decay-steps", type=float, default=settings.LEARNING_RATE_DECAY_STEPS, help="steps per factor")
    ambient.add_argument("--lr-floor", type=float, default=settings.LEARNING_RATE_FLOOR, help="the rate where the decay stops")
    ambient.add_argument("--max-iters", dest="steps", type=int, default=argparse.SUPPRESS, help="the original's name of --steps")
    ambient.add_argument("--best-criterion", default=settings.BEST_CRITERION, choices=settings.BEST_CRITERIA,
                         help="'best' checkpoint: measurement = held-out measurement fit through a second, independent "
                         "measurement (no clean images; default); clean = MSE against clean images (the original's)")
    ambient.add_argument("--best-every", type=int, default=settings.BEST_CHECKPOINT_EVERY,
                         help="evaluate the best criterion every N steps (and after the last)")
    ambient.add_argument("--best-images", type=int, default=settings.TEST_IMAGES,
                         help="held-out images of the best criterion (not the deploy test images)")
    return parser


def preset_of(args):
    """The data source and preset of ``--dataset``."""
    return settings.dataset_source(args.dataset)


def network_config(args):
    """The networks' configuration: the preset's, with ``--latent-dim``."""
    import dataclasses

    _, chosen = preset_of(args)
    config = chosen.config
    if args.latent_dim is not None:
        config = dataclasses.replace(config, latent_dim=int(args.latent_dim))
    return config


def make_measure(args, config=None):
    """The forward model of the flags on the networks' image shape (checked)."""
    _, chosen = preset_of(args)
    config = config or network_config(args)
    return settings.build_measurement(args.measurement, config.image_shape, args.noise, noise_std=chosen.add_noise_std,
                                      zero_level=config.zero_level)


def validate(args) -> None:
    """Refuses impossible settings before anything is written."""
    for flag in ("best_every", "best_images"):
        if getattr(args, flag) < 1:
            raise TrainingSetupError(f"--{flag.replace('_', '-')} must be >= 1, got {getattr(args, flag)}")
    if args.latent_dim is not None and args.latent_dim < 1:
        raise TrainingSetupError(f"--latent-dim must be >= 1, got {args.latent_dim}")
    for flag in ("lr", "lr_decay_steps"):
        if not getattr(args, flag) > 0:
            raise TrainingSetupError(f"--{flag.replace('_', '-')} must be positive, got {getattr(args, flag)}")
    if not 0 < args.lr_decay_rate <= 1 or args.lr_floor < 0:
        raise TrainingSetupError("--lr-decay-rate must be in (0, 1] and --lr-floor >= 0")
    settings.parse_measurement(args.measurement)
    make_measure(args)


def derived_settings(args) -> dict:
    """What fixes the model besides the flags (stored and checked on --resume, read by the deploy script)."""
    config = network_config(args)
    return {"measurement_label": make_measure(args, config).name, "layout": config.layout,
            "image_shape": list(config.image_shape), "latent_dim": config.latent_dim}


def describe_data(args) -> dict:
    """Where the data come from; an unavailable dataset fails here, before any write."""
    from tfinverse.data import DatasetUnavailableError

    source, chosen = preset_of(args)
    try:
        first = settings.load_images(args.dataset, "train", data_dir=args.data_dir, limit=1)
    except (DatasetUnavailableError, FileNotFoundError, KeyError, ValueError, TypeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
        raise TrainingSetupError(f"--dataset {args.dataset}: {message}") from None
    shape = list(first.shape[1:])
    return {"message": f"Ambient VAE-GAN on {args.dataset} ({source}, {shape[0]}x{shape[1]}x{shape[2]}); "
                       f"measurement {make_measure(args).name}{' (supervised)' if args.supervised else ''}",
            "dataset": args.dataset, "source": source, "training_shape": shape}


def make_dataset(args):
    """``epoch -> dataset`` of clean training batches (the trainer measures them)."""
    import numpy as np

    from tfinverse import data
    from tfinverse.training.batch_stream import epoch_seed

    source, _ = preset_of(args)
    config = network_config(args)
    if data.info(source).offline:
        images = settings.load_images(args.dataset, "train", data_dir=args.data_dir)

        def for_epoch(epoch: int):
            import tensorflow as tf

            order = np.random.default_rng(epoch_seed(args.seed, epoch)).permutation(len(images))
            return tf.data.Dataset.from_tensor_slices(images[order]).batch(args.batch_size, drop_remainder=True)

        return for_epoch
    options = {"data_dir": args.data_dir} if args.data_dir else {}
    if args.download:
        options["download"] = True

    def for_epoch(epoch: int):
        return data.load(source, split="train", image_size=config.image_size, channels=config.channels,
                         batch_size=args.batch_size, shuffle=True, seed=epoch_seed(args.seed, epoch),
                         drop_remainder=True, **options)

    return for_epoch


def build_trainer(args):
    """The compiled trainer with its best-checkpoint set-up, calibration images and sample inputs."""
    import numpy as np

    from tfinverse.models.ambient import AmbientNetworks
    from tfinverse.training.ambient import AmbientVAEGANTrainer, ambient_optimizers
    from tfinverse.training.checkpointing import checkpoint_dir

    config = network_config(args)
    measure = make_measure(args, config)
    trainer = AmbientVAEGANTrainer(
        AmbientNetworks.build(config, seed=args.seed), measure, gamma=args.gamma, alpha=args.alpha, beta=args.beta,
        l2_weight=args.l2_weight, supervised=args.supervised, seed=args.seed,
    )
    trainer.compile(*ambient_optimizers(args.lr, args.lr_decay_rate, args.lr_decay_steps, args.lr_floor))
    held_out, indices, split = settings.held_out_images(args.dataset, args.best_images, "selection",
                                                        data_dir=args.data_dir)
    out = Path(checkpoint_dir(args.out)).parent
    trainer.configure_best(out / "best", held_out, criterion=args.best_criterion, every=args.best_every, seed=args.seed)
    trainer.selection = {"split": split, "indices": [int(i) for i in indices]}
    trainer.set_fixed_samples(held_out, seed=args.seed, count=args.num_samples)
    train_images = settings.load_images(args.dataset, "train", data_dir=args.data_dir, limit=CALIBRATION_IMAGES)
    import tensorflow as tf

    trainer.calibration_y = np.asarray(measure(train_images, tf.constant([int(args.seed), 0xCA1B], tf.int64)), np.float32)
    return trainer


def default_steps(args, batches_per_epoch) -> int:
    """The original's 600000."""
    return settings.MAX_ITERS


def export(trainer, out_dir: Path, metadata: dict, args) -> dict:
    """The enhancer SavedModel in ``<out>/enhancer`` and the best-checkpoint record."""
    path = Path(out_dir) / "enhancer"
    trainer.export_enhancer(path, overwrite=True, extra_metadata={**metadata, "dataset": args.dataset})
    best = None
    if trainer.best is not None:
        best = {"criterion": args.best_criterion, "step": int(trainer.best_step.numpy()),
                "value": float(trainer.best_score.numpy()), "checkpoint": trainer.best["manager"].latest_checkpoint,
                "selection_images": json.loads(json.dumps(trainer.selection)),
                "history": json.loads(json.dumps(list(trainer.best_history)))}
    return {"enhancer_savedmodel": str(path), "best": best}


SPEC = TrainingSpec(
    name="ambient_vae_gan",
    validate=validate,
    build_trainer=build_trainer,
    default_steps=default_steps,
    describe_data=describe_data,
    make_dataset=make_dataset,
    export=export,
    derived_settings=derived_settings,
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
