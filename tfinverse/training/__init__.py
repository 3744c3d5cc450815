"""Training: the trainer protocol, the DCGAN, BEGAN, PGGAN and igan trainers, the loop, checkpoints.

Every trainer is a :class:`Trainer` (a ``keras.Model`` in the keras-io idiom: ``compile``
with named optimizers, ``train_step``, ``keras.metrics.Mean`` trackers) with a declared
update schedule (:class:`UpdateSchedule`, :class:`AdaptiveSchedule`); :func:`train` drives
any of them with an explicit loop over a compiled step (see :mod:`tfinverse.training.loop`
for why), and :func:`run_training` is the complete resumable run behind
``scripts/train_*.py``::

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

from tfinverse.utils.lazy import lazy_attributes

# name -> defining module, imported on first use: the flag definitions scripts read before
# parsing (tfinverse.training.flags) stay free of TensorFlow.
_LAZY = {
    "BatchNormRecalibration": "tfinverse.training.batch_norm",
    "batch_norm_layers": "tfinverse.training.batch_norm",
    "recalibrate_batch_norm": "tfinverse.training.batch_norm",
    "EpochBatchStream": "tfinverse.training.batch_stream",
    "epoch_seed": "tfinverse.training.batch_stream",
    "BEGAN_LEARNING_RATE": "tfinverse.training.began_trainer",
    "BEGANTrainer": "tfinverse.training.began_trainer",
    "began_learning_rate": "tfinverse.training.began_trainer",
    "began_optimizers": "tfinverse.training.began_trainer",
    "OutputFolderError": "tfinverse.training.checkpointing",
    "TrainingCheckpoint": "tfinverse.training.checkpointing",
    "check_resume_config": "tfinverse.training.checkpointing",
    "checkpoint_dir": "tfinverse.training.checkpointing",
    "latest_checkpoint": "tfinverse.training.checkpointing",
    "prepare_training_output": "tfinverse.training.checkpointing",
    "read_run_config": "tfinverse.training.checkpointing",
    "variables_by_path": "tfinverse.training.checkpointing",
    "write_run_config": "tfinverse.training.checkpointing",
    "DCGAN_BETA_1": "tfinverse.training.dcgan_trainer",
    "DCGAN_GENERATOR_STEPS": "tfinverse.training.dcgan_trainer",
    "DCGAN_LEARNING_RATE": "tfinverse.training.dcgan_trainer",
    "DCGANTrainer": "tfinverse.training.dcgan_trainer",
    "dcgan_optimizers": "tfinverse.training.dcgan_trainer",
    "GANTrainer": "tfinverse.training.gan_trainer",
    "Trainer": "tfinverse.training.trainer",
    "Update": "tfinverse.training.trainer",
    "UpdateSchedule": "tfinverse.training.trainer",
    "AdaptiveSchedule": "tfinverse.training.trainer",
    "StepPlan": "tfinverse.training.trainer",
    "replica_info": "tfinverse.training.trainer",
    "step_seed": "tfinverse.training.trainer",
    "IGAN": "tfinverse.training.igan",
    "AmbientVAEGANTrainer": "tfinverse.training.ambient",
    "ambient_optimizers": "tfinverse.training.ambient",
    "LIRTrainer": "tfinverse.training.lir",
    "CoupledAdam": "tfinverse.training.lir",
    "lir_optimizers": "tfinverse.training.lir",
    "export_restorer": "tfinverse.training.lir",
    "TF1RMSprop": "tfinverse.training.optimizers",
    "igan_optimizers": "tfinverse.training.igan",
    "next_generator_steps": "tfinverse.training.igan",
    "TrainingSummary": "tfinverse.training.loop",
    "compile_train_step": "tfinverse.training.loop",
    "save_sample_grid": "tfinverse.training.samples",
    "tile_images": "tfinverse.training.samples",
    "train": "tfinverse.training.loop",
    "PGGAN_BETAS": "tfinverse.training.pggan_trainer",
    "PGGAN_DRIFT_WEIGHT": "tfinverse.training.pggan_trainer",
    "PGGAN_GP_WEIGHT": "tfinverse.training.pggan_trainer",
    "PGGAN_LEARNING_RATE": "tfinverse.training.pggan_trainer",
    "PGGANTrainer": "tfinverse.training.pggan_trainer",
    "pggan_optimizers": "tfinverse.training.pggan_trainer",
    "reset_optimizer_state": "tfinverse.training.pggan_trainer",
    "PGGAN_KIMG_PER_PHASE": "tfinverse.training.progressive_schedule",
    "ProgressiveSchedule": "tfinverse.training.progressive_schedule",
    "STRATEGIES": "tfinverse.training.flags",
    "TrainingDefaults": "tfinverse.training.flags",
    "TrainingSetupError": "tfinverse.training.flags",
    "TrainingSpec": "tfinverse.training.flags",
    "add_training_flags": "tfinverse.training.flags",
    "parse_training_args": "tfinverse.training.flags",
    "dataset_factory": "tfinverse.training.runner",
    "describe_source": "tfinverse.training.runner",
    "make_strategy": "tfinverse.training.runner",
    "is_chief": "tfinverse.training.runner",
    "run_training": "tfinverse.training.runner",
}


__all__ = [
    # the protocol
    "Trainer",
    "Update",
    "UpdateSchedule",
    "AdaptiveSchedule",
    "StepPlan",
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
    "IGAN",
    "AmbientVAEGANTrainer",
    "ambient_optimizers",
    "LIRTrainer",
    "CoupledAdam",
    "lir_optimizers",
    "export_restorer",
    "TF1RMSprop",
    "igan_optimizers",
    "next_generator_steps",
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
    # batch norm
    "BatchNormRecalibration",
    "batch_norm_layers",
    "recalibrate_batch_norm",
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
    "is_chief",
    "run_training",
]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, __all__)
