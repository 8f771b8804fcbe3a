"""Upload helpers: data URLs, web-tier refusals, concurrency of classify_many, kept uploads and thumbnails.

The thumbnail's memory bound on huge images is measured in a fresh process: tests/process/test_dashboard_classify.py."""

from __future__ import annotations

import base64
import threading

import pytest

from dashboard.classify.service import classify_many
from dashboard.classify.thumbnails import make_thumbnail
from dashboard.classify.uploads import Upload, check_upload, decode_data_url, uploads_from_browser
from dashboard.common.kept_uploads import KEEP_UPLOADS, keep_upload, kept_upload
from dashboard.history.store import HistoryStore
from model_backend.errors import BackendUnavailable, BadImage, BadRequest
from tests.support.helpers import data_url


class BarrierClient:
    """Replies only once `parties` requests are in flight at the same time (proves they are concurrent)."""

    def __init__(self, parties: int):
        self.barrier = threading.Barrier(parties, timeout=5)

    def classify(self, data: bytes, top_k: int = 5) -> dict:
        if data == b"down":
            raise BackendUnavailable("No model backend is answering at tcp://127.0.0.1:1.")
        self.barrier.wait()
        return {"ok": True, "predictions": [{"index": 1, "label": "goldfish", "p": 0.9}], "batch_size": 2,
                "timings_ms": {"queue": 1, "decode": 1, "preprocess": 1, "inference": 5, "total": 8}, "model": "m"}


def test_decode_data_url_round_trip_and_errors():
    assert decode_data_url(data_url(b"\x89PNG...")) == b"\x89PNG..."
    with pytest.raises(BadRequest):
        decode_data_url("not a data url")
    with pytest.raises(BadImage, match="corrupt"):
        decode_data_url("data:image/png;base64,@@@")


def test_browser_lists_become_uploads_and_extras_are_refused():
    png = b"\x89PNG\r\n\x1a\n"  # the web tier sends only files that start like an image it reads
    uploads, refused = uploads_from_browser([data_url(png + b"a"), data_url(png + b"b"), data_url(png + b"c")],
                                            ["a.png", "b.png", "c.png"], max_files=2)
    assert [u.name for u in uploads] == ["a.png", "b.png"] and uploads[0].data == png + b"a"
    assert [r.name for r in refused] == ["c.png"] and "only 2 images are sent per drop" in refused[0].error_message


def test_web_tier_refuses_empty_and_oversized_files():
    assert check_upload(Upload("ok.png", b"x" * 10), max_bytes=100) is None
    empty = check_upload(Upload("empty.png", b""), max_bytes=100)
    assert empty.code == "bad_image" and "empty" in empty.message
    big = check_upload(Upload("big.png", b"x" * 3 * 1024 * 1024), max_bytes=1024 * 1024)
    assert big.code == "too_large" and big.http_status == 413 and "3.0 MB" in big.message and "1.0 MB" in big.message


def test_classify_many_sends_images_concurrently_and_records_each(tmp_path):
    store = HistoryStore(tmp_path / "h.sqlite3")
    uploads = [Upload("one.png", b"1"), Upload("two.png", b"2"), Upload("down.png", b"down"), Upload("big.png", b"x" * 2000)]
    outcomes = classify_many(BarrierClient(parties=2), uploads, top_k=5, max_bytes=1000, store=store,
                             uploads_dir=tmp_path / "uploads", thumbnails=False)
    assert [o.ok for o in outcomes] == [True, True, False, False]
    assert outcomes[0].predictions[0]["label"] == "goldfish" and outcomes[0].latency_ms > 0
    assert outcomes[2].error_code == "unavailable" and outcomes[3].error_code == "too_large"
    rows = store.recent()
    assert {r["image"] for r in rows} == {"one.png", "two.png", "down.png", "big.png"}
    assert kept_upload(tmp_path / "uploads", uploads[0].sha256).read_bytes() == b"1"
    assert kept_upload(tmp_path / "uploads", uploads[2].sha256) is None  # only accepted images are kept


def test_kept_uploads_are_content_addressed_pruned_and_validated(tmp_path):
    folder = tmp_path / "uploads"
    for i in range(KEEP_UPLOADS + 5):
        keep_upload(folder, Upload(f"{i}.png", str(i).encode()))
    assert len(list(folder.glob("*.img"))) == KEEP_UPLOADS
    assert kept_upload(folder, "../../etc/passwd") is None
    assert kept_upload(folder, "z" * 64) is None


def test_thumbnail_is_a_small_jpeg_data_url(chelsea_png):
    thumb = make_thumbnail(chelsea_png)
    assert thumb.startswith("data:image/jpeg;base64,") and len(thumb) < 40_000
    assert make_thumbnail(b"not an image") is None


def test_thumbnails_of_every_accepted_mode_and_of_big_photos():
    import io

    import numpy as np
    from PIL import Image

    def encoded(image, fmt: str) -> bytes:
        out = io.BytesIO()
        image.save(out, format=fmt)
        return out.getvalue()

    ramp = (np.arange(500 * 600, dtype=np.uint32).reshape(500, 600) % 65536).astype(np.uint16)
    images = [encoded(Image.fromarray(ramp), "PNG"), encoded(Image.fromarray(ramp.astype(np.float32)), "TIFF"),
              encoded(Image.new("1", (300, 200)), "PNG"), encoded(Image.new("P", (300, 200)), "GIF"),
              encoded(Image.new("CMYK", (300, 200)), "JPEG"), encoded(Image.new("RGB", (8000, 6000), "red"), "JPEG")]
    for data in images:
        thumbnail = make_thumbnail(data)
        assert thumbnail and thumbnail.startswith("data:image/jpeg;base64,")
        with Image.open(io.BytesIO(base64.b64decode(thumbnail.split(",", 1)[1]))) as small:
            assert max(small.size) <= 192
    with Image.open(io.BytesIO(base64.b64decode(make_thumbnail(images[0]).split(",", 1)[1]))) as grey:
        low, high = grey.convert("L").getextrema()
        assert high - low > 200  # 16-bit values are scaled to 8 bits, not clipped to white
    assert make_thumbnail(encoded(Image.new("RGB", (30, 30)), "PCX")) is None  # not a format the README lists


def test_a_reply_that_is_not_a_classify_reply_is_a_failed_outcome():
    class GarbledClient:
        def classify(self, data: bytes, top_k: int = 5) -> dict:
            return {"ok": True, "predictions": "not a list", "batch_size": 1, "model": "m"}

    [outcome] = classify_many(GarbledClient(), [Upload("a.png", b"x")], top_k=5, max_bytes=1024, thumbnails=False)
    assert not outcome.ok and outcome.error_code == "bad_reply" and outcome.reply is None
