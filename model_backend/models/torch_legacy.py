"""Read a PyTorch checkpoint in the LEGACY (pre-zip) format with numpy only: no torch, no arbitrary code.

The legacy format (``torch.save(..., _use_new_zipfile_serialization=False)``)
is five pickles in a row, then raw storage bytes:

1. the magic number ``0x1950a86a20f9469cfc6c``
2. the protocol version ``1001``
3. system info (``{"little_endian": True, "type_sizes": {...}, ...}``)
4. the object itself, usually a state dict ``OrderedDict[str, Tensor]``; each
   tensor is ``torch._utils._rebuild_tensor_v2(storage, offset, size, stride,
   ...)`` and each storage a persistent id ``("storage", torch.FloatStorage,
   key, location, numel, view_metadata)``
5. the list of storage keys, in the order their data follows
6. per storage: an 8-byte little-endian element count, then the raw
   little-endian elements.

Every pickle is read by :class:`RestrictedUnpickler`, whose ``find_class``
admits only ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``
and the ``torch.*Storage`` types, and raises
:class:`~model_backend.errors.CheckpointRefused` for any other name before it
is ever looked up, so a hostile checkpoint cannot run code.

Public entry point: :func:`read_legacy_checkpoint`.
"""

from __future__ import annotations

import collections
import _compat_pickle
import io
import pickle
import struct
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CheckpointRefused, ModelLoadError

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
ZIP_SIGNATURE = b"PK\x03\x04"

#: torch storage type name -> little-endian numpy dtype ("bfloat16" is widened to float32 on read)
STORAGE_DTYPES: dict[str, str] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "BFloat16Storage": "<u2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
    "ComplexFloatStorage": "<c8",
    "ComplexDoubleStorage": "<c16",
}


@dataclass(frozen=True)
class StorageType:
    """Stand-in for a ``torch.*Storage`` class named by the pickle; only carries the dtype."""

    name: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(STORAGE_DTYPES[self.name])


@dataclass(frozen=True)
class StorageRef:
    """A storage as the state dict names it; its data is read after the pickles."""

    key: str
    storage_type: StorageType
    numel: int
    #: (root key, element offset) when this storage is a view of another one (very old checkpoints)
    view_of: tuple[str, int] | None = None


@dataclass(frozen=True)
class TensorRef:
    """What ``_rebuild_tensor_v2`` would build, kept as a description until the storages are read."""

    storage: StorageRef
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_ignored) -> TensorRef:
    """Our ``torch._utils._rebuild_tensor_v2``: records the view; extra arguments (requires_grad, hooks) are dropped."""
    if not isinstance(storage, StorageRef):
        raise ModelLoadError(f"Expected a storage as the first argument of _rebuild_tensor_v2. Received: {type(storage).__name__}")
    shape, strides = tuple(size), tuple(stride)
    if len(shape) != len(strides) or not all(_is_count(v) for v in (storage_offset, *shape, *strides)):
        raise ModelLoadError(f"Expected non-negative integer offset, size and stride. Received: size={shape!r}, stride={strides!r}")
    return TensorRef(storage, int(storage_offset), tuple(map(int, shape)), tuple(map(int, strides)))


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only the few names a tensor state dict needs."""

    def find_class(self, module: str, name: str) -> Any:
        # Protocol-2 pickles use Python 2 names (__builtin__.eval); report and match the Python 3 ones.
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in STORAGE_DTYPES:
            return StorageType(name)
        raise CheckpointRefused(
            f"The checkpoint's pickle names {module}.{name} which is not allowed; refusing to load it. "
            "Expected only collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch.*Storage."
        )

    def persistent_load(self, pid: Any) -> StorageRef:
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise CheckpointRefused(f"Expected a ('storage', type, key, location, size, view) persistent id. Received: {pid!r:.200}")
        _, storage_type, key, _location, numel, view_metadata = pid
        if not isinstance(storage_type, StorageType) or not isinstance(key, str) or not _is_count(numel):
            raise ModelLoadError(f"Expected a storage type, a string key and a size in a persistent id. Received: {pid!r:.200}")
        view_of = None
        if view_metadata is not None:
            # Old checkpoints: pid = (..., root_key, numel_of_root, (view_key, offset, view_size)).
            view_key, offset, view_size = view_metadata
            if not (isinstance(view_key, str) and _is_count(offset) and _is_count(view_size)):
                raise ModelLoadError(f"Expected (key, offset, size) storage view metadata. Received: {view_metadata!r:.200}")
            return StorageRef(view_key, storage_type, view_size, view_of=(key, offset))
        return StorageRef(key, storage_type, numel, view_of)


def read_legacy_checkpoint(path: str | PathLike) -> dict[str, np.ndarray]:
    """Read a legacy-format PyTorch state dict into ``{name: C-contiguous numpy array}`` (no torch needed).

    Raises :class:`~model_backend.errors.CheckpointRefused` when the pickle names
    anything outside the allow-list, and :class:`~model_backend.errors.ModelLoadError`
    for a missing, truncated, zip-format or otherwise unreadable file.
    """
    path = Path(path)
    try:
        # Read it whole: a damaged length field then cannot make a read allocate gigabytes,
        # and the storages below are zero-copy views of these bytes until each tensor is copied out.
        data = path.read_bytes()
    except OSError as exc:
        raise ModelLoadError(f"Could not read the checkpoint {path}: {exc.strerror or exc}") from None
    try:
        return _read(io.BytesIO(data), data, path)
    except ModelLoadError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError, AttributeError,
            struct.error, OverflowError, RecursionError, MemoryError) as exc:
        raise ModelLoadError(f"The checkpoint {path} is damaged or not a legacy PyTorch checkpoint: {type(exc).__name__}: {exc}") from None


def _read(f: io.BytesIO, data: bytes, path: Path) -> dict[str, np.ndarray]:
    head = f.read(4)
    if head == ZIP_SIGNATURE:
        raise ModelLoadError(
            f"Expected a legacy (pre-zip) PyTorch checkpoint. Received: {path}, a zip-format checkpoint (torch >= 1.6); "
            "re-save it with torch.save(obj, path, _use_new_zipfile_serialization=False)."
        )
    f.seek(0)
    magic = _load_pickle(f)
    if magic != MAGIC_NUMBER:
        raise ModelLoadError(f"Expected a legacy PyTorch checkpoint (magic number {MAGIC_NUMBER:#x}). Received: {path} with magic={magic!r:.80}")
    version = _load_pickle(f)
    if version != PROTOCOL_VERSION:
        raise ModelLoadError(f"Expected legacy protocol version {PROTOCOL_VERSION}. Received: protocol_version={version!r:.80} in {path}")
    sys_info = _load_pickle(f)
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise ModelLoadError(f"Expected a checkpoint written on a little-endian machine. Received: sys_info={sys_info!r:.200}")
    state = _load_pickle(f)
    keys = _load_pickle(f)
    if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)):
        raise ModelLoadError(f"Expected the list of storage keys after the state dict. Received: {type(keys).__name__}")

    if not isinstance(state, dict):
        raise ModelLoadError(f"Expected a state dict (name -> tensor). Received: {type(state).__name__} in {path}")
    refs = _storage_refs(state)
    storages = {}
    for key in keys:
        if key not in refs:
            raise ModelLoadError(f"The checkpoint {path} lists storage {key!r} that no tensor uses.")
        storages[key] = _read_storage(f, data, refs[key], key, path)
    tensors: dict[str, np.ndarray] = {}
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, TensorRef):
            raise ModelLoadError(f"Expected a state dict of name -> tensor. Received: {name!r:.80} -> {type(value).__name__}")
        tensors[name] = _materialize(value, storages, path)
    return tensors


def _load_pickle(f: io.BytesIO) -> Any:
    return RestrictedUnpickler(f).load()


def _storage_refs(state: Any) -> dict[str, StorageRef]:
    """Root storage key -> one StorageRef naming it (for its dtype), from the tensors in the state dict."""
    refs: dict[str, StorageRef] = {}
    values = state.values() if isinstance(state, dict) else ()
    for value in values:
        if isinstance(value, TensorRef):
            ref = value.storage
            root = ref.view_of[0] if ref.view_of else ref.key
            refs.setdefault(root, ref)
    return refs


def _read_storage(f: io.BytesIO, data: bytes, ref: StorageRef, key: str, path: Path) -> np.ndarray:
    """The next storage: an int64 little-endian element count, then the elements (a read-only view of ``data``)."""
    header = f.read(8)
    if len(header) != 8:
        raise ModelLoadError(f"The checkpoint {path} is truncated: storage {key!r} has no size header.")
    (numel,) = struct.unpack("<q", header)
    if numel < 0 or (ref.view_of is None and numel != ref.numel):
        raise ModelLoadError(f"Expected storage {key!r} to hold {ref.numel} elements. Received: numel={numel} in {path}")
    dtype = ref.storage_type.dtype
    start, nbytes = f.tell(), numel * dtype.itemsize
    if nbytes > len(data) - start:
        raise ModelLoadError(f"The checkpoint {path} is truncated: storage {key!r} needs {nbytes} bytes, {len(data) - start} are left.")
    f.seek(start + nbytes)
    array = np.frombuffer(data, dtype=dtype, count=numel, offset=start)
    if ref.storage_type.name == "BFloat16Storage":
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _materialize(tensor: TensorRef, storages: dict[str, np.ndarray], path: Path) -> np.ndarray:
    ref = tensor.storage
    root_key, base = ref.view_of if ref.view_of else (ref.key, 0)
    if root_key not in storages:
        raise ModelLoadError(f"The checkpoint {path} names storage {root_key!r} but holds no data for it.")
    storage = storages[root_key][base : base + ref.numel]
    if 0 in tensor.shape:
        return np.zeros(tensor.shape, dtype=storage.dtype)
    last = tensor.offset + sum((n - 1) * s for n, s in zip(tensor.shape, tensor.strides))
    if last >= storage.size:
        raise ModelLoadError(
            f"Expected tensor views inside their storage. Received: offset={tensor.offset}, shape={tensor.shape}, "
            f"stride={tensor.strides} over a storage of {storage.size} elements in {path}"
        )
    itemsize = storage.dtype.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[tensor.offset :],
        shape=tensor.shape,
        strides=tuple(s * itemsize for s in tensor.strides),
        writeable=False,
    )
    # A C-contiguous copy: each array owns its memory (writeable, and the storage buffer can be freed).
    return np.array(view, order="C", copy=True)
