"""Pure functions: no sockets, no subprocesses, no TensorFlow (tests/unit/conftest.py enforces it)."""
