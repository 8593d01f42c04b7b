"""Build-time tools: run from the checkout (``python -m tools.<name>``), never imported by ``bigcat_ml``."""
