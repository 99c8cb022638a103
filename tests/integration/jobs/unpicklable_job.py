"""A job whose function holds a lock: it cannot be pickled, so it must not be submitted."""
import threading

import jetmq
from jetmq.core import DAG, Edge, ItemsSourceProcessor, MapProcessor, NoopProcessor

lock = threading.Lock()
dag = DAG()
source = dag.new_vertex("items", lambda: ItemsSourceProcessor([1, 2, 3]))
mapper = dag.new_vertex("locked-map", lambda: MapProcessor(lambda x: (lock, x)))
sink = dag.new_vertex("noop-sink", NoopProcessor)
dag.edge(Edge.between(source, mapper)).edge(Edge.between(mapper, sink))
jetmq.bootstrapped_instance().new_job(dag)
