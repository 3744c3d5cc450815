"""The trainer protocol every trained system runs on, and its declared update schedules.

A trainer is a ``keras.Model`` in the keras-io idiom: ``compile`` attaches *named*
optimizers, ``train_step(data)`` runs one step and returns a dict of ``keras.metrics.Mean``
results, ``metrics`` lists the trackers. On top of that, :class:`Trainer` owns what one
training loop (:func:`tfinverse.training.loop.train`) needs to run, resume and export any
system:

* the step counter ``step`` (what checkpoints are numbered by; igan: generator steps);
* the optimizers, by name (``compile(optimizers={"d": ..., "g": ...})``), built on their
  variables at once so a checkpoint always holds their full state;
* :meth:`Trainer.checkpoint_items`: everything that must be restored to resume exactly;
* fixed sample inputs (:meth:`Trainer.fixed_sample_inputs`) and their sample grids;
* a *declared* update schedule (:attr:`Trainer.update_schedule`): which networks are updated in
  which order, how often, and on which of the step's sub-batches.

Schedules
---------
:class:`UpdateSchedule` is a fixed order of :class:`Update` s run in every step, each
repeated ``repeat`` times: DCGAN ``[discriminator, generator x 2]``; a WGAN critic with
``k`` updates per generator update ``[critic x k (fresh batches), generator]``; Ambient
VAE-GAN ``[encoder, generator, discriminator]``; LIR ``[content_discriminator x 3,
image_discriminators, generators]``. An update with ``fresh_batch=True`` takes a new
sub-batch for each repetition; the others share sub-batch 0.

:class:`AdaptiveSchedule` is igan's: a *round* of discriminator updates on a fresh batch,
then a variable number ``mm`` of generator updates, one per step, each on its own fresh batch;
after each round a rule (igan's ``mm`` rule) sets the number of generator updates of the
round from its discriminator losses. The trainer keeps the rule's state in variables
(checkpointed) and says, before each step, whether a round is due.

Each update is a *phase*: the trainer method ``phase_<name>(batch, state)`` that makes one
update and returns a dict of named values. ``state`` is the step's dict of values shared
between phases (DCGAN's latents drawn by the discriminator phase are reused by the generator
phases). :meth:`Trainer.train_step` runs the phases of a :class:`StepPlan` in order.

How a step gets its batches: before each step the loop asks :meth:`Trainer.plan_step` for
the step's :class:`StepPlan` (outside compiled code), draws ``plan.num_batches`` batches from
the data stream and hands ``train_step`` one batch, or a tuple of ``num_batches`` batches when
the plan needs several. The loop compiles one step function per plan (and per
:meth:`Trainer.trace_key`), so plans are read at trace time like PGGAN's level. Under
``keras.Model.fit`` (no loop) the plan is :meth:`Trainer.keras_plan`: every phase on the one
batch ``fit`` hands over.

Randomness is stateless and keyed by the run seed and the step counter:
``tf.random.stateless_*`` with seed ``fold_in(fold_in([seed, 0], step), purpose)``, so a
resumed run draws exactly what an uninterrupted run would.

Distribution: a replica's loss is its local mean divided by the number of replicas, and the
Keras optimizers sum gradients over replicas, which gives the gradient of the global mean.
State every replica assigns (the step counter, schedule state) uses
``ONLY_FIRST_REPLICA`` aggregation. Mixed precision: under ``mixed_float16`` the optimizers
are wrapped in ``keras.optimizers.LossScaleOptimizer``; losses are float32.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf

from tfinverse.training.checkpointing import variables_by_path

__all__ = [
    "SEED_PURPOSES",
    "step_seed",
    "replica_info",
    "Update",
    "StepPlan",
    "UpdateSchedule",
    "AdaptiveSchedule",
    "Trainer",
]

# Fold-in tags that separate the random streams drawn within one step.
SEED_PURPOSES = {
    "discriminator_latents": 1,
    "generator_latents": 2,
    "interpolation": 3,
    "path_length_noise": 4,
}


def step_seed(seed: int, step, purpose: int) -> tf.Tensor:
    """The stateless seed of one random draw: ``fold_in(fold_in([seed, 0], step), purpose)``.

    Args:
      seed: the run seed (a Python int in ``[0, 2**32 - 1]``).
      step: the step counter (int or int64 scalar tensor).
      purpose: a small int that tells the draws of one step apart.

    Returns:
      An int64 tensor of shape ``[2]`` for ``tf.random.stateless_*``.
    """
    base = tf.constant([int(seed), 0], dtype=tf.int64)
    keyed = tf.random.experimental.stateless_fold_in(base, tf.cast(step, tf.int64), alg="philox")
    return tf.random.experimental.stateless_fold_in(keyed, int(purpose), alg="philox")


def replica_info():
    """Where the calling code runs within a distribution strategy.

    Returns:
      ``(replica_id, num_replicas)`` of the current replica context: ``(0, 1)`` without a
      strategy or in a cross-replica context; ``replica_id`` is an int32 scalar tensor or int.
    """
    context = tf.distribute.get_replica_context()
    if context is None:  # cross-replica context: behave as a single replica
        return 0, 1
    return context.replica_id_in_sync_group, int(context.num_replicas_in_sync)


# ----------------------------------------------------------------------------- schedules
@dataclass(frozen=True)
class Update:
    """One update of a schedule: the trainer's ``phase_<phase>`` run ``repeat`` times.

    Attributes:
      phase: the phase name (the trainer implements ``phase_<phase>(batch, state)``).
      repeat: how many times in a row (>= 1).
      fresh_batch: each repetition takes its own new sub-batch (else sub-batch 0, shared).
      optimizers: names of the optimizers it steps (documentation, and checked against
        ``compile``).
    """

    phase: str
    repeat: int = 1
    fresh_batch: bool = False
    optimizers: Tuple[str, ...] = ()

    def __post_init__(self):
        if not str(self.phase).isidentifier():
            raise ValueError(f"an update's phase must be an identifier, got {self.phase!r}")
        if int(self.repeat) < 1:
            raise ValueError(f"an update's repeat must be >= 1, got {self.repeat}")


@dataclass(frozen=True)
class StepPlan:
    """The phases of one step, in order, with the sub-batch each one uses.

    Attributes:
      phases: ``(phase, sub_batch_index)`` pairs.
      num_batches: how many sub-batches the step takes.
    """

    phases: Tuple[Tuple[str, int], ...]
    num_batches: int = 1

    @property
    def key(self) -> Tuple:
        """Hashable identity of the plan (the loop compiles one step function per plan)."""
        return (self.phases, self.num_batches)


def _expand(updates: Sequence[Update], first_fresh: int = 0, shared: int = 0) -> Tuple[List[Tuple[str, int]], int]:
    """Phases of ``updates`` in order; fresh-batch repetitions take sub-batches from ``first_fresh``."""
    phases, next_fresh = [], first_fresh
    for update in updates:
        for _ in range(int(update.repeat)):
            if update.fresh_batch:
                phases.append((update.phase, next_fresh))
                next_fresh += 1
            else:
                phases.append((update.phase, shared))
    return phases, next_fresh


@dataclass(frozen=True)
class UpdateSchedule:
    """A fixed order of updates run in every step (see the module docstring).

    Attributes:
      updates: the updates, in order.
    """

    updates: Tuple[Update, ...]

    def __post_init__(self):
        if not self.updates:
            raise ValueError("a schedule needs at least one update")

    @classmethod
    def alternating(cls, discriminator_steps: int = 1, generator_steps: int = 1, fresh_batches: bool = False):
        """``k`` discriminator updates, then ``n`` generator updates (phases ``discriminator``
        and ``generator``, optimizers ``d`` and ``g``).

        Args:
          discriminator_steps: discriminator updates per step.
          generator_steps: generator updates per step.
          fresh_batches: each discriminator update takes its own real batch (a WGAN critic's
            ``n_critic`` updates); otherwise they share the step's batch.

        Returns:
          The schedule.
        """
        return cls(
            (
                Update("discriminator", discriminator_steps, fresh_batch=bool(fresh_batches), optimizers=("d",)),
                Update("generator", generator_steps, optimizers=("g",)),
            )
        )

    def plan(self, trainer=None) -> StepPlan:
        """The plan of every step (the same each time).

        Args:
          trainer: unused (fixed schedules do not depend on the trainer's state).

        Returns:
          A :class:`StepPlan`.
        """
        phases, fresh = _expand(self.updates)
        return StepPlan(tuple(phases), max(1, fresh))

    def keras_plan(self) -> StepPlan:
        """The plan under ``keras.Model.fit``: every phase on the one batch ``fit`` hands over."""
        phases, _ = _expand([Update(u.phase, u.repeat, False, u.optimizers) for u in self.updates])
        return StepPlan(tuple(phases), 1)

    def describe(self) -> Dict[str, Any]:
        """A JSON-able description (written to ``run.json``)."""
        return {
            "kind": "fixed",
            "updates": [
                {"phase": u.phase, "repeat": u.repeat, "fresh_batch": u.fresh_batch, "optimizers": list(u.optimizers)}
                for u in self.updates
            ],
        }


@dataclass(frozen=True)
class AdaptiveSchedule:
    """Rounds of discriminator updates, each followed by an adaptive number of generator steps.

    One *step* (what the loop and the checkpoints count) is one run of ``step_updates``. When
    the trainer says a round is due (:meth:`Trainer.round_due`), the step first runs
    ``round_updates`` on their own fresh sub-batch, then the trainer's ``phase_<end_phase>``
    (which applies the rule: it sets how many steps the round lasts from the round's
    losses), then ``step_updates`` on a second fresh sub-batch. igan: ``round_updates = [d1,
    d2]``, ``step_updates = [generator]``, the rule ``mm <- mm + increment`` if a
    discriminator loss is below ``threshold`` else ``mm <- 1``.

    Attributes:
      round_updates: the discriminator updates of a round (share the round's batch).
      step_updates: the updates of every step (share the step's batch).
      rule: a short description of the rule (for ``run.json``).
      threshold: the rule's loss threshold.
      increment: what the rule adds while a discriminator wins.
      end_phase: the phase that applies the rule after a round.
      keras_phase: the phase that, under ``fit``, runs a due round in-graph on the step's
        batch.
    """

    round_updates: Tuple[Update, ...]
    step_updates: Tuple[Update, ...]
    rule: str = ""
    threshold: float = 0.0
    increment: int = 5
    end_phase: str = "end_round"
    keras_phase: str = "round_if_due"
    extra: Mapping[str, Any] = field(default_factory=dict)

    def plan(self, trainer) -> StepPlan:
        """The next step's plan: with a round when ``trainer.round_due()``.

        Args:
          trainer: the trainer (its ``round_due()`` is read, outside compiled code).

        Returns:
          A :class:`StepPlan` of 2 sub-batches (round, step) or 1 (step only).
        """
        if trainer.round_due():
            round_phases, _ = _expand(self.round_updates, shared=0)
            step_phases, _ = _expand(self.step_updates, shared=1)
            return StepPlan(tuple(round_phases + [(self.end_phase, 0)] + step_phases), 2)
        phases, _ = _expand(self.step_updates)
        return StepPlan(tuple(phases), 1)

    def keras_plan(self) -> StepPlan:
        """Under ``fit``: a due round runs in-graph on the step's one batch, then the step."""
        phases, _ = _expand(self.step_updates)
        return StepPlan(((self.keras_phase, 0), *phases), 1)

    def describe(self) -> Dict[str, Any]:
        """A JSON-able description (written to ``run.json``)."""
        return {
            "kind": "adaptive_rounds",
            "round_updates": [{"phase": u.phase, "repeat": u.repeat, "optimizers": list(u.optimizers)} for u in self.round_updates],
            "step_updates": [{"phase": u.phase, "repeat": u.repeat, "optimizers": list(u.optimizers)} for u in self.step_updates],
            "rule": self.rule,
            "threshold": self.threshold,
            "increment": self.increment,
            **dict(self.extra),
        }


# ----------------------------------------------------------------------------- the base trainer
class Trainer(keras.Model):
    """Base class of every trainer (not used on its own); see the module docstring.

    Subclasses set :attr:`update_schedule`, :attr:`metric_names`, :attr:`optimizer_labels`,
    implement :meth:`networks`, :meth:`optimizer_variables`, the ``phase_<name>`` methods of
    their schedule, :meth:`fixed_sample_inputs` and :meth:`sample_grid` (or
    :meth:`write_sample_grid`).

    Args:
      seed: the run seed of every random draw inside ``train_step``.
      **kwargs: forwarded to ``keras.Model`` (e.g. ``name``).

    Raises:
      ValueError: if ``seed`` is not in ``[0, 2**32 - 1]``.
    """

    #: names of the ``keras.metrics.Mean`` trackers (set by subclasses)
    metric_names: Sequence[str] = ()
    #: optimizer name -> label used in TensorBoard and run.json (set by subclasses)
    optimizer_labels: Mapping[str, str] = {}

    def __init__(self, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(seed, bool) or not 0 <= int(seed) <= 2**32 - 1:
            raise ValueError(f"seed must be an integer in [0, 2**32 - 1], got {seed!r}")
        self.seed = int(seed)
        # One train_step = one increment; ONLY_FIRST_REPLICA lets every replica call assign_add.
        self.step = tf.Variable(
            0,
            dtype=tf.int64,
            trainable=False,
            name="step",
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )
        self.trackers: Dict[str, keras.metrics.Mean] = {}
        self.named_optimizers: Dict[str, keras.optimizers.Optimizer] = {}
        self.update_schedule = None
        self.active_plan: Optional[StepPlan] = None
        self.fixed_samples = None
        self._dated_scalars: List[Tuple[int, Dict[str, float]]] = []

    # ----------------------------------------------------------------- set-up
    def attach_optimizers(self, optimizers: Mapping[str, Any], loss_scaling: Optional[bool] = None) -> None:
        """Attaches named optimizers (``self.<name>_optimizer``), builds them on their
        variables and creates the metric trackers. Subclasses' ``compile`` call it.

        Args:
          optimizers: name -> ``keras.optimizers.Optimizer`` (e.g. ``{"d": ..., "g": ...}``).
          loss_scaling: wrap each in ``keras.optimizers.LossScaleOptimizer``; default: when
            the global dtype policy is ``mixed_float16``.

        Raises:
          TypeError: for an object that is not a Keras optimizer.
          ValueError: if the schedule names an optimizer that is not given.
        """
        if loss_scaling is None:
            loss_scaling = keras.mixed_precision.global_policy().compute_dtype == "float16"
        named = {}
        for name, optimizer in optimizers.items():
            if not isinstance(optimizer, keras.optimizers.Optimizer):
                raise TypeError(f"optimizers must be keras.optimizers.Optimizer, got {type(optimizer).__name__}")
            if loss_scaling and not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            named[name] = optimizer
        declared = {o for u in self.declared_updates() for o in u.optimizers}
        missing = sorted(declared - set(named))
        if missing:
            raise ValueError(f"the schedule steps optimizers {missing} that compile() was not given")
        self.named_optimizers = named
        for name, optimizer in named.items():
            setattr(self, f"{name}_optimizer", optimizer)
            # Built now so that a checkpoint restores into existing slots.
            optimizer.build(list(self.optimizer_variables(name)))
        self.trackers = {name: keras.metrics.Mean(name=name) for name in self.metric_names}

    def declared_updates(self) -> List[Update]:
        """Every :class:`Update` of the schedule."""
        schedule = self.update_schedule
        if schedule is None:
            return []
        if isinstance(schedule, AdaptiveSchedule):
            return [*schedule.round_updates, *schedule.step_updates]
        return list(schedule.updates)

    def optimizer_variables(self, name: str) -> List[tf.Variable]:  # pragma: no cover - abstract
        """The variables optimizer ``name`` is built on."""
        raise NotImplementedError

    def networks(self) -> Dict[str, keras.Model]:  # pragma: no cover - abstract
        """The trained networks by name (checkpointed by variable path)."""
        raise NotImplementedError

    @property
    def metrics(self):
        return list(self.trackers.values())

    def require_compiled(self) -> None:
        """Raises RuntimeError unless ``compile`` has attached the optimizers."""
        if not self.named_optimizers:
            raise RuntimeError(f"{type(self).__name__}.compile(...) must be called first")

    # ----------------------------------------------------------------- schedule
    def round_due(self) -> bool:
        """Whether the next step starts with a round (adaptive schedules; read outside
        compiled code)."""
        return False

    def plan_step(self) -> StepPlan:
        """The next step's plan (called by the loop before each step, outside compiled code)."""
        return self.update_schedule.plan(self)

    def keras_plan(self) -> StepPlan:
        """The plan ``train_step`` follows when no loop prepared one (``keras.Model.fit``)."""
        return self.update_schedule.keras_plan()

    def split_batches(self, data, plan: StepPlan) -> List[Any]:
        """The sub-batches of a ``train_step`` input for ``plan``.

        Args:
          data: one batch, or a tuple of ``plan.num_batches`` batches.
          plan: the step's plan.

        Returns:
          A list of ``plan.num_batches`` batches.

        Raises:
          ValueError: if a tuple of the wrong length arrives.
        """
        if plan.num_batches == 1:
            return [data]
        if not isinstance(data, (tuple, list)) or len(data) != plan.num_batches:
            raise ValueError(
                f"this step needs {plan.num_batches} sub-batches (a tuple), got {type(data).__name__}"
            )
        return list(data)

    def train_step(self, data):
        """Runs the phases of the step's plan in order, counts the step, records metrics.

        Args:
          data: one batch or a tuple of sub-batches (see the module docstring).

        Returns:
          Dict of the trackers' results.
        """
        self.require_compiled()
        plan = self.active_plan or self.keras_plan()
        batches = self.split_batches(data, plan)
        state: Dict[str, Any] = {}
        for phase, index in plan.phases:
            outputs = getattr(self, f"phase_{phase}")(batches[index], state)
            if outputs:
                state.update(outputs)
        self.step.assign_add(1)
        return self.record(self.step_metrics(state))

    def step_metrics(self, state: Mapping[str, Any]) -> Dict[str, tf.Tensor]:
        """The tracked values of a finished step (default: ``state[name]`` per tracker)."""
        return {name: state[name] for name in self.metric_names}

    # ----------------------------------------------------------------- updates
    @staticmethod
    def gradient_target(optimizer, loss: tf.Tensor) -> tf.Tensor:
        """The value to differentiate for ``loss`` (compute it inside the tape).

        Args:
          optimizer: the optimizer that will apply the gradients.
          loss: this replica's scalar loss (a mean over its share of the batch).

        Returns:
          ``loss / num_replicas`` (optimizers sum replica gradients), times the loss scale of
          a ``LossScaleOptimizer`` (which divides it out again when applying).
        """
        _, num_replicas = replica_info()
        return optimizer.scale_loss(tf.cast(loss, tf.float32) / float(num_replicas))

    @staticmethod
    def apply_gradients(optimizer, tape: tf.GradientTape, target: tf.Tensor, variables) -> None:
        """Differentiates ``target`` and applies the non-``None`` gradients.

        Args:
          optimizer: the optimizer (built on a superset of ``variables``).
          tape: the tape that recorded ``target``.
          target: from :meth:`gradient_target`.
          variables: the variables to update.

        Raises:
          ValueError: if no variable receives a gradient.
        """
        variables = list(variables)
        gradients = tape.gradient(target, variables)
        pairs = [(g, v) for g, v in zip(gradients, variables) if g is not None]
        if not pairs:
            raise ValueError("no variable received a gradient; is the loss connected to the model?")
        optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])

    @staticmethod
    def cross_replica_mean(values: Sequence[tf.Tensor]) -> List[tf.Tensor]:
        """Means over replicas of scalars that drive shared state (BEGAN's ``k_t``, igan's ``mm``).

        Args:
          values: scalar tensors of this replica.

        Returns:
          Their float32 means over all replicas (the values themselves on one device).
        """
        context = tf.distribute.get_replica_context()
        values = [tf.cast(v, tf.float32) for v in values]
        if context is None or context.num_replicas_in_sync == 1:
            return values
        return list(context.all_reduce(tf.distribute.ReduceOp.MEAN, values))

    def record(self, values: Mapping[str, tf.Tensor]) -> Dict[str, tf.Tensor]:
        """Updates the trackers and returns their results (the Keras ``train_step`` contract).

        Args:
          values: tracker name -> this step's scalar value.

        Returns:
          tracker name -> mean since the trackers were last reset.
        """
        for name, value in values.items():
            self.trackers[name].update_state(tf.cast(value, tf.float32))
        return {name: tracker.result() for name, tracker in self.trackers.items()}

    # ----------------------------------------------------------------- loop hooks
    def trace_key(self):
        """Hashable description of the graph ``train_step`` builds besides its plan; the loop
        compiles one step function per (key, plan) (PGGAN: one per level)."""
        return None

    def prepare_step(self, step: int, images_seen: int) -> None:
        """Called by the loop before each step, outside compiled code (PGGAN grows here).

        Args:
          step: the step about to run.
          images_seen: samples shown before it (``step * global_batch_size``).
        """

    def after_restore(self) -> None:
        """Called after a checkpoint was restored."""

    def finish_training(self, batches=None) -> Optional[Dict[str, Any]]:
        """Called by the loop once after its last step, before the final checkpoint.

        Args:
          batches: an iterator of further training batches (not the training stream), or None.

        Returns:
          A JSON-able report if the trainer's state changed (the final checkpoint is then
          written, or rewritten), else None. The base does nothing.
        """
        return None

    # ----------------------------------------------------------------- state
    def checkpoint_items(self) -> Dict[str, object]:
        """Everything a checkpoint must hold to resume exactly: each network's variables by
        path (see :func:`~tfinverse.training.checkpointing.variables_by_path`), each
        optimizer (``<name>_optimizer``) and the step counter."""
        self.require_compiled()
        items: Dict[str, object] = {name: variables_by_path(net) for name, net in self.networks().items()}
        items.update({f"{name}_optimizer": opt for name, opt in self.named_optimizers.items()})
        items["step"] = self.step
        return items

    def optimizer_iterations(self) -> Dict[str, int]:
        """Update count of each optimizer, by label."""
        return {
            self.optimizer_labels.get(name, name): int(np.asarray(opt.iterations))
            for name, opt in self.named_optimizers.items()
        }

    def log_scalars(self) -> Dict[str, float]:
        """Extra scalars for TensorBoard besides the trackers.

        Returns:
          ``learning_rate/<label>`` of every optimizer (subclasses add their own).
        """
        self.require_compiled()
        # float32 values shown with their shortest decimal form (2e-4, not 0.00019999999)
        return {
            f"learning_rate/{self.optimizer_labels.get(name, name)}": float(str(np.float32(opt.learning_rate)))
            for name, opt in self.named_optimizers.items()
        }

    def dated_scalars(self) -> List[Tuple[int, Dict[str, float]]]:
        """Scalars measured at steps of their own (e.g. an evaluation), taken once each.

        The training loop writes them to TensorBoard at their steps after every logging step
        and after ``finish_training``. Subclasses append ``(step, {tag: value})`` to
        ``self._dated_scalars``.

        Returns:
          The pending ``(step, {tag: value})`` pairs, oldest first; the queue is emptied.
        """
        pending = list(self._dated_scalars)
        del self._dated_scalars[:]
        return pending

    # ----------------------------------------------------------------- samples
    def fixed_sample_inputs(self, count: int, seed: int):
        """The fixed inputs of every sample grid (``self.fixed_samples`` when set).

        Args:
          count: how many samples.
          seed: the run seed.

        Returns:
          Whatever :meth:`sample_grid` takes.
        """
        if self.fixed_samples is None:
            raise ValueError(f"{type(self).__name__} has no fixed sample inputs; set trainer.fixed_samples")
        return self.fixed_samples

    def sample_grid(self, inputs) -> Tuple[List[List[np.ndarray]], Optional[List[str]]]:  # pragma: no cover
        """``(rows, column_labels)`` of a sample grid of ``[0, 1]`` images for the inputs."""
        raise NotImplementedError

    def write_sample_grid(self, path, inputs):
        """Writes the sample grid of ``inputs`` as a PNG (replacing an existing file).

        Args:
          path: the ``.png`` file.
          inputs: from :meth:`fixed_sample_inputs`.

        Returns:
          The path written.
        """
        from tfinverse.utils.results import save_image_grid

        rows, labels = self.sample_grid(inputs)
        return save_image_grid(path, rows, col_labels=labels, min_cell_size=64, padding=2, overwrite=True)

    #: TensorBoard shows one image per column of the sample grid (``samples/<column>``, each the
    #: column's images tiled) instead of the whole grid as one ``samples`` image.
    sample_summary_by_column = False

    def sample_summaries(self, inputs) -> Dict[str, np.ndarray]:
        """TensorBoard images of the sample grid: tag -> ``[H, W, C]`` in ``[0, 1]``.

        ``{"samples": mosaic}`` by default; with :attr:`sample_summary_by_column`, one tiled
        image per column of :meth:`sample_grid` (e.g. ``samples/lossy``,
        ``samples/reconstruction``), each tiled as a square grid.
        """
        if not self.sample_summary_by_column:
            mosaic = self.sample_mosaic(inputs)
            return {} if mosaic is None else {"samples": mosaic}
        from tfinverse.training.samples import tile_images

        rows, labels = self.sample_grid(inputs)
        if not rows or np.asarray(rows[0][0]).shape[-1] not in (1, 3):
            return {}
        labels = labels or [f"column_{k}" for k in range(len(rows[0]))]
        return {
            f"samples/{label.replace(' ', '_')}": np.clip(tile_images(np.stack([row[k] for row in rows])), 0.0, 1.0)
            for k, label in enumerate(labels)
        }

    def sample_mosaic(self, inputs) -> Optional[np.ndarray]:
        """The sample grid as one ``[H, W, C]`` image for TensorBoard (None: no image)."""
        rows, _ = self.sample_grid(inputs)
        if not rows or np.asarray(rows[0][0]).shape[-1] not in (1, 3):
            return None
        width = max(len(row) for row in rows)
        blank = np.zeros_like(np.asarray(rows[0][0], np.float32))
        lines = [np.concatenate([np.asarray(c, np.float32) for c in row] + [blank] * (width - len(row)), axis=1)
                 for row in rows]
        return np.clip(np.concatenate(lines, axis=0), 0.0, 1.0)

    def describe_schedule(self) -> Dict[str, Any]:
        """The declared schedule as JSON (for ``run.json``)."""
        return self.update_schedule.describe() if self.update_schedule is not None else {}
