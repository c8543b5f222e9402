"""Benchmarks behind ``selenite bench …``; each writes its section of docs/benchmarks.md."""
