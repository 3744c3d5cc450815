"""Reads PyTorch ``.pth`` checkpoints into numpy arrays without importing torch.

A ``torch.save`` file is a pickle whose tensors point at raw storages kept beside it. Two
layouts are read:

* the zip archive written since PyTorch 1.6: ``<archive>/data.pkl`` (the pickle),
  ``<archive>/data/<key>`` (one raw storage per key), ``<archive>/version`` and, since 2.1,
  ``<archive>/byteorder``;
* the earlier single-stream ("legacy") layout of PyTorch 0.4-1.5: a pickled magic number,
  protocol version and system-information dict, then the pickle itself, then a pickled list of
  storage keys, then each storage as a little-endian int64 element count followed by its raw
  bytes.

The still older tar layout (PyTorch < 0.4) and archives marked big-endian are refused with a
clear message; storages are read as little-endian, as every PyTorch writes them by default.

Unpickling is restricted: :class:`RestrictedTorchUnpickler` resolves only the globals in
:data:`ALLOWED_GLOBALS` (the tensor-rebuild functions, the ``torch.*Storage`` types, a few
``torch`` dtypes and ``collections.OrderedDict``), each mapped to a local stand-in, so nothing
from torch or anywhere else is imported or called. Any other global (``os.system``,
``builtins.eval``, a model class, ...) raises :class:`pickle.UnpicklingError` naming it, so a
hostile checkpoint cannot run code. Tensors come back as writable, C-contiguous numpy arrays
built from their storage, size, stride and offset (bounds-checked); ``bfloat16`` storages are
widened to ``float32`` since numpy has no bfloat16.

Example::

    from tfinverse.utils.torch_pickle import read_state_dict
    state = read_state_dict("100_celeb_hq_network-snapshot-010403.pth")
    state["features.0.conv.weight"].shape   # OIHW, as PyTorch stores it
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any, Dict, Mapping, Optional, Tuple

import numpy as np

__all__ = [
    "ALLOWED_GLOBALS",
    "RestrictedTorchUnpickler",
    "read_torch_checkpoint",
    "read_state_dict",
]

# Storage type name -> numpy dtype (as stored, before byte-order is applied).
_STORAGE_DTYPES: Dict[str, str] = {
    "DoubleStorage": "f8",
    "FloatStorage": "f4",
    "HalfStorage": "f2",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "i8",
    "IntStorage": "i4",
    "ShortStorage": "i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
    "ComplexDoubleStorage": "c16",
    "ComplexFloatStorage": "c8",
    "UntypedStorage": "u1",
}

# torch dtype name -> numpy dtype, for ``_rebuild_tensor_v3``: torch uses it (with an untyped
# byte storage) for dtypes that have no storage class, such as the wide unsigned integers.
_TORCH_DTYPES: Dict[str, str] = {
    "float64": "f8",
    "float32": "f4",
    "float16": "f2",
    "int64": "i8",
    "int32": "i4",
    "int16": "i2",
    "int8": "i1",
    "uint8": "u1",
    "uint16": "u2",
    "uint32": "u4",
    "uint64": "u8",
    "bool": "?",
    "complex128": "c16",
    "complex64": "c8",
}

_PYTHON2_MODULES = {"__builtin__": "builtins", "copy_reg": "copyreg", "exceptions": "builtins"}

_TORCH_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_TORCH_LEGACY_PROTOCOL = 1001


class _ReadOnly:
    """Base of the stand-ins: immutable, so a pickle's BUILD opcode cannot alter them.

    The stand-ins are shared by every load; without this a hostile file could, e.g., change
    the dtype of ``torch.FloatStorage`` for all later loads.
    """

    __slots__ = ()

    def __setattr__(self, name, value):
        raise AttributeError(f"{self!r} is read-only")

    def __delattr__(self, name):
        raise AttributeError(f"{self!r} is read-only")


class _StorageType(_ReadOnly):
    """Stand-in for a ``torch.*Storage`` class: only carries the element dtype.

    Instances are not callable, so a pickle cannot use them to run anything.
    """

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: str):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "dtype", dtype)

    def __repr__(self) -> str:
        return f"<torch.{self.name} stand-in>"


class _TorchDType(_ReadOnly):
    """Stand-in for a ``torch.<dtype>`` object named by ``_rebuild_tensor_v3``."""

    __slots__ = ("name", "dtype")

    def __init__(self, name: str, dtype: str):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "dtype", dtype)

    def __repr__(self) -> str:
        return f"<torch.{self.name} stand-in>"


class _RebuildFunction(_ReadOnly):
    """Stand-in for a ``torch._utils._rebuild_*`` function, calling a local implementation."""

    __slots__ = ("name", "function")

    def __init__(self, name: str, function):
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "function", function)

    def __call__(self, *args):
        return self.function(*args)

    def __repr__(self) -> str:
        return f"<torch._utils.{self.name} stand-in>"


def _itemsize(dtype: str) -> int:
    return 2 if dtype == "bfloat16" else np.dtype(dtype).itemsize


def _decode_storage(raw: bytes, dtype: str) -> np.ndarray:
    """Turns the little-endian raw bytes of one storage into a 1-D numpy array (a copy)."""
    if dtype == "bfloat16":
        # bfloat16 is the upper half of a float32: widen by shifting into the high bits.
        bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
        return bits.view(np.float32)
    array = np.frombuffer(raw, dtype=np.dtype(dtype).newbyteorder("<"))
    return array.astype(array.dtype.newbyteorder("="))  # native order, writable copy


def _as_int_tuple(value: Any, what: str) -> Tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise pickle.UnpicklingError(f"tensor {what} must be a tuple of ints, got {value!r}")
    return tuple(value)


def _view_of_storage(
    storage: np.ndarray, storage_offset: Any, size: Any, stride: Any
) -> np.ndarray:
    """Copies the strided view ``storage[offset + sum(i_k * stride_k)]`` into a new array.

    Raises:
      pickle.UnpicklingError: if the arguments are malformed or the view would read outside
        the storage (a corrupt or hostile checkpoint).
    """
    if not isinstance(storage, np.ndarray):
        raise pickle.UnpicklingError(f"tensor storage must come from the archive, got {storage!r}")
    size = _as_int_tuple(size, "size")
    stride = _as_int_tuple(stride, "stride")
    if not isinstance(storage_offset, int) or storage_offset < 0:
        raise pickle.UnpicklingError(f"tensor storage offset must be an int >= 0, got {storage_offset!r}")
    if len(size) != len(stride):
        raise pickle.UnpicklingError(f"tensor size {size} and stride {stride} differ in length")
    if any(s < 0 for s in size) or any(s < 0 for s in stride):
        raise pickle.UnpicklingError(f"negative tensor size or stride: size {size}, stride {stride}")
    if 0 in size:
        return np.zeros(size, dtype=storage.dtype)
    last = storage_offset + sum((n - 1) * s for n, s in zip(size, stride))
    if last >= storage.size:
        raise pickle.UnpicklingError(
            f"tensor (offset {storage_offset}, size {size}, stride {stride}) reads element {last} "
            f"of a storage with {storage.size} elements"
        )
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[storage_offset:], shape=size, strides=tuple(s * item for s in stride), writeable=False
    )
    return np.array(view, copy=True, order="C")


def _rebuild_tensor(storage, storage_offset, size, stride, *unused):
    """Stand-in for ``torch._utils._rebuild_tensor`` / ``_rebuild_tensor_v2``."""
    return _view_of_storage(storage, storage_offset, size, stride)


def _rebuild_tensor_v3(storage, storage_offset, size, stride, requires_grad, hooks, dtype, *unused):
    """Stand-in for ``torch._utils._rebuild_tensor_v3``: the dtype is given separately."""
    if not isinstance(dtype, _TorchDType):
        raise pickle.UnpicklingError(f"_rebuild_tensor_v3 needs a torch dtype, got {dtype!r}")
    if not isinstance(storage, np.ndarray) or storage.dtype != np.uint8:
        raise pickle.UnpicklingError(f"_rebuild_tensor_v3 needs an untyped (byte) storage, got {storage!r}")
    if storage.size % np.dtype(dtype.dtype).itemsize:
        raise pickle.UnpicklingError(f"a storage of {storage.size} bytes cannot hold {dtype.name} elements")
    typed = _decode_storage(storage.tobytes(), dtype.dtype)
    return _view_of_storage(typed, storage_offset, size, stride)


def _rebuild_parameter(data, *unused):
    """Stand-in for ``torch._utils._rebuild_parameter[_with_state]``: a parameter is its data."""
    if not isinstance(data, np.ndarray):
        raise pickle.UnpicklingError(f"parameter data must be a tensor, got {data!r}")
    return data


def _build_allowed_globals() -> Dict[Tuple[str, str], Any]:
    rebuilds = {
        "_rebuild_tensor": _rebuild_tensor,
        "_rebuild_tensor_v2": _rebuild_tensor,
        "_rebuild_tensor_v3": _rebuild_tensor_v3,
        "_rebuild_parameter": _rebuild_parameter,
        "_rebuild_parameter_with_state": _rebuild_parameter,
    }
    # OrderedDict is a built-in type: its attributes cannot be set either.
    allowed: Dict[Tuple[str, str], Any] = {("collections", "OrderedDict"): collections.OrderedDict}
    for name, function in rebuilds.items():
        allowed[("torch._utils", name)] = _RebuildFunction(name, function)
    for name, dtype in _STORAGE_DTYPES.items():
        allowed[("torch", name)] = _StorageType(name, dtype)
    for name, dtype in _TORCH_DTYPES.items():
        allowed[("torch", name)] = _TorchDType(name, dtype)
    return allowed


#: ``(module, name)`` pairs a checkpoint may name, mapped to local stand-ins.
ALLOWED_GLOBALS: Mapping[Tuple[str, str], Any] = _build_allowed_globals()


class RestrictedTorchUnpickler(pickle.Unpickler):
    """Unpickler that admits only tensor-rebuild globals and loads storages from a callback.

    Args:
      file: binary file positioned at the pickle.
      load_storage: called as ``load_storage(storage_type, key, location, numel, view_metadata)``
        for each ``('storage', ...)`` persistent id (``view_metadata`` is None in the zip
        layout); returns the storage as a 1-D numpy array.
    """

    def __init__(self, file, load_storage):
        super().__init__(file, encoding="utf-8")
        self._load_storage = load_storage

    def find_class(self, module: str, name: str) -> Any:
        """Resolves ``module.name`` to its stand-in.

        Raises:
          pickle.UnpicklingError: for any global not in :data:`ALLOWED_GLOBALS`.
        """
        # Protocol-2 pickles spell Python 3's builtins the Python 2 way.
        module = _PYTHON2_MODULES.get(module, module)
        stand_in = ALLOWED_GLOBALS.get((module, name))
        if stand_in is None:
            raise pickle.UnpicklingError(
                f"refusing to load global '{module}.{name}' from a PyTorch checkpoint: only "
                "tensor data (torch._utils._rebuild_*, torch.*Storage, collections.OrderedDict) "
                "may be read without torch"
            )
        return stand_in

    def persistent_load(self, pid: Any) -> np.ndarray:
        """Maps a ``('storage', type, key, location, numel[, view])`` id to a numpy array.

        Raises:
          pickle.UnpicklingError: for any other persistent id (for example a whole
            ``nn.Module`` saved with its source).
        """
        if not isinstance(pid, tuple) or not pid:
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind != "storage" or len(pid) not in (5, 6):
            raise pickle.UnpicklingError(
                f"unsupported persistent id of type {kind!r}: only tensor storages can be read "
                "(save a state_dict, not a whole module)"
            )
        storage_type, key, location, numel = pid[1:5]
        view_metadata = pid[5] if len(pid) == 6 else None
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"storage type must be a torch.*Storage, got {storage_type!r}")
        if not isinstance(numel, int) or numel < 0:
            raise pickle.UnpicklingError(f"storage element count must be an int >= 0, got {numel!r}")
        key = key.decode("ascii") if isinstance(key, bytes) else str(key)
        return self._load_storage(storage_type, key, location, numel, view_metadata)


def _wrap_errors(error: Exception, path: str) -> pickle.UnpicklingError:
    if isinstance(error, pickle.UnpicklingError):
        return error
    return pickle.UnpicklingError(f"cannot read PyTorch checkpoint {path!r}: {error}")


def _read_zip_checkpoint(path: str) -> Any:
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") and n.count("/") == 1]
        if len(pickles) != 1:
            if "constants.pkl" in {n.rsplit("/", 1)[-1] for n in names}:
                raise ValueError(f"{path!r} is a TorchScript archive (torch.jit.save), not a torch.save checkpoint")
            raise ValueError(
                f"{path!r} is a zip file but not a torch.save checkpoint: expected one "
                f"'<archive>/data.pkl', found {pickles or 'none'}"
            )
        prefix = pickles[0][: -len("data.pkl")]
        if prefix + "byteorder" in names:
            byteorder = archive.read(prefix + "byteorder").decode("ascii", "replace").strip()
            if byteorder != "little":
                raise ValueError(f"{path!r} stores {byteorder!r}-endian tensors; only little-endian is supported")
        storages: Dict[str, np.ndarray] = {}

        def load_storage(storage_type, key, location, numel, view_metadata):
            if key not in storages:
                record = f"{prefix}data/{key}"
                if record not in names:
                    raise pickle.UnpicklingError(f"storage record {record!r} is missing from {path!r}")
                raw = archive.read(record)
                expected = numel * _itemsize(storage_type.dtype)
                if len(raw) != expected:
                    raise pickle.UnpicklingError(
                        f"storage {record!r} holds {len(raw)} bytes, expected {expected} "
                        f"({numel} x {storage_type.name})"
                    )
                storages[key] = _decode_storage(raw, storage_type.dtype)
            return storages[key]

        unpickler = RestrictedTorchUnpickler(io.BytesIO(archive.read(pickles[0])), load_storage)
        try:
            return unpickler.load()
        except Exception as error:  # report every failure as one clear unpickling error
            raise _wrap_errors(error, path) from error


class _RestrictedPlainUnpickler(RestrictedTorchUnpickler):
    """For the small header pickles of the legacy layout: no globals, no storages."""

    def __init__(self, file):
        super().__init__(file, load_storage=None)

    def persistent_load(self, pid):
        raise pickle.UnpicklingError("unexpected persistent id in a legacy checkpoint header")


def _read_legacy_checkpoint(path: str, stream: io.BufferedReader) -> Any:
    def header():
        return _RestrictedPlainUnpickler(stream).load()

    try:
        magic = header()
    except Exception as error:
        raise ValueError(f"{path!r} is neither a zip nor a legacy torch.save checkpoint") from error
    if magic != _TORCH_MAGIC_NUMBER:
        raise ValueError(f"{path!r} is not a torch.save checkpoint (bad magic number)")
    try:
        protocol = header()
        sys_info = header()
    except Exception as error:
        raise _wrap_errors(error, path) from error
    if protocol != _TORCH_LEGACY_PROTOCOL:
        raise ValueError(f"{path!r}: unsupported legacy protocol version {protocol!r}")
    if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
        raise ValueError(f"{path!r} stores big-endian tensors; only little-endian is supported")
    pickle_start = stream.tell()

    # The storage bytes follow the pickle, so the pickle is read twice: first to learn each
    # storage's type and size (tensors built from it are discarded), then, once the bytes are
    # read, to build the tensors from the real data.
    roots: Dict[str, Tuple[_StorageType, np.ndarray]] = {}

    def size_storage(storage_type, key, location, numel, view_metadata):
        if key in roots and roots[key][0].dtype != storage_type.dtype:
            raise pickle.UnpicklingError(f"storage {key!r} is used with two dtypes")
        roots.setdefault(key, (storage_type, None))
        return _placeholder_storage(storage_type, numel)

    def load_storage(storage_type, key, location, numel, view_metadata):
        root = roots[key][1]
        if root.size != numel:
            raise pickle.UnpicklingError(f"storage {key!r} is declared with {numel} and {root.size} elements")
        if view_metadata is None:
            return root
        if not isinstance(view_metadata, tuple) or len(view_metadata) != 3:
            raise pickle.UnpicklingError(f"malformed storage view {view_metadata!r}")
        _, offset, view_numel = view_metadata
        if not (isinstance(offset, int) and isinstance(view_numel, int)) or offset < 0 or view_numel < 0 \
                or offset + view_numel > root.size:
            raise pickle.UnpicklingError(f"storage view {view_metadata!r} exceeds storage {key!r}")
        return root[offset : offset + view_numel]

    try:
        RestrictedTorchUnpickler(stream, size_storage).load()
        keys = header()
        if not isinstance(keys, list) or sorted(map(str, keys)) != sorted(roots):
            raise pickle.UnpicklingError(f"storage key list {keys!r} does not match the pickle")
        for key in map(str, keys):
            storage_type, _ = roots[key]
            (count,) = struct.unpack("<q", stream.read(8))
            nbytes = count * _itemsize(storage_type.dtype)
            raw = stream.read(nbytes) if count >= 0 else b""
            if count < 0 or len(raw) != nbytes:
                raise pickle.UnpicklingError(f"storage {key!r} is truncated or malformed")
            roots[key] = (storage_type, _decode_storage(raw, storage_type.dtype))
        stream.seek(pickle_start)
        return RestrictedTorchUnpickler(stream, load_storage).load()
    except Exception as error:
        raise _wrap_errors(error, path) from error


def _placeholder_storage(storage_type: _StorageType, numel: int) -> np.ndarray:
    """Zero storage of the right size and dtype, used only while learning the storage sizes."""
    dtype = np.float32 if storage_type.dtype == "bfloat16" else np.dtype(storage_type.dtype)
    return np.zeros(numel, dtype=dtype)


def read_torch_checkpoint(path: str) -> Any:
    """Reads a ``torch.save`` file; tensors become numpy arrays, nothing is executed.

    Args:
      path: a ``.pth`` / ``.pt`` file written by ``torch.save`` (zip layout of PyTorch >= 1.6,
        or the single-stream layout of PyTorch 0.4-1.5).

    Returns:
      The saved object (typically an ``OrderedDict`` state_dict, or a dict holding one) with
      every tensor or parameter replaced by a C-contiguous numpy array of its dtype
      (``bfloat16`` widened to ``float32``).

    Raises:
      FileNotFoundError: if ``path`` does not exist.
      ValueError: if the file is not a ``torch.save`` checkpoint, or uses the tar layout of
        PyTorch < 0.4, or a TorchScript archive.
      pickle.UnpicklingError: if the pickle names a global outside :data:`ALLOWED_GLOBALS`
        (the message names it) or its tensors are malformed.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no PyTorch checkpoint at {path!r}")
    if zipfile.is_zipfile(path):
        return _read_zip_checkpoint(path)
    with open(path, "rb") as stream:
        head = stream.read(512)
        if len(head) >= 262 and head[257:262] == b"ustar":
            raise ValueError(
                f"{path!r} uses the tar-based torch.save layout of PyTorch < 0.4, which is not "
                "supported: re-save it with a recent PyTorch (torch.save(torch.load(f), f))"
            )
        stream.seek(0)
        return _read_legacy_checkpoint(path, stream)


def _is_tensor_dict(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and len(value) > 0
        and all(isinstance(k, str) for k in value)
        and all(isinstance(v, np.ndarray) for v in value.values())
    )


def read_state_dict(path: str, key: Optional[str] = None) -> Dict[str, np.ndarray]:
    """Reads the ``{name: array}`` state_dict held in a ``torch.save`` file.

    Args:
      path: the checkpoint file.
      key: entry of a top-level dict that holds the state_dict (``"state_dict"``, ``"G"``,
        ...). If None, the checkpoint itself must be a state_dict, or hold exactly one
        state_dict among its top-level values.

    Returns:
      An insertion-ordered dict from parameter name to numpy array.

    Raises:
      KeyError: if ``key`` is not in the checkpoint.
      ValueError: if no unique state_dict is found (the message lists the top-level keys).
      Plus everything :func:`read_torch_checkpoint` raises.
    """
    checkpoint = read_torch_checkpoint(path)
    if key is not None:
        if not isinstance(checkpoint, Mapping) or key not in checkpoint:
            keys = list(checkpoint) if isinstance(checkpoint, Mapping) else type(checkpoint).__name__
            raise KeyError(f"{key!r} is not in checkpoint {path!r} (top level: {keys})")
        checkpoint = checkpoint[key]
        if not _is_tensor_dict(checkpoint):
            raise ValueError(f"checkpoint[{key!r}] in {path!r} is not a {{name: tensor}} state_dict")
        return dict(checkpoint)
    if _is_tensor_dict(checkpoint):
        return dict(checkpoint)
    if isinstance(checkpoint, Mapping):
        candidates = [k for k, v in checkpoint.items() if _is_tensor_dict(v)]
        if len(candidates) == 1:
            return dict(checkpoint[candidates[0]])
        raise ValueError(
            f"{path!r} does not hold exactly one state_dict (top-level keys {list(checkpoint)}, "
            f"state_dict candidates {candidates}): pass key="
        )
    raise ValueError(f"{path!r} holds a {type(checkpoint).__name__}, not a state_dict")
