"""Benchmarks: run as modules (``python -m benchmarks.<name>``); they print numbers, assert nothing."""
