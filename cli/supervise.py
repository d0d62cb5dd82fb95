"""`recog up`'s children: the web server, the worker and beat, each restarted when it stops
unexpectedly, with a back-off, while the others keep running; a signal stops them all.

Each child leads its own process group, so what a crashed child leaves behind (a Celery
worker's pool processes) is ended with it, and so is everything at shutdown. On Linux each
child is also told to stop (SIGTERM) when `recog up` itself dies, even by SIGKILL, so that no
child outlives its supervisor (``PR_SET_PDEATHSIG``). The back-off
doubles with every crash in a row (1, 2, 4, ... seconds, at most 60); a child that ran for
60 seconds counts as healthy again, and its next crash is restarted after 1 second.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType

BACKOFF_FIRST = 1.0  # seconds before the first restart after a crash
BACKOFF_MAX = 60.0  # the back-off doubles per crash in a row up to this
HEALTHY_AFTER = 60.0  # seconds a child must run for its next crash to count as a first again
POLL = 0.2  # seconds between looks at the children
STOP_GRACE = 30.0  # seconds the children have to stop after SIGTERM before they are killed


def _stop_with_supervisor() -> None:
    """In the child, before it runs: SIGTERM when the process that started it dies (Linux's
    prctl PR_SET_PDEATHSIG; elsewhere nothing, and a SIGKILLed `recog up` leaves its children
    to be ended by their process group)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1: PR_SET_PDEATHSIG


def backoff(crashes: int) -> float:
    """Seconds to wait before restarting a child that crashed ``crashes`` times in a row."""
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2.0 ** max(0, crashes - 1))


def _how(returncode: int) -> str:
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exit code {returncode}"


@dataclass
class Child:
    name: str
    argv: Sequence[str]
    proc: subprocess.Popen[bytes] | None = None
    started: float = 0.0
    crashes: int = 0  # crashes in a row, each within HEALTHY_AFTER of its start
    restart_at: float | None = None
    pids: list[int] = field(default_factory=list)  # every process started, for the record


class Supervisor:
    """Start ``children`` (name -> argv) and keep them running until a signal arrives."""

    def __init__(
        self,
        children: Mapping[str, Sequence[str]],
        *,
        env: Mapping[str, str],
        say: Callable[[str], None],
        warn: Callable[[str], None],
    ) -> None:
        self.children = [Child(name, argv) for name, argv in children.items()]
        self.env = dict(env)
        self.say, self.warn = say, warn
        self.stopping = False

    def _start(self, child: Child) -> None:
        child.proc = subprocess.Popen(
            list(child.argv),
            env=self.env,
            process_group=0,
            preexec_fn=_stop_with_supervisor,  # no threads run in `recog up`
        )
        child.started, child.restart_at = time.monotonic(), None
        child.pids.append(child.proc.pid)
        self.say(f"{child.name} started (pid {child.proc.pid})")

    def _stop(self, signo: int, _frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> None:
        """Until SIGTERM, SIGINT (Ctrl-C) or SIGHUP: then stop every child and return."""
        previous = {
            signo: signal.signal(signo, self._stop)
            for signo in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        }
        try:
            for child in self.children:
                self._start(child)
            while not self.stopping:
                now = time.monotonic()
                for child in self.children:
                    self._look_after(child, now)
                time.sleep(POLL)
        finally:
            self.shutdown()
            for signo, handler in previous.items():
                signal.signal(signo, handler)

    def _look_after(self, child: Child, now: float) -> None:
        if child.proc is not None:
            code = child.proc.poll()
            if code is None:
                return
            _end_group(child.proc.pid)  # what the crashed child leaves behind goes with it
            child.crashes = 1 if now - child.started >= HEALTHY_AFTER else child.crashes + 1
            delay = backoff(child.crashes)
            child.proc, child.restart_at = None, now + delay
            self.warn(
                f"the {child.name} (pid {child.pids[-1]}) stopped unexpectedly ({_how(code)}); "
                f"restarting it in {delay:g} s (crash {child.crashes} in a row)"
            )
        elif child.restart_at is not None and now >= child.restart_at and not self.stopping:
            self._start(child)

    def shutdown(self) -> None:
        """SIGTERM to every running child, then wait; kill whatever is left of each group."""
        running = [c.proc for c in self.children if c.proc is not None and c.proc.poll() is None]
        for proc in running:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for proc in running:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for child in self.children:
            if child.proc is not None:
                _end_group(child.proc.pid)
            child.proc = None


def _end_group(pgid: int) -> None:
    """SIGKILL what is left of a child's process group (its own processes only)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
