"""Benchmark suites for `make bench` (see course_lib/bench.py). Each module here exposes
`run(quick: bool = False) -> list[dict]`: one row per measurement, with "suite" and "name" keys."""
