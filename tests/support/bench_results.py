"""A made-up bench result (what tools.bench writes), for the report, target and figure tests of both layers."""

from __future__ import annotations


def fake_results(**overrides) -> dict:
    def run(c, p50, p99, ips, batch):
        return {"concurrency": c, "requests": 10, "errors": 0, "p50_ms": p50, "p95_ms": p99 * 0.9, "p99_ms": p99,
                "images_per_s": ips, "mean_batch_size": batch}

    results = {
        "model": "resnet50", "weights": "random", "timing_only": True, "quick": True,
        "machine": {"cpus": 2, "platform": "Linux", "loadavg_before": "0.1", "loadavg_after": "0.2"},
        "photo": {"description": "chelsea"},
        "limit": {"request_p50_ms": 20.0, "decode_preprocess_ms": 2.0, "decode_preprocess_12mp_ms": 9.0,
                  "forward_batch1_ms": 18.0, "forward_per_image_ms": {"1": 18.0, "8": 8.0}, "best_batch": 8,
                  "best_forward_per_image_ms": 8.0, "pipeline_limit_ips": 100.0},
        "service": {"runs": [run(1, 21.5, 25.0, 45.0, 1.0), run(16, 150.0, 300.0, 90.0, 12.0)], "rss_mb": 700.0},
        "http": {"runs": [run(1, 30.0, 35.0, 33.0, 1.0), run(16, 200.0, 600.0, 70.0, 8.0)], "rss_mb": 80.0},
        "monolith": {"runs": 1, "median_wall_ms": 4000.0, "stages_ms": {"import": 2000.0, "total": 3900.0}},
        "workers": {"skipped": "--skip-workers"},
    }
    results.update(overrides)
    return results
