"""``python -m tools.bench``: the benchmark (see :mod:`tools.bench.run` for the flags)."""

import sys

from .run import main

sys.exit(main())
