"""``--jobs N`` / ``--scheduler tcp://HOST:PORT`` / ``--scheduler-timeout S``: where ``explore``, ``sweep`` and
``fit`` run their points (``codesign.cluster``), shared by the three commands and checked before any slow work."""

from __future__ import annotations

import argparse
import math

__all__ = ["add_cluster_arguments", "cluster_options"]


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where the points run (dask.distributed)")
    group.add_argument("--jobs", default=None, metavar="N",
                       help="worker processes on this machine (default 1: in this process; N > 1 starts a "
                       "LocalCluster of N single-thread workers)")
    group.add_argument("--scheduler", default=None, metavar="tcp://HOST:PORT",
                       help="run on the Dask cluster whose scheduler is at this address (its workers; no --jobs)")
    group.add_argument("--scheduler-timeout", default=None, metavar="S",
                       help="seconds the --scheduler has to answer and show a worker (default 10)")


def cluster_options(args: argparse.Namespace) -> dict:
    """``jobs``, ``scheduler`` and ``scheduler_timeout_s`` for the API, or a one-line ClusterError."""
    from codesign.cluster import DEFAULT_TIMEOUT_S, ClusterError, check_jobs, check_scheduler

    scheduler = check_scheduler(args.scheduler)
    if args.jobs is not None and scheduler is not None:
        raise ClusterError(f"--jobs {args.jobs} with --scheduler {scheduler}: a running cluster brings its own "
                           "workers; give one of the two")
    jobs = check_jobs(args.jobs if args.jobs is not None else 1)
    timeout = DEFAULT_TIMEOUT_S
    if args.scheduler_timeout is not None:
        try:
            timeout = float(args.scheduler_timeout)
        except ValueError:
            timeout = math.nan
        if not timeout > 0 or math.isinf(timeout):
            raise ClusterError(f"--scheduler-timeout {args.scheduler_timeout!r}: expected seconds > 0")
    return {"jobs": jobs, "scheduler": scheduler, "scheduler_timeout_s": timeout}
