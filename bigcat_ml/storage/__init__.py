"""Storage: the one file-system layer for every read and write outside Spark."""
