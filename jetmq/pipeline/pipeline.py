"""Pipeline: the user's description of a job, lowered to a DAG on submission."""
from __future__ import annotations

from typing import TypeVar

from jetmq.core.dag import DAG
from jetmq.pipeline.lowering import lower
from jetmq.pipeline.sources import BatchSource
from jetmq.pipeline.stages import BatchStage, Stage
from jetmq.pipeline.stream_sources import StreamSource
from jetmq.pipeline.stream_stages import StreamSourceStage
from jetmq.pipeline.transforms import SourceTransform, Transform

__all__ = ["Pipeline"]

S = TypeVar("S", bound=Stage)


class Pipeline:
    """A graph of stages, from sources to sinks:

        p = Pipeline()
        (p.read_from(Sources.files("books/"))
          .flat_map(lambda line: line.lower().split())
          .grouping_key(lambda word: word)
          .aggregate(AggregateOperations.counting())
          .write_to(Sinks.map("counts")))

    A client submits it with `new_job(p)`, which calls `to_dag()`. A stage may
    feed several stages; a stage with no downstream stage discards its items.
    """

    def __init__(self) -> None:
        self._stages: list[Stage] = []
        self._unresolved: list[StreamSourceStage] = []

    def read_from(self, source: BatchSource | StreamSource) -> BatchStage | StreamSourceStage:
        """A stage emitting the items of `source` (from Sources or SourceBuilder): a
        BatchStage, or for a stream source a StreamSourceStage, on which you choose
        the event time (`with_timestamps`, `with_ingestion_timestamps`,
        `with_native_timestamps` or `without_timestamps`)."""
        if isinstance(source, StreamSource):
            stage = StreamSourceStage(self, source)
            self._unresolved.append(stage)
            return stage
        return self._add(BatchStage, SourceTransform(source), ())

    def to_dag(self) -> DAG:
        """The DAG that runs this pipeline (a new one on every call)."""
        if self._unresolved:
            names = ", ".join(stage._source.name for stage in self._unresolved)
            raise ValueError(f"read_from({names}): choose the event time with with_timestamps(...), "
                             f"with_ingestion_timestamps(), with_native_timestamps(...) or without_timestamps()")
        if not self._stages:
            raise ValueError("the pipeline is empty: start it with read_from(source)")
        return lower(self._stages)

    def _resolved(self, stage: StreamSourceStage) -> None:
        self._unresolved.remove(stage)

    def is_empty(self) -> bool:
        return not self._stages

    def _add(self, cls: type[S], transform: Transform, upstreams: tuple[Stage, ...]) -> S:
        stage = cls(self, transform, upstreams, len(self._stages))
        self._stages.append(stage)
        return stage

    def __repr__(self) -> str:
        if not self._stages:
            return "Pipeline(empty)"
        lines = ["Pipeline("]
        for stage in self._stages:
            inputs = ", ".join(f"[{up._index}]" for up in stage._upstreams)
            arrow = f" <- {inputs}" if inputs else ""
            lines.append(f"  [{stage._index}] {stage._transform.describe()}{arrow}")
        lines.append(")")
        return "\n".join(lines)
