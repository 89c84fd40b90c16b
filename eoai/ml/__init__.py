"""eoai.ml."""
