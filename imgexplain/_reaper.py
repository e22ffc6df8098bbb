"""Stop a private Ray cluster whose driver died: ``python _reaper.py MARK``, its stdin a pipe from the driver.

Ray's agents (``ray::DashboardAgent``, ``ray::RuntimeEnvAgent``) outlive a driver killed with SIGKILL.
Every process of a private cluster inherits the driver's environment, in which
:func:`imgexplain.ray_cluster.connect` put ``IMGEXPLAIN_RAY_MARK=MARK``. This script waits until its stdin
closes (the driver ended, however it ended), then kills this user's processes that carry the mark.
It runs as a plain file (it imports nothing of imgexplain), in its own session so that a signal to the
driver's process group does not reach it.
"""
from __future__ import annotations

import os
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


def main(mark: str, seconds: float = 10.0, quiet: float = 1.0) -> None:
    sys.stdin.buffer.read()
    # Killed processes may have started others a moment before (a raylet starting a worker), and a process
    # in the middle of exec() may not show its environment for an instant: only ``quiet`` seconds of looks
    # that find none end the watch.
    deadline = time.monotonic() + seconds
    last_found = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - last_found < quiet:
        found = marked_processes(mark)
        if found:
            last_found = time.monotonic()
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                continue
        time.sleep(0.1)


if __name__ == "__main__":
    main(sys.argv[1])
