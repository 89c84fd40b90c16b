"""eoai.timeseries."""
