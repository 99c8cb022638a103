"""Word count: jetmq on 2 members against a plain single-process dict loop, same files.

The corpus (2,000,000 lines x 10 words, 10,000-word vocabulary, fixed seed) is made
once and kept in the system's temp dir. Also reports the peak RSS of each member
during the jetmq run, sampled every 50 ms.
"""
from __future__ import annotations

import random
import tempfile
import threading
import time
from pathlib import Path

import psutil

import jetmq
from bench.report import Row
from jetmq.pipeline import Pipeline, Sinks, Sources
from jetmq.pipeline.aggregate import AggregateOperations as ops

LINES = 2_000_000
WORDS_PER_LINE = 10
VOCABULARY = 10_000
FILES = 8
SEED = 42


def corpus() -> Path:
    directory = Path(tempfile.gettempdir()) / f"jetmq-bench-corpus-{LINES}x{WORDS_PER_LINE}-{VOCABULARY}-{SEED}"
    done = directory / ".complete"
    if done.exists():
        return directory
    directory.mkdir(exist_ok=True)
    rng = random.Random(SEED)
    vocabulary = [f"w{rng.getrandbits(40):x}" for _ in range(VOCABULARY)]
    per_file = LINES // FILES
    for index in range(FILES):
        with open(directory / f"part-{index:02d}.txt", "w") as f:
            for _ in range(per_file):
                f.write(" ".join(rng.choices(vocabulary, k=WORDS_PER_LINE)))
                f.write("\n")
    done.touch()
    return directory


def plain_loop(directory: Path) -> tuple[float, dict]:
    start = time.perf_counter()
    counts: dict = {}
    for path in sorted(directory.glob("part-*.txt")):
        with open(path) as f:
            for line in f:
                for word in line.lower().split():
                    counts[word] = counts.get(word, 0) + 1
    return time.perf_counter() - start, counts


def _split(line):
    return line.lower().split()


def _identity(word):
    return word


class RssSampler(threading.Thread):
    def __init__(self, pids):
        super().__init__(daemon=True)
        self.processes = [psutil.Process(pid) for pid in pids]
        self.peaks = [0] * len(pids)
        self.stop_event = threading.Event()

    def run(self):
        while not self.stop_event.is_set():
            for i, process in enumerate(self.processes):
                try:
                    self.peaks[i] = max(self.peaks[i], process.memory_info().rss)
                except psutil.Error:
                    pass
            self.stop_event.wait(0.05)


def word_count_pipeline(directory: Path) -> Pipeline:
    """The benchmarks' word count: the corpus's files -> words -> counts in map "word-counts"."""
    p = Pipeline()
    (p.read_from(Sources.files(str(directory), glob="part-*.txt"))
      .flat_map(_split)
      .grouping_key(_identity)
      .aggregate(ops.counting())
      .write_to(Sinks.map("word-counts")))
    return p


def jetmq_run(directory: Path) -> tuple[float, dict, list[int], int]:
    p = word_count_pipeline(directory)
    with jetmq.Cluster(members=2) as jet:
        pids = [m.pid for m in jet.cluster().members]
        idle_rss = max(psutil.Process(pid).memory_info().rss for pid in pids)
        sampler = RssSampler(pids)
        sampler.start()
        start = time.perf_counter()
        jet.new_job(p).join(timeout=600)
        elapsed = time.perf_counter() - start
        sampler.stop_event.set()
        sampler.join()
        counts = jet.get_map("word-counts")
    return elapsed, counts, sampler.peaks, idle_rss


def run() -> list[Row]:
    directory = corpus()
    baseline_s, expected = plain_loop(directory)
    jetmq_s, counts, peaks, idle_rss = jetmq_run(directory)
    assert counts == expected, "jetmq's word counts differ from the plain loop's"
    words = LINES * WORDS_PER_LINE
    return [
        Row("word count, 2 members (speed vs plain loop)", words / jetmq_s / 1e6, words / baseline_s / 1e6, "M/s",
            "single-process dict loop, same files", ">= 0.5x"),
        Row("peak RSS per member during word count", max(peaks) / 2**20, idle_rss / 2**20, "MB",
            "an idle member's RSS", "bounded"),
    ]
