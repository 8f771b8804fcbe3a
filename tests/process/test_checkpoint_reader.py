"""The checkpoint reader, the labels and the model registry import neither TensorFlow nor torch (checked in a fresh
interpreter). The reader itself is tested in tests/unit/test_checkpoint_reader.py.
"""

from __future__ import annotations

import subprocess
import sys

from tests.support.helpers import ROOT


def test_reader_labels_and_registry_do_not_import_tensorflow():
    code = (
        "import sys, model_backend.models, model_backend.models.torch_legacy, model_backend.models.labels;"
        "bad = [m for m in ('tensorflow', 'keras', 'torch') if m in sys.modules];"
        "assert not bad, bad"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
