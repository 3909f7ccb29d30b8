"""A report folder written all-or-nothing: built in a hidden folder beside it and renamed into place.

The folder may be new, empty, or a previous codesign report (its ``report.json`` lists every file in it and
nothing else is there): that one is replaced whole. Any other existing folder is refused before any work, so
a report never mixes with or deletes files it did not write.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Mapping

from codesign.atomic_write import current_umask
from codesign.errors import OutputError

__all__ = ["MANIFEST", "GENERATOR", "check_report_dir", "is_report_dir", "write_folder"]

MANIFEST = "report.json"
GENERATOR = "codesign report"


def _manifest_files(folder: Path) -> set[str] | None:
    """The files a codesign report's manifest lists, or None when ``folder`` holds no such manifest."""
    try:
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("generator") != GENERATOR or not isinstance(data.get("files"), list):
        return None
    return {str(name) for name in data["files"]} | {MANIFEST}


def is_report_dir(folder: str | os.PathLike) -> bool:
    """True when ``folder`` is a previous report holding only the files its manifest lists."""
    folder = Path(folder)
    listed = _manifest_files(folder)
    if listed is None:
        return False
    present = {str(path.relative_to(folder)) for path in folder.rglob("*") if not path.is_dir()}
    return present <= listed


def check_report_dir(path: str | os.PathLike | None) -> Path | None:
    """Fail early (before slow work) when a report cannot go to ``path``: its parent is missing or not writable,
    it is a file, or a folder with files no codesign report wrote. None passes."""
    if path is None:
        return None
    target = Path(os.path.abspath(path))  # "." and "out/" name their folder too
    parent = target.parent
    if not parent.is_dir():
        what = "is a file" if parent.exists() else "does not exist"
        raise OutputError(f"cannot write report {target}: {parent} {what}")
    if target.exists() and not target.is_dir():
        raise OutputError(f"cannot write report {target}: it is a file, not a folder")
    if target.is_dir() and any(target.iterdir()) and not is_report_dir(target):
        raise OutputError(f"cannot write report {target}: the folder holds files that are not a codesign report; "
                          "choose a new or empty folder")
    try:  # a real probe: permission bits do not stop root, a read-only file system does
        probe = tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".probe", dir=parent)
    except OSError as exc:
        raise OutputError(f"cannot write report {target}: folder {parent} is not writable ({exc.strerror})") from None
    os.rmdir(probe)
    return target


def _write_files(folder: Path, files: Mapping[str, bytes | str]) -> None:
    mode = 0o666 & ~current_umask()
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        os.chmod(path, mode)


def write_folder(path: str | os.PathLike, files: Mapping[str, bytes | str], manifest: Mapping) -> Path:
    """Write ``files`` (relative name -> text or bytes) and ``report.json`` (``manifest`` plus the list of files)
    as the folder ``path``, replacing a previous report there; on any failure nothing of it is left."""
    target = check_report_dir(path)
    parent = target.parent
    names = sorted(files)
    document = {"generator": GENERATOR, **manifest, "files": names}
    try:
        build = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent))
    except OSError as exc:
        raise OutputError(f"cannot write report {target}: {exc.strerror}") from None
    old = None
    try:
        _write_files(build, {**files, MANIFEST: json.dumps(document, indent=2) + "\n"})
        os.chmod(build, 0o777 & ~current_umask())  # as mkdir would make it (mkdtemp makes it 0700)
        if target.is_dir() and any(target.iterdir()):
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=parent))
            os.replace(target, old)  # the previous report steps aside (onto an empty folder: allowed)
        try:
            os.replace(build, target)  # onto nothing or an empty folder: one rename
        except BaseException:
            if old is not None:
                os.replace(old, target)  # put the previous report back
                old = None
            raise
    except BaseException as exc:
        shutil.rmtree(build, ignore_errors=True)
        if isinstance(exc, OSError):
            raise OutputError(f"cannot write report {target}: {exc.strerror}") from None
        raise
    finally:
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return target
