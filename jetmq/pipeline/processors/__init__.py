"""The processors the pipeline's transforms, sources and sinks lower to.

Internal to the pipeline layer: users reach them through the Pipeline API; the
names are importable for tests and for users writing their own DAGs.
"""
from jetmq.pipeline.processors.aggregation import (
    AccumulateAllProcessor,
    AccumulateProcessor,
    CombineAllProcessor,
    CombineProcessor,
    DistinctProcessor,
)
from jetmq.pipeline.processors.fused import FusedTransformProcessor, compile_chain
from jetmq.pipeline.processors.join import HashJoinCollectProcessor, HashJoinProcessor
from jetmq.pipeline.processors.sinks import (
    BuilderSinkProcessor,
    LoggerSinkProcessor,
    WriteFilesProcessor,
    WriteListProcessor,
    WriteMapProcessor,
)
from jetmq.pipeline.processors.sources import (
    BuilderSourceProcessor,
    ReadFilesProcessor,
    ReadListProcessor,
    ReadMapProcessor,
    SourceBuffer,
)
from jetmq.pipeline.processors.stateful import SortProcessor

__all__ = [
    "AccumulateAllProcessor",
    "AccumulateProcessor",
    "BuilderSinkProcessor",
    "BuilderSourceProcessor",
    "CombineAllProcessor",
    "CombineProcessor",
    "DistinctProcessor",
    "FusedTransformProcessor",
    "HashJoinCollectProcessor",
    "HashJoinProcessor",
    "LoggerSinkProcessor",
    "ReadFilesProcessor",
    "ReadListProcessor",
    "ReadMapProcessor",
    "SortProcessor",
    "SourceBuffer",
    "WriteFilesProcessor",
    "WriteListProcessor",
    "WriteMapProcessor",
    "compile_chain",
]
