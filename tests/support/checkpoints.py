"""Write small legacy-format PyTorch checkpoints without torch, for the checkpoint reader's tests.

The pickles are made by the standard ``pickle.Pickler`` exactly as
``torch.save(..., _use_new_zipfile_serialization=False)`` makes them: while
writing, stand-in modules ``torch`` and ``torch._utils`` sit in
``sys.modules`` so that ``torch.FloatStorage`` and
``torch._utils._rebuild_tensor_v2`` pickle by name; storages become persistent
ids ``("storage", torch.FloatStorage, key, "cpu", numel, None)``.
"""

from __future__ import annotations

import collections
import contextlib
import io
import pickle
import struct
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
SYS_INFO = {"protocol_version": PROTOCOL_VERSION, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}

#: numpy dtype -> torch storage class name
STORAGE_NAMES = {
    np.dtype("float32"): "FloatStorage",
    np.dtype("float64"): "DoubleStorage",
    np.dtype("float16"): "HalfStorage",
    np.dtype("int64"): "LongStorage",
    np.dtype("int32"): "IntStorage",
    np.dtype("uint8"): "ByteStorage",
    np.dtype("bool"): "BoolStorage",
}


@dataclass(eq=False)
class FakeStorage:
    """A flat storage: ``data`` is written after the pickles, under ``key``."""

    key: str
    data: np.ndarray
    #: a torch storage class name, e.g. "BFloat16Storage", when the dtype alone does not say it
    type_name: str | None = None
    #: (root storage, element offset) for an old-style storage view
    view_of: tuple[FakeStorage, int] | None = None

    @property
    def storage_name(self) -> str:
        return self.type_name or STORAGE_NAMES[self.data.dtype]


@dataclass(eq=False)
class FakeTensor:
    """Pickles as ``torch._utils._rebuild_tensor_v2(storage, offset, shape, strides, False, OrderedDict())``."""

    storage: FakeStorage
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]

    def __reduce__(self):
        rebuild = sys.modules["torch._utils"]._rebuild_tensor_v2
        return rebuild, (self.storage, self.offset, self.shape, self.strides, False, collections.OrderedDict())


def tensor(key: str, array: np.ndarray) -> FakeTensor:
    """A contiguous tensor over a storage of its own."""
    array = np.ascontiguousarray(array)
    strides = tuple(s // array.itemsize for s in array.strides)
    return FakeTensor(FakeStorage(key, array.reshape(-1)), 0, array.shape, strides)


@contextlib.contextmanager
def stand_in_torch() -> Iterator[types.ModuleType]:
    """Put minimal ``torch`` / ``torch._utils`` modules in sys.modules while pickling; restore afterwards."""
    if "torch" in sys.modules:
        raise RuntimeError("the real torch is imported; these helpers write their own stand-in")
    torch = types.ModuleType("torch")
    utils = types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):  # only pickled by name, never called
        raise AssertionError("not called when writing")

    _rebuild_tensor_v2.__module__ = "torch._utils"
    _rebuild_tensor_v2.__qualname__ = "_rebuild_tensor_v2"
    utils._rebuild_tensor_v2 = _rebuild_tensor_v2
    torch._utils = utils
    for name in set(STORAGE_NAMES.values()) | {"BFloat16Storage"}:
        setattr(torch, name, type(name, (), {"__module__": "torch"}))
    sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
    try:
        yield torch
    finally:
        del sys.modules["torch"], sys.modules["torch._utils"]


class _LegacyPickler(pickle.Pickler):
    def __init__(self, file, torch: types.ModuleType):
        super().__init__(file, protocol=2)
        self.torch = torch
        self.roots: dict[str, FakeStorage] = {}

    def persistent_id(self, obj):
        if not isinstance(obj, FakeStorage):
            return None
        storage_class = getattr(self.torch, obj.storage_name)
        if obj.view_of is None:
            self.roots.setdefault(obj.key, obj)
            return ("storage", storage_class, obj.key, "cpu", obj.data.size, None)
        root, offset = obj.view_of
        self.roots.setdefault(root.key, root)
        return ("storage", storage_class, root.key, "cpu", root.data.size, (obj.key, offset, obj.data.size))


def legacy_checkpoint_bytes(state: object, *, magic: object = MAGIC_NUMBER, sys_info: object = SYS_INFO) -> bytes:
    """The bytes of a legacy checkpoint holding ``state`` (usually a dict of name -> FakeTensor)."""
    out = io.BytesIO()
    with stand_in_torch() as torch:
        for header in (magic, PROTOCOL_VERSION, sys_info):
            pickle.dump(header, out, protocol=2)
        pickler = _LegacyPickler(out, torch)
        pickler.dump(state)
        pickle.dump(list(pickler.roots), out, protocol=2)
    for storage in pickler.roots.values():
        data = storage.data
        out.write(struct.pack("<q", data.size))
        out.write(data.astype(data.dtype.newbyteorder("<"), copy=False).tobytes())
    return out.getvalue()


def write_legacy_checkpoint(path: Path, state: object, **kwargs) -> Path:
    path.write_bytes(legacy_checkpoint_bytes(state, **kwargs))
    return path
