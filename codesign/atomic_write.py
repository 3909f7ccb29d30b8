"""Write output files all-or-nothing: a failed write leaves no partial file behind."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from codesign.errors import OutputError

__all__ = ["check_writable", "current_umask", "write_text_atomic"]


def check_writable(path: str | os.PathLike | None) -> Path | None:
    """Fail early (before slow work) when ``path`` cannot be written at all; None passes."""
    if path is None:
        return None
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise OutputError(f"cannot write {target}: folder {folder} does not exist")
    if target.is_dir():
        raise OutputError(f"cannot write {target}: it is a directory")
    return target


def check_folder(path: str | os.PathLike) -> Path:
    """The folder ``path`` names, if it exists or its parent does (so it can be created): else OutputError."""
    target = Path(path)
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise OutputError(f"cannot write {target}: folder {parent} does not exist")
    if target.exists() and not target.is_dir():
        raise OutputError(f"cannot write {target}: it is a file, not a folder")
    return target


def current_umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` via a temporary file in the same folder and an atomic rename."""
    target = check_writable(path)
    folder = target.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
    except OSError as exc:
        raise OutputError(f"cannot write {target}: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~current_umask())  # as open() would create it (mkstemp makes it 0600)
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write {target}: {exc.strerror}") from None
        raise
    return target
