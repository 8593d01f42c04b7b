"""Scoring: keras.applications models, ImageNet ground truth, inference on Spark or locally, metrics."""
