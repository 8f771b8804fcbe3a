"""Real subprocesses (backend, workers, broker, dashboard, monolith) and TensorFlow itself."""
