"""jetmq's core model: the DAG, the Processor contract, Inbox/Outbox, markers and
partitioning. Standard library only; no I/O and no zmq.
"""

from jetmq.core.dag import (
    DAG,
    DEFAULT_LOCAL_PARALLELISM,
    DEFAULT_QUEUE_SIZE,
    LOCAL_PARALLELISM_USE_DEFAULT,
    DagValidationError,
    Edge,
    RoutingPolicy,
    Vertex,
)
from jetmq.core.inbox_outbox import DEFAULT_OUTBOX_CAPACITY, Inbox, Outbox
from jetmq.core.markers import DONE_ITEM, MARKER_TYPES, SnapshotBarrier, Watermark, is_marker
from jetmq.core.partition import (
    PARTITION_COUNT,
    assign_partitions,
    local_processor_table,
    owner_table,
    partition_of,
    processor_partitions,
    stable_hash,
)
from jetmq.core.processor import Processor, ProcessorContext, Progress
from jetmq.core.snapshot import BroadcastKey, SnapshotContext, broadcast_key
from jetmq.core.processors import (
    CollectSinkProcessor,
    FilterProcessor,
    FlatMapProcessor,
    ItemsSourceProcessor,
    MapProcessor,
    NoopProcessor,
)

__all__ = [
    # graph
    "DAG",
    "DEFAULT_LOCAL_PARALLELISM",
    "DEFAULT_QUEUE_SIZE",
    "LOCAL_PARALLELISM_USE_DEFAULT",
    "DagValidationError",
    "Edge",
    "RoutingPolicy",
    "Vertex",
    # processors
    "Processor",
    "ProcessorContext",
    "Progress",
    "CollectSinkProcessor",
    "FilterProcessor",
    "FlatMapProcessor",
    "ItemsSourceProcessor",
    "MapProcessor",
    "NoopProcessor",
    # inbox / outbox and markers
    "DEFAULT_OUTBOX_CAPACITY",
    "Inbox",
    "Outbox",
    "DONE_ITEM",
    "MARKER_TYPES",
    "SnapshotBarrier",
    "Watermark",
    "is_marker",
    # snapshots
    "BroadcastKey",
    "SnapshotContext",
    "broadcast_key",
    # partitioning
    "PARTITION_COUNT",
    "assign_partitions",
    "local_processor_table",
    "owner_table",
    "partition_of",
    "processor_partitions",
    "stable_hash",
]
