"""Training curves: the scalars a run wrote to TensorBoard, read back, smoothed and plotted.

Every training script writes its losses, learning rates and schedule values as TensorBoard
scalars under ``<out>/logs``. :func:`read_scalars` reads them back without TensorBoard (the
event files are TFRecords of ``Event`` protocol buffers), :func:`smooth` applies
TensorBoard's own exponential smoothing (debiased, so the first points are not pulled
towards zero), and :func:`plot_curves` draws one panel per tag with one line per run, the
raw values faint behind the smoothed ones. ``scripts/plot_curves.py`` is the command line.

Example::

    from tfinverse.evaluation.curves import plot_curves, read_scalars
    runs = {"unpaired": read_scalars("runs/igan_denoising/logs"),
            "paired": read_scalars("runs/igan_denoising_paired/logs")}
    plot_curves(runs, ["train/d1_loss", "train/g_loss"], "curves.png", smoothing=0.9)
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Tuple

import numpy as np

__all__ = ["Series", "read_scalars", "smooth", "plot_curves", "curves_table"]

#: ``(steps, values)``: int64 and float64 arrays, sorted by step, one value per step.
Series = Tuple[np.ndarray, np.ndarray]


def _event_files(log_dir: Path) -> List[Path]:
    return sorted(path for path in log_dir.rglob("events.out.tfevents.*") if path.is_file())


def read_scalars(log_dir) -> Dict[str, Series]:
    """Every scalar of a TensorBoard log folder (sub-folders included).

    Args:
      log_dir: the folder (``<out>/logs`` of a training run).

    Returns:
      tag -> ``(steps, values)``, sorted by step. A step written twice (a resumed run that
      repeats steps) keeps the value written last.

    Raises:
      MissingPathError: the folder does not exist.
      InputError: it holds no event file, or no scalar.
    """
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    from tfinverse.errors import InputError, MissingPathError

    log_dir = Path(log_dir)
    if not log_dir.is_dir():
        raise MissingPathError(f"log folder {log_dir} does not exist")
    files = _event_files(log_dir)
    if not files:
        raise InputError(f"no TensorBoard event file in {log_dir}")
    points: Dict[str, Dict[int, float]] = {}
    # Files in name order, which is creation-time order: later writes win.
    for path in files:
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    number = float(value.simple_value)
                elif value.HasField("tensor") and value.metadata.plugin_data.plugin_name == "scalars":
                    number = float(np.asarray(tf.make_ndarray(value.tensor)).reshape(()))
                else:
                    continue
                points.setdefault(value.tag, {})[int(event.step)] = number
    if not points:
        raise InputError(f"no scalar summaries in {log_dir}")
    series = {}
    for tag, by_step in points.items():
        steps = np.array(sorted(by_step), np.int64)
        series[tag] = (steps, np.array([by_step[s] for s in steps], np.float64))
    return series


def smooth(values, weight: float) -> np.ndarray:
    """TensorBoard's exponential moving average, debiased.

    ``m_t = weight * m_{t-1} + (1 - weight) * v_t`` from ``m_0 = 0``, divided by
    ``1 - weight ** t`` so that early points are unbiased; non-finite values are passed
    through without entering the average.

    Args:
      values: a 1-D sequence.
      weight: in ``[0, 1)``; 0 returns the values unchanged.

    Returns:
      float64 array of the same length.
    """
    from tfinverse.errors import InputError

    weight = float(weight)
    if not 0.0 <= weight < 1.0:
        raise InputError(f"smoothing weight must be in [0, 1), got {weight}")
    values = np.asarray(values, np.float64)
    out = values.copy()
    average, count = 0.0, 0
    for index, value in enumerate(values):
        if not np.isfinite(value):
            continue
        average = weight * average + (1.0 - weight) * value
        count += 1
        out[index] = average / (1.0 - weight**count) if weight > 0 else value
    return out


def _check_tags(runs: Mapping[str, Mapping[str, Series]], tags: Sequence[str]) -> None:
    from tfinverse.errors import unknown_name

    available = set().union(*(set(series) for series in runs.values()))
    for tag in tags:
        if tag not in available:
            raise unknown_name("scalar tag", tag, available, where="curves")


def plot_curves(
    runs: Mapping[str, Mapping[str, Series]],
    tags: Sequence[str],
    path,
    smoothing: float = 0.0,
    columns: int = 3,
    title: str = "",
    overwrite: bool = False,
) -> Path:
    """Draws one panel per tag, one line per run, and saves it as a PNG.

    Args:
      runs: run label -> the :func:`read_scalars` of its log folder.
      tags: the scalar tags to draw (each must exist in at least one run).
      path: the ``.png`` to write.
      smoothing: :func:`smooth` weight; when above 0 the raw values are drawn faintly behind.
      columns: panels per row.
      title: figure title.
      overwrite: replace an existing file.

    Returns:
      The path written.

    Raises:
      InputError: no tags, a bad smoothing weight; UnknownNameError: a tag no run has.
      FileExistsError: the file exists and ``overwrite`` is False.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tfinverse.errors import InputError
    from tfinverse.utils.results import atomic_write_bytes

    tags = list(tags)
    if not tags:
        raise InputError("no scalar tags to plot")
    _check_tags(runs, tags)
    smooth(np.zeros(1), smoothing)  # validates the weight before any drawing
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass --overwrite to replace it")
    columns = max(1, min(int(columns), len(tags)))
    rows = -(-len(tags) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.0 * rows), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for panel, tag in zip(axes.flat, tags):
        for index, (label, series) in enumerate(runs.items()):
            if tag not in series:
                continue
            steps, values = series[tag]
            colour = colours[index % len(colours)]
            if smoothing > 0:
                panel.plot(steps, values, color=colour, alpha=0.25, linewidth=0.8)
            panel.plot(steps, smooth(values, smoothing), color=colour, linewidth=1.4, label=label)
        panel.set_title(tag, fontsize=10)
        panel.set_xlabel("step")
        panel.grid(alpha=0.3)
        if len(runs) > 1:
            panel.legend(fontsize=8)
    for panel in list(axes.flat)[len(tags):]:
        panel.axis("off")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    import io

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return atomic_write_bytes(path, buffer.getvalue(), overwrite=overwrite)


def curves_table(runs: Mapping[str, Mapping[str, Series]], tags: Sequence[str]) -> List[Dict[str, object]]:
    """Rows ``{run, tag, step, value}`` of every point of the tags (for a CSV)."""
    _check_tags(runs, tags)
    rows = []
    for label, series in runs.items():
        for tag in tags:
            if tag in series:
                steps, values = series[tag]
                rows += [{"run": label, "tag": tag, "step": int(s), "value": float(v)} for s, v in zip(steps, values)]
    return rows
