"""A fresh clone installs from the lock and starts: the README's promise, on what is committed.

The clone gets only what git tracks, so a file that exists on this machine but was never
committed (or a dependency installed by hand) makes this test fail, as it would for a newcomer.
uv's cache makes the second install of the same lock take seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, f"{' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_a_fresh_clone_installs_from_the_lock_and_runs_recog_help(tmp_path: Path) -> None:
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout: nothing to clone")
    clone = tmp_path / "recog"
    run("git", "clone", "--quiet", "--no-hardlinks", ROOT, clone, cwd=tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "UV_"))}
    # The interpreter behind this test's virtualenv, as a newcomer's `python3` would be.
    env["PYTHON"] = shutil.which("python3") or sys.executable
    run("make", "--no-print-directory", "install", f"PYTHON={env['PYTHON']}", cwd=clone, env=env)

    out = run(clone / ".venv" / "bin" / "recog", "--help", cwd=clone, env=env)
    assert "Usage" in out
    assert "case" in out

    # What got installed is exactly what uv.lock names, not whatever is newest today:
    # `uv sync --check` exits non-zero if it would add, remove or change any package.
    run(clone / ".tools" / "bin" / "uv", "sync", "--locked", "--check", cwd=clone, env=env)
