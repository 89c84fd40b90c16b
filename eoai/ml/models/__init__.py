"""eoai.ml.models."""
