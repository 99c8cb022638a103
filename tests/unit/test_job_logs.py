"""Per-job logs in one process: which member log lines are about a job (jetmq/member/joblogs.py),
how prints are captured, what a member pushes, and the master's bounded store (jetmq/master/job_logs.py)."""
from __future__ import annotations

import contextlib
import logging
import sys
import threading

import pytest

from jetmq import protocol as p
from jetmq.core.metrics_context import CURRENT
from jetmq.core.processor import ProcessorContext
from jetmq.errors import MemberNotFoundError
from jetmq.ids import id_to_string
from jetmq.logs import configure_logging
from jetmq.master.job_logs import LINE_OVERHEAD, JobLogs as MasterJobLogs, JobLogStore
from jetmq.member import joblogs

pytestmark = pytest.mark.timeout(30)

JOB = 0x105D_01C1_8740_0BD8
OTHER_JOB = 0x0AAA_0BBB_0CCC_0DDD
UUID = "1234abcd-0000-4000-8000-000000000001"


@pytest.fixture
def member(tmp_path):
    """``with member() as logs``: a member's logging as __main__ sets it up (its log file in
    tmp_path/logs), with job logs installed; what it pushes is in ``logs.sent``. Undone
    afterwards. (Installed inside the test: pytest sets its own sys.stdout between phases.)"""
    return lambda: member_logs(tmp_path)


@contextlib.contextmanager
def member_logs(tmp_path):
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    saved_streams = sys.stdout, sys.stderr
    log_file = tmp_path / "logs" / "member-1234abcd.log"
    configure_logging("member-1234abcd", path=log_file)
    sent = []
    logs = joblogs.install(UUID, sent.append)
    logs.sent, logs.log_file = sent, log_file
    try:
        yield logs
    finally:
        CURRENT.context = None
        joblogs.uninstall(logs)
        for handler in list(root.handlers):
            root.removeHandler(handler)
            handler.close()
        for handler in saved_handlers:
            root.addHandler(handler)
        root.setLevel(saved_level)
        sys.stdout, sys.stderr = saved_streams


def running(job_id: int) -> None:
    """As the engine does before it calls a processor of ``job_id``."""
    CURRENT.context = ProcessorContext("map", job_id=job_id, execution_id=77)


def pushed_texts(member) -> list[tuple[int, str]]:
    member.push_now()
    return [(line.job_id, line.text) for msg in member.sent for line in msg.lines]


def test_prints_and_logging_of_user_code_are_lines_of_its_job_and_other_lines_are_not(member):
    with member() as member:
        # Given user code of JOB running on the member's main thread
        running(JOB)
        # When it prints (stdout and stderr, one line in two writes) and logs
        print("marker one")
        print("marker", end="")
        print(" two")
        print("marker three", file=sys.stderr)
        logging.getLogger("userfn").warning("marker %d", 4)
        # and the member logs and prints while no processor runs
        CURRENT.context = None
        logging.getLogger("jetmq.member.runtime").info("a line about no job")
        print("a print outside any job")
        # Then the push holds exactly the job's lines, as "LEVEL logger: message"
        assert pushed_texts(member) == [(JOB, "INFO stdout: marker one"), (JOB, "INFO stdout: marker two"),
                                        (JOB, "INFO stderr: marker three"), (JOB, "WARNING userfn: marker 4")]
        # And the member log has all of them, the job's tagged job=<id>
        main_log = member.log_file.read_text().splitlines()
        tag = f"job={id_to_string(JOB)} "
        assert [line.split("] ", 1)[1] for line in main_log if "marker" in line or "job" in line] == [
            f"{tag}stdout: marker one", f"{tag}stdout: marker two", f"{tag}stderr: marker three",
            f"{tag}userfn: marker 4", "jetmq.member.runtime: a line about no job",
            "stdout: a print outside any job"]
        # And the job's own file beside the member log has its lines only, as the member log shows them
        job_file = member.log_file.parent / "jobs" / id_to_string(JOB) / "member-1234abcd.log"
        assert job_file.read_text().splitlines() == [line for line in main_log if tag in line]


def test_engine_lines_naming_an_execution_are_lines_of_its_job(member):
    with member() as member:
        msg = p.InitExecution.__new__(p.InitExecution)  # only the fields the hook reads
        for name, value in {"execution_id": 4242, "job_id": JOB, "member_index": 1, "members": ("a", "b")}.items():
            object.__setattr__(msg, name, value)
        joblogs.execution_initialising(msg)
        log = logging.getLogger("jetmq.member.executions")
        log.warning("execution %s failed: %s", id_to_string(4242), "boom")
        log.info("cannot initialise %s execution %s", "the", id_to_string(4242))
        log.info("execution %s: unknown to this member", id_to_string(999))  # no job known for it
        log.info("a line about %s", OTHER_JOB, extra={"job_id": OTHER_JOB})  # tagged explicitly
        assert pushed_texts(member) == [
            (JOB, f"INFO jetmq.member.joblogs: execution {id_to_string(4242)} initialising: member 2 of 2"),
            (JOB, f"WARNING jetmq.member.executions: execution {id_to_string(4242)} failed: boom"),
            (JOB, f"INFO jetmq.member.executions: cannot initialise the execution {id_to_string(4242)}"),
            (OTHER_JOB, f"INFO jetmq.member.executions: a line about {OTHER_JOB}")]


def test_a_thread_of_its_own_is_not_the_running_processor(member):
    with member() as member:
        running(JOB)
        thread = threading.Thread(target=lambda: logging.getLogger("elsewhere").warning("from a thread"))
        thread.start()
        thread.join()
        assert pushed_texts(member) == []
        assert "] elsewhere: from a thread" in member.log_file.read_text()


def test_lines_beyond_the_pending_bound_reach_the_file_and_the_master_learns_how_many(member, monkeypatch):
    with member() as member:
        monkeypatch.setattr(joblogs, "MAX_PENDING_LINES", 3)
        running(JOB)
        for i in range(5):
            print(f"line {i}")
        texts = pushed_texts(member)
        assert [t for _, t in texts[:3]] == ["INFO stdout: line 0", "INFO stdout: line 1", "INFO stdout: line 2"]
        assert texts[3][0] == JOB and texts[3][1].startswith(
            "WARNING jetmq.member.joblogs: 2 lines of this job were not sent to the master")
        job_file = member.file_of(JOB)
        assert str(job_file) in texts[3][1]
        in_file = [line.rsplit(": ", 1)[1] for line in job_file.read_text().splitlines()]
        assert in_file == [f"line {i}" for i in range(5)]


def test_pending_lines_go_before_the_execution_finished_message(member):
    with member() as member:
        running(JOB)
        print("last words")
        send = member.before_finish(member.sent.append)
        send(p.ExecutionFinished(1, None, terminated=False, final_output=None))
        assert [type(msg).__name__ for msg in member.sent] == ["JobLogLines", "ExecutionFinished"]
        assert member.sent[0].lines[0].text == "INFO stdout: last words"


def test_a_long_partial_line_is_cut_and_a_print_of_many_lines_is_many_lines(member):
    with member() as member:
        running(JOB)
        sys.stdout.write("x" * (joblogs.MAX_LINE_CHARS + 10))
        print("a\nb")
        texts = [t for _, t in pushed_texts(member)]
        prefix = "INFO stdout: "
        cut = joblogs.MAX_LINE_CHARS - len(prefix)
        assert texts[0] == prefix + "x" * cut + f" ... ({10 + len(prefix)} more characters)"
        assert texts[1:] == ["INFO stdout: a", "INFO stdout: b"]


def test_each_line_of_a_traceback_is_a_line_of_the_job(member):
    with member() as member:
        running(JOB)
        try:
            raise ValueError("bad item 7")
        except ValueError:
            logging.getLogger("userfn").exception("failed on %d", 7)
        texts = [t for _, t in pushed_texts(member)]
        assert texts[0] == "ERROR userfn: failed on 7"
        assert texts[1] == "Traceback (most recent call last):"
        assert texts[-1] == "ValueError: bad item 7"
        assert not any("\n" in text for text in texts)
        assert member.wake_at() is None  # nothing waits for a push
        print("one more")
        assert member.wake_at() is not None


# ---------------------------------------------------------------------------------- the master's store


def pushed(job_id: int, *lines: tuple[int, str]) -> list[p.JobLogLine]:
    return [p.JobLogLine(job_id, time, text) for time, text in lines]


def test_the_store_answers_in_time_order_with_tail_member_and_pages():
    store = JobLogStore()
    store.add("member-a", pushed(JOB, (100, "a1"), (300, "a3")))
    store.add("member-b", pushed(JOB, (200, "b2"), (400, "b4")))
    store.add("member-b", pushed(OTHER_JOB, (250, "other")))
    lines, last, more, evicted = store.read(JOB, None, -1, -1)
    assert [line.text for line in lines] == ["a1", "b2", "a3", "b4"] and not more and evicted == 0
    assert [line.text for line in store.read(JOB, None, -1, 3)[0]] == ["b2", "a3", "b4"]
    assert store.read(JOB, None, -1, 0)[0] == []
    assert [line.text for line in store.read(JOB, "member-b", -1, -1)[0]] == ["b2", "b4"]
    # following: only what came after the last line read
    store.add("member-a", pushed(JOB, (500, "a5")))
    assert [line.text for line in store.read(JOB, None, last, -1)[0]] == ["a5"]
    # pages of at most ``limit`` lines, in arrival order across pages
    page, page_last, more, _ = store.read(JOB, None, -1, -1, limit=2)
    assert [line.text for line in page] == ["a1", "a3"] and more
    assert [line.text for line in store.read(JOB, None, page_last, -1, limit=10)[0]] == ["b2", "b4", "a5"]


def test_the_store_is_bounded_per_job_and_in_total_and_counts_what_it_evicted():
    store = JobLogStore(max_lines=3, max_bytes=10_000, max_total=5 * (LINE_OVERHEAD + 2))
    store.add("m", pushed(OTHER_JOB, *[(t, f"o{t}") for t in range(3)]))
    store.add("m", pushed(JOB, *[(t, f"j{t}") for t in range(4)]))  # 4 lines: one evicted, then 6 > 5 in total
    lines, _, _, evicted = store.read(JOB, None, -1, -1)
    assert [line.text for line in lines] == ["j1", "j2", "j3"] and evicted == 1
    other, _, _, other_evicted = store.read(OTHER_JOB, None, -1, -1)
    assert [line.text for line in other] == ["o1", "o2"] and other_evicted == 1  # the older job pays
    assert store.total == 5 * (LINE_OVERHEAD + 2)


class FakeCoordinator:
    def __init__(self, jobs):
        self.jobs = jobs

    def job(self, job_id):
        from jetmq.errors import JobNotFoundError

        if job_id not in self.jobs:
            raise JobNotFoundError("no such job")
        return self.jobs[job_id]


class FakeMembership:
    def __init__(self, uuids):
        self.uuids = uuids

    def infos(self):
        return [type("Info", (), {"uuid": uuid})() for uuid in self.uuids]


def test_the_master_keeps_lines_of_known_jobs_only_and_resolves_member_prefixes():
    logs = MasterJobLogs(FakeCoordinator({JOB: object()}), FakeMembership(["abcd0001-x", "abce0002-y"]), None)
    logs.member_handlers()[p.JobLogLines]("dead0003-z", p.JobLogLines(tuple(
        pushed(JOB, (1, "kept")) + pushed(OTHER_JOB, (2, "unknown job: dropped")))))
    assert [line.text for line in logs.store.read(JOB, None, -1, -1)[0]] == ["kept"]
    assert logs.store.read(OTHER_JOB, None, -1, -1)[0] == []
    assert logs._member(JOB, "abcd") == "abcd0001-x"
    assert logs._member(JOB, "DEAD") == "dead0003-z"  # gone from the cluster, its lines kept
    for bad, why in [("abc", "several"), ("ffff", "No member"), ("zz!", "not a member uuid"), ("", "not a member")]:
        with pytest.raises(MemberNotFoundError, match=why):
            logs._member(JOB, bad)
