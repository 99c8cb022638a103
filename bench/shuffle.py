"""Shuffle throughput: small tuples through a partitioned distributed edge between 2 members.

Baseline, in the same run: the transport alone (ZeroMQ PUSH/PULL between two
processes) moving the same tuples pickled in batches of 1,000. Each figure is the
median of RUNS runs (this machine's two cores are shared, and single runs vary by
+-15%).

The key function `_first` is `item[0]`, which the routing runs as a C getter
(jetmq/core/keys.py); a second row measures a key function it must call
for every item, as any key function with more code in it.
"""
from __future__ import annotations

import multiprocessing
import pickle
import time
import uuid

import zmq

import jetmq
from bench.report import Row, median
from jetmq.core import DAG, Edge, Processor

ITEMS = 3_000_000
BATCH = 1000
RUNS = 3


class RangeSource(Processor):
    """Emits (i, i) for its share of range(ITEMS)."""

    def __init__(self, count: int):
        self.count = count

    def init_hook(self):
        c = self.context
        self.next, self.step = c.global_index, c.total_parallelism

    def complete(self):
        room = self.outbox.room()
        end = min(self.count, self.next + room * self.step)
        batch = [(i, i) for i in range(self.next, end, self.step)]
        self.outbox.offer_many(batch)
        self.next = end if end > self.next else self.next
        return self.next >= self.count


class CountingSink(Processor):
    def __init__(self, list_name: str):
        self.list_name = list_name

    def init_hook(self):
        self.count = 0

    def process(self, ordinal, inbox):
        self.count += len(inbox.take())

    def complete(self):
        self.context.services.list_add_all(self.list_name, [self.count])
        return True


def _first(item):
    return item[0]


def _first_called(item):
    """The key of _first, in code that the routing cannot run as a getter."""
    key = item[0]
    return key


def jetmq_items_per_s(jet: jetmq.Cluster, key_fn) -> float:
    counts = f"shuffle-counts-{uuid.uuid4().hex}"
    dag = DAG()
    source = dag.new_vertex("range-source", lambda: RangeSource(ITEMS))
    sink = dag.new_vertex("counting-sink", lambda: CountingSink(counts))
    dag.edge(Edge.between(source, sink).distributed().partitioned(key_fn))
    start = time.perf_counter()
    jet.new_job(dag).join(timeout=600)
    elapsed = time.perf_counter() - start
    assert sum(jet.get_list(counts)) == ITEMS, "the shuffle lost or duplicated items"
    return ITEMS / elapsed


def _pull(address, count, result):
    sock = zmq.Context.instance().socket(zmq.PULL)
    sock.bind(address)
    result.put("ready")
    received = 0
    while received < count:
        received += len(pickle.loads(sock.recv()))
    result.put(time.perf_counter())


def transport_items_per_s() -> float:
    address = "tcp://127.0.0.1:5799"
    result = multiprocessing.Queue()
    puller = multiprocessing.Process(target=_pull, args=(address, ITEMS, result))
    puller.start()
    result.get()
    sock = zmq.Context.instance().socket(zmq.PUSH)
    sock.connect(address)
    start = time.perf_counter()
    for base in range(0, ITEMS, BATCH):
        sock.send(pickle.dumps([(i, i) for i in range(base, base + BATCH)], protocol=5))
    end = result.get()
    puller.join()
    sock.close()
    return ITEMS / (end - start)


def run() -> list[Row]:
    baseline = median(transport_items_per_s() for _ in range(RUNS))
    with jetmq.Cluster(members=2) as jet:  # authenticated and encrypted (CURVE), as by default
        getter = median(jetmq_items_per_s(jet, _first) for _ in range(RUNS))
        called = median(jetmq_items_per_s(jet, _first_called) for _ in range(RUNS))
    with jetmq.Cluster(members=2, no_auth=True) as jet:
        plain = median(jetmq_items_per_s(jet, _first) for _ in range(RUNS))
    transport = "raw zmq PUSH/PULL, pickled batches of 1,000"
    return [Row("shuffle, partitioned edge, 2 members", getter / 1e6, baseline / 1e6, "M/s", transport, ">= 3 M/s"),
            Row("shuffle, key function called per item", called / 1e6, baseline / 1e6, "M/s", transport),
            Row("shuffle with CURVE (default) vs --no-auth", getter / 1e6, plain / 1e6, "M/s",
                "the same shuffle, --no-auth", ">= 0.85x")]
