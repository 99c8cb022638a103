"""The Pipeline API: Pipeline, stages, Sources, Sinks, aggregate operations, windows."""
