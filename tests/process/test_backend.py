"""A real backend process (default offline model) on a free port: answers, bad input, concurrency, CLI.

Every test here talks to the process through real ZeroMQ sockets, as the
dashboard does.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import zmq
from PIL import Image

from model_backend.client import BackendClient
from model_backend.errors import BadImage, BadRequest, TooLarge
from tests.support.helpers import CAT_CLASSES, ROOT, run_threads

COFFEE_CLASSES = {967, 968, 504}

pytestmark = pytest.mark.slow


def test_ping_and_info(backend):
    with BackendClient(backend.client_settings) as client:
        ping = client.ping()
        assert ping["ready"] is True and ping["model"] == "efficientnet-lite0"
        info = client.info()
    assert info["model"] == "efficientnet-lite0"
    assert info["input_size"] == [224, 224] and info["num_classes"] == 1000
    assert info["max_batch"] == 16 and info["uptime_s"] > 0


def test_real_photos_are_classified_correctly(backend, chelsea_png, coffee_png):
    with BackendClient(backend.client_settings) as client:
        cat = client.classify(chelsea_png)
        coffee = client.classify(coffee_png, top_k=3)
    assert cat["predictions"][0]["index"] in CAT_CLASSES
    assert cat["predictions"][0]["label"] == "Egyptian cat"
    assert len(cat["predictions"]) == 5
    assert cat["predictions"][0]["p"] >= cat["predictions"][1]["p"] >= cat["predictions"][4]["p"]
    assert coffee["predictions"][0]["index"] in COFFEE_CLASSES and len(coffee["predictions"]) == 3
    assert cat["timings_ms"]["inference"] > 0 and cat["batch_size"] >= 1


def test_jpeg_with_exif_rotation_and_rgba_are_handled(backend, chelsea_png):
    image = Image.open(io.BytesIO(chelsea_png))
    rotated = image.rotate(90, expand=True)  # stored sideways, EXIF says rotate back
    exif = Image.Exif()
    exif[0x0112] = 8
    jpeg = io.BytesIO()
    rotated.save(jpeg, "JPEG", quality=92, exif=exif.tobytes())
    rgba = io.BytesIO()
    image.convert("RGBA").save(rgba, "PNG")
    with BackendClient(backend.client_settings) as client:
        assert client.classify(jpeg.getvalue())["predictions"][0]["index"] in CAT_CLASSES
        assert client.classify(rgba.getvalue())["predictions"][0]["index"] in CAT_CLASSES


def test_bad_inputs_get_error_replies_and_the_server_keeps_serving(backend, chelsea_png):
    bomb = io.BytesIO()
    Image.new("L", (12_000, 12_000)).save(bomb, "PNG")  # 144 MP in a small file
    with BackendClient(backend.client_settings) as client:
        with pytest.raises(BadImage, match="empty"):
            client.classify(b"")
        with pytest.raises(BadImage, match="not an image"):
            client.classify(b"%PDF-1.4 definitely not a photo")
        with pytest.raises(BadImage, match="could not be decoded"):
            client.classify(chelsea_png[: len(chelsea_png) // 3])
        with pytest.raises(TooLarge, match="MP"):
            client.classify(bomb.getvalue())
        with pytest.raises(TooLarge, match="limit"):
            client.classify(b"\xff\xd8" + b"\x00" * (21 * 1024 * 1024))
        with pytest.raises(BadRequest, match="top_k"):
            client.classify(chelsea_png, top_k=1000)
        assert client.classify(chelsea_png)["predictions"][0]["index"] in CAT_CLASSES


def test_malformed_frames_unknown_ops_and_oversized_headers(backend):
    sock = zmq.Context.instance().socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(backend.address)
    try:
        cases = {
            "not json": [b"", b"\x80\x81\x82"],
            "unknown op": [b"", json.dumps({"v": 1, "id": "a", "op": "shutdown"}).encode()],
            "oversized header": [b"", json.dumps({"v": 1, "id": "b", "op": "ping", "x": "y" * 8000}).encode()],
            "missing image": [b"", json.dumps({"v": 1, "id": "c", "op": "classify"}).encode()],
            "wrong version": [b"", json.dumps({"v": 9, "id": "d", "op": "ping"}).encode()],
        }
        for name, frames in cases.items():
            sock.send_multipart(frames)
            assert sock.poll(10_000), f"no reply for {name}"
            reply = json.loads(sock.recv_multipart()[-1])
            assert reply["ok"] is False, name
            assert reply["error"]["code"] == "bad_request", name
    finally:
        sock.close()
    with BackendClient(backend.client_settings) as client:
        assert client.ping()["ready"] is True


def _photo_set(chelsea_png: bytes, coffee_png: bytes) -> list[tuple[bytes, set[int]]]:
    return [(chelsea_png, set(CAT_CLASSES)), (coffee_png, COFFEE_CLASSES)]


def test_eight_threads_times_25_requests_through_one_client(backend, chelsea_png, coffee_png):
    photos = _photo_set(chelsea_png, coffee_png)
    batch_sizes = []
    with BackendClient(backend.client_settings) as client:
        def classify(i: int) -> bool:
            data, expected = photos[i % 2]
            reply = client.classify(data)
            batch_sizes.append(reply["batch_size"])
            return reply["predictions"][0]["index"] in expected

        with ThreadPoolExecutor(8) as pool:
            outcomes = list(pool.map(classify, range(200)))
        info = client.info()
    assert len(outcomes) == 200 and all(outcomes)
    if info["execution"] in ("pool", "adaptive"):  # several interpreters side by side, each up to pool_batch images a pass (execution.py)
        assert set(batch_sizes) <= set(range(1, info["pool_batch"] + 1)) and info["inference_threads"] > 1
    else:
        assert max(batch_sizes) > 1, "concurrent requests should be batched"


def test_eight_clients_in_eight_threads_times_25_requests(backend, chelsea_png, coffee_png):
    photos = _photo_set(chelsea_png, coffee_png)
    results: list[bool] = []
    lock = threading.Lock()

    def worker(offset: int) -> None:
        with BackendClient(backend.client_settings) as client:
            for i in range(25):
                data, expected = photos[(i + offset) % 2]
                ok = client.classify(data)["predictions"][0]["index"] in expected
                with lock:
                    results.append(ok)

    run_threads(worker, 8, timeout_s=120)
    assert len(results) == 200 and all(results)


def test_classify_cli_prints_top5_and_round_trip(backend, chelsea_file):
    completed = subprocess.run(
        [sys.executable, "-m", "model_backend", "classify", str(chelsea_file), "--address", backend.address],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    assert "round trip" in lines[0] and "ms" in lines[0]
    assert "Egyptian cat" in lines[1]
    assert len(lines) == 6


def test_classify_cli_reports_unreadable_and_bad_files(backend, tmp_path):
    text_file = tmp_path / "notes.txt"
    text_file.write_text("hello")
    completed = subprocess.run(
        [sys.executable, "-m", "model_backend", "classify", str(text_file), str(tmp_path / "missing.png"),
         "--address", backend.address],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )
    assert completed.returncode == 1
    assert "bad_image" in completed.stderr and "cannot read" in completed.stderr
