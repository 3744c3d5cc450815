"""Speed and memory of CSGM and IAGAN iterations on CPU.

Prints a Markdown table: milliseconds per iteration (for the whole batch), image-iterations
per second, images per second at the IAGAN paper's budget (CSGM 1600 iterations, IAGAN 600;
one restart), the one-off cost of the first step (tracing, XLA compilation) and the peak
resident memory of the process while the configuration ran (it includes what earlier rows
left allocated, so compare neighbouring rows), and the achieved GFLOP/s (forward FLOPs counted
from the layer shapes, times 2 for a CSGM step and 3 for an IAGAN step) against a matmul
ceiling of the row's precision measured in the same run. Rows compare float32 with bfloat16
(Keras' ``mixed_bfloat16`` policy: 16-bit compute, float32 variables; compiled steps only),
eager execution, ``tf.function``
and ``jit_compile`` (XLA), batched and sequential IAGAN, and a stacked-weights
``tf.vectorized_map`` IAGAN step (the alternative the batched mode was measured against).

The per-iteration time is the median gap between consecutive iterations, recorded by a
progress-bar stand-in installed in the inversion modules, so tracing and compilation
(reported separately as the first step's excess) do not distort it.

Prior: a randomly initialised DCGAN 64x64x3 (the size of the speed facts in PEERS.md);
``--mnist`` uses 32x32x1. A second table compares IAGAN's per-variable Adam update with one
over a flat buffer; a third splits one image's IAGAN step into its parts per precision; a
fourth times whole ``iagan`` calls on the shipped 28x28 prior at the budgets the scripts use
(trace, copies and all steps included): sequential, batched, and batched with the previous
call's solver reused. The default run takes a few
minutes on 2 cores::

    python benchmarks/bench_inversion.py
    python benchmarks/bench_inversion.py --mnist --iagan-64
    python benchmarks/bench_inversion.py --precisions float32 --end-to-end-budgets   # no bfloat16 units
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfinverse.inversion.csgm as csgm_module  # noqa: E402
import tfinverse.inversion.iagan as iagan_module  # noqa: E402
import tfinverse.operators as ops  # noqa: E402
from tfinverse.inversion.csgm import AdamSlots, csgm  # noqa: E402
from tfinverse.inversion.iagan import iagan  # noqa: E402
from tfinverse.models import DCGANGenerator  # noqa: E402
from tfinverse.utils.results import markdown_table  # noqa: E402
from tfinverse.utils.precision import precision_policy  # noqa: E402
from tfinverse.utils.timing import install_step_clock  # noqa: E402

CSGM_BUDGET = 1600
IAGAN_BUDGET = 600


class PeakMemory:
    """Samples the resident set size (``VmRSS``) in a background thread."""

    def __init__(self, interval=0.01):
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = None

    @staticmethod
    def current() -> int:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def __enter__(self):
        self.peak = self.current()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, self.current())

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.current())


def _quiet_progress(iterable=None, **kwargs):
    from tfinverse.utils.cli import progress

    return progress(iterable, **{**kwargs, "disable": True})


def forward_flops(generator) -> int:
    """Multiply-adds x 2 of one image's forward pass, from the layer shapes (dense and convolutions)."""
    import keras

    total = 0
    for layer in generator.network.layers:
        if isinstance(layer, keras.layers.Dense):
            total += 2 * int(layer.input.shape[-1]) * int(layer.units)
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            height, width, channels = (int(d) for d in layer.input.shape[1:])
            kernel = int(np.prod(layer.kernel_size))
            total += 2 * height * width * channels * int(layer.filters) * kernel
        elif isinstance(layer, keras.layers.Conv2D):
            height, width, _ = (int(d) for d in layer.output.shape[1:])
            kernel = int(np.prod(layer.kernel_size))
            total += 2 * height * width * int(layer.input.shape[-1]) * int(layer.filters) * kernel
    return total


def matmul_ceiling(size: int = 2048, repeats: int = 5, dtype=tf.float32) -> float:
    """GFLOP/s of a ``size x size`` matrix product of ``dtype`` in ``tf.function`` (best of ``repeats``)."""
    a = tf.cast(tf.random.normal([size, size]), dtype)
    product = tf.function(lambda m: tf.matmul(m, m))
    product(a).numpy()
    best = min(_timed(lambda: product(a).numpy()) for _ in range(repeats))
    return 2 * size**3 / best / 1e9


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


# A CSGM step runs the forward pass and the gradient with respect to the input (about twice the
# forward's work); an IAGAN step adds the gradient with respect to the weights (about three times).
PASSES = {"CSGM": 2, "IAGAN": 3}


def cpu_bfloat16_units() -> str:
    """The CPU's bfloat16 instructions from ``/proc/cpuinfo`` (AMX, AVX512-BF16), or "none"."""
    try:
        with open("/proc/cpuinfo") as info:
            flags = next((line.split(":", 1)[1].split() for line in info if line.startswith("flags")), [])
    except OSError:
        return "unknown"
    units = [name for name, flag in (("AMX-BF16", "amx_bf16"), ("AVX512-BF16", "avx512_bf16")) if flag in flags]
    return ", ".join(units) or "none"


def row(method, mode, batch, ms_per_iteration, first_step_s, peak_bytes, budget, note="", precision="float32"):
    return {
        "method": method,
        "precision": precision,
        "mode": mode,
        "batch": batch,
        "ms / iteration": ms_per_iteration,
        "image-it / s": 1000.0 * batch / ms_per_iteration,
        "images / s (paper budget)": 1000.0 * batch / (ms_per_iteration * budget),
        "first step s": max(0.0, first_step_s),  # noise can make the first gap the shorter
        "peak RSS GB": peak_bytes / 1e9,
        "note": note,
    }


def bench_csgm(generator, operator, batch, mode, iterations, clock, precision="float32"):
    y = operator(generator(generator.sample_latent(batch, seed=1))).numpy()
    options = {"eager": {"run_eagerly": True}, "tf.function": {}, "jit_compile": {"jit_compile": True}}[mode]
    with PeakMemory() as memory:
        csgm(generator, operator, y, iterations=iterations, restarts=1, seed=0, **options)
    median, first = clock.gaps()
    return row("CSGM", mode, batch, 1000 * median, first - median, memory.peak, CSGM_BUDGET, precision=precision)


def bench_iagan(generator, operator, batch, mode, iterations, clock, precision="float32"):
    y = operator(tf.constant(np.random.default_rng(2).uniform(0, 1, (batch,) + operator.in_shape), tf.float32))
    z = generator.sample_latent(batch, seed=3)
    options = {
        "batched eager": {"run_eagerly": True, "batched": True},
        "batched tf.function": {"batched": True},
        "batched jit_compile": {"jit_compile": True, "batched": True},
        "sequential tf.function": {"batched": False},
    }[mode]
    with PeakMemory() as memory:
        iagan(generator, operator, y.numpy(), z_init=z, iterations=iterations, **options)
    median, first = clock.gaps()
    # Sequential runs report one image-iteration per gap.
    per_iteration = median * (batch if mode.startswith("sequential") else 1)
    return row("IAGAN", mode, batch, 1000 * per_iteration, first - median, memory.peak, IAGAN_BUDGET,
               precision=precision)


def bench_stacked_iagan(generator, operator, batch, iterations):
    """Per-image weights stacked on a leading axis, one ``vectorized_map`` over stateless calls."""
    network = generator.network
    trainable = [tf.convert_to_tensor(v) for v in network.trainable_variables]
    frozen = [tf.convert_to_tensor(v) for v in network.non_trainable_variables]
    stacked = [tf.Variable(tf.stack([w] * batch)) for w in trainable]
    z = tf.Variable(generator.sample_latent(batch, seed=3))
    slots = AdamSlots(stacked + [z])
    step_count = tf.Variable(0, dtype=tf.int64)
    y = operator(tf.constant(np.random.default_rng(2).uniform(0, 1, (batch,) + operator.in_shape), tf.float32))
    low, high = generator.output_range

    def one_image(arguments):
        weights, latent = arguments[:-1], arguments[-1]
        output, _ = network.stateless_call(list(weights), frozen, latent[None], training=False)
        return output[0]

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            tape.watch([z] + stacked)
            arguments = [tf.convert_to_tensor(s) for s in stacked] + [tf.convert_to_tensor(z)]
            native = tf.vectorized_map(one_image, arguments)
            images = tf.clip_by_value((native - low) / (high - low), 0.0, 1.0)
            fit = tf.reduce_sum(tf.square(y - operator(images)), axis=[1, 2, 3])
            total = tf.reduce_sum(fit)
        gradients = tape.gradient(total, stacked + [z])
        step_count.assign_add(1)
        slots.apply(stacked + [z], gradients, step_count, 1e-4)
        return fit

    with PeakMemory() as memory:
        start = time.perf_counter()
        stamps = []
        for _ in range(iterations):
            step().numpy()
            stamps.append(time.perf_counter())
    gaps = np.diff([start] + stamps)
    median = float(statistics.median(gaps[1:]))
    return row("IAGAN", "stacked vectorized_map", batch, 1000 * median, gaps[0] - median, memory.peak,
               IAGAN_BUDGET, "step only, no best tracking")


def bench_adam(generator, repeats: int = 20):
    """IAGAN's Adam update of one image's weights: per variable, against one flat buffer.

    A flat buffer needs the gradients concatenated into it every step (the weights stay in
    one variable that the forward pass would slice); the last row is the update alone, the
    bound a flat buffer could reach if nothing had to be concatenated.
    """
    from tfinverse.inversion.csgm import adam_update

    shapes = [tuple(v.shape) for v in generator.trainable_variables]
    rng = np.random.default_rng(0)
    variables = [tf.Variable(rng.standard_normal(shape).astype(np.float32)) for shape in shapes]
    gradients = [tf.constant(rng.standard_normal(shape).astype(np.float32)) for shape in shapes]
    slots = AdamSlots(variables)
    total = sum(int(np.prod(shape)) for shape in shapes)
    flat = tf.Variable(tf.zeros([total]))
    flat_slots = AdamSlots([flat])
    flat_gradient = tf.concat([tf.reshape(g, [-1]) for g in gradients], 0)

    @tf.function
    def per_variable():
        slots.apply(variables, gradients, 1, 1e-4)
        return tf.constant(0)

    @tf.function
    def flat_with_concat():
        joined = tf.concat([tf.reshape(g, [-1]) for g in gradients], 0)
        adam_update(flat, joined, flat_slots.first[0], flat_slots.second[0], 1, 1e-4)
        return tf.constant(0)

    @tf.function
    def flat_only():
        adam_update(flat, flat_gradient, flat_slots.first[0], flat_slots.second[0], 1, 1e-4)
        return tf.constant(0)

    rows = []
    for name, function in (("per variable (tfinverse)", per_variable), ("flat buffer, gradients concatenated", flat_with_concat),
                           ("flat buffer, update only", flat_only)):
        function()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            function().numpy()
            times.append(time.perf_counter() - start)
        rows.append({"Adam update": name, "variables": len(shapes) if name.startswith("per") else 1,
                     "parameters (M)": total / 1e6, "ms": 1000 * statistics.median(times)})
    return rows


def bench_step_parts(resolution: int, channels: int, precisions, batch: int = 1, repeats: int = 40):
    """Where an IAGAN step's time goes, per precision: the parts timed alone, compiled.

    Rows: the forward pass; the gradient with respect to the latents (a CSGM step's work);
    with respect to the latents and the weights (an IAGAN step's); that plus the Adam update
    (the whole step); the Adam update alone; the weights' cast to the compute dtype and back,
    which Keras does on every call under a mixed policy. Median of ``repeats`` calls each.
    """
    parts = {}
    for precision in precisions:
        with precision_policy(precision):
            generator = DCGANGenerator(resolution, channels, seed=0)
        network = generator.network
        z = tf.Variable(generator.sample_latent(batch, seed=1))
        y = tf.random.uniform([batch, resolution, resolution, channels])
        weights = network.trainable_variables
        slots = AdamSlots(weights + [z])
        step = tf.Variable(0, dtype=tf.int64)
        ones = [tf.ones_like(v) for v in weights + [z]]

        def loss():
            return tf.reduce_sum(tf.square(y - tf.cast(network(z, training=False), tf.float32)))

        def gradient(sources):
            with tf.GradientTape() as tape:
                value = loss()
            return tape.gradient(value, sources)

        def whole_step():
            gradients = gradient(weights + [z])
            step.assign_add(1)
            slots.apply(weights + [z], gradients, step, 1e-4)
            return tf.constant(0)

        def adam_alone():
            step.assign_add(1)
            slots.apply(weights + [z], ones, step, 1e-4)
            return tf.constant(0)

        compute = tf.as_dtype(network.dtype_policy.compute_dtype)
        functions = {
            "forward": lambda: tf.reduce_sum(tf.cast(network(z, training=False), tf.float32)),
            "gradient, latents": lambda: gradient(z),
            "gradient, latents and weights": lambda: gradient([z] + weights),  # every output, none pruned
            "whole step (gradients + Adam)": whole_step,
            "Adam update alone": adam_alone,
            # float32: no cast, the sums alone.
            "weights cast to the compute dtype and back": lambda: tf.add_n(
                [tf.reduce_sum(tf.cast(tf.cast(w, compute), tf.float32)) for w in weights]),
        }
        for name, function in functions.items():
            compiled = tf.function(function)
            compiled()
            times = []
            for _ in range(repeats):
                start = time.perf_counter()
                [output.numpy() for output in tf.nest.flatten(compiled())]
                times.append(time.perf_counter() - start)
            parts.setdefault(name, {})[precision] = 1000 * statistics.median(times)
    table = []
    for name, by_precision in parts.items():
        entry = {"part": name, **{f"{p} ms": t for p, t in by_precision.items()}}
        if len(by_precision) == 2:
            entry["speed-up"] = by_precision[precisions[0]] / by_precision[precisions[1]]
        table.append(entry)
    return table


def bench_end_to_end(budgets, images: int, repeats: int):
    """Whole ``iagan`` calls on the shipped prior: sequential against batched, and a reused solver.

    Rows per budget: the best of ``repeats`` calls of each mode (trace, copies and every step
    included, a new solver each time), then a second batched call that reuses the first's solver.
    """
    from tfinverse.pretrained import load_prior
    from tfinverse.inversion.iagan import choose_mode, clear_solver_cache

    generator = load_prior("dcgan_mnist28")
    operator = ops.get("super_resolution", image_shape=generator.output_shape, factor=4)
    truth = generator(generator.sample_latent(images, seed=5)).numpy()
    y = operator(truth).numpy()
    z = generator.sample_latent(images, seed=1)
    table = []
    for budget in budgets:
        seconds = {}
        for mode in ("sequential", "batched"):
            runs = []
            for _ in range(repeats):
                start = time.perf_counter()
                iagan(generator, operator, y, z_init=z, iterations=budget, batched=mode == "batched",
                      reuse_solver=False)
                runs.append(time.perf_counter() - start)
            seconds[mode] = min(runs)
        clear_solver_cache()
        iagan(generator, operator, y, z_init=z, iterations=budget, batched=True)
        start = time.perf_counter()
        iagan(generator, operator, y, z_init=z, iterations=budget, batched=True)
        seconds["reused"] = time.perf_counter() - start
        clear_solver_cache()
        auto = choose_mode("auto", images, budget)
        table.append({
            "iterations": budget,
            "sequential s": seconds["sequential"],
            "batched s": seconds["batched"],
            "batched / sequential images/s": seconds["sequential"] / seconds["batched"],
            "batched, reused solver s": seconds["reused"],
            "reused / sequential images/s": seconds["sequential"] / seconds["reused"],
            "auto picks": auto,
        })
        print(f"  end to end, {budget} iterations: sequential {seconds['sequential']:.2f} s, batched "
              f"{seconds['batched']:.2f} s, reused {seconds['reused']:.2f} s", file=sys.stderr, flush=True)
    return table


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", action="store_true", help="use a 32x32x1 DCGAN instead of 64x64x3")
    parser.add_argument("--csgm-batches", type=int, nargs="+", default=[1, 8, 64], help="CSGM batch sizes")
    parser.add_argument("--iagan-batches", type=int, nargs="+", default=[1, 8], help="IAGAN batch sizes")
    parser.add_argument("--iagan-64", action="store_true", help="also run IAGAN at N = 64 (tf.function only)")
    parser.add_argument("--skip-xla", action="store_true", help="leave out the jit_compile rows")
    parser.add_argument("--skip-stacked", action="store_true", help="leave out the vectorized_map IAGAN row")
    parser.add_argument("--iterations", type=int, default=12, help="iterations per configuration (>= 3)")
    parser.add_argument("--end-to-end-budgets", type=int, nargs="*", default=[20, 40, 150, 300],
                        help="IAGAN budgets of the end-to-end table on the shipped prior (deploy_iagan: 300, "
                             "150 under noise); none to skip it")
    parser.add_argument("--end-to-end-images", type=int, default=8, help="images per end-to-end call")
    parser.add_argument("--repeats", type=int, default=2, help="calls per end-to-end mode (the best is kept)")
    parser.add_argument("--skip-adam", action="store_true", help="leave out the Adam update table")
    parser.add_argument("--skip-parts", action="store_true", help="leave out the table of an IAGAN step's parts")
    parser.add_argument("--precisions", nargs="+", choices=("float32", "bfloat16"), default=["float32", "bfloat16"],
                        help="precisions of the step rows (bfloat16: Keras' mixed_bfloat16 policy; it needs "
                             "AVX512-BF16 or AMX to be fast, TensorFlow falls back to slow kernels without)")
    args = parser.parse_args(argv)

    resolution, channels = (32, 1) if args.mnist else (64, 3)
    operator = ops.get("identity", image_shape=(resolution, resolution, channels))
    clock = install_step_clock()
    iterations = max(3, args.iterations)
    modes = ["eager", "tf.function"] + ([] if args.skip_xla else ["jit_compile"])
    rows = []
    started = time.perf_counter()

    def report(result):
        rows.append(result)
        print(f"  {result['method']} {result['precision']} {result['mode']} N={result['batch']}: "
              f"{result['ms / iteration']:.1f} ms/it", file=sys.stderr, flush=True)

    # XLA steps of this generator are slow on CPU: fewer iterations keep the run short.
    xla_iterations = max(3, iterations // 3)

    def iterations_for(mode):
        return xla_iterations if "jit_compile" in mode else iterations

    ceilings = {precision: matmul_ceiling(dtype=tf.as_dtype(precision)) for precision in args.precisions}
    flops = parameters = None
    for precision in args.precisions:
        # The generator and IAGAN's per-image copies are built under the policy: 16-bit compute,
        # float32 variables, latents and losses.
        with precision_policy(precision):
            generator = DCGANGenerator(resolution, channels, seed=0)
            flops = flops or forward_flops(generator)
            parameters = parameters or sum(int(np.prod(v.shape)) for v in generator.trainable_variables)
            # 16-bit rows skip eager and XLA: the question there is the compiled step's speed.
            precision_modes = modes if precision == "float32" else ["tf.function"]
            for batch in args.csgm_batches:
                for mode in precision_modes:
                    report(bench_csgm(generator, operator, batch, mode, iterations_for(mode), clock, precision))
            iagan_modes = ["batched tf.function", "sequential tf.function"]
            if precision == "float32":
                iagan_modes = ["batched eager", "batched tf.function"] + ([] if args.skip_xla else [
                    "batched jit_compile"]) + ["sequential tf.function"]
            for batch in args.iagan_batches:
                for mode in iagan_modes:
                    if batch == 1 and mode.startswith("sequential"):
                        continue  # identical to batched at N = 1
                    report(bench_iagan(generator, operator, batch, mode, iterations_for(mode), clock, precision))
            if args.iagan_64:
                for mode in ("batched tf.function", "sequential tf.function"):
                    report(bench_iagan(generator, operator, 64, mode, max(3, iterations // 2), clock, precision))
            if not args.skip_stacked and precision == "float32":
                report(bench_stacked_iagan(generator, operator, 8, max(3, iterations // 2)))

    for result in rows:
        if result["method"] in PASSES:
            work = PASSES[result["method"]] * flops * result["batch"]
            result["GFLOP/s"] = work / (result["ms / iteration"] / 1000) / 1e9
            result["% of matmul"] = 100 * result["GFLOP/s"] / ceilings[result["precision"]]

    def lookup(method, mode, batch, precision="float32"):
        for r in rows:
            if (r["method"], r["mode"], r["batch"], r["precision"]) == (method, mode, batch, precision):
                return r["ms / iteration"]
        return None

    print(f"Prior: DCGAN {resolution}x{resolution}x{channels} ({parameters / 1e6:.2f} M parameters), identity "
          f"operator, CSGM with 1 restart; TensorFlow {tf.__version__}, {os.cpu_count()} CPUs, TF_ENABLE_ONEDNN_OPTS="
          f"{os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}; CPU bfloat16 units: {cpu_bfloat16_units()}; matmul "
          f"ceilings (2048^2, same run) {', '.join(f'{p} {c:.0f}' for p, c in ceilings.items())} "
          f"GFLOP/s (% of matmul: against the row's precision); {flops / 1e6:.0f} MFLOP per image forward; load average "
          f"{os.getloadavg()[0]:.1f} at the end; {time.perf_counter() - started:.0f} s in all.\n")
    print(markdown_table(rows, floatfmt={"ms / iteration": ".1f", "image-it / s": ".1f",
                                         "images / s (paper budget)": ".3g", "first step s": ".2f",
                                         "peak RSS GB": ".2f", "GFLOP/s": ".1f", "% of matmul": ".0f"}))
    goals = []
    eager, compiled = lookup("CSGM", "eager", 64), lookup("CSGM", "tf.function", 64)
    if eager and compiled:
        goals.append(f"- compiled CSGM step at batch 64: {eager / compiled:.2f}x faster than eager (goal >= 1.5x)")
    batched, sequential = lookup("IAGAN", "batched tf.function", 8), lookup("IAGAN", "sequential tf.function", 8)
    if batched and sequential:
        goals.append(f"- batched IAGAN at N = 8: {sequential / batched:.2f}x the images per second of sequential "
                     "per step (end to end below)")
    stacked = lookup("IAGAN", "stacked vectorized_map", 8)
    if batched and stacked:
        goals.append(f"- stacked vectorized_map IAGAN step at N = 8: {stacked / batched:.2f}x the time of the "
                     "batched copies")
    for method, mode, batches in (("CSGM", "tf.function", args.csgm_batches),
                                  ("IAGAN", "batched tf.function", args.iagan_batches),
                                  ("IAGAN", "sequential tf.function", args.iagan_batches)):
        for batch in batches:
            single, half = lookup(method, mode, batch), lookup(method, mode, batch, "bfloat16")
            if single and half:
                goals.append(f"- bfloat16 {method} {mode} step at N = {batch}: {single / half:.2f}x float32 "
                             f"(goal >= 3x; the matmul ceilings' ratio here {ceilings['bfloat16'] / ceilings['float32']:.2f}x)")
    if goals:
        print("\n" + "\n".join(goals))
    if not args.skip_adam:
        print("\nAdam update of one image's weights (the prior above), median of 20:\n")
        print(markdown_table(bench_adam(generator), floatfmt={"parameters (M)": ".2f", "ms": ".2f"}))
    if not args.skip_parts:
        print("\nParts of an IAGAN step on one image (the prior above), compiled, median of 40:\n")
        print(markdown_table(bench_step_parts(resolution, channels, args.precisions),
                             floatfmt={"float32 ms": ".2f", "bfloat16 ms": ".2f", "speed-up": ".2f"}))
    if args.end_to_end_budgets:
        # Clock off: these rows time whole calls.
        csgm_module.progress_bar = iagan_module.progress_bar = _quiet_progress
        table = bench_end_to_end(args.end_to_end_budgets, args.end_to_end_images, max(1, args.repeats))
        print(f"\nEnd to end, whole iagan() calls: the shipped prior (dcgan_mnist28), 4x super-resolution, "
              f"N = {args.end_to_end_images}, best of {max(1, args.repeats)} calls per mode.\n")
        print(markdown_table(table, floatfmt={"sequential s": ".2f", "batched s": ".2f",
                                              "batched / sequential images/s": ".2f",
                                              "batched, reused solver s": ".2f",
                                              "reused / sequential images/s": ".2f"}))


if __name__ == "__main__":
    main()
