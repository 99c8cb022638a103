"""The DAG's outline that `jet describe --json` and the dashboard show: what a client sends
with its job, and what the master keeps of it in the job's record (also after a restart)."""
import pytest

from jetmq.config import JobConfig
from jetmq.core import DAG, Edge, NoopProcessor
from jetmq.master.jobs import JobRecord
from jetmq.master.repository import JobRepository, encode

pytestmark = pytest.mark.timeout(30)

OUTLINE = {
    "vertices": [{"name": "source", "local_parallelism": 1}, {"name": "map", "local_parallelism": 4},
                 {"name": "sink", "local_parallelism": 1}],
    "edges": [{"from": "source", "to": "map", "from_ordinal": 0, "to_ordinal": 0, "routing": "partitioned",
               "distributed": True, "priority": 0},
              {"from": "map", "to": "sink", "from_ordinal": 0, "to_ordinal": 0, "routing": "all_to_one",
               "distributed": False, "priority": 0},
              {"from": "source", "to": "sink", "from_ordinal": 1, "to_ordinal": 1, "routing": "broadcast",
               "distributed": True, "priority": -1}],
}


def test_the_outline_of_a_dag():
    dag = DAG()
    sink = dag.new_vertex("sink", NoopProcessor, local_parallelism=1)
    source = dag.new_vertex("source", NoopProcessor, local_parallelism=1)
    middle = dag.new_vertex("map", NoopProcessor, local_parallelism=4)
    dag.edge(Edge.between(source, middle).distributed().partitioned(abs))
    dag.edge(Edge.between(middle, sink).all_to_one())
    dag.edge(Edge.from_(source, 1).to(sink, 1).distributed().broadcast().with_priority(-1))
    assert dag.outline() == OUTLINE  # vertices in topological order, edges as added


def test_the_master_keeps_the_outline_in_the_job_record(tmp_path):
    repository = JobRepository(tmp_path / "jobs")
    (tmp_path / "jobs").mkdir()
    job = JobRecord(0x1062_62BD_F040_5A8A, JobConfig(name="j"), b"dag", 1, outline=OUTLINE)
    repository.create(job.job_id, job.dag, encode(job))
    old = JobRecord(0x1062_62BD_F040_5A8B, JobConfig(), b"dag", 2)  # a record without one reads as None
    repository.create(old.job_id, old.dag, encode(old))
    loaded = {j.job_id: j for j in repository.load_all()}
    assert loaded[job.job_id].outline == OUTLINE
    assert loaded[old.job_id].outline is None
