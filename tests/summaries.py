"""Reading back what a run wrote to TensorBoard (for the script tests)."""

from pathlib import Path
from typing import Set, Tuple

import tensorflow as tf


def summary_tags(log_dir) -> Tuple[Set[str], Set[str]]:
    """``(scalar_tags, image_tags)`` of every event file directly in ``log_dir``."""
    scalars, images = set(), set()
    for path in Path(log_dir).glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                plugin = value.metadata.plugin_data.plugin_name
                (scalars if plugin == "scalars" else images if plugin == "images" else set()).add(value.tag)
    return scalars, images
