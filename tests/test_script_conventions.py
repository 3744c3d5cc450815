"""What every script promises a user, checked on the real entry points in fresh processes.

Parametrised over every file in ``scripts/``: ``--help`` answers without loading TensorFlow;
the run options ``--quiet``, ``--verbose`` and ``--debug`` exist; a data error is one
``error:`` line with exit status 2 and none of TensorFlow's start-up log; ``--debug`` gives
the traceback instead.
"""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPTS_DIR = Path(__file__).resolve().parents[1] / "scripts"
SCRIPTS = sorted(path.stem for path in SCRIPTS_DIR.glob("*.py"))

# Lines TensorFlow's C++ libraries print at start-up (oneDNN, CPU features, cuInit on machines
# without a GPU); the scripts hide them unless --verbose.
TF_LOG_MARKERS = ("I0000 ", "E0000 ", "W0000 ", "WARNING: All log messages before absl", "cuInit")

# A user error that each script can only detect once it has loaded TensorFlow and its data
# layer: (flags, text the one-line message must contain).
DATA_ERRORS = {
    "degrade": (["--images", "/nonexistent"], "/nonexistent does not exist"),
    "deploy_iagan": (["--images", "/nonexistent"], "/nonexistent does not exist"),
    "deploy_lvr": (["--experiments", "denoising", "--images", "/nonexistent"], "/nonexistent does not exist"),
    "sweep_compression": (["--images", "/nonexistent"], "/nonexistent does not exist"),
    "misaligned_sr": (["--images", "/nonexistent"], "/nonexistent does not exist"),
    "train_dcgan": (["--dataset", "/nonexistent", "--steps", "1"], "/nonexistent does not exist"),
    "train_began": (["--dataset", "/nonexistent", "--steps", "1"], "/nonexistent does not exist"),
    "train_pggan": (["--dataset", "/nonexistent", "--steps", "1"], "/nonexistent does not exist"),
    "train_igan": (["--task", "denoising", "--task-option", "bogus=1"], "bogus"),
    "deploy_igan": (["--task", "denoising", "--saved-model", "/nonexistent"], "/nonexistent"),
    "train_classifier": (["--out", "classifier.txt"], "--out must end in .keras"),
    "train_ambient_vae_gan": (["--dataset", "celeba", "--data-dir", "/nonexistent", "--steps", "1"], "/nonexistent"),
    "deploy_ambient_vae_gan": (["--ambient", "/nonexistent"], "/nonexistent does not exist"),
    "train_lir": (["--noisy-dir", "/nonexistent", "--clean-dir", "/nonexistent_clean", "--steps", "1"], "/nonexistent"),
    "deploy_lir": (["--model", "/nonexistent"], "/nonexistent does not exist"),
    "plot_curves": (["--runs", "/nonexistent"], "/nonexistent does not exist"),
}


def test_every_script_has_a_data_error_case():
    assert sorted(DATA_ERRORS) == SCRIPTS


def load(name):
    spec = importlib.util.spec_from_file_location(f"{name}_conventions", SCRIPTS_DIR / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(name, *flags, cwd):
    return subprocess.run([sys.executable, str(SCRIPTS_DIR / f"{name}.py"), *flags], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_answers_without_loading_tensorflow(name):
    probe = (
        "import runpy, sys\n"
        f"sys.argv = [{str(SCRIPTS_DIR / (name + '.py'))!r}, '--help']\n"
        "try:\n"
        "    runpy.run_path(sys.argv[0], run_name='__main__')\n"
        "except SystemExit as exit:\n"
        "    code = exit.code\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules, code, file=sys.stderr)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("usage:")
    assert result.stderr.strip().splitlines()[-1] == "False False 0"


@pytest.mark.parametrize("name", SCRIPTS)
def test_run_options_exist(name):
    options = {option for action in load(name).build_parser()._actions for option in action.option_strings}
    assert {"--quiet", "--verbose", "--debug"} <= options


@pytest.mark.parametrize("name", SCRIPTS)
def test_a_data_error_is_one_line_with_status_2_and_no_tensorflow_log(name, tmp_path):
    flags, expected = DATA_ERRORS[name]
    out = ["--out", str(tmp_path / ("classifier.txt" if name == "train_classifier" else "run"))]
    result = run(name, *flags, *([] if name == "train_classifier" else out), cwd=tmp_path)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) >= 1 and lines[0].startswith("error: ") and expected in lines[0], lines
    assert all(line.startswith("  ") for line in lines[1:]), lines  # details, if any, are indented under it
    assert "Traceback" not in result.stderr
    assert not any(marker in result.stderr for marker in TF_LOG_MARKERS), result.stderr
    assert not (tmp_path / "run").exists()


def test_debug_shows_the_traceback(tmp_path):
    result = run("deploy_iagan", "--images", "/nonexistent", "--out", str(tmp_path / "run"), "--debug", cwd=tmp_path)
    assert result.returncode == 1
    assert "Traceback (most recent call last)" in result.stderr and "/nonexistent does not exist" in result.stderr


def test_a_corrupt_image_is_named_on_one_line_without_decoder_noise(tmp_path):
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(b"\x89PNG\r\n\x1a\n not really a PNG")  # OpenCV logs two lines of its own for this
    result = run("degrade", "--images", str(corrupt), "--out", str(tmp_path / "run"), cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"error: cannot decode image file {corrupt}: not a readable PNG, JPEG or BMP image; replace or remove it"
    ]
