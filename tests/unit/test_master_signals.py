"""The master's stop signals: the first wakes its loop, a second one insists."""
import select
import signal

import pytest

from jetmq.master.signals import StopSignals

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def restored_signals():
    """The test process's handlers and wake-up fd, put back after the test."""
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGINT)}
    wakeup_fd = signal.set_wakeup_fd(-1)
    yield
    signal.set_wakeup_fd(wakeup_fd)
    for signum, handler in handlers.items():
        signal.signal(signum, handler)


def test_a_signal_wakes_the_loop_with_its_name_and_a_second_one_insists(restored_signals):
    # Given the master's signals installed
    insisted = []
    signals = StopSignals(lambda: insisted.append(True))
    try:
        assert signals.take() is None
        # When SIGTERM comes
        signal.raise_signal(signal.SIGTERM)
        # Then the loop's poll wakes, and it learns which signal came; nothing insists yet
        assert select.select([signals.fd], [], [], 5)[0], "the wake-up pipe stayed silent"
        assert signals.take() == "SIGTERM"
        assert insisted == []
        # When a second signal comes
        signal.raise_signal(signal.SIGINT)
        # Then it insists
        assert insisted == [True]
        assert signals.take() == "SIGINT"
    finally:
        signals.close()
