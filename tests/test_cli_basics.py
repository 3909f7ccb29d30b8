"""What every command shares: --version, and files written the way a user's shell would create them."""

from __future__ import annotations

import os
import stat

import pytest

from codesign import __version__
from codesign.atomic_write import write_text_atomic
from codesign.cli import main


def test_version_prints_the_package_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"codesign {__version__}"


@pytest.mark.parametrize("mask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_honour_the_umask(tmp_path, mask, mode):
    previous = os.umask(mask)
    try:
        path = write_text_atomic(tmp_path / "out.json", "{}\n")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == mode
