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
