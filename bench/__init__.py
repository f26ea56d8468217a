"""Benchmarks with their baselines, printing ratios (see docs/design.md §2)."""
