"""Tracking: MLflow step runs, the names of every tag/artifact/metric, reuse keys, the UI URL."""
