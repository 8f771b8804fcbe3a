"""Regenerate the example gallery (assets/examples/*.jpg) and the favicon from scikit-image's bundled photos.

The photos ship inside scikit-image and are public domain or CC0 (see
skimage/data/README.txt), so nothing is downloaded. Each is scaled to at
most MAX_SIDE pixels and saved as a small JPEG; the whole gallery stays well
under 300 KB. Run:

    python -m dashboard.make_examples [--out assets]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from .settings import ASSETS_DIR

log = logging.getLogger(__name__)

MAX_SIDE = 320
QUALITY = 82
#: file name -> skimage.data loader name (what a new user can try the model on)
EXAMPLES = {
    "chelsea.jpg": "chelsea",  # a cat: Egyptian cat / tabby
    "coffee.jpg": "coffee",  # espresso in a cup
    "rocket.jpg": "rocket",  # a rocket on its launch pad
    "astronaut.jpg": "astronaut",  # Eileen Collins, with a flag and the shuttle
    "motorcycle.jpg": "stereo_motorcycle",  # a motorbike (left image of the stereo pair)
}


def load_photo(loader: str):
    """An RGB uint8 array from skimage.data (imported here: only this script needs scikit-image)."""
    from skimage import data

    image = getattr(data, loader)()
    if isinstance(image, tuple):  # stereo_motorcycle returns (left, right, disparity)
        image = image[0]
    return image


def write_examples(out_dir: Path) -> list[Path]:
    from PIL import Image

    examples_dir = out_dir / "examples"
    examples_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, loader in EXAMPLES.items():
        image = Image.fromarray(load_photo(loader)).convert("RGB")
        image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
        path = examples_dir / name
        image.save(path, format="JPEG", quality=QUALITY, optimize=True, progressive=True)
        log.info("Wrote %s (%dx%d, %.1f KB)", path, image.width, image.height, path.stat().st_size / 1024)
        written.append(path)
    total = sum(p.stat().st_size for p in written)
    log.info("Gallery: %d photos, %.1f KB in all", len(written), total / 1024)
    return written


def write_favicon(out_dir: Path) -> Path:
    """A 'bar chart' glyph: three blue bars on white, as a multi-size .ico."""
    from PIL import Image, ImageDraw

    size = 64
    image = Image.new("RGBA", (size, size), (255, 255, 255, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 0, size - 1, size - 1), radius=12, fill=(37, 99, 235, 255))
    for i, width in enumerate((44, 30, 18)):
        top = 12 + i * 15
        draw.rounded_rectangle((10, top, 10 + width, top + 10), radius=3, fill=(255, 255, 255, 255))
    path = out_dir / "favicon.ico"
    image.save(path, format="ICO", sizes=[(16, 16), (32, 32), (48, 48)])
    log.info("Wrote %s", path)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ASSETS_DIR, help="assets folder (default: the repo's assets/)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    write_examples(args.out)
    write_favicon(args.out)


if __name__ == "__main__":
    main()
