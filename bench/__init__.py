"""Benchmarks: each `bench/bench_*.py` exposes `run(out_dir: Path) -> dict` and prints ratios against a
baseline measured in the same run. `python -m bench [--only NAME] --out DIR` runs them and writes JSON."""
