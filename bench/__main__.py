"""Run every benchmark and print one table: ``scripts/bench`` (or python -m bench)."""
import sys

from bench import detection, shuffle
from bench.report import print_table

BENCHMARKS = {"detection": detection, "shuffle": shuffle}


def main() -> None:
    """All benchmarks, or those named on the command line (e.g. python -m bench shuffle)."""
    names = sys.argv[1:] or list(BENCHMARKS)
    rows = []
    for name in names:
        rows += BENCHMARKS[name].run()
    print_table(rows)


if __name__ == "__main__":
    main()
