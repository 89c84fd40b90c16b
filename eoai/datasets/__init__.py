"""eoai.datasets."""
