"""Training checkpoints and the output-folder policy of training runs.

A training run writes into one folder (``--out``)::

    <out>/checkpoints/     ckpt-<step>.* (the last ``max_to_keep``), run_config.json
    <out>/samples/         step_<step>.png sample grids from a fixed latent batch
    <out>/logs/            TensorBoard event files (unless --log-dir points elsewhere)
    <out>/generator/       the exported generator (SavedModel)
    <out>/run.json, <out>/samples.png

:class:`TrainingCheckpoint` wraps ``tf.train.CheckpointManager``; checkpoints are numbered
by the step counter. :func:`prepare_training_output` applies the folder policy: a folder
that holds another run's checkpoint is refused unless the run resumes it (``--resume``) or
starts afresh (``--overwrite``, which deletes the old checkpoints so they cannot be mixed
up with the new run's); other non-empty folders follow
:func:`tfinverse.utils.cli.prepare_output_dir`. :func:`check_resume_config` refuses to
resume with settings that change the model, the data or the optimisation.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional

import tensorflow as tf

from tfinverse.utils.cli import prepare_output_dir
from tfinverse.utils.results import atomic_write_text

__all__ = [
    "CHECKPOINT_DIRNAME",
    "RUN_CONFIG_FILENAME",
    "OutputFolderError",
    "checkpoint_dir",
    "latest_checkpoint",
    "prepare_training_output",
    "write_run_config",
    "read_run_config",
    "check_resume_config",
    "variables_by_path",
    "TrainingCheckpoint",
    "remove_checkpoint_debris",
]

CHECKPOINT_DIRNAME = "checkpoints"
RUN_CONFIG_FILENAME = "run_config.json"


class OutputFolderError(ValueError):
    """The output folder cannot be used as asked (the message says which flag to pass)."""


def checkpoint_dir(out_dir) -> Path:
    """``<out_dir>/checkpoints``."""
    return Path(out_dir) / CHECKPOINT_DIRNAME


def latest_checkpoint(out_dir) -> Optional[str]:
    """The newest checkpoint prefix under ``<out_dir>/checkpoints``, or None."""
    directory = checkpoint_dir(out_dir)
    if not directory.is_dir():
        return None
    return tf.train.latest_checkpoint(str(directory))


def prepare_training_output(out_dir, resume: bool = False, overwrite: bool = False) -> Path:
    """Creates or checks a training run's output folder.

    Args:
      out_dir: the folder.
      resume: continue the run whose checkpoint the folder holds.
      overwrite: start a new run in a non-empty folder; an old run's checkpoints are deleted
        (other files stay and are replaced when the new run writes the same name).

    Returns:
      The folder as a :class:`pathlib.Path`.

    Raises:
      OutputFolderError: with ``resume`` and ``overwrite`` together, with ``resume`` but no
        checkpoint, or when the folder holds a checkpoint (or any file) and neither flag is
        given.
    """
    out_dir = Path(out_dir)
    if resume and overwrite:
        raise OutputFolderError("--resume and --overwrite exclude each other: resume a run, or start a new one")
    existing = latest_checkpoint(out_dir)
    if resume:
        if existing is None:
            raise OutputFolderError(
                f"--resume: there is no checkpoint in {checkpoint_dir(out_dir)} to resume from"
            )
        return out_dir
    if existing is not None:
        if not overwrite:
            raise OutputFolderError(
                f"output folder {out_dir} holds the checkpoint of another run ({Path(existing).name}); "
                "pass --resume to continue that run, --overwrite to start a new run there (its "
                "checkpoints are deleted), or choose another --out"
            )
        shutil.rmtree(checkpoint_dir(out_dir))
    try:
        return prepare_output_dir(out_dir, overwrite)
    except ValueError as error:
        raise OutputFolderError(str(error)) from None


def write_run_config(out_dir, config: Mapping[str, Any]) -> Path:
    """Stores the settings of a run next to its checkpoints (read back on resume)."""
    path = checkpoint_dir(out_dir) / RUN_CONFIG_FILENAME
    atomic_write_text(path, json.dumps(dict(config), indent=2, sort_keys=True) + "\n", overwrite=True)
    return path


def read_run_config(out_dir) -> Optional[Dict[str, Any]]:
    """The settings stored by :func:`write_run_config`, or None if there are none."""
    path = checkpoint_dir(out_dir) / RUN_CONFIG_FILENAME
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


def check_resume_config(out_dir, config: Mapping[str, Any], may_change: Iterable[str] = ()) -> Dict[str, Any]:
    """Refuses to resume a run with settings that differ from the stored ones.

    Args:
      out_dir: the run folder.
      config: the new run's settings.
      may_change: settings that may differ (the step budget, logging intervals, ...).

    Returns:
      The stored settings.

    Raises:
      OutputFolderError: listing every other setting whose value differs, or if there are
        no stored settings.
    """
    stored = read_run_config(out_dir)
    if stored is None:
        path = checkpoint_dir(out_dir) / RUN_CONFIG_FILENAME
        raise OutputFolderError(f"--resume: {path} is missing, so the run's settings cannot be checked")
    allowed = set(may_change)
    differences = [
        f"--{key.replace('_', '-')}: {stored.get(key)!r} -> {config.get(key)!r}"
        for key in sorted(set(stored) | set(config))
        if key not in allowed and stored.get(key) != config.get(key)
    ]
    if differences:
        raise OutputFolderError(
            "--resume with settings that differ from the run being resumed: "
            + "; ".join(differences)
            + ". Resume with the original settings, or start a new run with --overwrite or another --out"
        )
    return stored


def variables_by_path(model) -> Dict[str, Any]:
    """Every variable of a Keras model, keyed by its path (``/`` written as ``.``).

    A checkpoint of this dict holds all the model's weights whatever the model keeps them
    in: Keras 3 layers held in plain Python lists (as the PGGAN networks hold their levels)
    are not dependencies that ``tf.train.Checkpoint`` follows, so checkpointing the model
    object itself would silently miss them.

    Args:
      model: a built ``keras.Model``.

    Returns:
      An ordered dict path -> variable (a repeated path gets a ``#<index>`` suffix).
    """
    keyed: Dict[str, Any] = {}
    for index, variable in enumerate(model.weights):
        key = str(getattr(variable, "path", None) or variable.name).replace("/", ".")
        if key in keyed:
            key = f"{key}#{index}"
        keyed[key] = variable
    return keyed


# What an interrupted tf.train.CheckpointManager.save leaves behind: the per-save folder
# "<prefix>_temp/" that TensorFlow writes shards into before merging them, and the
# "checkpoint.tmp<uuid hex>" file it writes the state file through before renaming it.
_DEBRIS_FOLDER = re.compile(r"^ckpt-\d+_temp$")
_DEBRIS_FILE = re.compile(r"^checkpoint\.tmp[0-9a-f]{32}$")


def remove_checkpoint_debris(directory) -> list:
    """Deletes what an interrupted checkpoint write provably left in ``directory``.

    Only two kinds of entries are removed, both of which TensorFlow deletes itself when a
    save completes: folders named ``ckpt-<N>_temp`` (the shards of a save in progress) and
    files named ``checkpoint.tmp<32 hex digits>`` (the state file being replaced). Complete
    checkpoints, the ``checkpoint`` state file and anything else are never touched. Call it
    only when no save is running (e.g. before resuming).

    Args:
      directory: the checkpoint folder (missing is fine).

    Returns:
      The sorted names that were removed.
    """
    folder = Path(directory)
    if not folder.is_dir():
        return []
    removed = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and not entry.is_symlink() and _DEBRIS_FOLDER.match(entry.name):
            shutil.rmtree(entry)
            removed.append(entry.name)
        elif entry.is_file() and _DEBRIS_FILE.match(entry.name):
            entry.unlink()
            removed.append(entry.name)
    return removed


class TrainingCheckpoint:
    """A ``tf.train.Checkpoint`` of named objects, kept ``max_to_keep`` deep and numbered by step.

    Args:
      directory: checkpoint folder (created on the first save).
      items: name -> trackable (models, optimizers, variables, ...).
      max_to_keep: how many checkpoints to keep (the oldest are deleted).

    Raises:
      ValueError: if ``max_to_keep < 1`` or ``items`` is empty.
    """

    def __init__(self, directory, items: Mapping[str, Any], max_to_keep: int = 3):
        if int(max_to_keep) < 1:
            raise ValueError(f"max_to_keep must be >= 1, got {max_to_keep}")
        if not items:
            raise ValueError("a checkpoint needs at least one item")
        self.directory = str(directory)
        self.checkpoint = tf.train.Checkpoint(**dict(items))
        self.manager = tf.train.CheckpointManager(self.checkpoint, self.directory, max_to_keep=int(max_to_keep))

    @property
    def latest(self) -> Optional[str]:
        """The newest checkpoint prefix, or None."""
        return self.manager.latest_checkpoint

    @property
    def checkpoints(self):
        """The kept checkpoint prefixes, oldest first."""
        return list(self.manager.checkpoints)

    def save(self, step: int) -> str:
        """Writes checkpoint ``ckpt-<step>`` and returns its prefix."""
        return self.manager.save(checkpoint_number=int(step))

    def restore_latest(self) -> Optional[str]:
        """Restores the newest checkpoint into the items.

        First removes the debris of a save that was interrupted (``kill -9`` while
        writing; see :func:`remove_checkpoint_debris`) and says what it removed.

        Returns:
          The restored prefix, or None if there is none.

        Raises:
          AssertionError: (from TensorFlow) if the checkpoint does not match the items, e.g.
            a model of another size.
        """
        removed = remove_checkpoint_debris(self.directory)
        if removed:
            print(f"removed the debris of an interrupted checkpoint write in {self.directory}: "
                  f"{', '.join(removed)}", flush=True)
        path = self.manager.latest_checkpoint
        if path is None:
            return None
        self.checkpoint.restore(path).assert_existing_objects_matched()
        return path

    def restore_from(self, directory) -> Optional[str]:
        """Restores the newest checkpoint of another folder into the items (a non-chief
        worker of a multi-worker run resumes from the chief's checkpoints but saves into
        its own temporary folder).

        Args:
          directory: the folder holding the checkpoints to restore.

        Returns:
          The restored prefix, or None if the folder holds none.

        Raises:
          AssertionError: (from TensorFlow) if the checkpoint does not match the items.
        """
        path = tf.train.latest_checkpoint(str(directory))
        if path is None:
            return None
        self.checkpoint.restore(path).assert_existing_objects_matched()
        return path
