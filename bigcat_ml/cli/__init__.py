"""The command line: the step registry, Hydra entry points, the MLflow-project launcher."""
