"""The README's excerpts are real output: every ``$ codesign ...`` line in it is run, and the lines shown
under it appear in what the command prints, in order (numbers included, within the columns shown)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
ELLIPSIS = "..."
# Wall times differ from run to run: "(23 s)", "in 1.6 s" are compared as "<t> s".
DURATION = re.compile(r"\b\d+(?:\.\d+)? s\b")


def excerpts(text: str) -> list[tuple[str, list[str]]]:
    """(command, lines shown under it) for every ``$ codesign`` line inside a fenced block."""
    found, block, command, shown = [], False, None, []
    for line in text.splitlines():
        if line.startswith("```"):
            if block and command:
                found.append((command, shown))
            block, command, shown = not block, None, []
            continue
        if not block:
            continue
        if line.startswith("$ codesign"):
            if command:
                found.append((command, shown))
            command, shown = line[2:], []
        elif command is not None:
            shown.append(line)
    return found


def _normal(line: str) -> str:
    """Centred titles move with the table's width: compare lines without their outer spaces."""
    return DURATION.sub("<t> s", line.strip())


def missing_lines(shown: list[str], printed: str) -> list[str]:
    """Lines of ``shown`` not found in ``printed`` in order; a line ending in '...' matches as a prefix and a
    line that is only '...' stands for lines left out."""
    actual = [_normal(line) for line in printed.splitlines()]
    position, missing = 0, []
    for raw in shown:
        line = _normal(raw)
        if not line or line.strip() == ELLIPSIS:
            continue
        prefix = line.endswith(ELLIPSIS)
        want = line[: -len(ELLIPSIS)].rstrip() if prefix else line
        for index in range(position, len(actual)):
            if (actual[index].startswith(want) if prefix else actual[index] == want):
                position = index + 1
                break
        else:
            missing.append(raw)
    return missing


def _shell_command(command: str) -> str:
    """The command as the shell runs it: a trailing '# ...' is a comment in the README."""
    words = shlex.split(command, comments=True)
    return shlex.join(words).replace("'>'", ">")


COMMANDS = excerpts(README.read_text(encoding="utf-8"))
SLOW = ("codesign fpga", "codesign explore", "codesign verify")


def test_the_readme_has_excerpts_to_check():
    assert len(COMMANDS) >= 6


@pytest.mark.slow
@pytest.mark.parametrize("command,shown", COMMANDS,
                         ids=[f"{i}-{command.split()[1]}" for i, (command, _) in enumerate(COMMANDS)])
def test_a_readme_excerpt_is_what_the_command_prints(command, shown, tmp_path):
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("COLUMNS", None)
    done = subprocess.run(_shell_command(command), shell=True, cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=900)
    printed = done.stdout + done.stderr
    missing = missing_lines(shown, printed)
    assert not missing, f"{command}: not in its output:\n" + "\n".join(missing) + "\n--- printed:\n" + printed


def test_the_excerpt_matcher_keeps_order_prefixes_and_gaps():
    printed = "a 1\nb 2 3 4\nc in 1.5 s\nd\n"
    assert missing_lines(["a 1", "...", "b 2 ...", "c in 9.0 s"], printed) == []
    assert missing_lines(["b 2 3 4", "a 1"], printed) == ["a 1"]
    assert missing_lines(["b 2 3 5"], printed) == ["b 2 3 5"]
