"""A resumable stream of training batches: epoch by epoch, with a checkpointable position.

The stream asks a factory for each epoch's pipeline (``make_dataset(epoch)``, e.g.
``tfinverse.data.load(..., seed=epoch_seed(seed, epoch), drop_remainder=True)``), so every
epoch's order is a pure function of the run seed and the epoch number. Its position, the
epoch and the number of batches already taken from it, lives in two ``tf.Variable`` objects
that go into the training checkpoint. A resumed run rebuilds the epoch's pipeline and skips
the batches already used, and so sees exactly the batches an uninterrupted run would have
seen, without storing shuffle buffers in the checkpoint (at most one epoch is skipped).

Under a ``tf.distribute`` strategy each epoch's dataset is distributed with
``strategy.experimental_distribute_dataset``: the global batch is split across replicas.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional

import numpy as np
import tensorflow as tf

__all__ = ["epoch_seed", "EpochBatchStream"]


def epoch_seed(seed: int, epoch: int) -> int:
    """The shuffle seed of one epoch, derived from the run seed (a 31-bit int).

    Args:
      seed: run seed.
      epoch: epoch number (>= 0).

    Returns:
      An int in ``[0, 2**31 - 1)``.
    """
    return int(np.random.default_rng([int(seed), int(epoch), 0x5EED]).integers(0, 2**31 - 1))


class EpochBatchStream:
    """Iterates over batches of successive epochs and remembers where it is.

    Args:
      make_dataset: ``epoch -> tf.data.Dataset`` of batches (finite: one epoch). Batches
        should have a fixed size (``drop_remainder=True``) so compiled steps trace once.
      strategy: distribute each epoch's dataset with this strategy (``None``: do not).

    Raises:
      ValueError: from ``next()`` if an epoch yields no batch (e.g. fewer images than the
        batch size).
    """

    def __init__(self, make_dataset: Callable[[int], tf.data.Dataset], strategy: Optional[tf.distribute.Strategy] = None):
        if not callable(make_dataset):
            raise TypeError("make_dataset must be a callable epoch -> tf.data.Dataset")
        self._make_dataset = make_dataset
        self._strategy = strategy
        self.epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_epoch")
        self.batch_in_epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="data_batch_in_epoch")
        self._iterator = None

    def checkpoint_items(self) -> Dict[str, tf.Variable]:
        """The position variables, for ``tf.train.Checkpoint``."""
        return {"data_epoch": self.epoch, "data_batch_in_epoch": self.batch_in_epoch}

    @property
    def position(self):
        """``(epoch, batches taken from it)`` as Python ints."""
        return int(self.epoch.numpy()), int(self.batch_in_epoch.numpy())

    def reset_iterator(self) -> None:
        """Forgets the open pipeline; the next batch reopens it at the stored position (call
        after restoring the position from a checkpoint)."""
        self._iterator = None

    def dataset_for_epoch(self, epoch: int) -> tf.data.Dataset:
        """The undistributed pipeline of one epoch (from the factory)."""
        dataset = self._make_dataset(int(epoch))
        if not isinstance(dataset, tf.data.Dataset):
            raise TypeError(f"make_dataset must return a tf.data.Dataset, got {type(dataset).__name__}")
        return dataset

    def _open(self) -> None:
        epoch, skip = self.position
        dataset = self.dataset_for_epoch(epoch)
        if skip:
            dataset = dataset.skip(skip)
        if self._strategy is not None:
            dataset = self._strategy.experimental_distribute_dataset(dataset)
        self._iterator = iter(dataset)

    def __iter__(self):
        return self

    def __next__(self):
        opened_empty = False
        while True:
            if self._iterator is None:
                self._open()
                opened_empty = self.position[1] == 0
            try:
                batch = next(self._iterator)
            except StopIteration:
                if opened_empty:
                    raise ValueError(
                        f"epoch {self.position[0]} yields no batch: the dataset has fewer images "
                        "than one batch (with drop_remainder)"
                    ) from None
                self.epoch.assign_add(1)
                self.batch_in_epoch.assign(0)
                self._iterator = None
                continue
            self.batch_in_epoch.assign_add(1)
            return batch
