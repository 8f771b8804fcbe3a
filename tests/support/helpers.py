"""Small helpers every layer uses: the repository root, a free TCP port, PNG bytes, data URLs, the cat classes,
the text of a Dash component, test images, key folders.

Kept here once, so that a test imports them instead of copying them.
"""

from __future__ import annotations

import base64
import io
import json
import shutil
import socket
import threading
import time
from pathlib import Path

#: the repository root (the working folder for ``python -m ...`` subprocesses)
ROOT = Path(__file__).resolve().parents[2]

#: ImageNet 281..285: tabby, tiger cat, Persian cat, Siamese cat, Egyptian cat (scikit-image's ``chelsea``)
CAT_CLASSES = range(281, 286)


def wait_for(predicate, timeout_s: float = 20.0, what: str = "condition"):
    """The first truthy value of ``predicate()``, polled every 20 ms; fails after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def run_threads(target, count: int, timeout_s: float = 60) -> None:
    """Run ``target(n)`` for n in 0..count-1, each in its own thread, and wait for all of them (each join bounded)."""
    threads = [threading.Thread(target=target, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout_s)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def png_bytes(array) -> bytes:
    """An RGB or grey numpy array as PNG bytes."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def full_range_image(height: int, width: int):
    """Random RGB pixels, with one all-0 and one all-255 pixel so every channel reaches both ends."""
    import numpy as np

    image = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
    image[0, 0], image[0, 1] = 0, 255
    return image


def data_url(data: bytes, mime: str = "image/png") -> str:
    """Bytes as the browser's ``dcc.Upload`` hands them to a callback."""
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def text_of(component) -> str:
    """Every string inside a Dash component tree (what a user would read)."""
    return json.dumps(component.to_plotly_json(), default=lambda o: o.to_plotly_json(), ensure_ascii=False)


def folder_with(tmp_path: Path, name: str, files: dict[str, Path]) -> Path:
    """A keys folder holding ``files`` (target name -> source file)."""
    folder = tmp_path / name
    folder.mkdir()
    for target, source in files.items():
        shutil.copy2(source, folder / target)
    return folder


def copy_keys(keys: Path, target: Path, *names: str) -> Path:
    """A new keys folder ``target`` with copies of ``names`` (files or folders) from ``keys``."""
    target.mkdir()
    for name in names:
        source = keys / name
        if source.is_dir():
            shutil.copytree(source, target / name)
        else:
            shutil.copy2(source, target / name)
    return target
