"""The chart of a NEXMark bench run: throughput per query, jetmq beside Bytewax.

    python -m bench.nexmark.chart [results.json] [out.png]

(defaults: the bench's RESULTS_FILE and docs/images/nexmark-throughput.png). Needs
matplotlib (the `bench` extra). A wrong result has no bar, and says so.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from bench.nexmark.bench import RESULTS_FILE

DEFAULT_OUT = Path(__file__).resolve().parents[2] / "docs" / "images" / "nexmark-throughput.png"
COLORS = {"jetmq": "#2b6cb0", "bytewax": "#dd6b20"}


def draw(results_file: Path, out: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run = json.loads(Path(results_file).read_text())
    results = run["results"]
    names = sorted({r["query"] for r in results})
    by = {(r["engine"], r["query"]): r for r in results}
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=110)
    width = 0.38
    for n, engine in enumerate(("jetmq", "bytewax")):
        xs, heights = [], []
        for i, name in enumerate(names):
            r = by.get((engine, name))
            x = i + (n - 0.5) * width
            if r is None:
                continue
            if r["error"]:
                ax.text(x, 0, "wrong\nresult", ha="center", va="bottom", fontsize=7, color=COLORS[engine])
                continue
            xs.append(x)
            heights.append(r["throughput"] / 1000)
        bars = ax.bar(xs, heights, width, label="jetmq, 2 members" if engine == "jetmq" else
                      "Bytewax 0.21, 2 processes", color=COLORS[engine])
        ax.bar_label(bars, fmt="%.0f", fontsize=7, padding=2)
    for i, name in enumerate(names):
        if ("bytewax", name) not in by:
            ax.text(i + 0.5 * width, 0, "no\ndataflow", ha="center", va="bottom", fontsize=7, color="#777")
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("thousand events/s (2 cores)")
    ax.set_title(f"NEXMark throughput, {run['events']:,} events per query ({run['time']}, "
                 f"load average {run['load_average'][0]:.1f})", fontsize=10)
    ax.legend()
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    print(f"chart written to {out}")


if __name__ == "__main__":
    draw(Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS_FILE,
         Path(sys.argv[2]) if len(sys.argv) > 2 else DEFAULT_OUT)
