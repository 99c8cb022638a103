"""The Pipeline API: Pipeline, stages, Sources, Sinks, aggregate operations.

    from jetmq.pipeline import Pipeline, Sources, Sinks
    from jetmq.pipeline.aggregate import AggregateOperations as ops
"""
from jetmq.pipeline.aggregate import AggregateOperation, AggregateOperations
from jetmq.pipeline.pipeline import Pipeline
from jetmq.pipeline.sinks import Sink, SinkBuilder, Sinks
from jetmq.pipeline.sources import BatchSource, SourceBuffer, SourceBuilder, Sources
from jetmq.pipeline.stages import BatchStage, BatchStageWithKey, SinkStage

__all__ = [
    "AggregateOperation",
    "AggregateOperations",
    "BatchSource",
    "BatchStage",
    "BatchStageWithKey",
    "Pipeline",
    "Sink",
    "SinkBuilder",
    "SinkStage",
    "Sinks",
    "SourceBuffer",
    "SourceBuilder",
    "Sources",
]
