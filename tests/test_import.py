"""`import tfinverse` (and its core submodules) must not pull in the heavy optional libraries.

Keras 3 itself imports matplotlib, scikit-learn and PIL when they are installed, so those
are judged against what ``import tensorflow`` alone loads; the others must never load.
"""

import json
import subprocess
import sys

NEVER = ("librosa", "skimage", "tensorflow_datasets", "bm3d", "mir_eval", "mlxtend", "captcha", "soundfile")
NOT_BEYOND_TENSORFLOW = ("matplotlib", "sklearn", "PIL", "pandas", "scipy", "cv2")


def _top_level_modules_after(statement: str) -> set:
    code = f"{statement}\nimport sys, json\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {m.split(".")[0] for m in json.loads(out.stdout.strip().splitlines()[-1])}


def test_core_imports_are_light():
    baseline = _top_level_modules_after("import tensorflow")
    for statement in (
        "import tfinverse",
        "import tfinverse.operators, tfinverse.metrics, tfinverse.data, tfinverse.utils",
    ):
        loaded = _top_level_modules_after(statement)
        assert not loaded & set(NEVER), f"{statement!r} imported {sorted(loaded & set(NEVER))}"
        extra = (loaded - baseline) & set(NOT_BEYOND_TENSORFLOW)
        assert not extra, f"{statement!r} imported {sorted(extra)} beyond what tensorflow loads"
