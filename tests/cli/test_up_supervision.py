"""`recog up` keeps its children running (security issue, item 10): a worker killed with
SIGKILL is restarted, with a back-off that doubles per crash in a row, while the web server
and beat keep running; SIGTERM on `recog up` still ends every child. The real `recog up` on
the embedded SQLite default in a temporary data directory, on a free port of 127.0.0.1; the
test kills only processes it started (`recog up` and the children `recog up` started).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from cli.supervise import BACKOFF_FIRST, backoff

T = TypeVar("T")
STARTED = re.compile(r"^(worker|beat|web server) started \(pid (\d+)\)$", re.MULTILINE)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(check: Callable[[], T], *, timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.1)


def alive(pid: int) -> bool:
    """Running (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def children_of(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


class Up:
    """`recog up` in its own process group, its output in files."""

    def __init__(self, tmp_path: Path) -> None:
        self.port = free_port()
        self.out, self.err = tmp_path / "up.out", tmp_path / "up.err"
        env = {k: v for k, v in os.environ.items() if not k.startswith("RECOG_")}
        env.update(RECOG_DATA_DIR=str(tmp_path / "var"), COLUMNS="200")
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [str(Path(sys.executable).with_name("recog")), "up", "--port", str(self.port)],
                env=env,
                cwd=tmp_path,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.seen: set[int] = set()

    def started(self) -> list[tuple[str, int]]:
        found = [(kind, int(pid)) for kind, pid in STARTED.findall(self.out.read_text())]
        self.seen.update(pid for _, pid in found)
        return found

    def pid(self, kind: str, *, after: int | None = None) -> int | None:
        """The newest ``kind`` started (after the one with pid ``after``), if any."""
        pids = [pid for k, pid in self.started() if k == kind]
        if after is not None:
            pids = pids[pids.index(after) + 1 :]
        return pids[-1] if pids else None

    def web_answers(self) -> bool:
        try:
            url = f"http://127.0.0.1:{self.port}/login"
            with urllib.request.urlopen(url, timeout=5) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def log(self) -> str:
        return f"--- stdout ---\n{self.out.read_text()}\n--- stderr ---\n{self.err.read_text()}"

    def end(self) -> None:
        """Whatever happened: nothing this test started outlives it."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        self.started()
        for pid in self.seen:  # each child leads its own process group
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    running = Up(tmp_path)
    try:
        yield running
    finally:
        running.end()


def test_backoff_doubles_per_crash_in_a_row_up_to_a_minute() -> None:
    assert [backoff(n) for n in range(1, 9)] == [1, 2, 4, 8, 16, 32, 60, 60]


@pytest.mark.slow
def test_a_killed_worker_is_restarted_with_backoff_and_the_web_keeps_answering(up: Up) -> None:
    try:
        wait_until(up.web_answers, timeout=120, what="the web server of `recog up`")
        web, beat = up.pid("web server"), up.pid("beat")
        worker = up.pid("worker")
        assert web is not None
        assert beat is not None
        assert worker is not None
        # The worker's own pool processes (prefork): they must not outlive it.
        pool = wait_until(lambda: children_of(worker), timeout=60, what="the worker's pool")

        for crash in (1, 2, 3):
            killed_at = time.monotonic()
            os.kill(worker, signal.SIGKILL)
            delay = backoff(crash)
            line = (
                f"error: the worker (pid {worker}) stopped unexpectedly (killed by SIGKILL); "
                f"restarting it in {delay:g} s (crash {crash} in a row)"
            )
            wait_until(lambda line=line: line in up.err.read_text(), timeout=10, what=line)
            # Meanwhile the web server answers, and neither it nor beat was restarted.
            assert up.web_answers()
            old = worker
            worker = wait_until(
                lambda old=old: up.pid("worker", after=old), timeout=delay + 10, what="a new worker"
            )
            assert time.monotonic() - killed_at >= delay - 0.2
            assert alive(worker)
            assert not alive(old)
            if crash == 1:
                wait_until(
                    lambda: not any(alive(p) for p in pool),
                    timeout=10,
                    what="the killed worker's pool processes to end",
                )
        assert backoff(1) == BACKOFF_FIRST
        assert [k for k, _ in up.started()].count("web server") == 1
        assert [k for k, _ in up.started()].count("beat") == 1
        assert alive(web)
        assert alive(beat)
        assert up.web_answers()

        up.proc.send_signal(signal.SIGTERM)
        assert up.proc.wait(timeout=90) == 0
        for pid in (web, beat, worker):
            assert not alive(pid), f"pid {pid} outlived `recog up`"
        assert "stopped" in up.out.read_text()
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{up.log()}") from None


@pytest.mark.slow
def test_no_child_outlives_a_killed_recog_up(up: Up) -> None:
    """`recog up` killed with SIGKILL (no chance to stop anything): its children stop too."""
    try:
        wait_until(up.web_answers, timeout=120, what="the web server of `recog up`")
        pids = [pid for _, pid in up.started()]
        assert len(pids) == 3
        os.kill(up.proc.pid, signal.SIGKILL)
        up.proc.wait(timeout=10)
        wait_until(
            lambda: not any(alive(p) for p in pids),
            timeout=60,
            what=f"the children {pids} to end after `recog up` was killed",
        )
        assert not up.web_answers()
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{up.log()}") from None
