"""What the HTTP server knows of the cluster: the master's answers to the requests `jet` sends.

The server is a client of its master like any other: one Requester (its own socket, the
cluster key), used by one request at a time under a lock, and answers kept for about a
second, so a dashboard polling and Prometheus scraping together cost the master a few small
requests a second whatever the number of browsers. Nothing here touches the master loop's
state. CPU and memory of members on this host come from psutil here, in the server's
thread; members on other hosts have none.
"""
from __future__ import annotations

import socket
import threading
import time

import psutil

from jetmq import protocol as p
from jetmq.errors import ClusterUnreachableError, JobNotFoundError
from jetmq.requester import Requester
from jetmq.transport.security import Keypair
from jetmq.web.documents import (NoSuchJob, cluster_reply_document, description_document, list_jobs_document,
                                 measurements_of, resolve_job_id)

#: How long an answer of the master is served again before it is asked anew.
CACHE_TTL_S = 1.0
#: How long a request of the server waits for the master (it is on the same host).
REQUEST_TIMEOUT_S = 4.0


class MasterSource:
    def __init__(self, master_address: str, key: Keypair | None, ttl_s: float = CACHE_TTL_S):
        self._requester = Requester([master_address], timeout_s=REQUEST_TIMEOUT_S, key=key)
        self._ttl_s = ttl_s
        self._lock = threading.Lock()
        self._cache: dict[object, tuple[float, object]] = {}
        self._usage = ResourceUsage()
        self._closed = False

    def request(self, msg):
        """The master's answer to ``msg``, at most ``ttl_s`` old; its errors are raised."""
        with self._lock:
            if self._closed:
                raise ClusterUnreachableError("the master is stopping")
            now = time.monotonic()
            hit = self._cache.get(msg)
            if hit is not None and now - hit[0] < self._ttl_s:
                return hit[1]
            for stale in [k for k, (at, _) in self._cache.items() if now - at >= self._ttl_s]:
                del self._cache[stale]
            reply = self._requester.request(msg)
            self._cache[msg] = (time.monotonic(), reply)
            return reply

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._requester.close()

    # ---- the documents of the JSON API

    def jobs_document(self) -> dict:
        """`jet list-jobs -a --json`."""
        return list_jobs_document(self.request(p.GetJobs(None)), include_finished=True)

    def job_document(self, name_or_id: str) -> dict:
        """`jet describe --json <name_or_id>`; NoSuchJob if there is none."""
        try:
            reply = self.request(p.DescribeJob(resolve_job_id(self, name_or_id)))
        except JobNotFoundError:
            raise NoSuchJob(f"No job with name or id '{name_or_id}' was found") from None
        return description_document(reply, measurements_of(reply.metrics))

    def job_logs_document(self, name_or_id: str, tail: int) -> dict:
        """The last ``tail`` log lines of a job the master keeps (`jet logs --tail`), as
        ``{"lines": [{"seq", "time", "member", "text"}], "evicted", "status"}``."""
        try:
            reply = self.request(p.GetJobLogs(resolve_job_id(self, name_or_id), None, -1, tail))
        except JobNotFoundError:
            raise NoSuchJob(f"No job with name or id '{name_or_id}' was found") from None
        return {"lines": [{"seq": line.seq, "time": line.time, "member": line.member, "text": line.text}
                          for line in reply.lines], "evicted": reply.evicted, "status": reply.status}

    def cluster_reply(self) -> p.ClusterReply:
        return self.request(p.ClusterRequest())

    def cluster_document(self) -> dict:
        """`jet cluster --json`, with each member's ``cpu_percent``, ``rss_bytes`` (null for a
        member on another host), ``heartbeat_age_ms`` and ``stalled_ms``, and the master's own."""
        reply = self.cluster_reply()
        document = cluster_reply_document(reply)
        for member, info, heard, stalled in zip(document["members"], reply.members,
                                                 reply.heard_ms or [None] * len(reply.members), reply.stalled_ms):
            member.update(self._usage.of(info.pid, info.host), heartbeat_age_ms=heard, stalled_ms=stalled)
        document["master"] = {"pid": reply.master_pid, "host": reply.master_host,
                              **self._usage.of(reply.master_pid, reply.master_host)}
        return document

    def member_usage(self, pid: int, host: str) -> dict:
        return self._usage.of(pid, host)


class ResourceUsage:
    """CPU percent (of one core, since the last look; at the first look, over the process's
    life) and resident memory of processes on this host, by pid."""

    def __init__(self):
        self._host = socket.gethostname()
        self._lock = threading.Lock()
        self._seen: dict[int, tuple[psutil.Process, float, float, float | None]] = {}

    def of(self, pid: int, host: str) -> dict:
        if host != self._host or pid <= 0:
            return {"cpu_percent": None, "rss_bytes": None}
        with self._lock:
            try:
                return self._measure(pid)
            except (psutil.Error, OSError):
                self._seen.pop(pid, None)
                return {"cpu_percent": None, "rss_bytes": None}

    def _measure(self, pid: int) -> dict:
        now = time.monotonic()
        known = self._seen.get(pid)
        process = known[0] if known is not None and known[0].is_running() else psutil.Process(pid)
        with process.oneshot():
            times = process.cpu_times()
            rss = process.memory_info().rss
            cpu_s = times.user + times.system
            if known is None or known[0] is not process:
                lifetime_s = max(time.time() - process.create_time(), 1e-3)
                percent = cpu_s / lifetime_s * 100
            elif now - known[1] >= 0.5:
                percent = max(0.0, (cpu_s - known[2]) / (now - known[1]) * 100)
            else:  # too soon to say anything new
                return {"cpu_percent": known[3], "rss_bytes": rss}
        self._seen[pid] = (process, now, cpu_s, round(percent, 1))
        if len(self._seen) > 4096:
            self._seen.pop(next(iter(self._seen)))
        return {"cpu_percent": round(percent, 1), "rss_bytes": rss}
