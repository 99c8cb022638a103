"""A job that completes: 1,000 items into a named list."""
import jetmq
from jetmq.core import DAG, Edge, ItemsSourceProcessor, Processor


class ListSink(Processor):
    def process(self, ordinal, inbox):
        self.context.services.list_add_all("batch-job-output", inbox.take())


dag = DAG()
source = dag.new_vertex("items", lambda: ItemsSourceProcessor(range(1000)))
sink = dag.new_vertex("list-sink", ListSink)
dag.edge(Edge.between(source, sink))
jetmq.bootstrapped_instance().new_job(dag).join()
