"""A batch job whose script records the arguments it was given, as JSON, in $ARGS_OUT."""
import json
import os
import sys

import jetmq
from jetmq.core import DAG, Edge, ItemsSourceProcessor, NoopProcessor

with open(os.environ["ARGS_OUT"], "w") as out:
    json.dump(sys.argv[1:], out)
dag = DAG()
dag.edge(Edge.between(dag.new_vertex("items", lambda: ItemsSourceProcessor(range(3))),
                      dag.new_vertex("noop-sink", NoopProcessor)))
jetmq.bootstrapped_instance().new_job(dag)
