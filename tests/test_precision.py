"""--precision: Keras policies set and restored, bfloat16 training runs end to end, XLA warns on CPUs."""

import argparse
import importlib.util
import json
import warnings
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfinverse import hub
from tfinverse.utils import precision

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"


def test_policy_is_set_inside_and_restored_after():
    before = keras.mixed_precision.global_policy().name
    for name, policy in precision.KERAS_POLICIES.items():
        with precision.precision_policy(name) as applied:
            assert applied == policy == keras.mixed_precision.global_policy().name
            layer = keras.layers.Dense(3)
            out = layer(tf.ones((2, 4)))
            expected = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}[name]
            assert out.dtype == expected and layer.kernel.dtype == "float32"  # variables stay float32
        assert keras.mixed_precision.global_policy().name == before
    with pytest.raises(ValueError, match="precision must be one of"):
        with precision.precision_policy("int8"):
            pass
    assert keras.mixed_precision.global_policy().name == before


def test_precision_flag_choices_and_default():
    parser = precision.add_precision_flag(argparse.ArgumentParser())
    assert parser.parse_args([]).precision == "float32"
    assert parser.parse_args(["--precision", "bfloat16"]).precision == "bfloat16"
    with pytest.raises(SystemExit):
        parser.parse_args(["--precision", "float64"])


def test_xla_on_a_cpu_only_machine_warns_once(monkeypatch):
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("the warning is for machines without a GPU")
    monkeypatch.setattr(precision, "_XLA_WARNED", False)
    assert precision.warn_if_xla_on_cpu(False) is False
    with pytest.warns(RuntimeWarning, match="5-20x slower"):
        assert precision.warn_if_xla_on_cpu(True) is True
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert precision.warn_if_xla_on_cpu(True) is False  # once per process


def test_bfloat16_training_run_exports_a_float32_generator(tmp_path):
    spec = importlib.util.spec_from_file_location("train_dcgan_precision", SCRIPTS / "train_dcgan.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    out = tmp_path / "bf16"
    before = keras.mixed_precision.global_policy().name
    run = script.main(["--image-size", "16", "--channels", "1", "--batch-size", "8", "--base-filters", "8",
                       "--latent-dim", "16", "--steps", "3", "--sample-every", "0", "--checkpoint-every", "0",
                       "--num-samples", "4", "--precision", "bfloat16", "--out", str(out)])
    assert keras.mixed_precision.global_policy().name == before  # restored after the run
    assert run["dtype_policy"] == "mixed_bfloat16" and run["flags"]["precision"] == "bfloat16"
    assert all(np.isfinite(value) for value in run["final_losses"].values())
    assert json.loads((out / "run.json").read_text())["dtype_policy"] == "mixed_bfloat16"
    generator = hub.load_generator(str(out / "generator"))
    images = generator(generator.sample_latent(4, seed=1)).numpy()
    assert images.dtype == np.float32 and images.shape == (4, 16, 16, 1)
    assert np.all(np.isfinite(images)) and images.min() >= 0.0 and images.max() <= 1.0
    # --mixed-precision, the flag of earlier versions, still means float16.
    assert script.build_parser().parse_args(["--mixed-precision"]).precision == "float16"


@pytest.mark.parametrize("name", ["dcgan", "began", "pggan", "igan"])
def test_every_trainer_steps_in_bfloat16_with_float32_variables(name):
    from test_trainer_contract import build, run

    with precision.precision_policy("bfloat16"):
        trainer = build(name)
        summary, _ = run(trainer, name, 2)
    assert summary.final_step == 2
    assert all(np.isfinite(value) for value in summary.final_metrics.values()), summary.final_metrics
    assert all(variable.dtype == "float32" for variable in trainer.trainable_variables)
    computing = [layer.dtype_policy.name for layer in trainer._flatten_layers() if hasattr(layer, "dtype_policy")]
    assert "mixed_bfloat16" in computing


def test_a_shipped_prior_computes_in_bfloat16_under_the_policy_with_the_shipped_weights():
    from tfinverse.hub import SavedModelGenerator
    from tfinverse.pretrained import keras_prior, load_prior

    exported = load_prior("dcgan_mnist28")
    assert isinstance(exported, SavedModelGenerator)  # float32: the SavedModel as exported
    z = exported.sample_latent(32, seed=0)
    reference = exported(z).numpy()
    with precision.precision_policy("float32"):
        rebuilt = keras_prior("dcgan_mnist28", exported)
    # every weight found by name: the float32 network is the exported function
    np.testing.assert_allclose(rebuilt(z).numpy(), reference, atol=2e-5)
    with precision.precision_policy("bfloat16"):
        half = load_prior("dcgan_mnist28")
        duplicate = half.copy()  # IAGAN's per-image copies keep the policy
    for network in (half.network, duplicate.network):
        assert network.dtype_policy.compute_dtype == "bfloat16"
        assert {v.dtype for v in network.variables} == {"float32"}
    images = half(z).numpy()
    assert images.dtype == np.float32 and images.shape == reference.shape
    error = np.abs(images - reference)
    # 8-bit mantissas: close to the float32 images, but not the float32 computation
    assert 0 < float(error.mean()) < 0.003 and float(error.max()) < 0.05
