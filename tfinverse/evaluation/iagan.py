"""Runs the IAGAN paper's methods on one inversion task and scores them.

The engine behind ``scripts/deploy_iagan.py``, ``scripts/sweep_compression.py`` and
``scripts/misaligned_sr.py``: CSGM, IAGAN (started from CSGM's latents), their
back-projected variants, Deep Image Prior and the classical baselines on one task
(:class:`tfinverse.tasks.iagan.InversionTask`), with the paper's dataset PSNR, mean SSIM and
seconds per image, and each iterative method's objective per iteration for TensorBoard.
"""

from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np

__all__ = ["TaskOutcome", "run_task", "error_summary", "write_task_summaries"]


class TaskOutcome(NamedTuple):
    """What :func:`run_task` returns.

    Attributes:
      rows: table rows (task, method, psnr_db, ssim, seconds_per_image, images).
      columns: ``(title, images)`` pairs for a grid: original, naive, each method.
      histories: each iterative method's objective per iteration, mean over the images.
      misfit: the task's noise level against the data misfit the latent methods reached:
        ``task`` (the rows' label), ``measurements`` (m), ``sigma`` (added to [0, 1] images), ``noise_energy``
        (``m sigma^2``, the expected ``||e||^2`` per image) and ``<method>_misfit`` (mean over
        the images of ``||y - A x||^2`` at the method's returned estimate) for CSGM and IAGAN.
        A CSGM misfit well above the noise energy means the prior cannot explain the
        measurements (image adaptation can help); at or below it, adapting fits noise.
    """

    rows: List[dict]
    columns: List[Tuple[str, np.ndarray]]
    histories: Dict[str, np.ndarray]
    misfit: Optional[Dict[str, float]] = None

    def by_method(self) -> Dict[str, Tuple[dict, np.ndarray]]:
        """``{method: (table row, estimates [N, H, W, C] in [0, 1])}``, the naive baseline first.

        Rows list the baseline, then the estimates, in the order of ``columns`` (whose first
        column is the original), so they pair up one to one.
        """
        if len(self.columns) != len(self.rows) + 1:
            raise RuntimeError("run_task returned rows and columns that do not pair up")
        return {row["method"]: (row, estimate) for row, (_, estimate) in zip(self.rows, self.columns[1:])}


def run_task(generator, task, x, args, seed: int, methods=None) -> TaskOutcome:
    """Runs every applicable method of ``args.methods`` on one task.

    The naive estimate comes first (``observation`` when the measurements are images, else
    ``pinv``, the pseudo-inverse), then the asked-for methods that apply, in run order
    (:func:`tfinverse.inversion.available_methods`). Methods that others start from run
    even when not asked for (CSGM for IAGAN) but are not reported. Seconds per image count
    what a method cannot run without: IAGAN's include CSGM's, a back-projection's its base's.

    Args:
      generator: the prior (a :class:`tfinverse.models.Generator`).
      task: a :class:`tfinverse.tasks.iagan.InversionTask` (or the same 4-tuple).
      x: float32 ``[N, H, W, C]`` clean images in [0, 1].
      args: the flags of :func:`tfinverse.tasks.iagan.add_inversion_flags` plus ``methods``,
        ``dip_iterations``, ``dip_channels`` and ``dip_levels`` (when ``dip`` is a method);
        only ``methods`` and ``noise_convention`` are read when ``methods`` is given.
        ``preset`` (:func:`tfinverse.tasks.iagan.apply_preset`) replaces the iteration counts
        and learning rates by the paper's for the task; ``noise_convention`` says whether the
        task's sigma is on [0, 1] or, as the IAGAN code had it, on [-1, 1].
      seed: the seed of the operator draw, the noise and the methods.
      methods: optional method objects (:class:`tfinverse.inversion.InversionMethod`) to
        run instead of :func:`tfinverse.tasks.iagan.methods_from_flags` ``(args)``; those
        named in ``args.methods`` are reported.

    Returns:
      A :class:`TaskOutcome`.
    """
    import tensorflow as tf

    import tfinverse.operators as ops
    from tfinverse import inversion, metrics
    from tfinverse.tasks.iagan import apply_preset, methods_from_flags, task_label

    from tfinverse.tasks.iagan import NOISE_CONVENTIONS

    name, op_name, params, sigma = task
    convention = getattr(args, "noise_convention", "image") or "image"
    label = task_label(name, params, sigma) + (" [noise on [-1, 1]]" if sigma and convention == "original" else "")
    sigma = float(sigma) * NOISE_CONVENTIONS[convention]  # the standard deviation added to [0, 1] images
    operator = ops.get(op_name, image_shape=x.shape[1:], seed=seed, **params)
    y = operator(tf.constant(x))
    if sigma:
        y = ops.get_noise("gaussian", sigma=sigma)(y, seed=seed)
    if methods is None:
        methods = methods_from_flags(apply_preset(args, task))  # --preset paper-*: the paper's per-task settings
    reported = set(args.methods)
    # The naive reconstruction shown as the observation column: y itself, or A^+ y.
    naive = inversion.get("observation")(operator, y)
    naive_name = naive.extras["mode"]
    # One loop over method objects: each runs if it applies (bicubic on SR only, BP without
    # noise only, ...) and gets the result it starts from (IAGAN: CSGM's latents).
    results = inversion.run_methods(methods, operator, y, generator=generator, seed=seed, progress=True,
                                    noise_sigma=sigma)
    estimates, seconds, histories = {}, {}, {}
    for method in methods:
        if method.name not in reported or method.name not in results:
            continue
        result = results[method.name]
        estimates[method.name] = np.clip(np.asarray(result.x_hat), 0.0, 1.0)
        seconds[method.name] = result.seconds_per_image
        history = np.asarray(result.history)
        if method.reports_history and history.size:
            histories[method.name] = history.mean(axis=1)

    rows: List[dict] = []
    observation = np.clip(np.asarray(naive.x_hat), 0.0, 1.0)
    for method, estimate in [(naive_name, observation)] + list(estimates.items()):
        rows.append({
            "task": label,
            "method": method,
            "psnr_db": float(metrics.dataset_psnr(x, estimate)),
            "ssim": float(np.mean(metrics.ssim(x, estimate))),
            "seconds_per_image": seconds.get(method, 0.0),
            "images": len(x),
        })
    naive_title = "observation" if naive_name == "observation" else "A^+ y"
    columns = [("original", x), (naive_title, observation)] + list(estimates.items())
    measurements = int(np.prod(operator.out_shape))
    misfit = {"task": label, "measurements": measurements, "sigma": sigma, "noise_energy": measurements * sigma**2}
    for method in ("csgm", "iagan"):
        if method in results:
            misfit[f"{method}_misfit"] = float(np.mean(np.asarray(results[method].best_objective, np.float64)))
    return TaskOutcome(rows, columns, histories, misfit)


def _spread(values: np.ndarray) -> float:
    """Sample standard deviation (ddof 1); NaN for a single value, where it is undefined."""
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def error_summary(x: np.ndarray, estimate: np.ndarray) -> dict:
    """Per-image MSE and PSNR of an estimate, summarised over the images.

    Args:
      x: the true images ``[N, H, W, C]`` in [0, 1].
      estimate: the estimates, same shape.

    Returns:
      A dict with ``mse_mean``, ``mse_std``, ``psnr_mean_db``, ``psnr_std_db`` (standard
      deviations over the images, ddof 1) and ``dataset_psnr_db`` (``10 log10(1 / mean
      MSE)``, the papers' figure).
    """
    from tfinverse import metrics

    per_image_mse = np.asarray(metrics.mse(x, estimate), np.float64)
    per_image_psnr = np.asarray(metrics.psnr(x, estimate), np.float64)
    return {
        "mse_mean": float(per_image_mse.mean()),
        "mse_std": _spread(per_image_mse),
        "psnr_mean_db": float(per_image_psnr.mean()),
        "psnr_std_db": _spread(per_image_psnr),
        "dataset_psnr_db": float(metrics.dataset_psnr(x, estimate)),
    }


def write_task_summaries(writer, index: int, slug: str, outcome: TaskOutcome, max_images: int = 8) -> None:
    """Writes one task's results to TensorBoard.

    Scalars ``<slug>/<method>/objective`` (the mean objective per iteration, step =
    iteration), ``<slug>/psnr_db/<method>`` and ``<slug>/ssim/<method>`` (step = the task's
    index), and images ``<slug>/<column>`` (the first ``max_images`` of each grid column).

    Args:
      writer: a ``tf.summary`` writer (:func:`tfinverse.utils.cli.summary_writer`).
      index: the task's position in the run.
      slug: the task's tag prefix, e.g. ``00_sr``.
      outcome: what :func:`run_task` returned.
      max_images: images per grid column.
    """
    from tfinverse.utils.cli import summary_images, summary_scalar

    rows, columns = outcome.rows, outcome.columns
    with writer.as_default():
        for method, history in outcome.histories.items():
            for step, value in enumerate(np.asarray(history, np.float64)):
                if np.isfinite(value):
                    summary_scalar(f"{slug}/{method}/objective", value, step=step)
        for row in rows:
            for key in ("psnr_db", "ssim"):
                if np.isfinite(row[key]):
                    summary_scalar(f"{slug}/{key}/{row['method']}", row[key], step=index)
        for title, images in columns:
            summary_images(f"{slug}/{title.replace(' ', '_').replace('^', '').replace('+', 'pinv')}",
                           np.asarray(images, np.float32), step=index, max_outputs=max_images)
    writer.flush()
