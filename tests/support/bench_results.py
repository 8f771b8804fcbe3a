"""A made-up bench result (what tools.bench writes), for the report, target and figure tests of both layers.

The numbers are chosen so that every verdict is known (see tests/unit/test_bench.py):
the service passes its latency target only through the +1 ms slack, the HTTP API misses
both of its targets, everything else passes.
"""

from __future__ import annotations


def load_run(c, p50, p99, ips, batch):
    return {"concurrency": c, "requests": 10, "errors": 0, "p50_ms": p50, "p95_ms": p99 * 0.9, "p99_ms": p99,
            "images_per_s": ips, "mean_batch_size": batch}


def forward_table() -> list[dict]:
    """2 cores: the cheapest forward is 1 thread at batch 8 (4.0 core-ms), not 2 threads (2 x 2.5 = 5.0 core-ms)."""
    one = {1: 5.0, 2: 4.6, 4: 4.2, 8: 4.0, 16: 4.1}
    two = {1: 3.0, 2: 2.8, 4: 2.6, 8: 2.5, 16: 2.5}
    return ([{"threads": 1, "batch": b, "ms_per_image": ms} for b, ms in one.items()]
            + [{"threads": 2, "batch": b, "ms_per_image": ms} for b, ms in two.items()])


def fake_results(**overrides) -> dict:
    results = {
        "model": "efficientnet-lite0", "weights": "default (pretrained)", "timing_only": False, "quick": True,
        "machine": {"cpus": 2, "platform": "Linux", "loadavg_before": "0.1", "loadavg_after": "0.2"},
        "photo": {"description": "chelsea"},
        "limit": {"runtime": "litert", "runtime_reason": "cached LiteRT model verified", "cores": 2,
                  "request_p50_ms": 5.0, "decode_preprocess_ms": 1.0,
                  "camera_decode": {"p50_ms": 10.0, "bytes": 3_800_000},
                  "forward_batch1_ms": 3.3,
                  "forward_vs_plain": {"backend_ms": 3.3, "plain_ms": 3.0, "ratio": 1.1, "pairs": 30,
                                       "backend_threads": 2, "plain_threads": 2},
                  "forward_table": forward_table(),
                  "best_forward": {"threads": 1, "batch": 8, "ms_per_image": 4.0, "core_ms_per_image": 4.0},
                  "pipeline_limit_ips": 400.0, "pipeline_limit_definition": "pipeline limit = cores x 1000 / (...)"},
        "monolith": {"runtime": "tensorflow", "runs": 1, "median_wall_ms": 4000.0, "stages_ms": {"import": 2000.0, "total": 3900.0}},
        "startup": {"runtime": "litert", "first_start_s": 9.0, "starts_s": [1.4, 1.5, 1.7], "median_s": 1.5},
        "service": {"runtime": "litert", "runtime_reason": "cached LiteRT model verified",
                    "runs": [load_run(1, 5.8, 7.0, 170.0, 1.0), load_run(16, 50.0, 100.0, 360.0, 3.0)],
                    "load_generator": "one thread, one DEALER socket carrying every request in flight",
                    "client_threads": load_run(16, 55.0, 110.0, 330.0, 3.0),
                    "rss_mb": 300.0, "rss_after_http_mb": 320.0},
        "http": {"runtime": "litert", "runs": [load_run(1, 8.0, 10.0, 120.0, 1.0), load_run(16, 60.0, 180.0, 280.0, 2.0)],
                 "png_runs": [load_run(1, 12.0, 14.0, 80.0, 1.0), load_run(16, 70.0, 100.0, 200.0, 2.0)], "rss_mb": 80.0},
        "service_tf": {"runtime": "tensorflow", "runtime_reason": "asked for (--runtime tensorflow)",
                       "runs": [load_run(1, 15.0, 20.0, 66.0, 1.0), load_run(16, 250.0, 300.0, 60.0, 9.0)], "rss_mb": 700.0},
        "workers": {"skipped": "--skip-workers"},
    }
    results.update(overrides)
    return results
