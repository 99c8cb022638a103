"""The benchmark table: one row per figure, with its baseline and the ratio."""
from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    name: str
    value: float
    baseline: float
    unit: str
    baseline_name: str
    target: str = ""

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")


def median(values) -> float:
    return statistics.median(values)


def print_table(rows: list[Row]) -> None:
    width = max([44, *(len(row.name) for row in rows)])
    header = f"{'benchmark':<{width}} {'jetmq':>12} {'baseline':>12} {'ratio':>8}  {'target':<16} baseline is"
    print(header)
    print("-" * len(header))
    for row in rows:
        print(f"{row.name:<{width}} {row.value:>10.2f}{row.unit:>2} {row.baseline:>10.2f}{row.unit:>2} "
              f"{row.ratio:>7.2f}x  {row.target:<16} {row.baseline_name}")
