"""eoai.reports."""
