"""``python -m model_backend``: see :mod:`model_backend.cli`."""

from .cli import main

raise SystemExit(main())
