"""`python -m benchmarks.throughput`: the same harness as `purejaxvpg bench`."""

import sys

from purejaxvpg.tools.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
