"""The command line, on top of everything: the MLflow-project launcher, MLproject's writer, the UI, Hydra's job files."""
