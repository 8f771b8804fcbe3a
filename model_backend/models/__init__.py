"""The model registry: ``build_model(settings)`` turns a model name into an (not yet set up) ImageClassifier.

Built-in names are in :data:`MODEL_NAMES`; any other name ending in ``.keras``
is a user's own model file (with ``settings.labels``). Importing this package
does not import TensorFlow or Keras: only ``setup()`` does, so the client and
the dashboard can import ``model_backend`` freely. The server loads models
through ``runtimes.load_classifier(settings)``, which puts the same interface
on LiteRT or TensorFlow (``--runtime``).

Modules:
    base.py               the ImageClassifier interface
    efficientnet_lite.py  efficientnet-lite0, the offline default (converted from a PyTorch checkpoint)
    resnet50.py           resnet50 (keras.applications, ImageNet weights)
    custom.py             a user's .keras file plus a labels file
    torch_legacy.py       numpy reader for legacy PyTorch checkpoints (restricted unpickler)
    tf_runtime.py         TensorFlow threads, the compiled forward pass, the Keras base class
    runtimes.py           --runtime: LiteRT when a cached/converted model verifies, else TensorFlow; the cache
    litert_runtime.py     the LiteRT (XNNPACK) classifier over a .tflite flatbuffer, no TensorFlow
    conversion.py         Keras -> .tflite conversion and its verification against Keras
    preprocessing.py      numpy preprocessing modes (raw, unit, tf, caffe, torch)
    labels.py             ImageNet class names and labels files
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ModelLoadError
from ..settings import ModelSettings
from .base import ImageClassifier
from .custom import MODEL_SUFFIX, CustomKerasClassifier
from .efficientnet_lite import EfficientNetLite0
from .resnet50 import ResNet50

_BUILT_IN: dict[str, Callable[[ModelSettings], ImageClassifier]] = {
    EfficientNetLite0.name: EfficientNetLite0,
    ResNet50.name: ResNet50,
}

#: the built-in model names, default first
MODEL_NAMES: tuple[str, ...] = tuple(_BUILT_IN)


def build_model(settings: ModelSettings) -> ImageClassifier:
    """The classifier ``settings.name`` names, not yet set up (call ``setup()``: that is the slow part)."""
    name = settings.name.strip()
    if name.lower() in _BUILT_IN:
        return _BUILT_IN[name.lower()](settings)
    if name.endswith(MODEL_SUFFIX):
        return CustomKerasClassifier(settings)
    raise ModelLoadError(f"Unknown model {name!r}. Expected one of {', '.join(MODEL_NAMES)}, or a path to a .keras file")


__all__ = ["MODEL_NAMES", "ImageClassifier", "ModelLoadError", "build_model"]
