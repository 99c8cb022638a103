"""Submits a streaming job, then raises: jet submit must leave no job running."""
import jetmq
from jetmq.core import DAG, Edge, NoopProcessor, Processor


class CounterSource(Processor):
    def complete(self):
        self.outbox.offer(0)
        return False


dag = DAG()
source = dag.new_vertex("counter-source", CounterSource)
sink = dag.new_vertex("noop-sink", NoopProcessor)
dag.edge(Edge.between(source, sink))
jetmq.bootstrapped_instance().new_job(dag)
raise RuntimeError("the script broke after submitting")
