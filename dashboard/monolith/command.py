"""``python -m dashboard monolith IMAGE``: run the monolith once from the command line and record it in the history.

    python -m dashboard monolith IMAGE [--model M] [--db PATH | --data-dir DIR]

Runs ``python -m model_backend.monolith IMAGE --json`` through the dashboard's
runner, under the same cap as runs from the UI (every process sharing the
data folder), stores the run (success or error) in the history as a
"monolith" row from the "cli", and prints the monolith's JSON on one line.
Exit status 0, or 2 when the result is an error (as the monolith's own).
The model, the history file and the data folder default to the dashboard's
settings (``WARMSERVE_DASH_*``, then ``WARMSERVE_MODEL``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..settings import DashboardSettings
from .controller import run_monolith_from_command_line

ERROR_EXIT = 2


def add_parser(commands) -> argparse.ArgumentParser:
    """The ``monolith`` subcommand on the dashboard's parser."""
    parser = commands.add_parser("monolith", help="run the monolith on one image and record it in the history")
    parser.add_argument("image", type=Path, help="the image to classify")
    parser.add_argument("--model", dest="monolith_model", metavar="M",
                        help="model name or .keras file (default: the dashboard's monolith model)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--db", dest="db_path", help="history: a SQLite file or a database URL (default DATA_DIR/history.sqlite3)")
    where.add_argument("--data-dir", type=Path, help="history and monolith queue folder (default ./data in the repo)")
    return parser


def run(settings: DashboardSettings, image: Path) -> int:
    """Run, record, print the JSON; the exit status."""
    result = run_monolith_from_command_line(settings, image)
    print(json.dumps(result))
    return ERROR_EXIT if result.get("error") else 0
