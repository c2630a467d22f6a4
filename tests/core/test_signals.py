"""The one stop-on-signal mechanism: first signal asks, second raises, old handlers come back."""

import os
import signal
import threading

import pytest

from fer_edge.errors import Interrupted
from fer_edge.signals import sigterm_interrupts, stop_on_signals


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_first_signal_asks_second_raises_and_handlers_are_restored(signum, capsys):
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(Interrupted) as info, stop_on_signals("stopping soon") as stop:
        os.kill(os.getpid(), signum)
        assert stop.requested and stop.signum == signum
        assert "stopping soon" in capsys.readouterr().err
        os.kill(os.getpid(), signal.SIGTERM)
    assert info.value.signum == signal.SIGTERM
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_outside_the_main_thread_nothing_is_installed():
    seen = []

    def work():
        with stop_on_signals() as stop, sigterm_interrupts():
            seen.append((stop.requested, signal.getsignal(signal.SIGTERM)))

    thread = threading.Thread(target=work)
    thread.start()
    thread.join()
    assert seen == [(False, signal.getsignal(signal.SIGTERM))]


def test_sigterm_raises_inside_the_block():
    with pytest.raises(Interrupted) as info, sigterm_interrupts():
        os.kill(os.getpid(), signal.SIGTERM)
    assert info.value.signum == signal.SIGTERM
