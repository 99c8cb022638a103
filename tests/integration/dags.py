"""Small DAGs for integration tests of job management (no Pipeline API needed)."""
import time

from jetmq.core import DAG, Edge, ItemsSourceProcessor, NoopProcessor, Processor


class EndlessSource(Processor):
    """Emits 1 forever; its close() takes ``close_delay_s`` (a slow resource release)."""

    def __init__(self, close_delay_s: float = 0.0):
        self.close_delay_s = close_delay_s

    def complete(self):
        self.outbox.offer(1)
        return False

    def close(self):
        time.sleep(self.close_delay_s)


def streaming_dag(close_delay_s: float = 0.0) -> DAG:
    """A job that runs until cancelled; a termination of it stays COMPLETING at least
    ``close_delay_s``."""
    dag = DAG()
    source = dag.new_vertex("endless-source", lambda: EndlessSource(close_delay_s))
    dag.edge(Edge.between(source, dag.new_vertex("noop-sink", NoopProcessor)).distributed())
    return dag


def batch_dag(count: int = 10) -> DAG:
    """A job that completes at once."""
    dag = DAG()
    source = dag.new_vertex("items", lambda: ItemsSourceProcessor(range(count)))
    dag.edge(Edge.between(source, dag.new_vertex("noop-sink", NoopProcessor)))
    return dag


# ------------------------------------------------------------------------------------
# An exactly-once test job: a paced source with its offset in snapshots into a keyed
# counter whose state is in snapshots. The counts are written to a named map when the
# job completes, so a correct run shows exactly count / KEYS per key.

import os  # noqa: E402

from jetmq.core import BroadcastKey  # noqa: E402

KEYS = 10


class PacedSource(Processor):
    """Emits 0..count-1 (only processor 0), at most ``per_ms`` items per millisecond."""

    def __init__(self, count: int, per_ms: int = 5):
        self.count, self.per_ms = count, per_ms
        self.next = 0
        self.last = 0.0

    def init_hook(self):
        if self.context.global_index != 0:
            self.next = self.count

    def complete(self):
        now = time.monotonic()
        if now - self.last < 0.001:
            return False
        self.last = now
        end = min(self.count, self.next + self.per_ms)
        self.next += self.outbox.offer_many(range(self.next, end))
        return self.next >= self.count

    def next_deadline(self):
        return self.last + 0.001  # the next millisecond's items

    def save_to_snapshot(self):
        return self.outbox.offer_to_snapshot(BroadcastKey(self.context.global_index), self.next)

    def restore_from_snapshot(self, inbox):
        for key, value in inbox.take():
            if key == BroadcastKey(self.context.global_index):
                self.next = value


class StallingCounter(Processor):
    """Counts items per key; keyed state in snapshots; writes the counts at the end.

    With ``stall_dir``, it stalls on purpose on the member of index 0: in phase 1
    (save_to_snapshot) or phase 2 (snapshot_commit_finish) of its first snapshot it
    writes ``<stall_dir>/stalled`` and waits until ``<stall_dir>/release`` exists,
    so a test can kill a member at that moment.
    """

    def __init__(self, map_name: str, stall_dir: str | None = None, stall_in: str = "phase1"):
        self.map_name, self.stall_dir, self.stall_in = map_name, stall_dir, stall_in

    def init_hook(self):
        self.counts = {}

    def process(self, ordinal, inbox):
        counts = self.counts
        for item in inbox.take():
            counts[item % KEYS] = counts.get(item % KEYS, 0) + 1

    def _stalled(self, phase: str) -> bool:
        if self.stall_dir is None or self.stall_in != phase or self.context.member_index != 0:
            return False
        if os.path.exists(os.path.join(self.stall_dir, "release")):
            return False
        open(os.path.join(self.stall_dir, "stalled"), "w").close()
        return True

    def save_to_snapshot(self):
        if self._stalled("phase1"):
            return False
        for key, value in self.counts.items():
            self.outbox.offer_to_snapshot(key, value)
        return True

    def snapshot_commit_finish(self, success):
        return not self._stalled("phase2")

    def restore_from_snapshot(self, inbox):
        for key, value in inbox.take():
            self.counts[key] = value

    def complete(self):
        self.context.services.map_put_all(self.map_name, self.counts.items())
        return True


def counting_dag(map_name: str, count: int, per_ms: int = 5, stall_dir: str | None = None,
                 stall_in: str = "phase1") -> DAG:
    dag = DAG()
    source = dag.new_vertex("paced-source", lambda: PacedSource(count, per_ms))
    counter = dag.new_vertex("counter", lambda: StallingCounter(map_name, stall_dir, stall_in))
    dag.edge(Edge.between(source, counter).distributed().partitioned(lambda x: x % KEYS))
    return dag


def bad_item(x):
    """The map of failing_pipeline(): raises on item 7."""
    if x == 7:
        raise ValueError(f"bad item {x}")
    return x


def failing_pipeline():
    """A batch job whose map raises ValueError("bad item 7"): it ends FAILED."""
    from jetmq.pipeline import Pipeline, Sinks, Sources

    p = Pipeline()
    p.read_from(Sources.items(list(range(20)))).map(bad_item).write_to(Sinks.list("never"))
    return p
