"""Lazy package faces: names resolve on first use, and the light ones load no TensorFlow."""

import subprocess
import sys

from tfinverse.utils.lazy import lazy_attributes


def test_names_resolve_from_their_module_once_and_are_listed(monkeypatch):
    import types

    package = types.ModuleType("fake_package")
    monkeypatch.setitem(sys.modules, "fake_package", package)
    getattr_, dir_ = lazy_attributes("fake_package", {"sqrt": "math", "dumps": "json"}, ["extra"])
    import json
    import math

    assert getattr_("sqrt") is math.sqrt and package.sqrt is math.sqrt  # cached in the namespace
    assert getattr_("dumps") is json.dumps
    assert dir_() == ["dumps", "extra", "sqrt"]
    try:
        getattr_("nope")
    except AttributeError as error:
        assert "fake_package" in str(error) and "nope" in str(error)
    else:
        raise AssertionError("an unknown name must raise AttributeError")


def test_light_faces_load_no_tensorflow():
    probe = (
        "import sys\n"
        "import tfinverse.tasks, tfinverse.evaluation, tfinverse.training, tfinverse.training.flags\n"
        "import tfinverse.tasks.iagan, tfinverse.tasks.lvr, tfinverse.tasks.igan, tfinverse.errors\n"
        "print('tensorflow' in sys.modules, 'keras' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["False", "False"], result.stderr
