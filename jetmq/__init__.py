"""jetmq: a distributed stream and batch processing engine, modelled on Hazelcast Jet 4.0.

What this module exports is the public API; everything else is internal. The names
load on first use (PEP 562), so `jet` and other tools that need only a client do not
pay for importing the pipeline machinery.
"""
import importlib

from jetmq.version import __version__

#: Every public name, and the module that defines it.
_EXPORTS = {
    # clients and clusters
    "Cluster": "jetmq.embedded",
    "ClusterState": "jetmq.client",
    "JetClient": "jetmq.client",
    "JobStateSnapshot": "jetmq.client",
    "Member": "jetmq.client",
    "bootstrapped_instance": "jetmq.bootstrap",
    "connect": "jetmq.client",
    # jobs
    "Job": "jetmq.job",
    "JobConfig": "jetmq.config",
    "JobStatus": "jetmq.job_status",
    "Metrics": "jetmq.core.metrics",
    "ProcessingGuarantee": "jetmq.config",
    "RestartStrategy": "jetmq.restart_strategy",
    # pipelines
    "AggregateOperation": "jetmq.pipeline",
    "AggregateOperations": "jetmq.pipeline",
    "Pipeline": "jetmq.pipeline",
    "Sinks": "jetmq.pipeline",
    "SinkBuilder": "jetmq.pipeline",
    "SimpleEvent": "jetmq.pipeline",
    "Sources": "jetmq.pipeline",
    "SourceBuilder": "jetmq.pipeline",
    "WindowDefinition": "jetmq.pipeline",
    "WindowResult": "jetmq.pipeline",
    # errors
    "JetError": "jetmq.errors",
    "AddressInUseError": "jetmq.errors",
    "CancellationError": "jetmq.errors",
    "ClusterStartError": "jetmq.errors",
    "ClusterUnreachableError": "jetmq.errors",
    "IllegalJobStateError": "jetmq.errors",
    "JobAlreadyExistsError": "jetmq.errors",
    "JobFailedError": "jetmq.errors",
    "JobNotFoundError": "jetmq.errors",
    "JobTimeoutError": "jetmq.errors",
    "RemoteError": "jetmq.errors",
    "SerializationError": "jetmq.errors",
    "SnapshotNotFoundError": "jetmq.errors",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jetmq' has no attribute '{name}'")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__():
    return sorted([*globals(), *_EXPORTS])
