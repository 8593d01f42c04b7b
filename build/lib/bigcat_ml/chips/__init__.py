"""chips."""
