"""The README's walk-through, run exactly as written: its shell block is read from README.md
(so the two cannot drift) and each command runs, in order, on the files of ``examples/`` in a
fresh data directory that does not exist yet, without the demo."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HEADING = "## Walk-through: one case, end to end"


def walkthrough_commands(readme: str) -> list[str]:
    """The commands of the first ``sh`` block under the walk-through's heading, a command
    continued over lines by a trailing backslash joined into one."""
    section = readme.split(HEADING, 1)[1]
    block = re.search(r"```sh\n(.*?)```", section, re.DOTALL)
    assert block is not None, "the walk-through has no sh block"
    commands: list[str] = []
    pending = ""
    for line in block.group(1).splitlines():
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command = (pending + line).strip()
        pending = ""
        if command:
            commands.append(command)
    return commands


def test_the_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    commands = walkthrough_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    assert commands[0] == "recog db upgrade"
    assert any("examples/tor.xml" in c for c in commands)
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    data = tmp_path / "fresh" / "data"  # missing: the first command creates it
    env = {k: v for k, v in os.environ.items() if not k.startswith("RECOG_")}
    env.update(
        {
            "RECOG_DATA_DIR": str(data),
            "RECOG_ENVIRONMENT": "test",
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            "COLUMNS": "200",
        }
    )
    outputs = []
    for command in commands:
        proc = subprocess.run(
            ["bash", "-c", command],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, f"{command}\nexited {proc.returncode}:\n{proc.stderr}"
        # A command may warn, but not that the data directory or the broker is missing.
        assert "could not queue" not in proc.stderr, (command, proc.stderr)
        outputs.append((command, proc.stdout, proc.stderr))

    def said(start: str) -> str:
        return next(out + err for command, out, err in outputs if command.startswith(start))

    assert "1 matched" in said("recog transcript import")
    shown = said("recog case show 1")
    assert "27 (it) -> 1.7" in shown
    assert "27 (it) -> 2.0" in shown
    assert "in_review -> recognized" in said("recog case fire 1 recognize")
    assert "Ada Lovelace" in said("recog case list --search")
    assert "the notice of recognize" in said("recog notice preview")
    html = (tmp_path / "notice.html").read_text(encoding="utf-8")
    assert "Ada Lovelace" in html
    assert "Machine Learning" in html
    assert "2.0" in html  # the percentile conversion the examiner chose, as English writes it
    assert "audit trail intact" in said("recog audit verify")
    assert (data / "broker.sqlite3").exists()
