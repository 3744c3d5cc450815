"""End-to-end runs of scripts/deploy_lvr.py with a small exported prior."""

import csv
import importlib.util
import json
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from extras import HAVE_BM3D
from tfinverse import data, hub
from tfinverse.models import KerasGenerator
from tfinverse.utils.cli import flag_table

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "deploy_lvr.py"
SIDE = 12  # BM3D needs images larger than 8x8
LATENT_DIM = 3


@pytest.fixture(scope="module")
def deploy():
    spec = importlib.util.spec_from_file_location("deploy_lvr_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def prior_path(tmp_path_factory):
    """A small tanh MLP with a uniform latent box, exported as a tfinverse SavedModel."""
    init = keras.initializers.GlorotUniform
    network = keras.Sequential([
        keras.Input((LATENT_DIM,)),
        keras.layers.Dense(32, activation="tanh", kernel_initializer=init(seed=0)),
        keras.layers.Dense(SIDE * SIDE, activation="tanh", kernel_initializer=init(seed=1)),
        keras.layers.Reshape((SIDE, SIDE, 1)),
    ])
    path = tmp_path_factory.mktemp("prior") / "generator"
    hub.export_generator(KerasGenerator(network, LATENT_DIM, "uniform"), str(path))
    return path


def read_csv(path):
    with open(path) as handle:
        return list(csv.DictReader(handle))


def strict_json(path):
    def refuse(token):
        raise ValueError(f"non-standard JSON token {token}")

    return json.loads(Path(path).read_text(), parse_constant=refuse)


def mean_ssim(clean, estimate):
    # The window of tfinverse.metrics.ssim: Gaussian, sigma 1.5, population covariance.
    return np.mean([
        structural_similarity(c, e, data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                              use_sample_covariance=False)
        for c, e in zip(clean.astype(np.float64), estimate.astype(np.float64))
    ])


def test_runs_end_to_end_and_the_tables_agree_with_independent_recomputations(deploy, prior_path, tmp_path):
    # Without the bm3d extra the run leaves BM3D out with a note (checked in the next test);
    # every other method is checked here either way, and BM3D too where it is installed.
    methods = ("noisy", "bm3d", "lvr", "lvr_sa") if HAVE_BM3D else ("noisy", "lvr", "lvr_sa")
    out = tmp_path / "run"
    variances = [0.5]  # BM3D costs about a second per image whatever the size: one noise level here
    deploy.main([
        "--prior", str(prior_path), "--num-images", "2", "--sa-images", "3", "--variances", *map(str, variances),
        "--recovery-iterations", "25", "--denoise-iterations", "15", "--grid-images", "1", "--seed", "3",
        "--out", str(out),
    ])
    generator = hub.load_generator(str(prior_path))
    for name in ("recovery", "denoising", "sharpness"):
        for ext in ("csv", "json", "md"):
            assert (out / f"{name}.{ext}").is_file()
    for png in ("recovery.png", "denoising_gen.png", "denoising_real.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # Recovery: one row per clipping rule; the rates are those of the smallest latent error reached.
    rows = read_csv(out / "recovery.csv")
    assert [r["clipping"] for r in rows] == ["stochastic", "projected", "none"]
    precisions = [1e-1, 1e-2, 1e-3, 1e-4, 1e-5]
    assert [c for c in rows[0] if c.startswith("success@")] == [f"success@{p:.0e}" for p in precisions]
    arrays = np.load(out / "recovery_latents.npz")
    z_true = arrays["z_true"]
    clean = np.asarray(generator(z_true))
    np.testing.assert_allclose(arrays["clean"], clean, atol=1e-6)
    run = strict_json(out / "run.json")
    for row in rows:
        mode = row["clipping"]
        z_hat = arrays[f"{mode}_z_hat"]
        final_error = np.mean((z_hat.astype(np.float64) - z_true) ** 2, axis=1)
        best = arrays[f"{mode}_best_latent_mse"]
        assert np.all(best <= final_error + 1e-7)
        for p in precisions:
            assert float(row[f"success@{p:.0e}"]) == pytest.approx(np.mean(best < p))
            last = run["recovery"]["details"][mode]["last_iterate_success_rates"][f"{p:g}"]
            assert last == pytest.approx(np.mean(final_error < p))
        assert float(row["mean_latent_mse"]) == pytest.approx(final_error.mean(), rel=1e-5)
        # The residual is measured on the tanh range [-1, 1]: 4x the [0, 1] squared error.
        x_hat = np.asarray(generator(z_hat))
        residual = 4.0 * np.mean((x_hat.astype(np.float64) - clean) ** 2, axis=(1, 2, 3))
        assert float(row["mean_residual"]) == pytest.approx(residual.mean(), rel=1e-3, abs=1e-9)
        assert float(row["psnr_db"]) == pytest.approx(
            peak_signal_noise_ratio(clean, np.clip(x_hat, 0, 1), data_range=1.0), abs=1e-3)
        if mode != "none":
            assert np.all(np.abs(z_hat) <= 1.0)
        assert float(row["noise_variance"]) == 0.0
    np.testing.assert_array_equal(arrays["targets"], arrays["clean"])

    # Denoising: one row per variance; PSNR and SSIM recomputed with skimage from the saved images.
    rows = read_csv(out / "denoising.csv")
    assert [float(r["variance"]) for r in rows] == variances
    saved = np.load(out / "denoising_arrays.npz")
    real = data.load_arrays("mnist5k", "test", image_size=SIDE, channels=1)
    np.testing.assert_allclose(saved["real_clean"], real[[0, len(real) - 1]])  # evenly spaced picks
    np.testing.assert_allclose(saved["gen_clean"], np.asarray(generator(saved["gen_z_true"])), atol=1e-6)
    sharpness = read_csv(out / "sharpness.csv")
    for k, (row, sharp) in enumerate(zip(rows, sharpness)):
        assert float(row["sigma"]) == pytest.approx(np.sqrt(variances[k]) / 2)
        vector = np.load(out / sharp["file"])["vector"]
        assert float(sharp["attribute_norm"]) == pytest.approx(np.linalg.norm(vector), rel=1e-5)
        for name in ("gen", "real"):
            clean = saved[f"{name}_clean"]
            for method in methods:
                estimate = saved[f"{name}_v{k}_{method}"]
                expected = peak_signal_noise_ratio(clean, estimate, data_range=1.0)
                assert float(row[f"psnr_{name}_{method}"]) == pytest.approx(expected, abs=1e-3)
                assert float(row[f"ssim_{name}_{method}"]) == pytest.approx(mean_ssim(clean, estimate), abs=1e-4)
            # LVR is G(z_hat); LVR-SA is G(z_hat + attribute) with the sum kept in the latent box.
            z_lvr = saved[f"{name}_v{k}_lvr_latents"]
            np.testing.assert_allclose(saved[f"{name}_v{k}_lvr"], np.asarray(generator(z_lvr)), atol=1e-5)
            shifted = np.clip(z_lvr + vector, -1.0, 1.0)
            np.testing.assert_allclose(saved[f"{name}_v{k}_lvr_sa"], np.asarray(generator(shifted)), atol=1e-5)
        assert float(sharp["psnr_different_lvr_sa"]) == pytest.approx(float(row["psnr_gen_lvr_sa"]))
    assert run["settings"]["variances"] == variances and run["notes"]

    # The output folder is never reused silently; --overwrite replaces files of the same name.
    before = (out / "recovery.csv").read_bytes()
    with pytest.raises(SystemExit, match="--overwrite"):
        deploy.main(["--prior", str(prior_path), "--experiments", "recovery", "--out", str(out)])
    assert (out / "recovery.csv").read_bytes() == before
    deploy.main(["--prior", str(prior_path), "--experiments", "recovery", "--clipping-modes", "projected",
                 "--num-images", "2", "--recovery-iterations", "3", "--recovery-noise-variance", "0.5",
                 "--out", str(out), "--overwrite"])
    rows = read_csv(out / "recovery.csv")
    assert [(r["clipping"], float(r["noise_variance"])) for r in rows] == [("projected", 0.5)]
    assert (out / "denoising.csv").is_file()  # files of other names are kept
    # Recovery from noisy copies: the residual is against the noisy targets, the PSNR against the clean images.
    arrays = np.load(out / "recovery_latents.npz")
    clean, targets = arrays["clean"], arrays["targets"]
    assert targets.min() >= 0 and targets.max() <= 1
    assert np.std(targets - clean) > 0.1  # sigma sqrt(0.5) / 2 = 0.35 before clipping
    x_hat = np.asarray(generator(arrays["projected_z_hat"]))
    residual = 4.0 * np.mean((x_hat.astype(np.float64) - targets) ** 2, axis=(1, 2, 3))
    assert float(rows[0]["mean_residual"]) == pytest.approx(residual.mean(), rel=1e-3)
    assert float(rows[0]["psnr_db"]) == pytest.approx(
        peak_signal_noise_ratio(clean, np.clip(x_hat, 0, 1), data_range=1.0), abs=1e-3)


def test_missing_bm3d_is_a_note_not_a_failure(deploy, prior_path, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "bm3d", None)  # makes "import bm3d" raise ImportError
    out = tmp_path / "run"
    deploy.main(["--prior", str(prior_path), "--experiments", "denoising", "--num-images", "1", "--sa-images", "2",
                 "--variances", "0.01", "1", "--denoise-iterations", "3", "--grid-images", "0",
                 "--out", str(out)])
    rows = read_csv(out / "denoising.csv")
    assert [float(r["variance"]) for r in rows] == [0.01, 1.0]
    assert [float(r["variance"]) for r in read_csv(out / "sharpness.csv")] == [0.01, 1.0]
    for row in rows:
        assert row["psnr_gen_bm3d"] == "" and row["psnr_real_bm3d"] == ""
        assert "bm3d package is not installed" in row["note"]
        assert float(row["psnr_gen_lvr"]) > 0
    # More noise, a worse noisy input (same clean images, PSNR recomputed from the saved arrays).
    saved = np.load(out / "denoising_arrays.npz")
    noisy_psnr = [peak_signal_noise_ratio(saved["real_clean"], saved[f"real_v{k}_noisy"], data_range=1.0)
                  for k in range(2)]
    assert noisy_psnr[0] > noisy_psnr[1] + 10
    assert not list(out.glob("*.png"))
    assert any("bm3d" in note for note in strict_json(out / "run.json")["notes"])
    assert not (out / "recovery.csv").exists()


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--experiments", "recovery", "nope"], "invalid choice: 'nope'"),
        (["--variances", "0.1", "-0.05"], "variance must be a finite number > 0"),
        (["--variances", "0"], "variance must be a finite number > 0"),
        (["--variances", "0.1", "0.1"], "each variance at most once"),
        (["--grid-variances", "0.2", "--variances", "0.1"], "not among --variances"),
        (["--num-images", "0"], "expected an integer >= 1"),
        (["--precisions", "0"], "precision must be a finite number > 0"),
    ],
)
def test_bad_flags_fail_before_any_work(deploy, tmp_path, capsys, flags, message):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as raised:
        deploy.main([*flags, "--out", str(out)])
    assert raised.value.code == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_bad_prior_fails_before_any_work(deploy, tmp_path):
    out = tmp_path / "never"
    with pytest.raises(SystemExit, match="neither a shipped prior"):
        deploy.main(["--prior", str(tmp_path / "no_such_prior"), "--out", str(out)])
    assert not out.exists()


def test_docstring_flag_table_lists_every_flag_with_its_default(deploy, capsys):
    def cells(table):
        lines = [line for line in table.strip().splitlines() if line.startswith("|")]
        return [[cell.strip() for cell in line.strip().strip("|").split(" | ")] for line in lines[2:]]

    documented = cells(deploy.__doc__[deploy.__doc__.index("| flag "):])
    assert documented == cells(flag_table(deploy.build_parser()))
    with pytest.raises(SystemExit) as raised:
        deploy.main(["--help"])
    assert raised.value.code == 0
    help_text = capsys.readouterr().out
    assert "--recovery-iterations" in help_text and "| flag " not in help_text


def test_recovery_reports_the_conditioning_of_the_prior(deploy, tmp_path):
    out = tmp_path / "untrained"
    deploy.main(["--prior", "untrained:dcgan_mnist28", "--experiments", "recovery", "--num-images", "3",
                 "--recovery-iterations", "5", "--clipping-modes", "stochastic", "--out", str(out)])
    conditioning = strict_json(out / "run.json")["recovery"]["conditioning"]
    singular = np.load(out / "recovery_latents.npz")["jacobian_singular_values"].astype(np.float64)
    assert singular.shape == (3, 100) and np.all(np.diff(singular, axis=1) <= 0)
    condition = singular[:, 0] / singular[:, -1]
    assert conditioning["median_condition_number"] == pytest.approx(np.median(condition), rel=1e-4)
    assert conditioning["max_condition_number"] == pytest.approx(condition.max(), rel=1e-4)
    small = np.median(np.mean(singular < 0.1 * singular[:, :1], axis=1))
    assert conditioning["median_fraction_of_singular_values_below_10_percent"] == pytest.approx(small)
