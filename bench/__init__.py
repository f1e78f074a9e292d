"""Reproducible benchmarks of affectstream on this machine: stage throughput, end to end, naive baseline, live latency.

Run `make bench` (or `python -m bench`, `BENCH_QUICK=1` for the short variant); results go to
`bench/results/latest.json` and `latest.md`. See docs/bench.md.
"""
