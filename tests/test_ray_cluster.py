"""Ray never waits forever: a missing cluster, too many workers, a killed driver, a worker that dies starting.

The runs that could hang run in a subprocess with a deadline (``subprocess.run(timeout=...)``).
"""
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from imgexplain import _reaper, ray_cluster
from imgexplain.cli import main
from imgexplain.distributed import WorkerError

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the socket is closed


def run_python(code: str, deadline: float, **kwargs) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(ROOT), **kwargs.pop("env", {}))
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=deadline, env=env, **kwargs)


@pytest.fixture
def photo(tmp_path):
    from PIL import Image

    path = tmp_path / "photo.png"
    Image.fromarray(np.full((16, 16, 3), 90, np.uint8)).save(path)
    return path


@pytest.mark.parametrize("how", ["--address", "RAY_ADDRESS"])
def test_a_cluster_that_is_not_there_fails_in_seconds_naming_it_before_anything_is_written(photo, tmp_path, how):
    address = f"127.0.0.1:{closed_port()}"
    out = tmp_path / "out"
    command = f"""
        import sys
        from imgexplain.cli import main
        sys.exit(main({["explain", str(photo), "--workers", "1", "--out", str(out), "--method", "anchor"]!r}
                      + {["--address", address] if how == "--address" else []!r}))
    """
    started = time.monotonic()
    finished = run_python(command, deadline=60, env={"RAY_ADDRESS": address} if how == "RAY_ADDRESS" else {})
    assert time.monotonic() - started < 60
    assert finished.returncode == 2, finished.stderr
    lines = finished.stderr.strip().splitlines()
    assert len(lines) == 1 and address in lines[0] and "--address" in lines[0], finished.stderr
    assert not out.exists()


def test_a_name_that_does_not_resolve_is_refused_as_well():
    with pytest.raises(ValueError, match="cannot reach the Ray cluster at 'bogus:1'"):
        ray_cluster.check_address("bogus:1", seconds=2)
    with pytest.raises(ValueError, match="expected host:port"):
        ray_cluster.check_address("no-port-here")


def test_without_an_address_a_private_ray_is_started_and_ray_address_counts_as_one(monkeypatch):
    ray = pytest.importorskip("ray")
    calls = []

    def recording_init(address=None, **kwargs):
        calls.append((address, os.environ.get(_reaper.VARIABLE)))
        raise RuntimeError("recorded")

    monkeypatch.setattr(ray, "init", recording_init)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(RuntimeError, match="recorded"), ray_cluster.connect(None):
        pass
    assert calls[0][0] == "local" and calls[0][1]  # a private cluster, its processes marked for the reaper
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        address = f"127.0.0.1:{listening.getsockname()[1]}"
        monkeypatch.setenv("RAY_ADDRESS", address)
        with pytest.raises(RuntimeError, match="recorded"), ray_cluster.connect(None):
            pass
    assert calls[1] == (address, None)
    assert _reaper.VARIABLE not in os.environ


def test_a_sigterm_handler_of_the_caller_s_outlives_ray_init_and_ray_s_own_is_kept_otherwise(monkeypatch):
    ray = pytest.importorskip("ray")

    def ray_s_handler(signum, frame):
        raise SystemExit(signum)

    monkeypatch.setattr(ray, "init", lambda **kwargs: signal.signal(signal.SIGTERM, ray_s_handler))
    monkeypatch.setattr(ray, "shutdown", lambda: None)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    previous = signal.getsignal(signal.SIGTERM)
    try:
        for caller_s, kept in ((signal.default_int_handler, signal.default_int_handler),
                               (signal.SIG_DFL, ray_s_handler)):
            signal.signal(signal.SIGTERM, caller_s)
            with ray_cluster.connect(None):
                assert signal.getsignal(signal.SIGTERM) is kept
    finally:
        signal.signal(signal.SIGTERM, previous)


MEAN_EXPLAINER = """
    import sys, time
    import numpy as np
    from imgexplain import explain_dataset

    class Slow:
        def explain(self, image):
            time.sleep(float(image.mean()))
            return float(image.mean())
"""


def test_more_workers_than_the_cluster_s_cpus_are_capped_with_a_warning_and_the_run_finishes():
    pytest.importorskip("ray")
    n_workers = (os.cpu_count() or 1) + 1
    finished = run_python(MEAN_EXPLAINER + f"""
    images = [np.full((2, 2), 0.01 * k) for k in range(4)]
    results = list(explain_dataset(images, Slow, n_workers={n_workers}, progress=False))
    print(sorted(result.value for result in results))
    """, deadline=180)
    assert finished.returncode == 0, finished.stderr
    assert finished.stdout.strip() == "[0.0, 0.01, 0.02, 0.03]"
    warnings = [line for line in finished.stderr.splitlines() if "workers asked for" in line]
    assert len(warnings) == 1 and f"{n_workers} workers asked for" in warnings[0], finished.stderr


def cluster_processes(mark):
    """The test's driver (it carries the test's mark), the private Ray it started and their descendants."""
    return _reaper.cluster_processes(mark, variable="IMGEXPLAIN_TEST_MARK")


def alive(pid):
    return pid in _reaper.processes()


def test_sigkill_of_the_driver_leaves_no_ray_process_behind(tmp_path):
    pytest.importorskip("ray")
    mark = f"{os.getpid()}-{time.monotonic_ns()}"
    code = textwrap.dedent(MEAN_EXPLAINER + """
    images = [np.full((2, 2), 0.5) for k in range(100)]
    for result in explain_dataset(images, Slow, n_workers=1, progress=False):
        print("explained", flush=True)
    """)
    driver = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                              text=True,
                              env=dict(os.environ, PYTHONPATH=str(ROOT), IMGEXPLAIN_TEST_MARK=mark))
    try:
        assert driver.stdout.readline().strip() == "explained"  # Ray and its worker run
        # Ray's agents and workers rename themselves, which can hide the mark in /proc: the cluster as it ran.
        started = cluster_processes(mark)
        assert len(started) > 3
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)

        def left_alive():
            return sorted({pid for pid in started if alive(pid)} | set(cluster_processes(mark)))

        deadline = time.monotonic() + 5  # Ray's agents outlive the driver longer than that on their own
        while left_alive() and time.monotonic() < deadline:
            time.sleep(0.5)
        left = left_alive()
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert left == []
    finally:
        driver.kill()


class DiesWhileStarting:
    def __init__(self):
        os._exit(3)  # as a worker killed for memory while loading its model


def test_a_worker_that_dies_while_building_its_explainer_is_one_clear_error():
    pytest.importorskip("ray")
    from imgexplain import explain_many

    with pytest.raises(WorkerError, match="a Ray worker died while starting") as raised:
        explain_many(DiesWhileStarting, [np.zeros((2, 2))], n_workers=1, progress=False)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize("error", [WorkerError("a Ray worker died while starting: gone\nmore"),
                                   ray_cluster.ClusterError("the Ray cluster has no free CPU for a worker")])
def test_the_command_line_says_a_ray_failure_in_one_line(monkeypatch, photo, tmp_path, capsys, error):
    from imgexplain import cli

    def failing(args):
        raise error

    monkeypatch.setattr(cli, "_explain_command", failing)
    assert main(["explain", str(photo), "--out", str(tmp_path / "out")]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and str(error).splitlines()[0] in lines[0]
