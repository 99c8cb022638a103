"""chaos: kill and pause members while an exactly-once job runs, then check its output.

Usage:
  chaos [--seconds S] [--interval S] [--members N] [--rate R] [--keys K]
        [--pause-probability P] [--seed N] [--data-dir DIR] [--max-answer-s S]
  chaos -h | --help

Options:
  --seconds S              How long to inject faults [default: 60].
  --interval S             Seconds between faults [default: 4].
  --members N              Members forked at start [default: 3].
  --rate R                 Items per second the job's source emits [default: 5000].
  --keys K                 Keys of the per-key sequence numbers [default: 20].
  --pause-probability P    Chance that a fault is a pause (SIGSTOP past the heartbeat
                           timeout, then SIGCONT) instead of a SIGKILL [default: 0.2].
  --seed N                 Seed of the random choices [default: 1].
  --data-dir DIR           Keep the cluster's data dir here (default: a temporary one).
  --max-answer-s S         The slowest answer of the master to a client allowed [default: 2].
  -h, --help               Show this help.

A local cluster starts (heartbeat timeout 1 s, scale-up delay 1 s) and runs an
EXACTLY_ONCE job: a source of (key, seq) items, replayable from its offset, into a
list that commits with snapshots. Every interval a random member is killed (the
master forks its replacement: the cluster keeps its size by respawn alone) or paused
(it comes back by itself). Meanwhile a client asks the master for the cluster's
state every 100 ms and times each answer. At the end the job is cancelled and every
key's sequence is checked: 0..n-1, no gap, no duplicate. Exit code 0 when nothing was
lost or duplicated and the master answered every request within --max-answer-s.
With more members than cores (--members 6 on 2 cores) and --interval 3, it is the
overload variant: the master must degrade, not fall into a storm of restarts.
"""
from __future__ import annotations

import random
import signal
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

from jetmq.config import JobConfig, ProcessingGuarantee
from jetmq.job_status import JobStatus
from jetmq.cli.common import RET_ERROR, RET_OK, parse_args
from jetmq.client import JetClient
from jetmq.embedded import Cluster
from jetmq.testing import SequenceVerdict, sequence_dag, verify_sequences, wait_until

HEARTBEAT_INTERVAL_MS = 200
HEARTBEAT_TIMEOUT_MS = 1000
SCALE_UP_DELAY_MS = 1000
SNAPSHOT_INTERVAL_MS = 500
LIST_NAME = "chaos-sequences"
WAIT_S = 60
#: How often the latency probe asks the master for the cluster's state.
PROBE_INTERVAL_S = 0.1
#: How long the probe waits for an answer before counting it as none.
PROBE_TIMEOUT_S = 10.0


class AnswerProbe(threading.Thread):
    """Asks the master for the cluster's state every PROBE_INTERVAL_S, on a connection of
    its own, and keeps the slowest answer (a request that got none counts as PROBE_TIMEOUT_S)."""

    def __init__(self, address: str, key_file):
        super().__init__(name="chaos-probe", daemon=True)
        self._address = address
        self._key_file = key_file
        self._done = threading.Event()
        self.answers = 0
        self.slowest_s = 0.0
        self.max_members = 0
        self.sizes: list[int] = []  # the cluster's size at every answer

    def run(self) -> None:
        with JetClient(self._address, timeout_s=PROBE_TIMEOUT_S, key_file=self._key_file) as client:
            while not self._done.wait(PROBE_INTERVAL_S):
                start = time.monotonic()
                try:
                    size = client.cluster().size
                except Exception:
                    size = 0
                self.slowest_s = max(self.slowest_s, time.monotonic() - start)
                self.answers += 1
                self.max_members = max(self.max_members, size)
                self.sizes.append(size)

    def stop(self) -> None:
        self._done.set()
        self.join(PROBE_TIMEOUT_S + 1)


@dataclass
class ChaosReport:
    kills: int
    pauses: int
    restarts: int
    verdict: SequenceVerdict
    seconds: float
    answers: int  # requests the latency probe made
    slowest_answer_s: float
    max_members: int  # the most members the probe saw at once
    full_size_share: float  # of the probe's answers, the share that saw every member present
    final_members: int  # members once the faults stopped and the pool healed

    def passed(self, max_answer_s: float) -> bool:
        return self.verdict.exactly_once and self.slowest_answer_s <= max_answer_s

    def lines(self) -> list[str]:
        v = self.verdict
        return [
            f"faults injected:  {self.kills} kills, {self.pauses} pauses over {self.seconds:.0f} s",
            f"job executions:   {self.restarts + 1} (the job restarted {self.restarts} times)",
            f"master answers:   {self.answers}, the slowest in {self.slowest_answer_s * 1000:.0f} ms; "
            f"at most {self.max_members} members",
            f"cluster size:     all members present in {self.full_size_share:.0%} of the answers; "
            f"{self.final_members} at the end",
            f"items verified:   {v.items} ({v.keys} keys)",
            f"lost:             {v.lost}",
            f"duplicated:       {v.duplicated}",
            "result:           " + ("EXACTLY ONCE" if v.exactly_once else "FAILED"),
        ]


def run_chaos(seconds: float, interval: float, members: int = 3, rate: int = 5000, keys: int = 20,
              pause_probability: float = 0.2, seed: int = 1, data_dir: str | Path | None = None,
              log=print) -> ChaosReport:
    rng = random.Random(seed)
    kills = pauses = 0
    with Cluster(members=members, data_dir=data_dir, heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
                 heartbeat_timeout_ms=HEARTBEAT_TIMEOUT_MS, scale_up_delay_ms=SCALE_UP_DELAY_MS) as cluster:
        probe = AnswerProbe(cluster.address, cluster.key_file)
        probe.start()
        try:
            config = JobConfig(name="chaos", processing_guarantee=ProcessingGuarantee.EXACTLY_ONCE,
                               snapshot_interval_ms=SNAPSHOT_INTERVAL_MS)
            job = cluster.new_job(sequence_dag(LIST_NAME, keys=keys, per_second=rate), config)
            wait_until(lambda: job.status is JobStatus.RUNNING, WAIT_S, "the chaos job did not start")
            start = time.monotonic()
            while time.monotonic() - start < seconds:
                time.sleep(interval * rng.uniform(0.5, 1.5))  # the pace of the faults
                alive = cluster.cluster().members
                if not alive:  # every member is being replaced (a loaded machine): no one to fault this round
                    log(f"[{time.monotonic() - start:5.1f} s] no member to fault")
                    continue
                victim = rng.choice(alive)
                if rng.random() < pause_probability:  # it comes back by itself: no replacement
                    _pause(victim.pid, HEARTBEAT_TIMEOUT_MS / 1000 + 0.5)
                    pauses += 1
                    log(f"[{time.monotonic() - start:5.1f} s] paused member {victim.uuid[:8]} (pid {victim.pid})")
                else:  # the master forks its replacement: the cluster keeps its size by respawn alone
                    psutil.Process(victim.pid).send_signal(signal.SIGKILL)
                    kills += 1
                    log(f"[{time.monotonic() - start:5.1f} s] killed member {victim.uuid[:8]} (pid {victim.pid})")
            elapsed = time.monotonic() - start
            healed = wait_until(lambda: (size := cluster.cluster().size) >= members and size, WAIT_S,
                                lambda: f"the pool did not heal: {cluster.cluster().size} of {members} members")
            wait_until(lambda: job.status is JobStatus.RUNNING, WAIT_S, lambda: f"the job is {job.status}")
            restarts = job.metrics()["executions_started"] - 1
            job.cancel()
            wait_until(lambda: job.status is JobStatus.FAILED, WAIT_S, "the job did not end")
            verdict = verify_sequences(cluster.get_list(LIST_NAME))
        finally:
            probe.stop()
    full = sum(size == members for size in probe.sizes) / max(1, len(probe.sizes))
    return ChaosReport(kills, pauses, restarts, verdict, elapsed, probe.answers, probe.slowest_s, probe.max_members,
                       full, healed)


def _pause(pid: int, seconds: float) -> None:
    process = psutil.Process(pid)
    process.send_signal(signal.SIGSTOP)
    try:
        time.sleep(seconds)  # long enough for the heartbeat timeout: the fault itself
    finally:
        try:
            process.send_signal(signal.SIGCONT)
        except psutil.NoSuchProcess:
            pass


def main(argv: list[str] | None = None) -> int:
    args = parse_args(__doc__, argv)
    report = run_chaos(float(args["--seconds"]), float(args["--interval"]), int(args["--members"]),
                       int(args["--rate"]), int(args["--keys"]), float(args["--pause-probability"]),
                       int(args["--seed"]), args["--data-dir"])
    print("\n".join(report.lines()))
    return RET_OK if report.passed(float(args["--max-answer-s"])) else RET_ERROR


if __name__ == "__main__":
    sys.exit(main())
