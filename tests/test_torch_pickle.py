"""Tests for tfinverse.utils.torch_pickle: torch.save files written here by hand, no torch.

The checkpoints are built in the two layouts torch.save uses (zip since PyTorch 1.6, the
single-stream legacy layout before it) from stand-in objects that pickle under the names
PyTorch uses (``torch._utils._rebuild_tensor_v2``, ``torch.FloatStorage``, ...), so the reader
is checked against the byte layout itself.
"""

import collections
import io
import os
import pickle
import struct
import tarfile
import zipfile

import numpy as np
import pytest

from tfinverse.utils import torch_pickle
from tfinverse.utils.torch_pickle import read_state_dict, read_torch_checkpoint

STORAGE_NAMES = {
    np.dtype("float32"): "FloatStorage",
    np.dtype("float64"): "DoubleStorage",
    np.dtype("float16"): "HalfStorage",
    np.dtype("int64"): "LongStorage",
    np.dtype("int32"): "IntStorage",
    np.dtype("uint8"): "ByteStorage",
    np.dtype("bool"): "BoolStorage",
}


class TorchGlobal:
    """A class object that the writer below pickles as the global ``module.name``."""

    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self, *args):  # the pickler insists that reduce functions be callable
        raise NotImplementedError


class _GlobalWriter(pickle._Pickler):  # the pure-Python pickler lets us emit any GLOBAL
    """Protocol-2 pickler that writes TorchGlobal stand-ins as GLOBAL opcodes and storages
    as persistent ids."""

    def __init__(self, file, persistent_ids):
        super().__init__(file, protocol=2)
        self._persistent_ids = persistent_ids

    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return self._persistent_ids(obj)
        return None

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, TorchGlobal):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode("ascii"))
            return
        super().save(obj, save_persistent_id)


class Storage:
    """A flat storage: numpy data plus the key it is written under."""

    def __init__(self, key, data, type_name=None):
        self.key, self.data = key, np.ascontiguousarray(data).ravel()
        self.type_name = type_name or STORAGE_NAMES[self.data.dtype]
        self.view = None  # legacy layout: (view_key, offset, numel)


class Tensor:
    """Pickles like a torch tensor: _rebuild_tensor_v2(storage, offset, size, stride, ...)."""

    def __init__(self, storage, offset, size, stride, rebuild="_rebuild_tensor_v2", extra=()):
        self.args = (storage, offset, tuple(size), tuple(stride))
        self.rebuild, self.extra = rebuild, extra

    def __reduce__(self):
        extra = self.extra or (False, collections.OrderedDict())
        return TorchGlobal("torch._utils", self.rebuild), self.args + tuple(extra)


class Parameter:
    def __init__(self, tensor):
        self.tensor = tensor

    def __reduce__(self):
        return TorchGlobal("torch._utils", "_rebuild_parameter"), (self.tensor, True, collections.OrderedDict())


def contiguous(storage, shape):
    shape = tuple(shape)
    strides = tuple(int(np.prod(shape[i + 1 :])) for i in range(len(shape)))
    return Tensor(storage, 0, shape, strides)


def collect_storages(obj, found):
    if isinstance(obj, Storage):
        found.setdefault(obj.key, obj)
    elif isinstance(obj, Tensor):
        collect_storages(obj.args[0], found)
    elif isinstance(obj, Parameter):
        collect_storages(obj.tensor, found)
    elif isinstance(obj, dict):
        for value in obj.values():
            collect_storages(value, found)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            collect_storages(value, found)
    return found


def write_zip_checkpoint(path, obj, archive_name="archive", byteorder=b"little"):
    """Writes ``obj`` in the torch.save zip layout."""
    buffer = io.BytesIO()
    _GlobalWriter(
        buffer,
        lambda s: ("storage", TorchGlobal("torch", s.type_name), s.key, "cpu", s.data.size if s.type_name != "UntypedStorage" else s.data.nbytes),
    ).dump(obj)
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{archive_name}/data.pkl", buffer.getvalue())
        for key, storage in collect_storages(obj, {}).items():
            archive.writestr(f"{archive_name}/data/{key}", storage_bytes(storage))
        archive.writestr(f"{archive_name}/version", b"3\n")
        if byteorder is not None:
            archive.writestr(f"{archive_name}/byteorder", byteorder)


def storage_bytes(storage):
    if storage.type_name == "BFloat16Storage":
        return (storage.data.astype("<f4").view("<u4") >> 16).astype("<u2").tobytes()
    return storage.data.astype(storage.data.dtype.newbyteorder("<")).tobytes()


def write_legacy_checkpoint(path, obj):
    """Writes ``obj`` in the single-stream layout of torch.save before PyTorch 1.6."""
    storages = collect_storages(obj, {})

    def pid(s):
        root_numel = s.data.size
        return ("storage", TorchGlobal("torch", s.type_name), s.key, "cpu", root_numel, s.view)

    with open(path, "wb") as f:
        for header in (0x1950A86A20F9469CFC6C, 1001, {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 8}}):
            pickle.dump(header, f, protocol=2)
        _GlobalWriter(f, pid).dump(obj)
        keys = sorted(storages)
        pickle.dump(keys, f, protocol=2)
        for key in keys:
            f.write(struct.pack("<q", storages[key].data.size))
            f.write(storage_bytes(storages[key]))


def test_zip_round_trip_of_many_dtypes_keeps_values_and_order(tmp_path):
    rng = np.random.default_rng(0)
    arrays = collections.OrderedDict(
        [
            ("conv.weight", rng.standard_normal((4, 3, 2, 2)).astype(np.float32)),
            ("conv.bias", rng.standard_normal(4).astype(np.float64)),
            ("half", rng.standard_normal((2, 5)).astype(np.float16)),
            ("steps", np.arange(-3, 4, dtype=np.int64)),
            ("ints", rng.integers(-100, 100, (3, 3)).astype(np.int32)),
            ("mask", rng.random(7) > 0.5),
            ("pixels", rng.integers(0, 256, (2, 2, 3)).astype(np.uint8)),
            ("scalar", np.array(2.5, dtype=np.float32)),
        ]
    )
    state = collections.OrderedDict(
        (name, contiguous(Storage(str(i), a), a.shape)) for i, (name, a) in enumerate(arrays.items())
    )
    state._metadata = collections.OrderedDict([("", {"version": 1}), ("conv", {"version": 1})])  # as nn.Module.state_dict() sets
    path = tmp_path / "model.pth"
    write_zip_checkpoint(path, state)
    loaded = read_torch_checkpoint(path)
    assert isinstance(loaded, collections.OrderedDict)
    assert list(loaded) == list(arrays)
    assert loaded._metadata == {"": {"version": 1}, "conv": {"version": 1}}
    for name, expected in arrays.items():
        assert loaded[name].dtype == expected.dtype, name
        assert loaded[name].shape == expected.shape, name
        np.testing.assert_array_equal(loaded[name], expected)
        assert loaded[name].flags.c_contiguous and loaded[name].flags.writeable


def test_strided_and_offset_views_share_one_storage(tmp_path):
    base = np.arange(24, dtype=np.float32) * 0.5 - 3.0
    storage = Storage("0", base)
    state = {
        # the transpose of a 3x4 matrix: size (4, 3), stride (1, 4)
        "transposed": Tensor(storage, 0, (4, 3), (1, 4)),
        # a 2x2 window starting at element 5, rows 6 apart, columns 2 apart
        "window": Tensor(storage, 5, (2, 2), (6, 2)),
        # a broadcast row (stride 0), as expand() produces
        "expanded": Tensor(storage, 20, (3, 4), (0, 1)),
        "whole": Tensor(storage, 0, (2, 3, 4), (12, 4, 1)),
    }
    path = tmp_path / "views.pth"
    write_zip_checkpoint(path, state)
    loaded = read_torch_checkpoint(path)
    np.testing.assert_array_equal(loaded["transposed"], base[:12].reshape(3, 4).T)
    window = np.array([[base[5 + 6 * i + 2 * j] for j in range(2)] for i in range(2)])
    np.testing.assert_array_equal(loaded["window"], window)
    np.testing.assert_array_equal(loaded["expanded"], np.tile(base[20:24], (3, 1)))
    np.testing.assert_array_equal(loaded["whole"], base.reshape(2, 3, 4))
    # each tensor owns its data: writing to one leaves the others alone
    loaded["whole"][0, 0, 0] = 100.0
    assert loaded["transposed"][0, 0] == base[0]


def test_bfloat16_is_widened_exactly_and_parameters_unwrap(tmp_path):
    values = np.array([1.5, -2.0, 0.15625, 2.0**127, -0.0, 7.0], dtype=np.float32)  # all exact in bfloat16
    state = {
        "bf16": contiguous(Storage("a", values, "BFloat16Storage"), (2, 3)),
        "param": Parameter(contiguous(Storage("b", np.arange(6, dtype=np.float32)), (6,))),
    }
    path = tmp_path / "bf16.pth"
    write_zip_checkpoint(path, state)
    loaded = read_torch_checkpoint(path)
    assert loaded["bf16"].dtype == np.float32
    np.testing.assert_array_equal(loaded["bf16"], values.reshape(2, 3))
    np.testing.assert_array_equal(loaded["param"], np.arange(6, dtype=np.float32))


def test_rebuild_tensor_v3_views_untyped_bytes_as_the_named_dtype(tmp_path):
    values = np.array([0, 1, 65535, 40000], dtype=np.uint16)
    untyped = Storage("0", np.frombuffer(values.astype("<u2").tobytes(), dtype=np.uint8), "UntypedStorage")
    tensor = Tensor(untyped, 1, (3,), (1,), rebuild="_rebuild_tensor_v3",
                    extra=(False, collections.OrderedDict(), TorchGlobal("torch", "uint16")))
    path = tmp_path / "v3.pth"
    write_zip_checkpoint(path, {"u16": tensor})
    loaded = read_torch_checkpoint(path)
    assert loaded["u16"].dtype == np.uint16
    np.testing.assert_array_equal(loaded["u16"], values[1:])


def test_read_state_dict_finds_the_nested_dict_or_asks_for_a_key(tmp_path):
    weights = np.ones((2, 2), dtype=np.float32)
    generator = collections.OrderedDict(w=contiguous(Storage("0", weights), (2, 2)))
    critic = collections.OrderedDict(v=contiguous(Storage("1", 2 * weights), (2, 2)))
    single = tmp_path / "single.pth"
    write_zip_checkpoint(single, {"epoch": 12, "args": ["--lr", "0.1"], "state_dict": generator})
    assert read_torch_checkpoint(single)["epoch"] == 12
    state = read_state_dict(single)
    assert list(state) == ["w"]
    np.testing.assert_array_equal(state["w"], weights)

    both = tmp_path / "both.pth"
    write_zip_checkpoint(both, {"G": generator, "D": critic})
    with pytest.raises(ValueError, match="key="):
        read_state_dict(both)
    np.testing.assert_array_equal(read_state_dict(both, key="D")["v"], 2 * weights)
    with pytest.raises(KeyError, match="'E' is not in checkpoint"):
        read_state_dict(both, key="E")


class RunsShellCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


class EvaluatesCode:
    def __init__(self, code):
        self.code = code

    def __reduce__(self):
        return eval, (self.code,)


@pytest.mark.parametrize("layout", ["zip", "legacy"])
def test_hostile_globals_are_refused_and_never_run(tmp_path, layout):
    marker = tmp_path / "pwned"
    weights = contiguous(Storage("0", np.zeros(3, dtype=np.float32)), (3,))
    write = write_zip_checkpoint if layout == "zip" else write_legacy_checkpoint

    shell = tmp_path / f"shell_{layout}.pth"
    write(shell, {"w": weights, "payload": RunsShellCommand(f"touch {marker}")})
    with pytest.raises(pickle.UnpicklingError, match=rf"'{os.system.__module__}\.system'"):
        read_torch_checkpoint(shell)

    code = tmp_path / f"eval_{layout}.pth"
    write(code, {"w": weights, "payload": EvaluatesCode(f"open({str(marker)!r}, 'w')")})
    with pytest.raises(pickle.UnpicklingError, match=r"'builtins\.eval'"):
        read_state_dict(code)
    assert not marker.exists()


def test_a_pickle_cannot_alter_the_shared_stand_ins(tmp_path):
    # GLOBAL torch.FloatStorage, then BUILD {"dtype": "f2"} on it, written opcode by opcode
    def unicode(text):
        return pickle.BINUNICODE + struct.pack("<I", len(text)) + text.encode()

    payload = (
        pickle.PROTO + b"\x02" + pickle.GLOBAL + b"torch\nFloatStorage\n" + pickle.EMPTY_DICT
        + unicode("dtype") + unicode("f2") + pickle.SETITEM + pickle.BUILD + pickle.STOP
    )
    path = tmp_path / "poison.pth"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
    with pytest.raises(pickle.UnpicklingError):
        read_torch_checkpoint(path)
    assert torch_pickle.ALLOWED_GLOBALS[("torch", "FloatStorage")].dtype == "f4"
    clean = tmp_path / "clean.pth"
    write_zip_checkpoint(clean, {"w": contiguous(Storage("0", np.arange(3, dtype=np.float32)), (3,))})
    np.testing.assert_array_equal(read_torch_checkpoint(clean)["w"], [0.0, 1.0, 2.0])


def test_views_reaching_outside_their_storage_are_refused(tmp_path):
    storage = Storage("0", np.arange(6, dtype=np.float32))
    path = tmp_path / "oob.pth"
    write_zip_checkpoint(path, {"w": Tensor(storage, 2, (2, 3), (3, 1))})  # last element 2+3+2 = 7 > 5
    with pytest.raises(pickle.UnpicklingError, match="reads element 7 of a storage with 6 elements"):
        read_torch_checkpoint(path)
    negative = tmp_path / "neg.pth"
    write_zip_checkpoint(negative, {"w": Tensor(storage, 0, (2,), (-1,))})
    with pytest.raises(pickle.UnpicklingError, match="negative tensor size or stride"):
        read_torch_checkpoint(negative)


def test_storage_whose_bytes_do_not_match_its_declared_size_is_refused(tmp_path):
    path = tmp_path / "short.pth"
    write_zip_checkpoint(path, {"w": contiguous(Storage("0", np.zeros(4, dtype=np.float32)), (4,))})
    with zipfile.ZipFile(path) as src:
        records = {n: src.read(n) for n in src.namelist()}
    records["archive/data/0"] = records["archive/data/0"][:-4]
    with zipfile.ZipFile(path, "w") as dst:
        for name, data in records.items():
            dst.writestr(name, data)
    with pytest.raises(pickle.UnpicklingError, match="holds 12 bytes, expected 16"):
        read_torch_checkpoint(path)


def test_legacy_layout_round_trip_with_a_storage_view(tmp_path):
    rng = np.random.default_rng(1)
    weight = rng.standard_normal((3, 2, 2, 2)).astype(np.float32)
    bias = rng.standard_normal(5).astype(np.float64)
    counts = np.arange(10, dtype=np.int64)
    view = Storage("10", counts)
    view.view = ("10_view", 4, 6)  # a storage view of elements 4..9 of root "10"
    state = collections.OrderedDict(
        [
            ("weight", contiguous(Storage("139", weight), weight.shape)),
            ("bias", Tensor(Storage("140", bias), 1, (2, 2), (2, 1))),
            ("tail", Tensor(view, 1, (3,), (2,))),  # elements 1, 3, 5 of the view
        ]
    )
    path = tmp_path / "legacy.pth"
    write_legacy_checkpoint(path, state)
    loaded = read_torch_checkpoint(path)
    assert list(loaded) == ["weight", "bias", "tail"]
    np.testing.assert_array_equal(loaded["weight"], weight)
    np.testing.assert_array_equal(loaded["bias"], bias[1:5].reshape(2, 2))
    np.testing.assert_array_equal(loaded["tail"], counts[4:][[1, 3, 5]])


def test_unsupported_files_are_refused_clearly(tmp_path):
    with pytest.raises(FileNotFoundError, match="no PyTorch checkpoint"):
        read_torch_checkpoint(tmp_path / "missing.pth")

    old = tmp_path / "old.pth"
    member = tmp_path / "pickle"
    member.write_bytes(b"x")
    with tarfile.open(old, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(member, arcname="pickle")
    with pytest.raises(ValueError, match="PyTorch < 0.4"):
        read_torch_checkpoint(old)

    not_torch = tmp_path / "other.zip"
    with zipfile.ZipFile(not_torch, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(ValueError, match="not a torch.save checkpoint"):
        read_torch_checkpoint(not_torch)

    plain = tmp_path / "plain.pkl"
    plain.write_bytes(pickle.dumps({"a": 1}, protocol=2))
    with pytest.raises(ValueError, match="bad magic number"):
        read_torch_checkpoint(plain)

    big = tmp_path / "big.pth"
    write_zip_checkpoint(big, {"w": contiguous(Storage("0", np.zeros(2, dtype=np.float32)), (2,))}, byteorder=b"big")
    with pytest.raises(ValueError, match="only little-endian"):
        read_torch_checkpoint(big)


def test_allowed_globals_are_only_tensor_rebuild_entries():
    modules = {module for module, _ in torch_pickle.ALLOWED_GLOBALS}
    assert modules == {"torch", "torch._utils", "collections"}
    names = {f"{m}.{n}" for m, n in torch_pickle.ALLOWED_GLOBALS}
    assert "torch._utils._rebuild_tensor_v2" in names and "torch.FloatStorage" in names
    assert "collections.OrderedDict" in names
    unpickler = torch_pickle.RestrictedTorchUnpickler(io.BytesIO(b""), load_storage=None)
    for module, name in [("builtins", "getattr"), ("torch", "load"), ("torch.nn", "Module"), ("collections", "namedtuple")]:
        with pytest.raises(pickle.UnpicklingError, match=rf"'{module}\.{name}'"):
            unpickler.find_class(module, name)
