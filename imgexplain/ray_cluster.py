"""Which Ray cluster the workers run on, and how many of them fit: checked quickly, never waited on forever.

With an address (``address=``, ``--address`` or ``RAY_ADDRESS``) the run joins that cluster, after a
TCP connection to it succeeded within :data:`CONNECT_SECONDS`. Without one it starts a private Ray on
this machine for the run (Ray's own default would join any cluster left by ``ray start``) and stops it
after the run; a helper process (:mod:`imgexplain._reaper`) stops it too if the driver is killed. A
SIGTERM handler of the caller's is kept (``ray.init`` replaces it with one that exits). The
number of workers is capped at what the cluster's free CPUs can hold, with a warning; a cluster with no
free CPU is an error at once.
"""
from __future__ import annotations

import contextlib
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Iterator

from imgexplain import _reaper

logger = logging.getLogger("imgexplain")

CONNECT_SECONDS = 5.0  # a cluster's address must accept a connection within this time
LOCAL_ADDRESSES = ("auto", "local")


class ClusterError(RuntimeError):
    """The Ray cluster cannot run the workers (no free CPU, a worker that cannot start)."""


def given_address(address: str | None) -> str | None:
    """The cluster to join: ``address``, else ``RAY_ADDRESS``, else None (a private Ray for the run)."""
    return address or os.environ.get("RAY_ADDRESS") or None


def check_address(address: str | None, seconds: float = CONNECT_SECONDS) -> None:
    """ValueError unless the cluster at ``address`` (or ``RAY_ADDRESS``) accepts a connection in ``seconds``.

    Parameters
    ----------
    address : str or None
        ``host:port`` or ``ray://host:port``; None takes ``RAY_ADDRESS``, and without it there is
        nothing to check (a private Ray is started). ``auto`` and ``local`` are left to Ray.
    seconds : float
        How long the connection may take.

    Raises
    ------
    ValueError
        An address that is not ``host:port``, or nothing listening there.

    Examples
    --------
    >>> from imgexplain.ray_cluster import check_address
    >>> check_address("bogus:1", seconds=1)
    Traceback (most recent call last):
    ...
    ValueError: cannot reach the Ray cluster at 'bogus:1': ...
    """
    address = given_address(address)
    if address is None or address in LOCAL_ADDRESSES:
        return
    host, _, port = address.split("://", 1)[-1].rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"Ray cluster address {address!r}: expected host:port (the head node's GCS address, "
                         f"as printed by 'ray start --head') or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=seconds).close()
    except (OSError, OverflowError) as error:
        raise ValueError(f"cannot reach the Ray cluster at {address!r}: {error.strerror or error}") from None


@contextlib.contextmanager
def connect(address: str | None) -> Iterator[bool]:
    """Ray for the block: joined at ``address`` (or ``RAY_ADDRESS``), or a private local one; True if
    started here (it is stopped at the end). A Ray already initialised in this process is used as it is."""
    import ray

    if ray.is_initialized():
        yield False
        return
    address = given_address(address)
    if address is not None:
        check_address(address)
        _init(address=address)
        try:
            yield True
        finally:
            ray.shutdown()
        return
    with _reaped() as mark:
        os.environ[_reaper.VARIABLE] = mark  # inherited by every process of the private cluster
        try:
            _init(address="local")
        finally:
            del os.environ[_reaper.VARIABLE]
        try:
            yield True
        finally:
            ray.shutdown()


_INIT_OPTIONS = dict(include_dashboard=False, logging_level="ERROR", configure_logging=True, log_to_driver=False)


def _init(address: str) -> None:
    """``ray.init``, keeping a SIGTERM handler that the caller installed.

    ``ray.init`` replaces it with ``sys.exit``, whose SystemExit a ``ray.wait`` blocked in Ray's core
    worker turns into ``SystemExit(1)``: the caller (the command's "stop, report the rows so far, exit
    143") would never know that a SIGTERM came. A handler that raises KeyboardInterrupt stops such a
    wait as Ctrl-C does.
    """
    import ray

    handler = signal.getsignal(signal.SIGTERM)
    ray.init(address=address, **_INIT_OPTIONS)
    if callable(handler) and signal.getsignal(signal.SIGTERM) is not handler:
        signal.signal(signal.SIGTERM, handler)


@contextlib.contextmanager
def _reaped() -> Iterator[str]:
    """A mark for a private cluster's processes; they are killed when this process ends, however it ends."""
    mark = secrets.token_hex(8)
    reaper = subprocess.Popen([sys.executable, str(Path(_reaper.__file__)), mark], stdin=subprocess.PIPE,
                              stdout=subprocess.DEVNULL, start_new_session=True)
    try:
        yield mark
    finally:
        reaper.stdin.close()
        reaper.wait()


def usable_workers(n_workers: int, cpus_per_worker: float) -> int:
    """``n_workers``, or fewer with a warning when the cluster's free CPUs hold fewer; ClusterError for none."""
    import ray

    free = ray.available_resources().get("CPU", 0.0)
    total = ray.cluster_resources().get("CPU", 0.0)
    fits = int(free // cpus_per_worker + 1e-9)
    if fits < 1:
        raise ClusterError(f"the Ray cluster has no free CPU for a worker ({free:g} of {total:g} CPUs free, "
                           f"{cpus_per_worker:g} per worker)")
    if n_workers > fits:
        logger.warning("imgexplain: %d workers asked for, but the Ray cluster has free CPUs for %d "
                       "(%g of %g CPUs free); running %d", n_workers, fits, free, total, fits)
    return min(n_workers, fits)
