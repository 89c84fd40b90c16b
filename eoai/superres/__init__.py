"""eoai.superres."""
