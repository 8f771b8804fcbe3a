"""A tiny Dash app with one background callback on the dashboard's job manager, for the Celery tests.

The test process and its Celery worker both build it from this file, so Dash
registers the same task name on both sides (it hashes the callback's source).

    python -m tests.support.jobs_app REDIS_URL DATA_DIR    runs its Celery worker (the dashboard's worker argv)
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from dash import Dash, Input, Output, html

from dashboard.jobs.manager import background_manager
from dashboard.jobs.worker import worker_argv
from dashboard.settings import DashboardSettings


def build(redis_url: str, data_dir: Path):
    """(app, manager): a button whose background callback doubles its click count in a worker process."""
    settings = DashboardSettings(redis=redis_url, data_dir=data_dir)
    manager = background_manager(settings)
    app = Dash(__name__, background_callback_manager=manager)
    app.layout = html.Div([html.Button(id="go"), html.Div(id="out"), html.Div(id="progress")])

    @app.callback(Output("out", "children"), Input("go", "n_clicks"), background=True,
                  progress=[Output("progress", "children")], prevent_initial_call=True)
    def double_in_a_worker(set_progress, n_clicks):
        set_progress([f"doubling {n_clicks}"])
        return f"{2 * n_clicks} from process {os.getpid()}"

    return app, manager


if __name__ == "__main__":
    _app, jobs = build(sys.argv[1], Path(sys.argv[2]))
    jobs.handle.worker_main(worker_argv(DashboardSettings(redis=sys.argv[1]), 2, "INFO"))
