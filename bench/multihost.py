"""Word count across two hosts (network namespaces on a bridge) against the same 2 members on one host.

Host A runs the master and one forked member, host B one joined member; every item of
the shuffle between them crosses a veth pair and a bridge instead of the loopback.
Needs root (it makes the namespaces); without it the row says so instead of a figure.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time

import jetmq
from bench.report import Row
from bench.wordcount import LINES, WORDS_PER_LINE, corpus, jetmq_run, word_count_pipeline

PORT = 5701


def _two_hosts(directory) -> float:
    import pytest  # the namespace helpers skip through pytest where namespaces cannot be made

    from tests.integration.hosts import ROOT, make_network, skip_unless_possible
    try:
        skip_unless_possible()
    except pytest.skip.Exception as e:
        raise RuntimeError(str(e)) from None
    network = make_network()
    processes = []
    try:
        a, b = network.add_host("benchA"), network.add_host("benchB")
        processes.append(subprocess.Popen(a.jetmq("start", "--bind", "0.0.0.0", "--port", str(PORT), "-m", "1",
                                                  "--data-dir", f"/tmp/jetmq-bench-multihost-{PORT}"),
                                          cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = f"{a.address}:{PORT}"
        key_file = f"/tmp/jetmq-bench-multihost-{PORT}/cluster.key"
        deadline = time.monotonic() + 60
        while not os.path.exists(key_file):
            if time.monotonic() > deadline:
                raise RuntimeError("the master on host A made no key")
            time.sleep(0.05)
        client = jetmq.JetClient(address, key_file=key_file)
        while True:
            try:
                client.cluster()
                break
            except jetmq.JetError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        processes.append(subprocess.Popen(b.jetmq("start", "--join", address, "--key-file", key_file), cwd=ROOT,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        deadline = time.monotonic() + 60
        while client.cluster().size < 2:
            if time.monotonic() > deadline:
                raise RuntimeError("the member on host B never joined")
            time.sleep(0.05)
        p = word_count_pipeline(directory)
        start = time.perf_counter()
        client.new_job(p).join(timeout=600)
        elapsed = time.perf_counter() - start
        client.close()
        return elapsed
    finally:
        for process in processes:
            process.kill()
            process.wait()
        network.remove()
        subprocess.run(["rm", "-rf", f"/tmp/jetmq-bench-multihost-{PORT}"])


def run() -> list[Row]:
    directory = corpus()
    one_host_s = jetmq_run(directory)[0]
    words = LINES * WORDS_PER_LINE
    try:
        two_hosts_s = _two_hosts(directory)
    except RuntimeError as e:
        print(f"multihost: skipped: {e}", file=sys.stderr)
        return []
    return [Row("word count, 2 members on 2 hosts (namespaces)", words / two_hosts_s / 1e6, words / one_host_s / 1e6,
                "M/s", "the same 2 members on 1 host", "~1x")]
