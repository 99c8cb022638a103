"""What jobs do when members join or leave: Jet's auto-scaling table, and graceful leaves.

| auto-scaling | guarantee       | member added                    | member removed        |
|--------------|-----------------|---------------------------------|-----------------------|
| on (default) | any             | restart after the scale-up delay | restart at once       |
| off          | NONE            | keep running on old members     | fail (TopologyChanged) |
| off          | at-least/exactly | keep running on old members     | suspend               |

Each addition supersedes a pending scale-up, so several members added within the
delay cause one restart, and one added and removed again within it causes none: at
the deadline only jobs running on fewer members than the cluster has restart. A
member that asks to leave (SIGTERM, `jet-stop --member`) first sees its jobs restart
gracefully elsewhere, through a terminal snapshot, and is then told to shut down.
"""
from __future__ import annotations

import logging
import time

from jetmq import protocol as p
from jetmq.job_status import JobStatus
from jetmq.master.coordinator import JobCoordinator
from jetmq.master.jobs import TerminationMode
from jetmq.master.membership import ChangeKind, Membership, MembershipChange

log = logging.getLogger(__name__)

S = JobStatus


class TopologyPolicy:
    def __init__(self, coordinator: JobCoordinator, membership: Membership, scale_up_delay_ms: int, send):
        """``send(member_uuid, msg)`` reaches a member."""
        self._jobs = coordinator
        self._membership = membership
        self._delay_s = scale_up_delay_ms / 1000
        self._send = send
        self._scale_up_at: float | None = None
        self._told: set[str] = set()  # leaving members already told to shut down
        membership.add_listener(self.on_change)
        coordinator.on_peer_unreachable = self.peer_unreachable

    # ------------------------------------------------------------------ changes

    def on_change(self, change: MembershipChange) -> None:
        if change.kind is ChangeKind.ADDED:
            self._jobs.members_joined()
            self._scale_up_at = time.monotonic() + self._delay_s
            return
        self._jobs.member_gone(change.member.uuid)
        self._told.discard(change.member.uuid)
        self._jobs.postpone_restarts(time.monotonic())
        for job in self._jobs.jobs_on(change.member.uuid):
            if not self._jobs.member_left_execution(job, change.member.uuid):  # else it was terminating anyway
                self._member_lost(job, change.member.uuid, change.member.address, "left the cluster")

    def peer_unreachable(self, job, uuid: str, address: str, reason: str) -> None:
        """A member of the job's execution cannot reach another's data socket: the job
        cannot run on these members, as if that one had left."""
        log.warning("job %s: %s", job.id_string, reason)
        self._member_lost(job, uuid, address, f"cannot be reached on the data plane ({reason})")

    def _member_lost(self, job, uuid: str, address: str, how: str) -> None:
        if job.config.auto_scaling:
            log.info("job %s: member %s (%s) %s: restarting", job.id_string, uuid, address, how)
            self._jobs.restart_after_member_loss(job, uuid)
        elif not job.uses_snapshots:
            self._jobs.fail(job, f"TopologyChangedException: member {uuid} ({address}) {how} and the job has "
                                 f"auto-scaling off and no processing guarantee")
        else:
            log.info("job %s: member %s (%s) %s: suspending (auto-scaling off)", job.id_string, uuid, address, how)
            self._jobs.terminate(job, TerminationMode.SUSPEND_FORCEFUL, f"member {uuid} {how}")

    # ------------------------------------------------------------------ leaving members

    def leave(self, uuid: str) -> None:
        """A member asks to leave: move its jobs elsewhere first (see tick)."""
        if uuid not in self._membership:
            return
        log.info("member %s is leaving: its jobs restart on the other members first", uuid)
        self._jobs.members_leaving({uuid})
        self._move_jobs_off_leaving_members()

    def _move_jobs_off_leaving_members(self) -> None:
        leaving = self._jobs.leaving
        busy = set()
        for job in self._jobs.jobs():
            execution = job.execution
            if execution is None or not leaving.intersection(execution.member_uuids):
                continue
            busy.update(leaving.intersection(execution.member_uuids))
            if job.status is S.RUNNING and job.termination is None:
                self._jobs.request_termination(job, TerminationMode.RESTART_GRACEFUL)
        for uuid in leaving - busy - self._told:
            self._told.add(uuid)
            self._send(uuid, p.Shutdown("your jobs have moved to other members: you may leave"))

    # ------------------------------------------------------------------ the clock

    def tick(self, now: float) -> None:
        if self._jobs.leaving:
            self._move_jobs_off_leaving_members()
        if self._scale_up_at is None or now < self._scale_up_at:
            return
        self._scale_up_at = None
        size = len(self._jobs.available_members())
        for job in self._jobs.jobs():
            execution = job.execution
            if (job.status is S.RUNNING and job.config.auto_scaling and job.termination is None
                    and execution is not None and len(execution.member_uuids) < size):
                log.info("job %s: scaling up from %d to %d members", job.id_string, len(execution.member_uuids), size)
                self._jobs.request_termination(job, TerminationMode.RESTART_GRACEFUL)
