"""A job that runs until cancelled: a counter source into a distributed sink.

Arguments: [join] — with "join" the script waits for the job to end, like a
hello-world client that prints results until stopped.
"""
import sys

import jetmq
from jetmq.core import DAG, Edge, NoopProcessor, Processor


class CounterSource(Processor):
    def init_hook(self):
        self.next = 0

    def complete(self):
        if self.outbox.offer(self.next):
            self.next += 1
        return False  # never done


dag = DAG()
source = dag.new_vertex("counter-source", CounterSource)
sink = dag.new_vertex("noop-sink", NoopProcessor)
dag.edge(Edge.between(source, sink).distributed())
job = jetmq.bootstrapped_instance().new_job(dag)
print(f"submitted {job.id_string}", flush=True)
if sys.argv[1:] == ["join"]:
    job.join()
