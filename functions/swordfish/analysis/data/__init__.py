"""Static reference data for the analysis engine (brands, hosting services, word lists)."""
