"""Tracking: MLflow step runs, the names of every tag/artifact/metric, reuse keys, comparisons, the UI URL."""
