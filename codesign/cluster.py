"""Run pure tasks on ``dask.distributed``: in this process (one job), on a LocalCluster of N worker processes,
or on a running cluster at a scheduler address. Results come back in task order, so what a sweep, search or
exploration reports does not depend on the worker count or on which scheduler ran it.

``open_pool(jobs, scheduler)`` is a context manager yielding a ``Pool``: ``share(value)`` ships a value to the
workers once (``Client.scatter``, broadcast) and returns what tasks carry instead of it; ``submit(fn, tasks)``
starts ``fn(task)`` for every task and returns a ``Batch`` whose ``results(progress)`` waits for them
(``as_completed`` advances the progress callback) and returns them in task order.
"""

from __future__ import annotations

import contextlib
import logging
import pickle
import sys
import threading
import uuid
from typing import Any, Callable, Iterator, Sequence

from codesign.errors import CodesignError

__all__ = ["ClusterError", "Pool", "Batch", "check_jobs", "check_scheduler", "open_pool", "one_torch_thread",
           "DEFAULT_TIMEOUT_S"]

DEFAULT_TIMEOUT_S = 10.0  # how long a --scheduler has to answer (and to have a worker) before it is an error


class ClusterError(CodesignError):
    """Bad cluster options (--jobs, --scheduler), a scheduler that does not answer, or a worker lost mid-run."""


def check_jobs(jobs: object) -> int:
    """``jobs`` as a whole number >= 1 (a numeric string is accepted, as the CLI passes it); ClusterError otherwise."""
    value: Any = jobs
    if isinstance(jobs, str):
        try:
            value = int(jobs)
        except ValueError:
            value = None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ClusterError(f"--jobs {jobs!r}: the number of worker processes must be a whole number >= 1")
    return value


def check_scheduler(address: object) -> str | None:
    """``tcp://HOST:PORT`` (or ``HOST:PORT``, which Dask reads as tcp) as given; None stays None; ClusterError for
    anything without a host and a port number."""
    if address is None:
        return None
    text = str(address).strip()
    rest = text.split("://", 1)[1] if "://" in text else text
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ClusterError(f"--scheduler {text!r}: expected an address tcp://HOST:PORT, e.g. tcp://127.0.0.1:8786")
    return text


class _Packed:
    """A shared value as pickled bytes. Dask's own serializer for torch modules rebuilds their hook tables as plain
    dicts (torch then fails on the first hook), so shared values travel as one pickle and are unpickled once per
    worker (``_unpack``)."""

    __slots__ = ("token", "blob")

    def __init__(self, value: Any) -> None:
        self.token = uuid.uuid4().hex
        try:
            self.blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 -- what plain pickle refuses (a mappingproxy, say), cloudpickle takes
            import cloudpickle

            self.blob = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)

    def __getstate__(self) -> tuple:
        return self.token, self.blob

    def __setstate__(self, state: tuple) -> None:
        self.token, self.blob = state


_UNPACKED: dict[str, Any] = {}  # in a worker: token -> the shared value, unpickled once
_UNPACKED_KEEP = 32


def _unpack(item: Any) -> Any:
    if not isinstance(item, _Packed):
        return item
    if item.token not in _UNPACKED:
        while len(_UNPACKED) >= _UNPACKED_KEEP:
            _UNPACKED.pop(next(iter(_UNPACKED)))
        _UNPACKED[item.token] = pickle.loads(item.blob)
    return _UNPACKED[item.token]


@contextlib.contextmanager
def one_torch_thread() -> Iterator[None]:
    """Run with one intra-op torch thread, then restore the count. Export, capture and the simulator's callers work
    on many small tensors, where a second thread only spins: on the 2-core development machine under load, one
    thread halved the CPU time of bench/explore_bench.py; beside busy workers it only takes their core."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _run_task(fn: Callable[[Any], Any], task: Any) -> Any:
    """``fn(task)`` in a worker (shared values in a tuple task unpacked), with one intra-op torch thread when torch
    is loaded: a worker is one core's share, and a second thread per worker only contends with the others."""
    if isinstance(task, tuple):
        task = tuple(_unpack(item) for item in task)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)
    return fn(task)


class Batch:
    """Tasks started on a pool; ``results`` waits for them and returns them in task order."""

    def __init__(self, pool: "Pool", fn: Callable[[Any], Any], tasks: Sequence[Any]) -> None:
        self._pool, self._fn, self._tasks = pool, fn, list(tasks)
        self._futures = None
        if not pool.in_process:
            self._futures = [pool.client.submit(_run_task, fn, task, pure=False) for task in self._tasks]

    def __len__(self) -> int:
        return len(self._tasks)

    def results(self, progress: Callable[[int], None] | None = None) -> list:
        """Every task's result, in task order; ``progress(1)`` once per finished task. A task's CodesignError is
        raised as it is; a worker lost or a connection dropped is a ClusterError."""
        if self._futures is None:
            out = []
            for task in self._tasks:
                out.append(self._fn(task))
                if progress:
                    progress(1)
            return out
        from distributed import as_completed

        client = self._pool.client
        try:
            for future in as_completed(self._futures):
                if future.status == "error":
                    future.result()  # raises the task's exception here, before the others finish
                if progress:
                    progress(1)
            return client.gather(self._futures)
        except CodesignError:
            client.cancel(self._futures)
            raise
        except Exception as exc:
            client.cancel(self._futures)
            if _is_cluster_failure(exc):
                raise ClusterError(f"the cluster failed running {getattr(self._fn, '__name__', 'a task')}: "
                                   f"{type(exc).__name__}: {exc}") from None
            raise


def _is_cluster_failure(exc: BaseException) -> bool:
    from distributed.client import FutureCancelledError
    from distributed.comm.core import CommClosedError
    from distributed.scheduler import KilledWorker

    return isinstance(exc, (KilledWorker, CommClosedError, FutureCancelledError, OSError, TimeoutError))


# Worker settings for short runs of CPU-bound tasks: no statistical profiler (it samples the running task's stack
# every 10 ms) and no GIL monitor (nothing here reads either), and glibc's own malloc trimming (Dask's fixed
# MALLOC_TRIM_THRESHOLD_ also fixes the mmap threshold, so every large array is mapped and unmapped afresh).
# Together about 10% less CPU per simulation on two workers (bench/README.cluster.md).
_QUIET_WORKERS = {"distributed.worker.profile.enabled": False, "distributed.admin.system-monitor.gil.enabled": False,
                  "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None}


class _LocalStart:
    """A LocalCluster and its Client started in a thread, while this process goes on (exporting, capturing)."""

    def __init__(self, jobs: int, preload: Sequence[str]) -> None:
        self.jobs, self.cluster, self.client, self.error = jobs, None, None, None
        self._thread = threading.Thread(target=self._start, args=(list(preload),), daemon=True,
                                        name="codesign-local-cluster")
        self._thread.start()

    def _start(self, preload: list[str]) -> None:
        try:
            import dask
            from distributed import Client, LocalCluster

            with dask.config.set(_QUIET_WORKERS):  # the workers take the config they are started with
                # On this machine only; the scheduler's HTTP routes (health, metrics) on a free port, not 8787.
                self.cluster = LocalCluster(n_workers=self.jobs, threads_per_worker=1, processes=True,
                                            host="127.0.0.1", dashboard_address=None,
                                            scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                                            silence_logs=logging.CRITICAL, preload=preload or None)
            self.client = Client(self.cluster)
        except Exception as exc:  # noqa: BLE001 -- reported on the first use, as one line
            self.error = exc

    def wait(self) -> Any:
        self._thread.join()
        if self.error is not None:
            raise ClusterError(f"--jobs {self.jobs}: the local cluster did not start: {type(self.error).__name__}: "
                               f"{self.error}")
        return self.client

    def close(self) -> None:
        self._thread.join()
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()


class Pool:
    """Where tasks run: this process, or the workers of a Dask client (given, or a LocalCluster's being started)."""

    def __init__(self, client: Any = None, starting: _LocalStart | None = None) -> None:
        self._client, self._starting = client, starting

    @property
    def in_process(self) -> bool:
        return self._client is None and self._starting is None

    @property
    def client(self) -> Any:
        """The Dask client (None in this process), once its cluster is up."""
        if self._client is None and self._starting is not None:
            self._client = self._starting.wait()
        return self._client

    @property
    def workers(self) -> int:
        """Worker processes the tasks are spread over (1 in this process)."""
        if self.in_process:
            return 1
        return max(1, len(self.client.scheduler_info(n_workers=-1).get("workers", {})))

    def share(self, value: Any) -> Any:
        """What a task (a tuple) carries in place of ``value``: the value itself in this process, else a future of
        it scattered once to every worker; the task function gets the value either way. Tasks must not change it."""
        if self.in_process:
            return value
        return self.client.scatter([_Packed(value)], broadcast=True, hash=False)[0]

    def submit(self, fn: Callable[[Any], Any], tasks: Sequence[Any]) -> Batch:
        """Start ``fn(task)`` for every task (in this process: when ``results`` is called). ``fn`` must be a
        module-level function; tasks pickle, with shared values as ``share`` returned them."""
        return Batch(self, fn, tasks)

    def map(self, fn: Callable[[Any], Any], tasks: Sequence[Any],
            progress: Callable[[int], None] | None = None) -> list:
        """``[fn(task) for task in tasks]``, run on the pool."""
        return self.submit(fn, tasks).results(progress)


@contextlib.contextmanager
def open_pool(jobs: object = 1, scheduler: object = None, *, timeout_s: float = DEFAULT_TIMEOUT_S,
              preload: Sequence[str] = ()) -> Iterator[Pool]:
    """A ``Pool`` for the run, closed afterwards.

    ``scheduler`` None and ``jobs`` 1: this process, no cluster. ``jobs`` N > 1: a LocalCluster of N single-thread
    worker processes (no dashboard, quiet logs), started in the background (the pool waits for it on first use) with
    ``preload`` (module names) imported by each worker as it starts. ``scheduler`` 'tcp://HOST:PORT': a Client of that
    running cluster (its workers, so ``jobs`` must stay 1); ClusterError when it does not answer or has no worker
    within ``timeout_s`` seconds.
    """
    jobs = check_jobs(jobs)
    address = check_scheduler(scheduler)
    if address is not None and jobs != 1:
        raise ClusterError(f"--jobs {jobs} with --scheduler {address}: a running cluster brings its own workers; "
                           "give one of the two")
    if address is None and jobs == 1:
        yield Pool(None)
        return
    if address is None:
        starting = _LocalStart(jobs, preload)
        try:
            yield Pool(starting=starting)
        finally:
            starting.close()
        return
    from distributed import Client

    client = _connect(Client, address, timeout_s)
    try:
        yield Pool(client)
    finally:
        client.close()


def _connect(client_class: Any, address: str, timeout_s: float) -> Any:
    """A Client of the scheduler at ``address`` with at least one worker, or a one-line ClusterError."""
    for name in ("distributed.client", "distributed.core", "distributed.comm"):
        logging.getLogger(name).setLevel(logging.CRITICAL)  # the failure is reported once, below
    try:
        client = client_class(address, timeout=timeout_s)
    except (OSError, TimeoutError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        raise ClusterError(f"--scheduler {address}: no scheduler answered within {timeout_s:g} s ({reason})") from None
    try:
        client.wait_for_workers(1, timeout=timeout_s)
    except (OSError, TimeoutError):
        client.close()
        raise ClusterError(f"--scheduler {address}: the scheduler has no worker (none joined within "
                           f"{timeout_s:g} s)") from None
    return client
