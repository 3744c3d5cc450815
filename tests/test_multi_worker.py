"""Training on several machines: ``--strategy multi_worker`` (MultiWorkerMirroredStrategy
configured by ``TF_CONFIG``), run as two worker processes on the loopback address.

The two-process test launches ``scripts/train_began.py`` twice, as a user would on two
machines (same command, each with its own ``TF_CONFIG``), on free ports chosen at run time,
with a bounded wait: both processes must finish. The chief (worker 0) writes ``--out``;
the other worker writes into a temporary folder (here inside its own ``TMPDIR``) that is
gone at the end. The multi-worker run must equal a one-process run of the same steps:
the global batch of 8 is split 4 + 4 over the workers, and the summed per-worker gradients
of per-replica means / 2 are the one-process gradient. Measured: about 25-35 s on 2 cores.
The fast tests below cover the strategy set-up and the chief rule without processes.
"""

import importlib.util
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
TINY = ["--image-size", "16", "--channels", "1", "--batch-size", "8", "--num-filters", "8", "--latent-dim", "8",
        "--steps", "2", "--sample-every", "0", "--checkpoint-every", "1", "--log-every", "1", "--num-samples", "4"]
TIMEOUT_SECONDS = 150


def free_ports(count):
    """Ports the OS says are free now (bound then released)."""
    sockets = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            sockets.append(s)
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def load_script(name):
    spec = importlib.util.spec_from_file_location(f"{name}_multi_worker", SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- fast checks
def test_multi_worker_needs_tf_config(monkeypatch):
    from tfinverse.training import TrainingSetupError, make_strategy

    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(TrainingSetupError, match="TF_CONFIG"):
        make_strategy("multi_worker")
    monkeypatch.setenv("TF_CONFIG", '{"task": {}}')
    with pytest.raises(TrainingSetupError, match="cluster"):
        make_strategy("multi_worker")
    with pytest.raises(TrainingSetupError, match="multi_worker"):
        make_strategy("ring")


def test_only_the_chief_writes():
    from tfinverse.training import is_chief

    def strategy(task_type, task_id, cluster):
        spec = SimpleNamespace(as_dict=lambda: cluster)
        resolver = SimpleNamespace(task_type=task_type, task_id=task_id, cluster_spec=lambda: spec)
        return SimpleNamespace(cluster_resolver=resolver)

    workers = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    assert is_chief(SimpleNamespace())  # no cluster: one process writes
    assert is_chief(strategy("worker", 0, workers)) and not is_chief(strategy("worker", 1, workers))
    with_chief = {"chief": ["127.0.0.1:0"], **workers}
    assert is_chief(strategy("chief", 0, with_chief)) and not is_chief(strategy("worker", 0, with_chief))


# ----------------------------------------------------------------------------- two processes
def test_two_workers_on_loopback_train_like_one_process(tmp_path):
    out = tmp_path / "run"
    ports = free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    processes = []
    for index in range(2):
        worker_tmp = tmp_path / f"tmp{index}"
        worker_tmp.mkdir()
        env = {
            **os.environ,
            "TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
            "TF_CPP_MIN_LOG_LEVEL": "2",
            "TMPDIR": str(worker_tmp),
            "CUDA_VISIBLE_DEVICES": "",
        }
        command = [sys.executable, str(SCRIPTS / "train_began.py"), *TINY, "--strategy", "multi_worker", "--out", str(out)]
        processes.append(subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for process in processes:
            outputs.append(process.communicate(timeout=TIMEOUT_SECONDS))
    finally:
        for process in processes:  # only the processes this test started
            if process.poll() is None:
                process.kill()
                process.communicate()
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]

    run = json.loads((out / "run.json").read_text())
    assert run["strategy"] == "multi_worker" and run["replicas"] == 2 and run["per_replica_batch_size"] == 4
    assert run["steps"] == 2 and run["optimizer_iterations"] == {"discriminator": 2, "generator": 2}
    assert sorted(p.name for p in (out / "checkpoints").glob("*.index")) == ["ckpt-1.index", "ckpt-2.index"]
    # the other worker wrote into a temporary folder, deleted at the end
    assert not any((tmp_path / "tmp1").iterdir()), list((tmp_path / "tmp1").iterdir())

    # the same two steps in one process, on the same global batches
    from tfinverse import hub

    reference_out = tmp_path / "reference"
    reference = load_script("train_began").main([*TINY, "--out", str(reference_out)])
    z = np.random.default_rng(0).uniform(-1, 1, (4, 8)).astype(np.float32)
    two_workers = hub.load_generator(str(out / "generator"))(z).numpy()
    one_process = hub.load_generator(str(reference_out / "generator"))(z).numpy()
    np.testing.assert_allclose(two_workers, one_process, atol=1e-5)
    assert run["final_losses"]["k_t"] == pytest.approx(reference["final_losses"]["k_t"], abs=1e-6)
