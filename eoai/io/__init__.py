"""eoai.io."""
