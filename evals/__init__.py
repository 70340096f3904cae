"""Benchmarks and evals run by `nextslot bench` and `nextslot eval`."""
