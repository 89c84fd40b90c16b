"""eoai.viz."""
