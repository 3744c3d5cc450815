"""Training the generative priors: DCGAN, BEGAN and PGGAN trainers, the loop, checkpoints.

Each GAN is a ``keras.Model`` subclass in the keras-io idiom (``compile(d_optimizer,
g_optimizer)``, ``train_step``, ``keras.metrics.Mean`` trackers); :func:`train` drives any of
them with an explicit loop over a compiled step (see :mod:`tfinverse.training.loop` for why),
and :func:`run_training` is the complete resumable run behind ``scripts/train_*.py``::

    from tfinverse import data, models, training

    g = models.DCGANGenerator(resolution=32, channels=1)
    d = models.build_dcgan_discriminator(32, 1)
    trainer = training.DCGANTrainer(g, d, seed=0)
    trainer.compile(*training.dcgan_optimizers())
    batches = training.EpochBatchStream(
        lambda epoch: data.load("mnist5k", image_size=32, channels=1, batch_size=64,
                                seed=training.epoch_seed(0, epoch), drop_remainder=True))
    summary = training.train(trainer, batches, total_steps=200, global_batch_size=64)
"""

from tfinverse.training.batch_stream import EpochBatchStream, epoch_seed
from tfinverse.training.began_trainer import (
    BEGAN_LEARNING_RATE,
    BEGANTrainer,
    began_learning_rate,
    began_optimizers,
)
from tfinverse.training.checkpointing import (
    OutputFolderError,
    TrainingCheckpoint,
    check_resume_config,
    checkpoint_dir,
    latest_checkpoint,
    prepare_training_output,
    read_run_config,
    variables_by_path,
    write_run_config,
)
from tfinverse.training.dcgan_trainer import (
    DCGAN_BETA_1,
    DCGAN_GENERATOR_STEPS,
    DCGAN_LEARNING_RATE,
    DCGANTrainer,
    dcgan_optimizers,
)
from tfinverse.training.gan_trainer import GANTrainer, replica_info, step_seed
from tfinverse.training.loop import TrainingSummary, compile_train_step, save_sample_grid, tile_images, train
from tfinverse.training.pggan_trainer import (
    PGGAN_BETAS,
    PGGAN_DRIFT_WEIGHT,
    PGGAN_GP_WEIGHT,
    PGGAN_LEARNING_RATE,
    PGGANTrainer,
    pggan_optimizers,
    reset_optimizer_state,
)
from tfinverse.training.progressive_schedule import PGGAN_KIMG_PER_PHASE, ProgressiveSchedule
from tfinverse.training.runner import (
    STRATEGIES,
    TrainingDefaults,
    TrainingSetupError,
    TrainingSpec,
    add_training_flags,
    parse_training_args,
    dataset_factory,
    describe_source,
    make_strategy,
    run_training,
)

__all__ = [
    # trainers
    "GANTrainer",
    "DCGANTrainer",
    "BEGANTrainer",
    "PGGANTrainer",
    "dcgan_optimizers",
    "began_optimizers",
    "began_learning_rate",
    "pggan_optimizers",
    "reset_optimizer_state",
    "ProgressiveSchedule",
    "step_seed",
    "replica_info",
    "DCGAN_LEARNING_RATE",
    "DCGAN_BETA_1",
    "DCGAN_GENERATOR_STEPS",
    "BEGAN_LEARNING_RATE",
    "PGGAN_LEARNING_RATE",
    "PGGAN_BETAS",
    "PGGAN_GP_WEIGHT",
    "PGGAN_DRIFT_WEIGHT",
    "PGGAN_KIMG_PER_PHASE",
    # data, loop, checkpoints
    "EpochBatchStream",
    "epoch_seed",
    "TrainingSummary",
    "compile_train_step",
    "train",
    "tile_images",
    "save_sample_grid",
    "TrainingCheckpoint",
    "OutputFolderError",
    "checkpoint_dir",
    "latest_checkpoint",
    "prepare_training_output",
    "read_run_config",
    "variables_by_path",
    "write_run_config",
    "check_resume_config",
    # scripts
    "STRATEGIES",
    "TrainingDefaults",
    "TrainingSetupError",
    "TrainingSpec",
    "add_training_flags",
    "parse_training_args",
    "describe_source",
    "dataset_factory",
    "make_strategy",
    "run_training",
]
