"""ResNet50 with ImageNet weights: the model the original monolith served (``keras.applications.ResNet50``).

Where the weights come from (``settings.weights``):

* ``None`` / ``"imagenet"``: Keras' own cache (``$KERAS_HOME/models``, default
  ``~/.keras/models``) if the file is there, else a download by Keras (with a
  socket timeout, so a silent network cannot hang the start). Offline, this
  fails with a :class:`~model_backend.errors.ModelLoadError` that says what to do.
* a file path: a local copy of ``resnet50_weights_tf_dim_ordering_tf_kernels.h5``.
* ``"random"``: random weights, for timing only (a WARNING says so).

Preprocessing is Keras' "caffe" mode, in numpy: RGB -> BGR, minus the ImageNet BGR mean.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any

from ..errors import ModelLoadError
from ..settings import ModelSettings
from .labels import imagenet_class_names
from .tf_runtime import KerasClassifier, import_keras

log = logging.getLogger(__name__)

MODEL_NAME = "resnet50"
INPUT_SIZE = (224, 224)
WEIGHTS_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels.h5"
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/resnet/" + WEIGHTS_FILE
#: md5 Keras uses to check the file (keras.src.applications.resnet.WEIGHTS_HASHES["resnet50"][0])
WEIGHTS_MD5 = "2cb95161c43110f7111970584f804107"
DOWNLOAD_TIMEOUT_S = 15.0


def offline_help() -> str:
    return (
        f"download {WEIGHTS_FILE} on a machine with internet ({WEIGHTS_URL}), copy it here, "
        "then pass --weights FILE, or use the default offline model efficientnet-lite0"
    )


def download_imagenet_weights() -> Path:
    """Keras' cached copy of the ImageNet weights, downloading it if needed; ModelLoadError when impossible."""
    keras = import_keras()
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        return Path(keras.utils.get_file(WEIGHTS_FILE, WEIGHTS_URL, cache_subdir="models", file_hash=WEIGHTS_MD5))
    except Exception as exc:  # get_file raises a bare Exception for URL errors, ValueError for a bad hash
        # get_file's message is "URL fetch failure on <url>: <code> -- <reason>"; keep the reason.
        reason = str(exc).splitlines()[0].rsplit(" -- ", 1)[-1] if str(exc) else type(exc).__name__
        raise ModelLoadError(f"Could not get the ResNet50 ImageNet weights ({reason}). To run offline: {offline_help()}.") from None
    finally:
        socket.setdefaulttimeout(previous)


class ResNet50(KerasClassifier):
    """``keras.applications.ResNet50`` (ImageNet-1k, 224x224, caffe preprocessing)."""

    name = MODEL_NAME
    input_size = INPUT_SIZE

    preprocess_mode = "caffe"

    def __init__(self, settings: ModelSettings) -> None:
        super().__init__(settings, imagenet_class_names())

    def build_keras_model(self) -> Any:
        keras = import_keras()
        weights = self.settings.weights
        if weights == "random":
            self.warn_random_weights()
            return keras.applications.ResNet50(weights=None)
        if weights in (None, "imagenet"):
            path = download_imagenet_weights()
        else:
            path = Path(weights).expanduser()
            if not path.is_file():
                raise ModelLoadError(f"Expected the ResNet50 weights file {WEIGHTS_FILE}. Received: weights={str(path)!r}, which does not exist.")
        model = keras.applications.ResNet50(weights=None)
        try:
            model.load_weights(path)
        except Exception as exc:  # h5py/Keras raise many types for a wrong or damaged file
            raise ModelLoadError(
                f"Could not load ResNet50 weights from {path} ({type(exc).__name__}: {str(exc)[:200]}). "
                f"Expected the ImageNet file {WEIGHTS_FILE} (with the classification top)."
            ) from None
        log.info("%s: weights loaded from %s", self.name, path)
        return model
