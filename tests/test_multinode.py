"""A real two-node Ray cluster on this machine: `ray start --head`, a second `ray start --address`, with token
authentication and free ports; the second node's raylet is killed (SIGKILL) part-way through
`imgexplain explain FOLDER --address ... --workers 2`. The run must end with exactly one row per image: the
lost node's image explained on the survivor, or an error row that the next run explains.

Every process the test starts carries a mark in its environment, and only those are stopped at the end
(never `ray stop`, which would stop every Ray of this user on the machine).
"""
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from imgexplain._reaper import marked_processes
from stripes import SIZE, stripe_detector, striped_image

RAY = shutil.which("ray") or str(Path(sys.executable).with_name("ray"))
pytestmark = [pytest.mark.slow, pytest.mark.multinode,
              pytest.mark.skipif(not Path(RAY).exists(), reason="Ray's command line (ray) is not installed")]
ROOT = Path(__file__).resolve().parents[1]
N_IMAGES = 16


def free_ports(n):
    sockets = [socket.socket() for _ in range(n)]
    try:
        for probe in sockets:
            probe.bind(("127.0.0.1", 0))
        return [probe.getsockname()[1] for probe in sockets]
    finally:
        for probe in sockets:
            probe.close()


def marked(mark):
    return marked_processes(mark, variable="IMGEXPLAIN_TEST_MARK")


def raylet_of(node_manager_port, mark):
    for pid in marked(mark):
        try:
            arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if arguments[0].endswith(b"/raylet") and f"--node_manager_port={node_manager_port}".encode() in arguments:
            return pid
    return None


def node_arguments(ports):
    names = ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
             "--dashboard-agent-grpc-port", "--runtime-env-agent-port", "--metrics-export-port")
    worker_low = ports[len(names)]
    return [f"{name}={port}" for name, port in zip(names, ports)] + [
        f"--min-worker-port={worker_low}", f"--max-worker-port={worker_low + 40}"]


@pytest.fixture
def cluster():
    mark = secrets.token_hex(8)
    temp = tempfile.mkdtemp(prefix="rt", dir="/tmp")  # Unix socket paths must stay short
    env = dict(os.environ, IMGEXPLAIN_TEST_MARK=mark, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(32),
               RAY_health_check_period_ms="500", RAY_health_check_timeout_ms="1000",
               RAY_health_check_failure_threshold="3", PYTHONPATH=str(ROOT))
    env.pop("RAY_ADDRESS", None)
    # Worker ports: two ranges of 41 ports far apart; the other ports free ones.
    head_ports, second_ports = free_ports(6), free_ports(6)
    gcs_port = free_ports(1)[0]
    head = node_arguments(head_ports + [20000 + os.getpid() % 20000])
    second = node_arguments(second_ports + [20050 + os.getpid() % 20000])
    try:
        for command in ([RAY, "start", "--head", f"--port={gcs_port}", "--num-cpus=1", "--include-dashboard=false",
                         f"--temp-dir={temp}", "--disable-usage-stats", *head],
                        [RAY, "start", f"--address=127.0.0.1:{gcs_port}", "--num-cpus=1", "--disable-usage-stats",
                         *second]):
            started = subprocess.run(command, env=env, capture_output=True, text=True, timeout=120)
            assert started.returncode == 0, started.stderr[-2000:]
        yield {"address": f"127.0.0.1:{gcs_port}", "env": env, "second_raylet_port": second_ports[0], "mark": mark}
    finally:
        for pid in marked(mark):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(temp, ignore_errors=True)


def test_a_node_killed_part_way_leaves_one_row_per_image_on_the_survivor_or_retried(cluster, tmp_path):
    import pandas as pd
    import torch

    model = tmp_path / "stripes.pt"
    torch.jit.save(torch.jit.trace(stripe_detector(), torch.zeros(1, 3, SIZE, SIZE)), str(model))
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for k in range(N_IMAGES):
        image = striped_image()
        image[SIZE // 2:] = rng.integers(0, 256, size=3)
        Image.fromarray(image).save(folder / f"{k:02d}.png")
    out = tmp_path / "out"
    argv = ["explain", str(folder), "--model", str(model), "--input-size", f"{SIZE},{SIZE}", "--method", "anchor",
            "--workers", "2", "--address", cluster["address"], "--out", str(out), "--pictures", "png"]
    code = f"import sys; from imgexplain import cli; sys.exit(cli.main({argv!r}))"
    run = subprocess.Popen([sys.executable, "-c", code], env=cluster["env"], stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while run.poll() is None and len(list((out / "pictures").glob("*-anchor.png"))) < 3:
            assert time.monotonic() < deadline, "no image explained in 120 s"
            time.sleep(0.2)
        raylet = raylet_of(cluster["second_raylet_port"], cluster["mark"])
        assert raylet is not None and run.poll() is None  # part-way: the run goes on
        os.kill(raylet, signal.SIGKILL)
        stdout, stderr = run.communicate(timeout=120)
    finally:
        run.kill()
    assert run.returncode == 0, stderr[-3000:]
    table = pd.read_parquet(out / "results.parquet")
    assert sorted(table.image) == sorted(str(path) for path in folder.glob("*.png"))  # one row per image
    if (table.status == "error").any():  # the lost node's image: explained by the next run
        again = subprocess.run([sys.executable, "-c", code], env=cluster["env"], capture_output=True, text=True,
                               timeout=120)
        assert again.returncode == 0, again.stderr[-3000:]
        table = pd.read_parquet(out / "results.parquet")
        assert sorted(table.image) == sorted(str(path) for path in folder.glob("*.png"))
    assert set(table.status) == {"ok"}
