"""Data files shipped with medcode (terminology extras written in the project's own words)."""
