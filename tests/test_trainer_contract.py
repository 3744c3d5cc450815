"""The trainer contract, checked on every trainer (DCGAN, BEGAN, PGGAN, igan, LIR, Ambient VAE-GAN) at tiny sizes.

Every trainer of :mod:`tfinverse.training` must, through the one loop
(:func:`tfinverse.training.loop.train`):

1. run one step and return finite metrics (one per tracker);
2. survive a checkpoint round trip: a freshly built trainer (other initial weights) restored
   from the checkpoint holds every variable of the checkpointed one, bit for bit;
3. resume exactly: 3 steps, checkpoint, a new trainer restored from it, 3 more steps equals
   6 uninterrupted steps, bit for bit (every network variable, batch-norm statistics,
   optimizer slots, step counter and schedule state; the data stream's position is part
   of the checkpoint). The steps run eagerly (``run_eagerly``) so that both runs execute
   the same kernels; igan's final batch-norm recalibration is off here (it happens once, at
   the end of a run, from a separate stream);
4. export something its consumer loads: the priors through ``hub.load_generator``, igan's
   estimator SavedModel through ``scripts/deploy_igan.py``'s loader, equal to the trainer's
   own inference-mode outputs.

igan runs with an always-winning threshold, so its ``mm`` grows (rounds at generator steps 0
and 6 of ``mm`` 6): the interruption falls inside a round and the resumed run must not start
one.
"""

import importlib.util
import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfinverse import hub
from tfinverse.models import (
    BEGANGenerator,
    DCGANGenerator,
    PGGANDiscriminatorNetwork,
    PGGANGenerator,
    build_began_discriminator,
    build_dcgan_discriminator,
)
from tfinverse.models import igan as igan_models
from tfinverse.tasks.igan_tasks import get_task
from tfinverse.training import (
    BEGANTrainer,
    DCGANTrainer,
    EpochBatchStream,
    PGGANTrainer,
    ProgressiveSchedule,
    TrainingCheckpoint,
    began_optimizers,
    dcgan_optimizers,
    pggan_optimizers,
    train,
)
from tfinverse.training.igan import IGAN, igan_optimizers
from tfinverse.models.lir import build_lir_networks
from tfinverse.training.lir import LIRTrainer, export_restorer, lir_optimizers
from tfinverse.models.ambient import AmbientNetworks
from tfinverse.tasks.ambient import AmbientConfig, build_measurement
from tfinverse.training.ambient import AmbientVAEGANTrainer, ambient_optimizers

TRAINERS = ("dcgan", "began", "pggan", "igan", "lir", "ambient")
AMBIENT_CONFIG = AmbientConfig(8, 1, 4, "mnist")
BATCH = 4
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


# ----------------------------------------------------------------------------- tiny trainers
def build(name, seed=0):
    """A compiled tiny trainer; ``seed`` sets the initial weights (the run seed stays 0)."""
    if name == "dcgan":
        generator = DCGANGenerator(resolution=8, channels=1, latent_dim=4, base_filters=4, seed=seed)
        trainer = DCGANTrainer(generator, build_dcgan_discriminator(8, 1, 4, seed=seed + 1), seed=0)
        trainer.compile(*dcgan_optimizers())
    elif name == "began":
        generator = BEGANGenerator(resolution=8, channels=1, latent_dim=4, num_filters=4, seed=seed)
        trainer = BEGANTrainer(generator, build_began_discriminator(8, 1, 4, 4, seed=seed + 1), seed=0)
        trainer.compile(*began_optimizers())
    elif name == "pggan":
        generator = PGGANGenerator(8, latent_dim=4, channels=1, fmap_base=16, fmap_max=4, seed=seed)
        discriminator = PGGANDiscriminatorNetwork(8, 1, fmap_base=16, fmap_max=4, seed=seed + 1)
        # 8 images per phase at batch 4: the 8x8 level fades in within the first steps
        trainer = PGGANTrainer(generator, discriminator, ProgressiveSchedule(2, 8), seed=0)
        trainer.compile(*pggan_optimizers())
    elif name == "lir":
        # tiny LIR (width 2, one ResBlock) with per-step Gaussian noise on the noisy stream
        from tfinverse.operators.noise import get_noise

        networks = build_lir_networks(1, seed=seed, width=2, dis_width=4, num_res=1)
        trainer = LIRTrainer(networks, noise=get_noise("gaussian", sigma=0.2, clip=True), seed=0)
        trainer.compile(lir_optimizers(1e-3))
    elif name == "ambient":
        # tiny Ambient VAE-GAN (8x8 grey, MNIST layout, latent 4) measuring its batches itself
        measure = build_measurement("drop_independent:p=0.5", AMBIENT_CONFIG.image_shape)
        trainer = AmbientVAEGANTrainer(AmbientNetworks.build(AMBIENT_CONFIG, seed=seed), measure, seed=0)
        trainer.compile(*ambient_optimizers())
    else:
        task = get_task("denoising")
        network = igan_models.build_igan_estimator(
            task.image_size, task.channels, component_is_residual=True, add_input_mean=True,
            working_size=16, filters=4, seed=seed,
        )
        estimator = igan_models.IganEstimator(network, metadata=igan_models.task_metadata(task))
        d1, d2 = (igan_models.build_igan_discriminator(task.image_size, 1, filters=(2, 4, 4, 4), seed=seed + i,
                                                       name=f"d{i}") for i in (1, 2))
        trainer = IGAN(estimator, d1, d2, recalibration_batches=0)
        trainer.compile(*igan_optimizers("ls", 1e-3, 1e-3), gan_model="ls", d_threshold=np.inf)
    return trainer


def dataset_factory(name):
    """``epoch -> dataset`` of 3 batches per epoch, reshuffled per epoch."""
    rng = np.random.default_rng(7)
    if name == "igan":
        x = rng.random((12, 64, 64, 1)).astype(np.float32)
        noise = rng.normal(size=x.shape).astype(np.float32)
        data = {"y": x + noise, "x": x, "component": noise, "x2": rng.permutation(x)}
    elif name == "lir":  # unpaired (noisy-domain, clean) 64 px crops: the content D needs >= 36 px
        data = tuple(rng.random((12, 64, 64, 1)).astype(np.float32) for _ in range(2))
    else:
        data = rng.random((12, 8, 8, 1)).astype(np.float32)

    def make(epoch):
        return tf.data.Dataset.from_tensor_slices(data).shuffle(12, seed=epoch).batch(BATCH, drop_remainder=True)

    return make


def run(trainer, name, steps, stream=None, checkpoint=None):
    stream = stream or EpochBatchStream(dataset_factory(name))
    return train(trainer, stream, steps, global_batch_size=BATCH, run_eagerly=True, checkpoint=checkpoint), stream


def state_variables(trainer):
    """Every variable a checkpoint of the trainer holds, by a stable name."""
    found = {}
    for key, item in trainer.checkpoint_items().items():
        if isinstance(item, dict):
            found.update({f"{key}/{path}": v for path, v in item.items()})
        elif isinstance(item, keras.Model):
            found.update({f"{key}/{i}:{v.path}": v for i, v in enumerate(item.weights)})
        elif isinstance(item, keras.optimizers.Optimizer):
            found.update({f"{key}/{i}:{v.path}": v for i, v in enumerate(item.variables)})
        else:
            found[key] = item
    return {key: np.array(np.asarray(v)) for key, v in found.items()}


def assert_same_state(a, b):
    left, right = state_variables(a), state_variables(b)
    assert sorted(left) == sorted(right)
    for key in left:
        np.testing.assert_array_equal(left[key], right[key], err_msg=key)


# ----------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("name", TRAINERS)
def test_one_step_returns_finite_metrics(name):
    trainer = build(name)
    summary, _ = run(trainer, name, 1)
    assert summary.final_step == 1 and int(trainer.step.numpy()) == 1
    assert set(summary.final_metrics) == set(trainer.metric_names)
    assert all(np.isfinite(value) for value in summary.final_metrics.values()), summary.final_metrics
    assert all(count >= 1 for count in trainer.optimizer_iterations().values())
    # the declared schedule says what ran
    assert trainer.describe_schedule()["kind"] in ("fixed", "adaptive_rounds")


@pytest.mark.parametrize("name", TRAINERS)
def test_checkpoint_round_trip_restores_every_variable(name, tmp_path):
    source = build(name)
    run(source, name, 2)
    TrainingCheckpoint(tmp_path, source.checkpoint_items()).save(2)
    target = build(name, seed=5)
    before = state_variables(target)
    TrainingCheckpoint(tmp_path, target.checkpoint_items()).restore_latest()
    target.after_restore()
    assert_same_state(source, target)
    # it really restored: most network weights differed before
    after = state_variables(target)
    assert sum(not np.array_equal(before[k], after[k]) for k in before) > len(before) // 2
    # every trainable weight of the trainer is in the checkpoint
    held = {id(v) for v in _checkpointed_objects(target)}
    assert all(id(v) in held for v in target.trainable_weights)


def _checkpointed_objects(trainer):
    for item in trainer.checkpoint_items().values():
        if isinstance(item, dict):
            yield from item.values()
        elif isinstance(item, keras.Model):
            yield from item.weights
        elif isinstance(item, keras.optimizers.Optimizer):
            yield from item.variables
        else:
            yield item


@pytest.mark.parametrize("name", TRAINERS)
def test_resumed_run_equals_an_uninterrupted_one(name, tmp_path):
    # LIR's eager 64 px steps are the slowest: 2 + 2 steps still cross an epoch (3 batches)
    half = 2 if name == "lir" else 3
    straight = build(name)
    run(straight, name, 2 * half)

    first = build(name)
    stream = EpochBatchStream(dataset_factory(name))
    checkpoint = TrainingCheckpoint(tmp_path, {**first.checkpoint_items(), **stream.checkpoint_items()})
    run(first, name, half, stream, checkpoint)

    resumed = build(name, seed=9)
    stream = EpochBatchStream(dataset_factory(name))
    checkpoint = TrainingCheckpoint(tmp_path, {**resumed.checkpoint_items(), **stream.checkpoint_items()})
    assert checkpoint.restore_latest().endswith(f"ckpt-{half}")
    resumed.after_restore()
    stream.reset_iterator()
    summary, _ = run(resumed, name, 2 * half, stream, checkpoint)
    assert (summary.start_step, summary.final_step) == (half, 2 * half)
    assert_same_state(straight, resumed)
    if name == "igan":
        assert resumed.schedule_state() == straight.schedule_state() == {
            "generator_steps": 6, "discriminator_rounds": 1, "mm": 6, "remaining_generator_steps": 0}
        assert resumed.plan_step().num_batches == 2  # the next step starts a round


@pytest.mark.parametrize("name", TRAINERS)
def test_export_loads_in_its_consumer(name, tmp_path):
    trainer = build(name)
    run(trainer, name, 2)
    if name == "lir":  # the restorer SavedModel, read by hub.load_restorer (deploy_lir.py's loader)
        export_restorer(trainer.nets, tmp_path / "restorer", channels=1)
        loaded = hub.load_restorer(str(tmp_path / "restorer"))
        noisy = np.random.default_rng(3).random((2, 64, 64, 1)).astype(np.float32)
        np.testing.assert_allclose(loaded(noisy).numpy(), trainer.restore_images(noisy), atol=1e-5)
        return
    if name == "ambient":  # the enhancer y -> x (posterior mean), read by hub.load_image_model
        trainer.calibrate_batch_norm(dataset_factory(name)(0).take(1).get_single_element().numpy())
        trainer.export_enhancer(tmp_path / "enhancer")
        enhancer = hub.load_image_model(str(tmp_path / "enhancer"))
        y = dataset_factory(name)(1).take(1).get_single_element().numpy()
        np.testing.assert_allclose(enhancer(y).numpy(), trainer.enhance(y, population=True), atol=1e-5)
        return
    if name != "igan":
        hub.export_generator(trainer.generator, str(tmp_path / "generator"))
        loaded = hub.load_generator(str(tmp_path / "generator"))
        z = trainer.generator.sample_latent(3, seed=1)
        np.testing.assert_allclose(loaded(z).numpy(), trainer.sample(z), atol=1e-5)
        return
    spec = importlib.util.spec_from_file_location("deploy_igan_contract", SCRIPTS / "deploy_igan.py")
    deploy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(deploy)
    trainer.export(tmp_path / "estimator")
    args = deploy.build_parser().parse_args(["--task", "denoising", "--saved-model", str(tmp_path / "estimator")])
    separate, _ = deploy.load_estimator(args, get_task("denoising"))
    y = dataset_factory("igan")(0).take(1).get_single_element()["y"].numpy()
    component, clean = separate(y)
    expected_component, expected_clean = trainer.separate(y)
    np.testing.assert_allclose(component, expected_component, atol=1e-5)
    np.testing.assert_allclose(clean, expected_clean, atol=1e-5)
