"""What jetmq/__init__.py exports is the public API: keep the list honest."""
import pytest

import jetmq

pytestmark = pytest.mark.timeout(30)

PUBLIC_API = {
    "Cluster", "ClusterState", "JetClient", "JobStateSnapshot", "Member", "bootstrapped_instance", "connect",
    "Job", "JobConfig", "JobStatus", "Metrics", "ProcessingGuarantee", "RestartStrategy",
    "AggregateOperation", "AggregateOperations", "Pipeline", "Sinks", "SinkBuilder", "Sources", "SourceBuilder",
    "SimpleEvent", "WindowDefinition", "WindowResult",
    "JetError", "AddressInUseError", "CancellationError", "ClusterStartError", "IllegalJobStateError", "ClusterUnreachableError", "JobAlreadyExistsError",
    "JobFailedError", "JobNotFoundError", "JobTimeoutError", "RemoteError", "SerializationError",
    "SnapshotNotFoundError",
}


def test_all_lists_exactly_the_public_api():
    assert set(jetmq.__all__) == PUBLIC_API


def test_every_exported_name_exists():
    for name in jetmq.__all__:
        assert getattr(jetmq, name) is not None, name


def test_errors_are_jet_errors():
    for name in jetmq.__all__:
        value = getattr(jetmq, name)
        if isinstance(value, type) and issubclass(value, Exception):
            assert issubclass(value, jetmq.JetError), name
