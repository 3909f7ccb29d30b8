"""explore, sweep and fit on dask.distributed: the same results in this process, on a LocalCluster of two workers
and on a real scheduler with two workers; bad cluster options and an unreachable scheduler are one line, exit 2."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from codesign.cli import main
from codesign.cluster import ClusterError, check_jobs, check_scheduler, open_pool

MODEL = textwrap.dedent(
    """
    import torch
    from torch import nn

    def tiny():
        torch.manual_seed(0)
        model = nn.Sequential(
            nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 8, 3, padding=1, groups=8), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
        )
        return model.eval(), (torch.randn(1, 3, 12, 12),)
    """
)


@pytest.fixture(scope="module")
def model_ref(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "tiny_cluster.py"
    path.write_text(MODEL)
    return f"{path}:tiny"


def _sweep(model_ref, **where):
    from codesign.arch_loader import load_arch
    from codesign.model_ref import load_model
    from codesign.sweep import sweep

    name, model, inputs = load_model(model_ref, None)
    return sweep(model, inputs, load_arch("fpga-8x8"), bits=(8, 4, 1), arrays=((4, 4), (8, 8)), board="icebreaker",
                 name=name, **where).to_dict()


def _explore(model_ref, **where):
    from codesign.explore import explore

    return explore(model_ref, "fpga-12x14", prune=["unstructured:0.5"], arrays="8x8", **where).to_dict()


def _fit(model_ref, **where):
    from codesign.arch_loader import load_arch
    from codesign.fit import fit_design
    from codesign.model_ref import load_model

    name, model, inputs = load_model(model_ref, None)
    return fit_design(model, inputs, load_arch("fpga-8x8"), "icebreaker", 2000.0, name=name,
                      shapes=((2, 2), (2, 4), (4, 4), (4, 8)), **where).to_dict()


RUNS = {"sweep": _sweep, "explore": _explore, "fit": _fit}


@pytest.fixture(scope="module")
def serial(model_ref):
    """Each command's result in this process (no cluster), computed once for the comparisons."""
    return {name: run(model_ref) for name, run in RUNS.items()}


# ------------------------------------------------------------------------------------------ the options


@given(st.integers(min_value=1, max_value=10_000))
def test_a_whole_number_of_jobs_from_one_up_is_accepted_as_given(jobs):
    assert check_jobs(jobs) == jobs == check_jobs(str(jobs))


@given(st.one_of(st.integers(max_value=0), st.booleans(), st.floats(), st.just("two"), st.just("")))
def test_anything_else_as_jobs_is_a_cluster_error(jobs):
    with pytest.raises(ClusterError, match="--jobs"):
        check_jobs(jobs)


@pytest.mark.parametrize("address", ["tcp://127.0.0.1:8786", "127.0.0.1:8786", "tcp://node-3.lab:40000"])
def test_a_scheduler_address_with_a_host_and_port_is_kept(address):
    assert check_scheduler(address) == address


@pytest.mark.parametrize("address", ["nope", "tcp://127.0.0.1", "tcp://:8786", "tcp://host:0", "host:99999"])
def test_a_scheduler_address_without_host_and_port_is_a_cluster_error(address):
    with pytest.raises(ClusterError, match="tcp://HOST:PORT"):
        check_scheduler(address)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("command", [["sweep", "--arch", "fpga-8x8"], ["explore", "--arch", "fpga-8x8"],
                                     ["fit", "--fps", "30", "--board", "ulx3s"]])
@pytest.mark.parametrize("options,message", [
    (["--jobs", "0"], "--jobs '0': the number of worker processes must be a whole number >= 1"),
    (["--jobs", "two"], "--jobs 'two'"),
    (["--scheduler", "nope"], "--scheduler 'nope': expected an address tcp://HOST:PORT"),
    (["--jobs", "2", "--scheduler", "tcp://127.0.0.1:8786"], "a running cluster brings its own workers"),
    (["--scheduler", "tcp://127.0.0.1:8786", "--scheduler-timeout", "0"], "--scheduler-timeout '0'"),
])
def test_bad_cluster_options_are_one_line_and_exit_2(capsys, model_ref, command, options, message):
    assert main([command[0], model_ref, *command[1:], *options]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err


@pytest.mark.parametrize("command", [["sweep", "--arch", "fpga-8x8"], ["explore", "--arch", "fpga-8x8"],
                                     ["fit", "--fps", "30", "--board", "ulx3s"]])
def test_an_unreachable_scheduler_is_one_line_and_exit_2_within_its_timeout(capsys, model_ref, tmp_path, command):
    address = f"tcp://127.0.0.1:{_free_port()}"  # nothing listens there
    out = tmp_path / "out.json"
    json_option = ["--json", str(out)] if command[0] != "fit" else []
    start = time.perf_counter()
    code = main([command[0], model_ref, *command[1:], *json_option, "--scheduler", address,
                 "--scheduler-timeout", "1"])
    elapsed = time.perf_counter() - start
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and f"--scheduler {address}: no scheduler answered within 1 s" in err, err
    assert elapsed < 20 and not out.exists()


# ------------------------------------------------------------------------------------------ the pool


def _sleep_then_echo(task):
    seconds, value = task
    time.sleep(seconds)
    return value


@pytest.mark.slow
def test_a_local_cluster_returns_results_in_task_order_whatever_finishes_first():
    done = []
    tasks = [(0.4, "a"), (0.0, "b"), (0.2, "c"), (0.0, "d")]
    with open_pool(2) as pool:
        assert pool.workers == 2
        shared = pool.share({"big": list(range(1000))})
        assert pool.map(_sleep_then_echo, tasks, done.append) == ["a", "b", "c", "d"]
        assert pool.map(len, [(shared,), (shared, shared)]) == [1, 2]
    assert done == [1, 1, 1, 1]


def test_one_job_without_a_scheduler_runs_in_this_process():
    with open_pool(1) as pool:
        assert pool.client is None and pool.workers == 1
        value = object()
        assert pool.share(value) is value
        assert pool.map(_sleep_then_echo, [(0, 1), (0, 2)]) == [1, 2]


# ------------------------------------------------------------------------------------------ the same results


@pytest.mark.slow
@pytest.mark.parametrize("command", list(RUNS))
def test_two_local_workers_give_what_one_process_gives(model_ref, serial, command):
    assert RUNS[command](model_ref, jobs=2) == serial[command]


@pytest.fixture(scope="module")
def scheduler(tmp_path_factory):
    """A real ``dask scheduler`` and two ``dask worker`` processes on localhost, stopped afterwards."""
    from distributed import Client

    dask = str(Path(sys.executable).with_name("dask"))
    folder = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{_free_port()}"
    commands = [[dask, "scheduler", "--host", "127.0.0.1", "--port", address.rsplit(":", 1)[1], "--no-dashboard"]]
    commands += [[dask, "worker", address, "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1",
                  "--no-dashboard", "--name", f"worker-{i}", "--local-directory", str(folder / f"w{i}")]
                 for i in range(2)]
    processes = []
    try:
        for command in commands:
            processes.append(subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                              start_new_session=True))
        with Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for process in reversed(processes):  # the workers, then the scheduler: each with its own children
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


@pytest.mark.slow
@pytest.mark.parametrize("command", list(RUNS))
def test_a_real_scheduler_with_two_workers_gives_what_one_process_gives(model_ref, serial, scheduler, command):
    assert RUNS[command](model_ref, scheduler=scheduler) == serial[command]


@pytest.mark.slow
def test_the_sweep_command_on_a_real_scheduler_writes_what_it_writes_at_one_job(model_ref, scheduler, tmp_path):
    files = {}
    for label, options in (("here", ["--jobs", "1"]), ("there", ["--scheduler", scheduler])):
        files[label] = tmp_path / f"{label}.json"
        assert main(["sweep", model_ref, "--arch", "fpga-8x8", "--bits", "8,4", "--json", str(files[label]),
                     "--quiet", *options]) == 0
    assert files["here"].read_text() == files["there"].read_text()
