#!/usr/bin/env python
"""Speed and memory of the generative priors: forward passes and GAN training steps.

For each model at its default size it measures, in three execution modes (eager,
``tf.function``, ``tf.function(jit_compile=True)``, i.e. XLA):

* **forward ms**: one generator forward pass (inference mode) on a batch of latents;
* **train ms**: one training step, a discriminator (critic) update then a generator update,
  with the model's own losses:

  - DCGAN 64x64x3: non-saturating GAN loss (``softplus`` of the logits), Adam 2e-4, beta1 0.5;
  - BEGAN 128x128x3: auto-encoder losses with the equilibrium term ``k_t``
    (:class:`tfinverse.models.BEGANState`), D and G updated from one shared forward pass as
    in the original, Adam 1e-4, beta1 0.5;
  - PGGAN: WGAN-GP (lambda 10, drift 1e-3) at the top level with ``alpha = 1``, Adam 1e-3,
    betas (0, 0.99), with the full-width network (``fmap_base 8192, fmap_max 512``).

  - igan 64x64x3 (``unmixing_mnist_cifar``): one discriminator round (D1 and D2 updates)
    plus one estimator update of :class:`tfinverse.training.igan.IGAN` with its losses.

* **precision**: ``float32``, or ``bfloat16`` under Keras' ``mixed_bfloat16`` policy (16-bit
  compute, float32 variables and optimizer state); a second table gives each model's
  bfloat16 speed-up (float32 ms / bfloat16 ms) per mode, measured in the same run;
* **first call s**: the first forward pass plus the first training step, which include
  tracing (``tf.function``) and compilation (XLA);
* **peak RSS MB**: growth of the process's peak resident memory over its size after the
  models were built (``resource.getrusage`` together with a psutil sampler); on a GPU,
  ``tf.config.experimental.get_memory_info`` peak device memory instead.
* **cores used**: CPU time over wall time of the worker while measuring, which shows
  whether other processes were competing for the cores (timings are then inflated).

Every (model, mode) pair runs in a fresh Python process, so memory and compilation caches
of one do not leak into the next (``--in-process`` runs them all in this process).
"Real" images are uniform noise in ``[-1, 1]``: speed does not depend on the data.

PGGAN resolution: the published generator is 1024x1024; with the full channel widths every
level from 4x4 to 32x32 has 512 channels, so the cost grows quickly with the resolution
(generator forward, per image: ~6 GMAC at 32, ~14 at 64, ~21 at 128, ~28 at 256, and a
WGAN-GP step costs some 20-25 forward passes). ``--pggan-resolution`` defaults to 128 with
a batch of 2 (the critic's minibatch-stddev groups then hold 2 samples instead of 4; pass
``--batch pggan=4`` for the original grouping at twice the cost). A ``tf.function`` training
step at 128 costs about 9 CPU-seconds per image, and the whole default run about 12
CPU-minutes, i.e. 6-7 minutes on 2 idle cores; the eager PGGAN step is the largest part
(nested gradient tapes for the gradient penalty, ~5 GB resident at batch 4). 256 adds
about a third to the compute per image and quadruples the top level's activation memory;
1024 is out of reach of such a machine.

XLA on CPU: the DCGAN and BEGAN rows show ``jit_compile=True`` much slower than a plain
``tf.function`` (the DCGAN generator, made of transposed convolutions, ~20x slower): XLA's
CPU backend emits its own convolution code instead of calling the oneDNN kernels that graph
mode uses, so the XLA columns are meaningful mainly on GPU.

Examples::

    python benchmarks/bench_generators.py
    python benchmarks/bench_generators.py --modes function --precisions float32 bfloat16
    python benchmarks/bench_generators.py --models dcgan --batch 32 --repeats 5
    python benchmarks/bench_generators.py --models pggan --pggan-resolution 128 --batch pggan=4
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time

__all__ = [
    "MODELS",
    "MODES",
    "DEFAULT_BATCH",
    "DEFAULT_PGGAN_RESOLUTION",
    "build_dcgan",
    "build_began",
    "build_pggan",
    "build_igan",
    "PeakMemory",
    "run_case",
    "run_isolated",
    "parse_batches",
    "speedup_rows",
    "build_parser",
    "main",
]

MODELS = ("dcgan", "began", "pggan", "igan")
MODES = ("eager", "function", "xla")
PRECISIONS = ("float32", "bfloat16")
DEFAULT_BATCH = {"dcgan": 64, "began": 16, "pggan": 2, "igan": 8}
DEFAULT_PGGAN_RESOLUTION = 128


# ----------------------------------------------------------------- models and steps


def _adam(learning_rate, beta_1, beta_2=0.999, epsilon=1e-7):
    import keras

    return keras.optimizers.Adam(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)


def _apply(optimizer, tape, loss, variables):
    optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))


def build_dcgan(batch: int):
    """DCGAN 64x64x3 with the non-saturating loss; returns the benchmark case."""
    import numpy as np
    import tensorflow as tf

    from tfinverse.models import build_dcgan_discriminator, build_dcgan_generator

    generator, discriminator = build_dcgan_generator(64, 3), build_dcgan_discriminator(64, 3)
    g_opt, d_opt = _adam(2e-4, 0.5), _adam(2e-4, 0.5)
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)

    def forward(z):
        return generator(z, training=False)

    def train_step(z, real, seed):
        with tf.GradientTape() as tape:
            fake = generator(z, training=True)
            real_logits = discriminator(real, training=True)
            fake_logits = discriminator(fake, training=True)
            d_loss = tf.reduce_mean(tf.nn.softplus(-real_logits)) + tf.reduce_mean(tf.nn.softplus(fake_logits))
        _apply(d_opt, tape, d_loss, discriminator.trainable_variables)
        with tf.GradientTape() as tape:
            fake_logits = discriminator(generator(z, training=True), training=True)
            g_loss = tf.reduce_mean(tf.nn.softplus(-fake_logits))
        _apply(g_opt, tape, g_loss, generator.trainable_variables)
        return d_loss + g_loss

    rng = np.random.default_rng(0)
    inputs = (
        rng.uniform(-1, 1, (batch, 100)).astype(np.float32),
        rng.uniform(-1, 1, (batch, 64, 64, 3)).astype(np.float32),
    )
    return "64x64x3", generator, discriminator, forward, train_step, inputs


def build_began(batch: int):
    """BEGAN 128x128x3 with the equilibrium-controlled auto-encoder losses."""
    import numpy as np
    import tensorflow as tf

    from tfinverse.models import BEGANState, build_began_decoder, build_began_discriminator

    generator = build_began_decoder(128, 3, 64, 64, name="began_generator")
    discriminator = build_began_discriminator(128, 3, 64, 64)
    state = BEGANState()
    g_opt, d_opt = _adam(1e-4, 0.5), _adam(1e-4, 0.5)
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)

    def forward(z):
        return generator(z, training=False)

    def train_step(z, real, seed):
        with tf.GradientTape(persistent=True) as tape:
            fake = generator(z, training=True)
            losses = state.losses(real, discriminator(real, training=True), fake,
                                  discriminator(fake, training=True))
        _apply(d_opt, tape, losses["discriminator_loss"], discriminator.trainable_variables)
        _apply(g_opt, tape, losses["generator_loss"], generator.trainable_variables)
        del tape
        k, measure = state.update(losses["loss_real"], losses["loss_fake"])
        return measure + k

    rng = np.random.default_rng(0)
    inputs = (
        rng.uniform(-1, 1, (batch, 64)).astype(np.float32),
        rng.uniform(-1, 1, (batch, 128, 128, 3)).astype(np.float32),
    )
    return "128x128x3", generator, discriminator, forward, train_step, inputs


def build_pggan(batch: int, resolution: int):
    """Full-width PGGAN at ``resolution`` with WGAN-GP."""
    import numpy as np
    import tensorflow as tf

    from tfinverse.models import (
        PGGANDiscriminatorNetwork,
        PGGANGeneratorNetwork,
        gradient_penalty,
        wgan_generator_loss,
        wgan_gp_discriminator_loss,
    )

    generator = PGGANGeneratorNetwork(resolution, 512, 3)
    discriminator = PGGANDiscriminatorNetwork(resolution, 3)
    g_opt, d_opt = _adam(1e-3, 0.0, 0.99, 1e-8), _adam(1e-3, 0.0, 0.99, 1e-8)
    g_vars, d_vars = generator.active_trainable_variables(), discriminator.trainable_variables
    g_opt.build(g_vars)
    d_opt.build(d_vars)

    def forward(z):
        return generator(z, training=False)

    def train_step(z, real, seed):
        with tf.GradientTape() as tape:
            fake = generator(z, training=True)
            real_scores = discriminator(real, training=True)
            fake_scores = discriminator(fake, training=True)
            penalty = gradient_penalty(discriminator, real, fake, seed=seed)
            d_loss = wgan_gp_discriminator_loss(real_scores, fake_scores, penalty)
        _apply(d_opt, tape, d_loss, d_vars)
        with tf.GradientTape() as tape:
            g_loss = wgan_generator_loss(discriminator(generator(z, training=True), training=True))
        _apply(g_opt, tape, g_loss, g_vars)
        return d_loss + g_loss

    rng = np.random.default_rng(0)
    inputs = (
        rng.standard_normal((batch, 512)).astype(np.float32),
        rng.uniform(-1, 1, (batch, resolution, resolution, 3)).astype(np.float32),
    )
    return f"{resolution}x{resolution}x3", generator, discriminator, forward, train_step, inputs


def build_igan(batch: int):
    """igan's estimator and two discriminators on unmixing_mnist_cifar (64x64x3), vanilla losses."""
    import numpy as np
    import tensorflow as tf

    from tfinverse.models.igan import build_discriminators_for_task, build_estimator_for_task
    from tfinverse.tasks.igan_tasks import get_task
    from tfinverse.training.igan import IGAN, igan_optimizers

    task = get_task("unmixing_mnist_cifar")
    estimator = build_estimator_for_task(task, seed=0)
    d1, d2 = build_discriminators_for_task(task, seed=1)
    model = IGAN(estimator, d1, d2, dual_mapping=True, paired=False)
    model.compile(*igan_optimizers("vanilla"), gan_model="vanilla")

    def forward(y):
        return model(y, training=False)  # the estimated component Z

    def train_step(y, real, seed):
        batch = {"y": y, "x": real, "x2": real, "component": real}
        d = model.discriminator_round(batch)
        g = model.generator_step(batch)
        return d["d1_loss"] + g["g_loss"]

    rng = np.random.default_rng(0)
    shape = (batch, task.image_size, task.image_size, task.channels)
    inputs = (rng.uniform(0, 1, shape).astype(np.float32), rng.uniform(0, 1, shape).astype(np.float32))
    return "64x64x3", estimator, d1, forward, train_step, inputs


# ----------------------------------------------------------------- measurement


class PeakMemory:
    """Peak resident memory while running, relative to the size at construction.

    Combines ``resource.getrusage`` (the kernel's exact peak, but over the whole process
    life) with a psutil sampler (every 5 ms) that sees peaks after the baseline; on a GPU
    the device's peak allocation is reported instead.
    """

    def __init__(self):
        import psutil
        import tensorflow as tf

        self._process = psutil.Process()
        self._gpu = bool(tf.config.list_physical_devices("GPU"))
        if self._gpu:
            tf.config.experimental.reset_memory_stats("GPU:0")
        self.baseline = self._process.memory_info().rss
        self._sampled_peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self):
        while not self._stop.wait(0.005):
            self._sampled_peak = max(self._sampled_peak, self._process.memory_info().rss)

    def stop_megabytes(self) -> float:
        """Stops sampling; returns the peak growth in MB (device peak on a GPU)."""
        self._stop.set()
        self._thread.join()
        if self._gpu:
            import tensorflow as tf

            return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
        kernel_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
        peak = max(kernel_peak, self._sampled_peak, self._process.memory_info().rss)
        return max(0.0, peak - self.baseline) / 2**20


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _time_calls(fn, warmup: int, repeats: int):
    """Runs ``fn`` ``warmup + repeats`` times; returns (first call s, median ms of repeats)."""
    start = time.perf_counter()
    fn()
    first = time.perf_counter() - start
    for _ in range(max(0, warmup - 1)):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return first, 1000.0 * statistics.median(times)


def run_case(model: str, mode: str, batch: int, warmup: int, repeats: int, pggan_resolution: int,
             precision: str = "float32") -> dict:
    """Measures one (model, mode) pair in this process.

    Args:
      model: one of :data:`MODELS`.
      mode: one of :data:`MODES`.
      batch: batch size.
      warmup: untimed calls before timing (the first one is reported as "first call").
      repeats: timed calls; the median is reported.
      pggan_resolution: PGGAN output size.
      precision: ``float32`` or ``bfloat16`` (Keras' ``mixed_bfloat16`` policy while the
        models are built).

    Returns:
      A dict row of the results table.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from tfinverse.utils.precision import KERAS_POLICIES

    keras.mixed_precision.set_global_policy(KERAS_POLICIES[precision])
    if model == "dcgan":
        size, generator, discriminator, forward, train_step, inputs = build_dcgan(batch)
    elif model == "began":
        size, generator, discriminator, forward, train_step, inputs = build_began(batch)
    elif model == "pggan":
        size, generator, discriminator, forward, train_step, inputs = build_pggan(batch, pggan_resolution)
    elif model == "igan":
        size, generator, discriminator, forward, train_step, inputs = build_igan(batch)
    else:
        raise ValueError(f"model must be one of {MODELS}, got {model!r}")
    if mode == "function":
        forward, train_step = tf.function(forward), tf.function(train_step)
    elif mode == "xla":
        forward = tf.function(forward, jit_compile=True)
        train_step = tf.function(train_step, jit_compile=True)
    elif mode != "eager":
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    z, real = (tf.constant(array) for array in inputs)
    seed = tf.constant([1, 2], tf.int64)

    def forward_once():
        return float(forward(z)[0, 0, 0, 0].numpy())  # fetching a value waits for the result

    def train_once():
        return float(train_step(z, real, seed).numpy())

    memory = PeakMemory()
    cpu_start, wall_start = _cpu_seconds(), time.perf_counter()
    forward_first, forward_ms = _time_calls(forward_once, warmup, repeats)
    train_first, train_ms = _time_calls(train_once, warmup, repeats)
    cpu_seconds, wall_seconds = _cpu_seconds() - cpu_start, time.perf_counter() - wall_start
    peak_mb = memory.stop_megabytes()
    count = lambda m: int(sum(np.prod(v.shape) for v in m.trainable_variables))  # noqa: E731
    return {
        "model": model,
        "size": size,
        "batch": batch,
        "G / D params (M)": f"{count(generator) / 1e6:.2f} / {count(discriminator) / 1e6:.2f}",
        "mode": mode,
        "precision": precision,
        "forward ms": forward_ms,
        "train ms/step": train_ms,
        "first call s": forward_first + train_first,
        "peak RSS MB": peak_mb,
        "cores used": cpu_seconds / wall_seconds,
    }


def run_isolated(args, model: str, mode: str, batch: int, precision: str = "float32") -> dict:
    """Runs :func:`run_case` in a fresh interpreter; returns its row or an error row."""
    config = dict(model=model, mode=mode, batch=batch, warmup=args.warmup, repeats=args.repeats,
                  pggan_resolution=args.pggan_resolution, precision=precision)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL=os.environ.get("TF_CPP_MIN_LOG_LEVEL", "2"))
    try:
        done = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--worker", json.dumps(config)],
            capture_output=True, text=True, timeout=args.timeout, env=env,
        )
    except subprocess.TimeoutExpired:
        return {"model": model, "mode": mode, "precision": precision, "batch": batch,
                "size": f"timeout after {args.timeout} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        message = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"model": model, "mode": mode, "precision": precision, "batch": batch,
                "size": f"failed: {message[:80]}"}
    return json.loads(lines[-1])


# ----------------------------------------------------------------- command line


def speedup_rows(rows) -> list:
    """Per (model, mode): float32 ms over bfloat16 ms for the forward pass and the training step."""
    by_key = {(r["model"], r["mode"], r.get("precision")): r for r in rows}
    out = []
    for (model, mode, precision), row in by_key.items():
        other = by_key.get((model, mode, "float32"))
        if precision != "bfloat16" or other is None or "train ms/step" not in row or "train ms/step" not in other:
            continue
        out.append({
            "model": model,
            "mode": mode,
            "forward speed-up": other["forward ms"] / row["forward ms"],
            "train step speed-up": other["train ms/step"] / row["train ms/step"],
        })
    return out


def parse_batches(items) -> dict:
    """``["64"]`` (every model) or ``["dcgan=64", "pggan=4"]`` -> ``{model: batch}``."""
    batches = dict(DEFAULT_BATCH)
    for item in items or []:
        name, sep, value = item.rpartition("=")
        try:
            size = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"--batch takes N or model=N, got {item!r}") from None
        if size <= 0:
            raise argparse.ArgumentTypeError(f"--batch sizes must be positive, got {item!r}")
        if not sep:
            batches = {model: size for model in MODELS}
        elif name in MODELS:
            batches[name] = size
        else:
            raise argparse.ArgumentTypeError(f"--batch: unknown model {name!r}; models are {MODELS}")
    return batches


def build_parser() -> argparse.ArgumentParser:
    """The benchmark's command-line flags."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS), help="models to run")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES), help="execution modes")
    parser.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=list(PRECISIONS),
                        help="float32, and bfloat16 under the mixed_bfloat16 policy")
    parser.add_argument(
        "--batch", nargs="+", default=None,
        help="batch size for every model (N) or per model (model=N); defaults: "
        + ", ".join(f"{k}={v}" for k, v in DEFAULT_BATCH.items()),
    )
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per measurement (median)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls first (>= 1: tracing/compiling)")
    parser.add_argument("--pggan-resolution", type=int, default=DEFAULT_PGGAN_RESOLUTION,
                        help="PGGAN output size (power of two)")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds allowed per (model, mode)")
    parser.add_argument("--in-process", action="store_true",
                        help="run every case in this process (memory figures then accumulate)")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    return parser


def main(argv=None) -> int:
    """Runs the selected cases and prints the Markdown table; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_case(**json.loads(args.worker))), flush=True)
        return 0
    if args.repeats < 1 or args.warmup < 1:
        parser.error("--repeats and --warmup must be >= 1")
    try:
        batches = parse_batches(args.batch)
    except argparse.ArgumentTypeError as error:
        parser.error(str(error))
    if "pggan" in args.models and args.pggan_resolution & (args.pggan_resolution - 1):
        parser.error(f"--pggan-resolution must be a power of two, got {args.pggan_resolution}")

    from tfinverse.utils.results import markdown_table

    load_before = os.getloadavg()[0]
    rows = []
    for model in args.models:
        for mode in args.modes:
            # The precisions of one (model, mode) run back to back, so their ratio sees the same load.
            for precision in args.precisions:
                start = time.perf_counter()
                if args.in_process:
                    row = run_case(model, mode, batches[model], args.warmup, args.repeats, args.pggan_resolution,
                                   precision)
                else:
                    row = run_isolated(args, model, mode, batches[model], precision)
                rows.append(row)
                print(f"# {model} {mode} {precision}: done in {time.perf_counter() - start:.0f} s",
                      file=sys.stderr, flush=True)
    columns = ["model", "size", "batch", "G / D params (M)", "mode", "precision", "forward ms", "train ms/step",
               "first call s", "peak RSS MB", "cores used"]
    print(markdown_table(rows, columns=columns, floatfmt=".1f"), end="")
    speedups = speedup_rows(rows)
    if speedups:
        print("\nbfloat16 speed-up over float32 (float32 ms / bfloat16 ms, same run):\n")
        print(markdown_table(speedups, floatfmt=".2f"), end="")
    print(f"\nLoad average (1 min) {load_before:.1f} before and {os.getloadavg()[0]:.1f} after, "
          f"on {os.cpu_count()} cores; \"cores used\" is the worker's CPU time over wall time while "
          "measuring (below the core count when other processes share the machine).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
