"""bigcat_ml."""
