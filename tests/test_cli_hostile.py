"""The command line against hostile input: every bad value, file or signal is one line (exit 2, 130 or 143), never a
hang, a traceback or a file touched outside OUT. Runs that could hang run in a subprocess with a deadline."""
import io
import os
import signal
import subprocess
import sys
import zipfile

import pytest
from test_cli import _run, _table, _torchscript_argv, images, torchscript_model  # noqa: F401 (fixtures)

from imgexplain import cli, models

# TorchScript is one of the files the command reads; torch 2.13 marks its functions deprecated.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit:DeprecationWarning")
COMMAND = "import sys; from imgexplain import cli; sys.exit(cli.main(sys.argv[1:]))"


def _command(argv, timeout=120, **kwargs):
    """The command run in a subprocess: a hang fails the test at ``timeout`` instead of blocking the suite."""
    return subprocess.run([sys.executable, "-c", COMMAND, *map(str, argv)], capture_output=True, text=True,
                          timeout=timeout, **kwargs)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A small torch.export file, one whose sample inputs run code when unpickled, and a damaged one."""
    import torch

    folder = tmp_path_factory.mktemp("pt2")
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(),
                              torch.nn.Linear(4, 2)).eval()
    torch.export.save(torch.export.export(net, (torch.zeros(1, 3, 8, 8),)), folder / "good.pt2")
    members = {}
    with zipfile.ZipFile(folder / "good.pt2") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    evil = io.BytesIO()
    torch.save(_Evil(str(folder / "pwned")), evil)
    for name, change in (("evil.pt2", ("sample_inputs/model.pt", lambda data: evil.getvalue())),
                         ("damaged.pt2", ("models/model.json", lambda data: data[: len(data) // 2]))):
        with zipfile.ZipFile(folder / name, "w") as archive:
            for member, data in members.items():
                archive.writestr(member, change[1](data) if member.endswith(change[0]) else data)
    with zipfile.ZipFile(folder / "junk.pt2", "w") as archive:
        archive.writestr("junk/archive_format", "pt2")
        archive.writestr("junk/models/model.json", "{")
    return folder


class _Evil:
    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def _bad_inputs(tmp_path, torchscript_model, images, exported):  # noqa: F811
    ts = ["--model", torchscript_model, "--input-size", "32,32", "--preprocess", "unit", "--method", "anchor"]
    fifo = tmp_path / "x.png"
    os.mkfifo(fifo)
    (tmp_path / "zero.png").symlink_to("/dev/zero")
    one = images[0]
    return {
        "empty path": (["explain", "", *ts], "PATH: an empty path names no file or folder"),
        "empty out": (["explain", one, *ts, "--out", ""], "--out: an empty path names no file or folder"),
        "timeout inf": (["explain", one, *ts, "--workers", "1", "--timeout", "inf"], "--timeout: expected a number"),
        "timeout huge": (["explain", one, *ts, "--workers", "1", "--timeout", "1e308"], "--timeout: expected"),
        "timeout nan": (["explain", one, *ts, "--workers", "1", "--timeout", "nan"], "--timeout: expected"),
        "input size huge": (["explain", one, *ts[:2], "--input-size", "100000,100000", "--method", "anchor"],
                            "--input-size: 100000x100000 is more than"),
        "fifo": (["explain", fifo, *ts], "not a regular file \\(a FIFO\\): .*x.png"),
        "dev zero": (["explain", tmp_path / "zero.png", *ts], "not a regular file \\(a character device\\)"),
        "out proc": (["explain", one, *ts, "--out", "/proc"], "--out: '/proc' is in /proc, a folder of the system"),
        "out sys": (["explain", one, *ts, "--out", "/sys/nope"], "--out: '/sys/nope' is in /sys"),
        "evil pt2": (["explain", one, "--model", exported / "evil.pt2", "--method", "anchor"],
                     "--model: .*evil.pt2' holds a pickle that is not plain data .* would run code"),
        "damaged pt2": (["explain", one, "--model", exported / "damaged.pt2", "--method", "anchor"],
                        "--model: cannot load .*damaged.pt2': JSONDecodeError"),
        "not a pt2": (["explain", one, "--model", exported / "junk.pt2", "--method", "anchor"],
                      "--model: cannot load .*junk.pt2'"),
    }


CASES = ["empty path", "empty out", "timeout inf", "timeout huge", "timeout nan", "input size huge", "fifo",
         "dev zero", "out proc", "out sys", "evil pt2", "damaged pt2", "not a pt2"]


@pytest.mark.parametrize("case", CASES)
def test_hostile_input_is_one_line_and_status_2_before_any_model_runs(case, tmp_path, torchscript_model, images,
                                                                      exported):
    argv, message = _bad_inputs(tmp_path, torchscript_model, images, exported)[case]
    before = sorted(tmp_path.rglob("*"))
    done = _command(argv, cwd=tmp_path)
    lines = done.stderr.splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("imgexplain: error: "), done.stderr
    import re

    assert re.search(message, lines[0]), lines[0]
    assert sorted(tmp_path.rglob("*")) == before  # nothing written
    assert not (exported / "pwned").exists()  # no pickle ran


def test_an_out_in_a_system_folder_is_refused_before_the_model_loads(images, torchscript_model, tmp_path, capsys,
                                                                    monkeypatch):
    def no_loading(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(models, "load_saved_model", no_loading)
    status, _, stderr = _run(_torchscript_argv(torchscript_model, images[:1], "/sys/nope"), capsys)
    assert status == 2 and stderr.startswith("imgexplain: error: --out: '/sys/nope' is in /sys")


def test_a_second_run_on_the_same_out_is_refused_in_one_line(images, torchscript_model, tmp_path, capsys):
    from imgexplain.results import OutputFolder

    out = tmp_path / "out"
    with OutputFolder(out, [], {}) as first:
        first.claim()
        status, _, stderr = _run(_torchscript_argv(torchscript_model, images[:1], out), capsys)
        assert status == 2
        assert stderr == f"imgexplain: error: --out: another imgexplain run is writing in {str(out)!r}; wait for " \
                         "it to finish, or choose another folder\n"
    assert _run(_torchscript_argv(torchscript_model, images[:1], out), capsys)[0] == 0


def test_ctrl_c_while_the_command_s_modules_load_is_one_line_and_status_130(monkeypatch, capsys):
    import importlib
    import tomllib
    from pathlib import Path

    class Interrupting:  # Ctrl-C while imgexplain.cli is imported
        def find_spec(self, name, path=None, target=None):
            if name == "imgexplain.cli":
                raise KeyboardInterrupt

    script = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    module, _, function = script["imgexplain"].partition(":")
    main = getattr(importlib.import_module(module), function)  # what the installed `imgexplain` runs
    monkeypatch.delitem(sys.modules, "imgexplain.cli")
    monkeypatch.setattr(sys, "meta_path", [Interrupting(), *sys.meta_path])
    assert main(["--version"]) == 130
    assert capsys.readouterr() == ("", "imgexplain: interrupted\n")


def test_a_pt2_loads_without_torch_s_leafspec_warning_and_leaves_the_warning_filters_alone(exported):
    import warnings

    from imgexplain.backends.torch.model import load_saved

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filters = list(warnings.filters)
        load_saved(str(exported / "good.pt2"), "exported")
        assert warnings.filters == filters
    assert [str(warning.message) for warning in caught if "LeafSpec" in str(warning.message)] == []


def test_a_changed_image_s_old_pictures_go_with_its_old_row(images, torchscript_model, tmp_path, capsys):
    from PIL import Image

    from stripes import striped_image

    photo, out = tmp_path / "photo.png", tmp_path / "out"
    Image.fromarray(striped_image()).save(photo)
    assert _run(_torchscript_argv(torchscript_model, [photo, images[1]], out), capsys)[0] == 0
    Image.fromarray(striped_image()[::-1]).save(photo)
    assert _run(_torchscript_argv(torchscript_model, [photo, images[1]], out), capsys)[0] == 0
    named = {entry["path"] for entries in _table(out).pictures for entry in entries}
    assert {f"pictures/{path.name}" for path in (out / "pictures").iterdir()} == named and len(named) >= 4


def test_demo_on_a_missing_gpu_is_one_line_without_python_syntax(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    status, _, stderr = _run(["demo", "--device", "cuda", "--out", tmp_path / "out"], capsys)
    assert status == 2 and len(stderr.splitlines()) == 1
    assert stderr.startswith("imgexplain: error: --device cuda: this machine has no such device")
    assert "--model" not in stderr and "device='" not in stderr


def test_the_same_image_named_five_ways_is_one_row(images, torchscript_model, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(images[0].parent)
    named = [images[0], images[0].name, images[0].parent, images[0].parent / ".." / images[0].parent.name]
    assert _run(_torchscript_argv(torchscript_model, named, tmp_path / "out"), capsys)[0] == 0
    assert sorted(_table(tmp_path / "out").image) == sorted(str(path) for path in images)


@pytest.fixture(scope="module")
def marked_slow_model(tmp_path_factory):
    """A TorchScript stripe detector that computes for seconds on a batch holding an image whose bottom-right
    pixel is white: a Ray worker explaining such an image keeps the driver waiting in Ray's core worker."""
    import torch

    from stripes import SIZE, stripe_detector

    class MarkedSlow(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.detector = torch.jit.trace(stripe_detector(), torch.zeros(1, 3, SIZE, SIZE))

        def forward(self, x):
            work = torch.ones(256, 256) * x.mean()
            if bool((x[:, 0, -1, -1] > 0.99).any()):
                for _ in range(2000):
                    work = torch.tanh(work @ work)
            return self.detector(x) + 0.0 * work.mean()

    path = tmp_path_factory.mktemp("models") / "marked-slow.pt"
    torch.jit.save(torch.jit.script(MarkedSlow()), str(path))
    return path


def _session_processes(session: int) -> list[int]:
    """Ids of the processes of ``session`` (the run's own processes and the Ray it started)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            fields = open(f"/proc/{entry}/stat").read().rpartition(")")[2].split()
        except (OSError, ValueError):
            continue
        if fields and int(fields[3]) == session:
            found.append(int(entry))
    return found


@pytest.mark.slow
@pytest.mark.parametrize("signum, status, said, group", [(signal.SIGTERM, 143, "terminated", False),
                                                         (signal.SIGINT, 130, "interrupted", True)])
def test_a_signal_to_a_run_on_a_worker_reports_the_rows_so_far_and_stops_its_ray(marked_slow_model, tmp_path,
                                                                                 signum, status, said, group):
    """SIGTERM to the driver, or Ctrl-C (SIGINT to the whole process group, Ray's processes included), while
    the driver waits in Ray for a worker: the rows so far kept and reported, exit 143 or 130, one line."""
    import time

    from PIL import Image

    from stripes import striped_image

    folder = tmp_path / "photos"
    folder.mkdir()
    for k in range(4):
        pixels = striped_image()
        pixels[-1, -1] = 255 if k else 0  # the first image is quick, the others keep the worker for minutes
        Image.fromarray(pixels).save(folder / f"{k}.png")
    out = tmp_path / "out"
    argv = [str(arg) for arg in _torchscript_argv(marked_slow_model, [folder], out, "--workers", "1")]
    process = subprocess.Popen([sys.executable, "-c", COMMAND, *argv], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    while not list((out / "pictures").rglob("[!.]*.png")) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)  # the second image is on the worker
    os.killpg(process.pid, signum) if group else process.send_signal(signum)
    try:
        stdout, stderr = process.communicate(timeout=60)
    finally:
        os.killpg(process.pid, signal.SIGKILL) if process.poll() is None else None
    assert process.returncode == status, stderr
    assert stdout == "" and "Traceback" not in stderr and "SIGTERM" not in stderr, stderr
    assert stderr.splitlines()[-1] == (f"imgexplain: {said}; the rows written so far are kept in {out}/"
                                       "results.parquet and the same command resumes")
    assert list(_table(out).image) == [str(folder / "0.png")]
    assert (out / "report.html").exists() and not list(out.rglob(".imgexplain-tmp-*"))
    deadline = time.monotonic() + 30
    while _session_processes(process.pid) and time.monotonic() < deadline:  # the private Ray is stopped
        time.sleep(0.1)
    assert _session_processes(process.pid) == []
