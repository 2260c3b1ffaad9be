"""Tests of the benchmark harness and the parity check (compare_results.py)."""
