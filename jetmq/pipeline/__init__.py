"""The Pipeline API: Pipeline, stages, Sources, Sinks, aggregate operations, windows.

    from jetmq.pipeline import Pipeline, Sources, Sinks, WindowDefinition
    from jetmq.pipeline.aggregate import AggregateOperations as ops
"""
from jetmq.pipeline.aggregate import AggregateOperation, AggregateOperations
from jetmq.pipeline.events import SimpleEvent, WindowResult
from jetmq.pipeline.pipeline import Pipeline
from jetmq.pipeline.processors.stream_sources import StreamSourceBuffer
from jetmq.pipeline.sinks import Sink, SinkBuilder, Sinks
from jetmq.pipeline.sources import BatchSource, SourceBuffer, SourceBuilder, Sources
from jetmq.pipeline.stages import BatchStage, BatchStageWithKey, SinkStage
from jetmq.pipeline.stream_sources import StreamSource
from jetmq.pipeline.stream_stages import (
    StageWithKeyAndWindow,
    StageWithWindow,
    StreamSourceStage,
    StreamStage,
    StreamStageWithKey,
)
from jetmq.pipeline.windows import WindowDefinition

__all__ = [
    "AggregateOperation",
    "AggregateOperations",
    "BatchSource",
    "BatchStage",
    "BatchStageWithKey",
    "Pipeline",
    "SimpleEvent",
    "Sink",
    "SinkBuilder",
    "SinkStage",
    "Sinks",
    "SourceBuffer",
    "SourceBuilder",
    "Sources",
    "StageWithKeyAndWindow",
    "StageWithWindow",
    "StreamSource",
    "StreamSourceBuffer",
    "StreamSourceStage",
    "StreamStage",
    "StreamStageWithKey",
    "WindowDefinition",
    "WindowResult",
]
