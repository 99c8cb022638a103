"""Run every benchmark and print one table: ``scripts/bench`` (or python -m bench)."""
from bench import detection
from bench.report import print_table


def main() -> None:
    rows = []
    for module in (detection,):
        rows += module.run()
    print_table(rows)


if __name__ == "__main__":
    main()
