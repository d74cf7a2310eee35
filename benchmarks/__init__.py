"""Benchmarks: python -m benchmarks.<name> prints figures and ratios against a baseline measured in the same run."""
