"""`python -m bench` (what `make bench` runs); `BENCH_QUICK=1` for the under-3-minutes variant."""

import sys

from bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
