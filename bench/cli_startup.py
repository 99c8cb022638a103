"""CLI start-up: `jet --version` and `jet list-jobs` against a bare `python -c pass`.

What users run is bin/jet (README), so that is what runs here, as a whole process:
each command in turn with its baseline (A B A B ...), after a warm-up run of each,
and the medians. list-jobs asks a running 2-member cluster with no jobs, so its
figure is start-up, imports and one request.

The children get a bytecode cache of their own (PYTHONPYCACHEPREFIX in a temporary
directory, written by the warm-up runs), as a user's checkout has one from its first
run on: without one, every run compiles jetmq's modules again (PYTHONDONTWRITEBYTECODE
environments with an editable install), which costs list-jobs some 40 ms more.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jetmq
from bench.report import Row

RUNS = 15
WARMUP = 1
JET = Path(__file__).resolve().parents[1] / "bin" / "jet"


def _wall_ms(command: list[str], env: dict) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - start) * 1000


def _paired_medians(command: list[str], baseline: list[str], env: dict) -> tuple[float, float]:
    """(median ms of ``command``, median ms of ``baseline``), run in turn."""
    times: tuple[list[float], list[float]] = ([], [])
    for index in range(WARMUP + RUNS):
        pair = (_wall_ms(command, env), _wall_ms(baseline, env))
        if index >= WARMUP:
            times[0].append(pair[0])
            times[1].append(pair[1])
    return statistics.median(times[0]), statistics.median(times[1])


def run() -> list[Row]:
    bare = [sys.executable, "-c", "pass"]  # the interpreter bin/jet runs (.venv's)
    with tempfile.TemporaryDirectory(prefix="jetmq-bench-pycache-") as cache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = cache
        version, version_base = _paired_medians([str(JET), "--version"], bare, env)
        with jetmq.Cluster(members=2) as jet:
            list_jobs, list_jobs_base = _paired_medians(
                [str(JET), "--addresses", jet.address, "--key-file", str(jet.key_file), "list-jobs"], bare, env)
    return [
        Row(f"jet --version, median of {RUNS}", version, version_base, "ms", "python -c pass", "<= 2x"),
        Row(f"jet list-jobs, no jobs, median of {RUNS}", list_jobs, list_jobs_base, "ms", "python -c pass",
            "<= 120 ms"),
    ]
