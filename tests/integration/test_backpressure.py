"""Backpressure on a real cluster: a slow sink holds the source back instead of letting
queues, network buffers or member memory grow."""
import threading

import psutil
import pytest

import jetmq
from jetmq.core import DAG, Edge, Processor

pytestmark = [pytest.mark.integration, pytest.mark.timeout(240)]

ITEMS = 5_000_000
#: RSS a member may gain while the items flow: queues and credits bound what is in
#: flight to a few batches per edge, far below this.
RSS_GROWTH_LIMIT = 40 * 2**20


class CountingRange(Processor):
    """Emits (i, i) for its share of range(ITEMS), as fast as the outbox takes them."""

    def init_hook(self):
        self.next, self.step = self.context.global_index, self.context.total_parallelism

    def complete(self):
        end = min(ITEMS, self.next + self.outbox.room() * self.step)
        self.outbox.offer_many([(i, i) for i in range(self.next, end, self.step)])
        self.next = max(self.next, end)
        return self.next >= ITEMS


class SlowSink(Processor):
    """Takes at most 100 items per call, so it is the bottleneck; counts them."""

    def init_hook(self):
        self.count = 0

    def process(self, ordinal, inbox):
        self.count += len(inbox.take(100))

    def complete(self):
        self.context.services.list_add_all("slow-sink-counts", [self.count])
        return True


def test_a_slow_sink_does_not_make_member_memory_grow(tmp_path):
    dag = DAG()
    source = dag.new_vertex("counting-range", CountingRange)
    sink = dag.new_vertex("slow-sink", SlowSink)
    dag.edge(Edge.between(source, sink).distributed().partitioned(lambda item: item[0]))
    with jetmq.Cluster(members=2, data_dir=tmp_path / "data") as cluster:
        members = [psutil.Process(m.pid) for m in cluster.cluster().members]
        baseline = [m.memory_info().rss for m in members]
        peaks = list(baseline)
        done = threading.Event()

        def sample():
            while not done.wait(0.05):
                for i, member in enumerate(members):
                    peaks[i] = max(peaks[i], member.memory_info().rss)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            cluster.new_job(dag).join(timeout=200)
        finally:
            done.set()
            sampler.join()
        assert sum(cluster.get_list("slow-sink-counts")) == ITEMS
    growth = [peak - base for peak, base in zip(peaks, baseline)]
    assert max(growth) < RSS_GROWTH_LIMIT, f"member RSS grew by {[g // 2**20 for g in growth]} MB"
