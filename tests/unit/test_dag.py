"""DAG, Vertex and Edge: construction, validation messages, order, picklability."""

import pickle

import cloudpickle
import pytest

from jetmq.core.dag import (
    DAG,
    DEFAULT_QUEUE_SIZE,
    DagValidationError,
    Edge,
    RoutingPolicy,
    Vertex,
)
from jetmq.core.partition import partition_of
from jetmq.core.processors import MapProcessor, NoopProcessor

pytestmark = pytest.mark.timeout(30)


def dag_of(*names: str) -> DAG:
    dag = DAG()
    for name in names:
        dag.new_vertex(name, NoopProcessor)
    return dag


def first_item(item):
    return item[0]


# ---- construction and queries ----


def test_edge_between_connects_ordinals_zero_with_unicast_local_defaults():
    edge = Edge.between("a", "b")
    assert (edge.source_name, edge.source_ordinal, edge.dest_name, edge.dest_ordinal) == (
        "a",
        0,
        "b",
        0,
    )
    assert edge.routing is RoutingPolicy.UNICAST
    assert not edge.is_distributed
    assert edge.key_fn is None
    assert edge.priority == 0
    assert edge.queue_size == DEFAULT_QUEUE_SIZE


def test_edge_from_to_sets_ordinals_and_accepts_vertices_or_names():
    dag = dag_of("a", "b")
    edge = Edge.from_(dag.get_vertex("a"), 2).to("b", 1)
    assert (edge.source_name, edge.source_ordinal, edge.dest_name, edge.dest_ordinal) == (
        "a",
        2,
        "b",
        1,
    )


def test_edge_configuration_chains_and_the_last_routing_wins():
    edge = (
        Edge.between("a", "b")
        .distributed()
        .partitioned(first_item)
        .with_priority(-1)
        .with_queue_size(10)
    )
    assert (
        edge.is_distributed
        and edge.routing is RoutingPolicy.PARTITIONED
        and edge.key_fn is first_item
    )
    assert (edge.priority, edge.queue_size) == (-1, 10)
    edge.broadcast()
    assert edge.routing is RoutingPolicy.BROADCAST and edge.key_fn is None
    assert edge.unicast().routing is RoutingPolicy.UNICAST


def test_all_to_one_partition_defaults_to_the_destination_name_and_accepts_a_key():
    assert Edge.between("a", "sink").all_to_one().all_to_one_partition == partition_of("sink")
    edge = Edge.between("a", "sink").all_to_one(key=("fixed", 1))
    assert edge.routing is RoutingPolicy.ALL_TO_ONE
    assert edge.all_to_one_partition == partition_of(("fixed", 1))


def test_vertices_come_in_topological_order_stable_in_insertion_order():
    dag = dag_of("sink", "map", "source", "side")
    dag.edge(Edge.between("source", "map")).edge(Edge.between("map", "sink"))
    dag.edge(Edge.from_("side").to("sink", 1))
    assert [v.name for v in dag.vertices()] == ["source", "side", "map", "sink"]


def test_inbound_and_outbound_edges_are_sorted_by_ordinal():
    dag = dag_of("a", "b", "c")
    e1 = Edge.from_("a", 1).to("c", 0)
    e0 = Edge.from_("a", 0).to("b", 0)
    e2 = Edge.from_("b", 0).to("c", 1)
    dag.edge(e1).edge(e0).edge(e2)
    assert dag.outbound_edges("a") == [e0, e1]
    assert dag.inbound_edges("c") == [e1, e2]
    assert dag.inbound_edges("a") == []
    assert dag.edges() == [e1, e0, e2]


def test_when_vertex_is_unknown_then_get_vertex_raises_key_error_naming_it():
    with pytest.raises(KeyError, match="no vertex named 'x'"):
        dag_of("a").get_vertex("x")
    with pytest.raises(KeyError, match="'x'"):
        dag_of("a").inbound_edges("x")


def test_local_parallelism_minus_one_means_the_default_of_one():
    assert Vertex("v", NoopProcessor, -1).local_parallelism == 1
    assert DAG().new_vertex("v", NoopProcessor, 4).local_parallelism == 4


def test_a_valid_dag_validates_and_prints_its_vertices_and_edges():
    dag = dag_of("source", "sink")
    dag.edge(Edge.between("source", "sink").distributed().partitioned(first_item).with_priority(1))
    dag.validate()
    text = str(dag)
    assert "vertex 'source' (local_parallelism=1)" in text
    assert "source:0 -> sink:0, distributed partitioned priority=1" in text
    assert repr(dag) == "DAG(vertices=['source', 'sink'], edges=1)"


def test_dag_with_lambdas_round_trips_through_cloudpickle():
    dag = DAG()
    dag.new_vertex("map", lambda: MapProcessor(lambda x: x + 1), 2)
    dag.new_vertex("sink", NoopProcessor)
    dag.edge(Edge.between("map", "sink").distributed().partitioned(lambda x: x % 3))
    copy = pickle.loads(cloudpickle.dumps(dag))
    copy.validate()
    [edge] = copy.edges()
    assert edge.key_fn(7) == 1 and edge.routing is RoutingPolicy.PARTITIONED
    processor = copy.get_vertex("map").processor_supplier()
    assert isinstance(processor, MapProcessor) and copy.get_vertex("map").local_parallelism == 2


# ---- validation errors ----


def test_when_dag_is_empty_then_validate_says_it_needs_a_vertex():
    with pytest.raises(DagValidationError, match="DAG must contain at least one vertex"):
        DAG().validate()


def test_when_vertex_name_is_duplicated_then_adding_it_fails_naming_it():
    dag = dag_of("a")
    with pytest.raises(DagValidationError, match="vertex 'a' is already in this DAG"):
        dag.new_vertex("a", NoopProcessor)


def test_when_edge_refers_to_a_missing_vertex_then_error_names_edge_and_vertex():
    with pytest.raises(
        DagValidationError, match=r"edge a:0 -> ghost:0 refers to vertex 'ghost', which is not in"
    ):
        dag_of("a").edge(Edge.between("a", "ghost"))


def test_when_edge_has_no_destination_then_error_says_to_call_to():
    with pytest.raises(
        DagValidationError, match=r"edge a:1 -> \? has no destination: complete it with \.to"
    ):
        dag_of("a").edge(Edge.from_("a", 1))


def test_when_two_edges_share_a_destination_ordinal_then_error_names_both():
    dag = dag_of("a", "b", "c").edge(Edge.between("a", "c"))
    with pytest.raises(
        DagValidationError,
        match=r"vertex 'c' has two inbound edges at ordinal 0: a:0 -> c:0 and b:0 -> c:0",
    ):
        dag.edge(Edge.between("b", "c"))


def test_when_two_edges_share_a_source_ordinal_then_error_names_both():
    dag = dag_of("a", "b", "c").edge(Edge.between("a", "b"))
    with pytest.raises(
        DagValidationError,
        match=r"vertex 'a' has two outbound edges at ordinal 0: a:0 -> b:0 and a:0 -> c:0",
    ):
        dag.edge(Edge.between("a", "c"))


def test_when_inbound_ordinals_have_a_gap_then_error_names_the_missing_ordinal():
    dag = dag_of("a", "b", "x")
    dag.edge(Edge.between("a", "x")).edge(Edge.from_("b").to("x", 2))
    with pytest.raises(
        DagValidationError,
        match=r"vertex 'x' has inbound ordinals \[0, 2\]: ordinal 1 is not connected",
    ):
        dag.validate()


def test_when_outbound_ordinals_miss_several_then_error_lists_them():
    dag = dag_of("x", "b")
    dag.edge(Edge.from_("x", 3).to("b"))
    with pytest.raises(
        DagValidationError,
        match=r"vertex 'x' has outbound ordinals \[3\]: ordinals 0, 1, 2 are not connected",
    ):
        dag.validate()


def test_when_dag_has_a_cycle_then_error_names_its_vertices_in_order():
    dag = dag_of("source", "a", "b", "c")
    dag.edge(Edge.between("source", "a")).edge(Edge.from_("a").to("b", 0)).edge(
        Edge.between("b", "c")
    )
    dag.edge(Edge.from_("c").to("a", 1))
    with pytest.raises(DagValidationError, match=r"DAG has a cycle: a -> b -> c -> a"):
        dag.validate()
    with pytest.raises(DagValidationError, match="cycle"):
        dag.vertices()
    assert "vertex 'source'" in str(dag)  # still printable for failure texts


def test_when_edge_loops_to_its_own_vertex_then_error_names_the_cycle():
    dag = dag_of("a").edge(Edge.from_("a").to("a"))
    with pytest.raises(DagValidationError, match=r"DAG has a cycle: a -> a"):
        dag.validate()


@pytest.mark.parametrize("parallelism", [0, -2, 1.5])
def test_when_local_parallelism_is_invalid_then_error_names_the_vertex(parallelism):
    expected = rf"vertex 'v' has local_parallelism {parallelism}: it must be an int >= 1, or -1 for the default \(1\)"
    with pytest.raises(DagValidationError, match=expected):
        Vertex("v", NoopProcessor, parallelism)


def test_when_local_parallelism_is_changed_after_adding_then_validate_catches_it():
    dag = dag_of("v")
    dag.get_vertex("v").local_parallelism = 0
    with pytest.raises(DagValidationError, match="vertex 'v' has local_parallelism 0"):
        dag.validate()


def test_when_partitioned_edge_has_no_key_fn_then_error_names_the_edge():
    with pytest.raises(
        DagValidationError, match=r"edge a:0 -> b:0: partitioned\(\) needs a callable key_fn"
    ):
        Edge.between("a", "b").partitioned(None)
    edge = Edge.between("a", "b")
    edge.routing = RoutingPolicy.PARTITIONED
    with pytest.raises(
        DagValidationError, match=r"edge a:0 -> b:0 is partitioned but has no key_fn"
    ):
        dag_of("a", "b").edge(edge)


def test_when_supplier_is_not_callable_or_name_empty_then_vertex_is_refused():
    with pytest.raises(
        DagValidationError, match="vertex 'v': processor_supplier must be a callable"
    ):
        Vertex("v", NoopProcessor())
    with pytest.raises(DagValidationError, match="a vertex name must be a non-empty str"):
        Vertex("", NoopProcessor)


def test_when_ordinal_or_priority_or_queue_size_is_invalid_then_edge_is_refused():
    with pytest.raises(DagValidationError, match="source ordinal must be an int >= 0, got -1"):
        Edge.from_("a", -1)
    with pytest.raises(DagValidationError, match="priority must be an int"):
        Edge.between("a", "b").with_priority("high")
    with pytest.raises(DagValidationError, match="queue_size must be an int >= 1, got 0"):
        Edge.between("a", "b").with_queue_size(0)
    with pytest.raises(DagValidationError, match="already has a destination"):
        Edge.between("a", "b").to("c")


def test_dag_validation_error_is_a_value_error():
    assert issubclass(DagValidationError, ValueError)
