"""Run every benchmark and print one table: ``scripts/bench`` (or python -m bench [names...])."""
import importlib
import sys
import traceback

from bench.report import print_table

BENCHMARKS = ["detection", "shuffle", "wordcount", "metrics", "multihost", "lifecycle", "cli_startup", "recovery",
              "snapshots", "control_plane", "latency", "idle"]
ON_REQUEST = ["nexmark"]  # minutes long: run only when named (scripts/bench nexmark)


def main() -> None:
    """All benchmarks, or those named on the command line (e.g. python -m bench shuffle)."""
    names = sys.argv[1:] or BENCHMARKS
    unknown = set(names) - set(BENCHMARKS) - set(ON_REQUEST)
    if unknown:
        raise SystemExit(f"unknown benchmark(s) {sorted(unknown)}; choose from {BENCHMARKS + ON_REQUEST}")
    rows, failed = [], []
    for name in names:
        try:
            rows += importlib.import_module(f"bench.{name}").run()
        except Exception:  # the other benchmarks' figures still count: print them, then fail
            traceback.print_exc()
            failed.append(name)
    print_table(rows)
    if failed:
        raise SystemExit(f"benchmark(s) that failed (traceback above): {', '.join(failed)}")


if __name__ == "__main__":
    main()
