"""jetmq: a distributed stream and batch processing engine, modelled on Hazelcast Jet 4.0.

What this module exports is the public API; everything else is internal.
"""
from jetmq.version import __version__
from jetmq.bootstrap import bootstrapped_instance
from jetmq.client import ClusterState, JetClient, JobStateSnapshot, Member, connect
from jetmq.config import JobConfig, ProcessingGuarantee
from jetmq.embedded import Cluster
from jetmq.errors import (
    AddressInUseError,
    CancellationError,
    ClusterStartError,
    ClusterUnreachableError,
    IllegalJobStateError,
    JetError,
    JobAlreadyExistsError,
    JobFailedError,
    JobNotFoundError,
    JobTimeoutError,
    RemoteError,
    SerializationError,
    SnapshotNotFoundError,
)
from jetmq.job import Job
from jetmq.job_status import JobStatus
from jetmq.pipeline import (
    AggregateOperation,
    AggregateOperations,
    Pipeline,
    Sinks,
    SinkBuilder,
    Sources,
    SimpleEvent,
    SourceBuilder,
    WindowDefinition,
    WindowResult,
)

__all__ = [
    # clients and clusters
    "Cluster",
    "ClusterState",
    "JetClient",
    "JobStateSnapshot",
    "Member",
    "bootstrapped_instance",
    "connect",
    # jobs
    "Job",
    "JobConfig",
    "JobStatus",
    "ProcessingGuarantee",
    # pipelines
    "AggregateOperation",
    "AggregateOperations",
    "Pipeline",
    "Sinks",
    "SinkBuilder",
    "SimpleEvent",
    "Sources",
    "SourceBuilder",
    "WindowDefinition",
    "WindowResult",
    # errors
    "JetError",
    "AddressInUseError",
    "CancellationError",
    "ClusterStartError",
    "ClusterUnreachableError",
    "IllegalJobStateError",
    "JobAlreadyExistsError",
    "JobFailedError",
    "JobNotFoundError",
    "JobTimeoutError",
    "RemoteError",
    "SerializationError",
    "SnapshotNotFoundError",
]
