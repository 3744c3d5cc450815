"""tfinverse's compiled CSGM and IAGAN steps against the same steps in PyTorch, side by side.

The same 64x64x3 DCGAN generator (tfinverse's ``DCGANGenerator``; its weights copied into a
PyTorch module and the outputs checked equal before timing), the same loss
``sum ||y - A G(z)||^2`` with ``A`` the identity on images mapped to [0, 1], and the same
Adam (PyTorch's form; ``fused=True`` in PyTorch where the build has it). Rows:

- CSGM step: Adam on the latents of a batch (default 64), generator frozen, inference mode.
- IAGAN step, N = 1 and N = 8: joint Adam on each image's latent and its own copy of the
  weights (tfinverse: one compiled step for all copies; PyTorch: a loop over the copies).

Contenders: tfinverse (``tf.function``), PyTorch eager, and ``torch.compile`` of the forward
and loss (where a C++ compiler is found; ``--skip-compile`` leaves it out). They run
interleaved: each round runs every contender for ``--steps`` steps, and the table reports
each contender's median step time over the rounds, so load changes during the run hit all of
them alike. Threads: PyTorch gets as many as TensorFlow's intra-op pool (the CPU count).
TensorFlow's oneDNN kernels matter here: TensorFlow turns them on by default only on some
Intel CPUs; run with ``TF_ENABLE_ONEDNN_OPTS=1`` and without to compare (the header says
which).

Needs PyTorch, which tfinverse never imports: ``pip install -e ".[bench]"`` (for a CPU-only
build, ``pip install torch --index-url https://download.pytorch.org/whl/cpu``)::

    python benchmarks/bench_vs_torch.py
    python benchmarks/bench_vs_torch.py --rounds 3 --steps 5 --skip-compile
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import tfinverse.operators as ops  # noqa: E402
from tfinverse.inversion.csgm import ADAM_BETA1, ADAM_BETA2, ADAM_EPSILON, csgm  # noqa: E402
from tfinverse.inversion.iagan import clear_solver_cache, iagan  # noqa: E402
from tfinverse.models import DCGANGenerator  # noqa: E402
from tfinverse.utils.results import markdown_table  # noqa: E402
from tfinverse.utils.timing import install_step_clock  # noqa: E402

CSGM_LR = 0.1
IAGAN_LR = 1e-4


def import_torch():
    try:
        import torch
    except ImportError:
        sys.exit("bench_vs_torch.py needs PyTorch: pip install -e \".[bench]\" "
                 "(CPU build: pip install torch --index-url https://download.pytorch.org/whl/cpu)")
    return torch


# ----------------------------------------------------------------------------- the PyTorch twin
def torch_twin(generator, torch):
    """A PyTorch module computing ``generator``'s native output (NCHW) with its current weights."""
    nn = torch.nn
    layers = {layer.name: layer for layer in generator.network.layers}
    dense = layers["project"]
    kernel, bias = (v.numpy() for v in dense.weights)

    class Twin(nn.Module):
        def __init__(self):
            super().__init__()
            self.project = nn.Linear(kernel.shape[0], kernel.shape[1])
            self.shape = tuple(layers["reshape"].target_shape)  # (h, w, c) as Keras reshapes
            # Keras order: bn0, deconv1, bn1, ..., bn{n-1}, deconv_out; each deconv follows a bn.
            count = sum(1 for name in layers if name.startswith("bn"))
            self.norms = nn.ModuleList(
                nn.BatchNorm2d(layers[f"bn{i}"].weights[0].shape[0], eps=layers[f"bn{i}"].epsilon) for i in range(count)
            )
            self.blocks = nn.ModuleList(_deconv(layers[name], nn) for name in deconv_names(layers))

        def forward(self, z):
            h = self.project(z).reshape((-1,) + self.shape).permute(0, 3, 1, 2)
            for norm, block in zip(self.norms, self.blocks):
                h = block.crop(block(torch.relu(norm(h))))
            return torch.tanh(h)

    twin = Twin()
    with torch.no_grad():
        twin.project.weight.copy_(torch.from_numpy(kernel.T.copy()))
        twin.project.bias.copy_(torch.from_numpy(bias))
        for index, norm in enumerate(twin.norms):
            gamma, beta, mean, variance = (v.numpy() for v in layers[f"bn{index}"].weights)
            norm.weight.copy_(torch.from_numpy(gamma))
            norm.bias.copy_(torch.from_numpy(beta))
            norm.running_mean.copy_(torch.from_numpy(mean))
            norm.running_var.copy_(torch.from_numpy(variance))
        for name, block in zip(deconv_names(layers), twin.blocks):
            w, b = (v.numpy() for v in layers[name].weights)
            # Keras (kh, kw, out, in) -> PyTorch (in, out, kh, kw); both correlate, no flip.
            block.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1))))
            block.bias.copy_(torch.from_numpy(b))
    return twin.eval()


def deconv_names(layers):
    count = sum(1 for name in layers if name.startswith("bn"))
    return [f"deconv{i}" for i in range(1, count)] + ["deconv_out"]


def _deconv(layer, nn):
    """PyTorch's transposed convolution equal to a Keras ``Conv2DTranspose(padding="same")``."""
    kernel = layer.kernel_size[0]
    stride = layer.strides[0]
    # Keras' "same" pads the equivalent forward convolution by (k - s) // 2 before and the rest
    # after; PyTorch pads symmetrically, so pad by the smaller part and crop the extra rows.
    before = (kernel - stride) // 2
    module = nn.ConvTranspose2d(layer.kernel.shape[3], layer.filters, kernel, stride=stride, padding=before)
    extra = (kernel - stride) - 2 * before

    def crop(x):
        return x[:, :, : x.shape[2] - extra, : x.shape[3] - extra] if extra > 0 else x

    module.crop = crop
    return module


def check_twin(generator, twin, torch) -> float:
    """Largest difference between the two generators' outputs on the same latents, relative to
    the largest output."""
    z = generator.sample_latent(4, seed=11)
    expected = generator.native(tf.constant(z)).numpy()
    with torch.no_grad():
        got = twin(torch.from_numpy(z)).permute(0, 2, 3, 1).numpy()
    scale = float(np.max(np.abs(expected)))
    if not scale > 0:
        return float("inf")  # an all-zero output proves nothing
    return float(np.max(np.abs(expected - got)) / scale)


# ----------------------------------------------------------------------------- PyTorch steps
def make_adam(torch, params, lr):
    kwargs = dict(lr=lr, betas=(ADAM_BETA1, ADAM_BETA2), eps=ADAM_EPSILON)
    try:
        return torch.optim.Adam(params, fused=True, **kwargs)
    except (RuntimeError, TypeError):
        return torch.optim.Adam(params, **kwargs)


def torch_loss_fn(twin, torch, compiled: bool):
    from torch.func import functional_call

    def loss(params, buffers, z, y):
        native = functional_call(twin, (params, buffers), (z,))
        x = torch.clamp((native + 1.0) * 0.5, 0.0, 1.0)
        return torch.sum(torch.square(y - x))

    return torch.compile(loss) if compiled else loss


class TorchCSGM:
    def __init__(self, twin, torch, batch, compiled):
        self.torch = torch
        self.params = {k: v.detach() for k, v in twin.named_parameters()}
        self.buffers = dict(twin.named_buffers())
        self.loss = torch_loss_fn(twin, torch, compiled)
        rng = np.random.default_rng(1)
        self.z = torch.tensor(rng.uniform(-1, 1, (batch, 100)).astype(np.float32), requires_grad=True)
        self.y = torch.from_numpy(rng.uniform(0, 1, (batch, 3, 64, 64)).astype(np.float32))
        self.optimizer = make_adam(torch, [self.z], CSGM_LR)

    def step(self):
        self.optimizer.zero_grad(set_to_none=True)
        value = self.loss(self.params, self.buffers, self.z, self.y)
        value.backward()
        self.optimizer.step()
        return value


class TorchIAGAN:
    def __init__(self, twin, torch, images, compiled):
        self.torch = torch
        self.buffers = dict(twin.named_buffers())
        self.loss = torch_loss_fn(twin, torch, compiled)
        rng = np.random.default_rng(2)
        self.copies = []
        for _ in range(images):
            params = {k: v.detach().clone().requires_grad_(True) for k, v in twin.named_parameters()}
            z = torch.tensor(rng.uniform(-1, 1, (1, 100)).astype(np.float32), requires_grad=True)
            y = torch.from_numpy(rng.uniform(0, 1, (1, 3, 64, 64)).astype(np.float32))
            self.copies.append((params, z, y, make_adam(torch, list(params.values()) + [z], IAGAN_LR)))

    def step(self):
        for params, z, y, optimizer in self.copies:
            optimizer.zero_grad(set_to_none=True)
            self.loss(params, self.buffers, z, y).backward()
            optimizer.step()


def time_torch(runner, steps: int) -> float:
    """Median seconds per step of ``steps`` steps (after one untimed step)."""
    runner.step()
    gaps = []
    for _ in range(steps):
        start = time.perf_counter()
        runner.step()
        gaps.append(time.perf_counter() - start)
    return statistics.median(gaps)


# ----------------------------------------------------------------------------- tfinverse steps
class TFCSGM:
    def __init__(self, generator, batch, clock):
        self.generator, self.clock = generator, clock
        self.operator = ops.get("identity", image_shape=generator.output_shape)
        self.y = np.random.default_rng(1).uniform(0, 1, (batch,) + generator.output_shape).astype(np.float32)

    def time(self, steps):
        csgm(self.generator, self.operator, self.y, iterations=steps + 1, restarts=1, learning_rate=CSGM_LR, seed=0)
        return self.clock.gaps()[0]


class TFIAGAN:
    def __init__(self, generator, images, clock):
        self.generator, self.clock = generator, clock
        self.operator = ops.get("identity", image_shape=generator.output_shape)
        rng = np.random.default_rng(2)
        self.y = rng.uniform(0, 1, (images,) + generator.output_shape).astype(np.float32)
        self.z = generator.sample_latent(images, seed=3)

    def time(self, steps):
        # The solver is kept between rounds (reuse_solver): no trace after the first round.
        iagan(self.generator, self.operator, self.y, z_init=self.z, iterations=steps + 1, lr_z=IAGAN_LR,
              lr_theta=IAGAN_LR, batched=True)
        return self.clock.gaps()[0]


def compiler_available() -> bool:
    return any(shutil.which(name) for name in ("g++", "c++", "clang++", "cl"))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csgm-batch", type=int, default=64, help="latents per CSGM step")
    parser.add_argument("--iagan-images", type=int, nargs="+", default=[1, 8], help="IAGAN images per step")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (the median is reported)")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per contender and round")
    parser.add_argument("--skip-compile", action="store_true", help="leave out torch.compile")
    args = parser.parse_args(argv)
    torch = import_torch()
    torch.set_num_threads(os.cpu_count() or 1)
    compile_ok = not args.skip_compile and compiler_available()

    generator = DCGANGenerator(64, 3, seed=0)
    twin = torch_twin(generator, torch)
    difference = check_twin(generator, twin, torch)
    if difference > 1e-4:
        sys.exit(f"the PyTorch twin differs from the generator by {difference:.2e}: not the same network")
    clock = install_step_clock()
    clear_solver_cache()

    configs = [("CSGM step", args.csgm_batch,
                TFCSGM(generator, args.csgm_batch, clock),
                lambda compiled: TorchCSGM(twin, torch, args.csgm_batch, compiled))]
    for images in args.iagan_images:
        configs.append(("IAGAN step", images, TFIAGAN(generator, images, clock),
                        lambda compiled, images=images: TorchIAGAN(twin, torch, images, compiled)))
    rows = []
    started = time.perf_counter()
    for name, batch, tf_runner, make_torch in configs:
        contenders = {"tfinverse tf.function": tf_runner.time, "PyTorch eager": None}
        runners = {"PyTorch eager": make_torch(False)}
        if compile_ok:
            runners["torch.compile"] = make_torch(True)
            contenders["torch.compile"] = None
        for label, runner in runners.items():
            contenders[label] = lambda steps, runner=runner: time_torch(runner, steps)
        contenders["tfinverse tf.function"](2)  # trace before the timed rounds
        for label in runners:
            runners[label].step()  # torch.compile compiles here
        times = {label: [] for label in contenders}
        for _ in range(max(1, args.rounds)):
            for label, run in contenders.items():
                times[label].append(run(max(2, args.steps)))
        medians = {label: 1000 * statistics.median(values) for label, values in times.items()}
        row = {"step": name, "batch": batch}
        for label, value in medians.items():
            row[f"{label} ms"] = value
        for label in runners:
            row[f"{label} / tfinverse"] = medians[label] / medians["tfinverse tf.function"]
        rows.append(row)
        print(f"  {name} at {batch}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in medians.items()),
              file=sys.stderr, flush=True)
    floatfmt = {key: (".2f" if "/" in key else ".1f") for row in rows for key in row if key not in ("step", "batch")}
    print(f"DCGAN 64x64x3 ({sum(p.numel() for p in twin.parameters()) / 1e6:.2f} M parameters), identity "
          f"operator; TensorFlow {tf.__version__}, PyTorch {torch.__version__} ({torch.get_num_threads()} "
          f"threads), {os.cpu_count()} CPUs, TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}; outputs equal to {difference:.0e} (relative); "
          f"{'torch.compile included' if compile_ok else 'no torch.compile'}; median of {args.rounds} "
          f"interleaved rounds of {args.steps} steps; {time.perf_counter() - started:.0f} s in all. "
          "A ratio above 1: tfinverse is faster.\n")
    print(markdown_table(rows, floatfmt=floatfmt))


if __name__ == "__main__":
    main()
