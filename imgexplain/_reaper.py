"""Stop a private Ray cluster whose driver died: ``python _reaper.py MARK``, its stdin a pipe from the driver.

Ray's agents (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) outlive a driver killed with SIGKILL.
Every process of a private cluster inherits the driver's environment, in which
:func:`imgexplain.ray_cluster.connect` put ``IMGEXPLAIN_RAY_MARK=MARK``; but a process that renames itself
(Ray's agents and workers set their title, ``ray::...``) overwrites the memory that ``/proc/PID/environ``
shows, so the mark is not always readable there: the cluster is the marked processes and their descendants.
This script notes the cluster's processes every second while its stdin is open; once it closes (the driver
ended, however it ended) it kills those still running and any process of the cluster, until a look finds none.
It runs as a plain file (it imports nothing of imgexplain), in its own session so that a signal to the
driver's process group does not reach it.
"""
from __future__ import annotations

import os
import select
import signal
import sys
import time

VARIABLE = "IMGEXPLAIN_RAY_MARK"


def marked_processes(mark: str, variable: str = VARIABLE) -> list[int]:
    """Ids of this user's processes (but this one) whose environment holds ``variable=mark``."""
    needle = f"{variable}={mark}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            if needle in open(f"/proc/{entry}/environ", "rb").read().split(b"\0"):
                found.append(int(entry))
        except OSError:  # another user's process, or one that just ended
            continue
    return found


def processes() -> dict[int, tuple[int, bytes]]:
    """Parent id and start time of every process that is not a zombie (a zombie has ended)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rpartition(b")")[2].split()  # after the name, which may hold spaces
        except OSError:
            continue
        if len(fields) > 19 and fields[0] != b"Z":
            found[int(entry)] = (int(fields[1]), fields[19])
    return found


def cluster_processes(mark: str, variable: str = VARIABLE, running: dict | None = None) -> list[int]:
    """Ids of the processes that carry ``variable=mark`` and of all their descendants, zombies left out
    (``running``: :func:`processes`, read now if not given)."""
    running = processes() if running is None else running
    found = set(marked_processes(mark, variable)) & set(running)
    while True:
        children = {pid for pid, (parent, _) in running.items() if parent in found} - found
        if not children:
            return sorted(found)
        found |= children


def main(mark: str, seconds: float = 10.0, every: float = 1.0) -> None:
    # While the driver runs, the cluster's processes are noted every ``every`` seconds (with their start
    # times, so that a reused id is never taken for one of them): once the driver is gone, a raylet may
    # end on its own and leave its agents to init, out of reach of a look for descendants.
    seen: dict[int, bytes] = {}
    while not select.select([sys.stdin], [], [], every)[0] or os.read(sys.stdin.fileno(), 4096):
        running = processes()
        seen.update((pid, running[pid][1]) for pid in cluster_processes(mark, running=running))
    # Killed processes may have started others a moment before (a raylet starting a worker): look again
    # until a look finds none.
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        running = processes()
        found = set(cluster_processes(mark, running=running))
        found |= {pid for pid, started in seen.items() if pid in running and running[pid][1] == started}
        if not found:
            return
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue
        time.sleep(0.1)


if __name__ == "__main__":
    main(sys.argv[1])
