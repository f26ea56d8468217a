"""Benchmarks with their baselines, printing ratios (see ARCHITECTURE.md)."""
