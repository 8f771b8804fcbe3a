"""Prometheus metrics: ``folder`` (multiprocess set-up, imported first) and ``registry`` (the metrics and /metrics)."""
