"""The master as a control plane, with 20,000,000 keys of state on 2 members.

Rows: how long a snapshot of that state takes (members write it in parallel; the
baseline is one process pickling the same dict to a file); the longest turn of the
master's loop meanwhile; a client's p99 answer time while snapshots run every second
(against the same client on the idle cluster); and the restore after a member is
killed, from the SIGKILL to the restored state counting again (against one process
reading back its pickle).
"""
from __future__ import annotations

import json
import os
import pickle
import re
import signal
import statistics
import tempfile
import threading
import time
from pathlib import Path

import jetmq
from bench.report import Row
from jetmq import JobConfig, ProcessingGuarantee
from jetmq.core import DAG, BroadcastKey, Edge, Processor
from jetmq.testing import wait_until

KEYS = 20_000_000
SNAPSHOTS_MEASURED = 3
WAIT_S = 600


class KeySource(Processor):
    """Emits 0 .. keys-1 once (processor 0), then one key every millisecond, forever."""

    def __init__(self, keys: int):
        self.keys = keys

    def init_hook(self):
        self.active = self.context.global_index == 0
        self.next = 0

    def complete(self):
        if not self.active:
            return False
        if self.next < self.keys:
            end = min(self.keys, self.next + 65536)
            self.next += self.outbox.offer_many(range(self.next, end))
        elif self.outbox.offer(self.next % self.keys):
            self.next += 1
            time.sleep(0.001)
        return False

    def save_to_snapshot(self):
        return self.outbox.offer_to_snapshot(BroadcastKey(self.context.global_index), self.next)

    def restore_from_snapshot(self, inbox):
        for key, value in inbox.take():
            if key == BroadcastKey(self.context.global_index):
                self.next = value


class KeyCounter(Processor):
    """Counts per key (its state); after a restore it writes the time to ``restored_path``."""

    def __init__(self, restored_path: str):
        self.restored_path = restored_path

    def init_hook(self):
        self.counts = {}
        self._saving = None
        self._restored = False

    def process(self, ordinal, inbox):
        counts = self.counts
        for key in inbox.take():
            counts[key] = counts.get(key, 0) + 1
        if self._restored:  # counting again after a restore: the output flows
            self._restored = False
            with open(self.restored_path, "a") as f:
                f.write(f"{time.time()}\n")

    def save_to_snapshot(self):
        if self._saving is None:
            self._saving = [list(self.counts.items()), 0]
        entries, taken = self._saving
        taken += self.outbox.offer_to_snapshot_many(entries, taken)
        if taken < len(entries):
            self._saving[1] = taken
            return False
        self._saving = None
        return True

    def restore_from_snapshot(self, inbox):
        counts = self.counts
        for key, value in inbox.take():
            counts[key] = value
        self._restored = True


def _identity(item):
    return item


def _dag(restored_path: str) -> DAG:
    dag = DAG()
    source = dag.new_vertex("key-source", lambda: KeySource(KEYS))
    counter = dag.new_vertex("key-counter", lambda: KeyCounter(restored_path))
    dag.edge(Edge.between(source, counter).distributed().partitioned(_identity))
    return dag


def _p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98]


def _answer_times(jet, seconds: float, stop: threading.Event | None = None) -> list[float]:
    times = []
    with jetmq.JetClient(jet.address, key_file=jet.key_file) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not (stop and stop.is_set()):
            start = time.monotonic()
            client.cluster()
            times.append(time.monotonic() - start)
            time.sleep(0.1)
    return times


def _snapshot_entries(data_dir: Path, job) -> int:
    best = 0
    for manifest in (data_dir / "snapshots" / "jobs" / job.id_string).glob("*/manifest.json"):
        try:
            best = max(best, json.loads(manifest.read_text())["entry_count"])
        except (OSError, ValueError):
            pass
    return best


def _snapshot_durations(data_dir: Path) -> list[float]:
    log = (data_dir / "logs" / "master.log").read_text()
    return [int(ms) / 1000 for ms in re.findall(r"snapshot \d+ committed \(.*?, (\d+) ms\)", log)]


def _plain_baseline() -> tuple[float, float]:
    """One process: pickle the same 20 M-key dict to a file and fsync; read it back."""
    counts = {key: 1 for key in range(KEYS)}
    with tempfile.NamedTemporaryFile(prefix="bench-state-") as f:
        start = time.perf_counter()
        pickle.dump(counts, f, protocol=5)
        f.flush()
        os.fsync(f.fileno())
        write = time.perf_counter() - start
        del counts
        f.seek(0)
        start = time.perf_counter()
        pickle.load(f)
        read = time.perf_counter() - start
    return write, read


def run() -> list[Row]:
    plain_write, plain_read = _plain_baseline()
    with tempfile.TemporaryDirectory(prefix="bench-control-") as scratch:
        data_dir, restored = Path(scratch) / "data", Path(scratch) / "restored"
        with jetmq.Cluster(members=2, data_dir=data_dir) as jet:
            idle = _answer_times(jet, 10)
            job = jet.new_job(_dag(str(restored)), JobConfig(processing_guarantee=ProcessingGuarantee.EXACTLY_ONCE,
                                                              snapshot_interval_ms=1000))
            wait_until(lambda: _snapshot_entries(data_dir, job) >= KEYS, WAIT_S, "the state never reached 20 M keys")
            before = len(_snapshot_durations(data_dir))
            stop = threading.Event()
            busy: list[float] = []
            probe = threading.Thread(target=lambda: busy.extend(_answer_times(jet, WAIT_S, stop)), daemon=True)
            probe.start()
            wait_until(lambda: len(_snapshot_durations(data_dir)) >= before + SNAPSHOTS_MEASURED, WAIT_S,
                       "snapshots stopped")
            stop.set()
            probe.join()
            durations = _snapshot_durations(data_dir)[before:before + SNAPSHOTS_MEASURED]
            longest_turn = jet.master_stats()["longest_turn_ms"]
            victim = jet.cluster().members[1]
            killed = time.time()
            os.kill(victim.pid, signal.SIGKILL)
            wait_until(lambda: restored.exists() and restored.read_text().strip(), WAIT_S, "the job never restored")
            restore = float(restored.read_text().split()[0]) - killed
            job.cancel()
    return [
        Row("snapshot of 20,000,000 keys on 2 members", statistics.median(durations), plain_write, "s",
            "one process pickles the dict to a file", "<= 3 s"),
        Row("longest master loop turn (snapshots every 1 s)", longest_turn, 50, "ms", "50 ms (target)", "<= 50 ms"),
        Row("client answer p99 during 1 s snapshots", _p99(busy) * 1000, _p99(idle) * 1000, "ms",
            "the same client, idle cluster", "<= 20 ms"),
        Row("restore of 20,000,000 keys after a member kill", restore, plain_read, "s",
            "one process reads the pickle back", "<= 5 s"),
    ]
