"""Metrics, reports with plots, model comparison and benchmarks."""
