"""The backend's Prometheus endpoint (--metrics-port): what a scrape shows after real requests through ZeroMQ."""

from __future__ import annotations

import pytest
import requests

from model_backend.errors import BadImage
from tests.support.standin import shade_png


def scrape(port: int) -> str:
    response = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5)
    assert response.status_code == 200
    return response.text


def sample(text: str, line_start: str) -> float:
    [line] = [line for line in text.splitlines() if line.startswith(line_start)]
    return float(line.rsplit(" ", 1)[1])


def test_a_scrape_counts_answers_errors_stages_batches_and_the_queue(serve) -> None:
    server = serve(metrics_port=0)
    assert server.server.metrics_port and server.server.info()["metrics_port"] == server.server.metrics_port
    with server.client() as client:
        for shade in (10, 20, 30):
            client.classify(shade_png(shade))
        with pytest.raises(BadImage):
            client.classify(b"not an image")
    text = scrape(server.server.metrics_port)
    assert sample(text, 'warmserve_backend_requests_total{code="none",outcome="ok"}') == 3
    assert sample(text, 'warmserve_backend_requests_total{code="bad_image",outcome="error"}') == 1
    assert sample(text, 'warmserve_backend_stage_duration_seconds_count{stage="inference"}') == 3
    assert sample(text, 'warmserve_backend_stage_duration_seconds_bucket{le="10.0",stage="total"}') == 3
    assert sample(text, "warmserve_backend_batch_size_count") >= 1
    assert sample(text, "warmserve_backend_queue_depth") == 0
    assert sample(text, "warmserve_backend_queue_capacity") == server.server.settings.queue_size
    assert 'warmserve_backend_info{model="' in text


def test_without_the_flag_nothing_listens(serve) -> None:
    server = serve()
    assert server.server.metrics_port is None and server.server.info()["metrics_port"] is None
