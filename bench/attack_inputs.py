"""The hostile inputs of bench/attack.py: files of every kind, tiny models, bad flags, tampering, signals.

Each input is a :class:`Case`: the command's arguments, what to do to OUT before it runs (``prepare``), a
signal to send after a delay, and what counts as a correct result. Built from a seeded generator.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

PART = "part-00000000000000000001-abcdef01.parquet"


@dataclass
class Case:
    """One attack: ``argv`` of ``imgexplain``; ``prepare(out)`` tampers with OUT first; ``signal`` is sent after
    ``delay`` seconds; ``images``: how many rows a finished run must hold (None: not checked)."""

    family: str
    name: str
    argv: list
    prepare: Callable[[Path], None] = lambda out: None
    signal: int | None = None
    delay: float = 0.0
    images: int | None = None
    user_files: dict = field(default_factory=dict)  # path in OUT -> content that must survive


def make_files(root: Path, rng: np.random.Generator) -> dict[str, Path]:
    """Image files of every kind (good, exotic, damaged, not files at all), each in its own folder."""
    from PIL import Image

    kinds = {}

    def folder(name):
        path = root / "kinds" / name
        path.mkdir(parents=True)
        Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(path / "good.png")
        kinds[name] = path
        return path

    pixels = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    for suffix, mode in ((".jpg", "RGB"), (".gif", "P"), (".bmp", "RGB"), (".tif", "I;16"), (".webp", "RGB"),
                         (".png", "RGBA"), (".png", "L"), (".png", "1")):
        image = Image.fromarray(pixels).convert(mode if mode != "I;16" else "I").convert(mode) \
            if mode != "I;16" else Image.fromarray((pixels[..., 0].astype(np.uint16) * 257))
        image.save(folder(f"{mode.replace(';', '')}{suffix}") / f"x{suffix}")
    data = (root / "kinds" / "RGB.jpg" / "x.jpg").read_bytes()
    (folder("truncated") / "x.jpg").write_bytes(data[: len(data) // 2])
    (folder("empty") / "x.png").write_bytes(b"")
    (folder("text") / "x.png").write_text("not a picture")
    (folder("random") / "x.png").write_bytes(rng.bytes(3000))
    os.mkfifo(folder("fifo") / "x.png")
    (folder("dev zero") / "x.png").symlink_to("/dev/zero")
    (folder("dangling link") / "x.png").symlink_to(root / "nowhere.png")
    (folder("folder named png") / "x.png").mkdir()
    Image.fromarray(pixels).save(os.fsdecode(os.fsencode(str(folder("not utf-8"))) + b"/\xff\xfe.png"))
    bomb = io.BytesIO()
    Image.new("1", (60000, 60000)).save(bomb, "PNG")
    (folder("bomb") / "x.png").write_bytes(bomb.getvalue())
    (folder("hidden") / ".x.png").write_bytes(data)
    (folder("zero size") / "x.gif").write_bytes(b"GIF89a\x00\x00\x00\x00")
    return kinds


def make_models(root: Path) -> dict[str, Path]:
    """A tiny torch.export model (8x8 RGB, 3 classes), and files that only look like models."""
    import torch

    folder = root / "models"
    folder.mkdir()
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1),
                              torch.nn.Flatten(), torch.nn.Linear(4, 3)).eval()
    good = folder / "tiny.pt2"
    torch.export.save(torch.export.export(net, (torch.zeros(1, 3, 8, 8),)), good)
    with zipfile.ZipFile(good) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}

    class Evil:
        def __reduce__(self):
            return (open, (str(root / "sentinel" / "pwned"), "w"))

    evil = io.BytesIO()
    torch.save(Evil(), evil)
    for name, suffix, change in (("evil.pt2", "sample_inputs/model.pt", lambda data: evil.getvalue()),
                                 ("damaged.pt2", "models/model.json", lambda data: data[: len(data) // 2]),
                                 ("empty weights.pt2", "weights/weight_0", lambda data: b"")):
        with zipfile.ZipFile(folder / name, "w") as archive:
            for member, data in members.items():
                archive.writestr(member, change(data) if member.endswith(suffix) else data)
    (folder / "text.pt2").write_text("not a model")
    (folder / "labels.txt").write_text("a\nb\nc\n")
    (folder / "binary labels.txt").write_bytes(b"\xff\xfe\x00" * 10)
    os.mkfifo(folder / "fifo.pt2")
    os.mkfifo(folder / "fifo.txt")
    return {path.name: path for path in folder.iterdir()}


BAD_VALUES = {
    "--threshold": ["-1", "0", "1.5", "nan", "inf", "abc", ""],
    "--seed": ["-1", str(2**40), "x", "1e3"],
    "--workers": ["-1", "x", "1.5"],
    "--timeout": ["0", "-1", "inf", "nan", "1e308", "abc"],
    "--input-size": ["0,0", "1e9,1e9", "abc", "100000,100000", "-1,5", "8"],
    "--max-pixels": ["0", "-5", "abc", "1"],
    "--target": ["-1", str(10**20), "abc", "7"],
    "--method": ["", "lime", ",", "anchor,,nope", "ANCHOR,gradcam,anchor"],
    "--device": ["cuda", "tpu", "cuda:99", "", "cpu:0"],
    "--preprocess": ["bogus", ""],
    "--framework": ["bogus", "keras"],
    "--labels": ["missing.txt", "fifo.txt", "/dev/zero", "binary labels.txt", "labels.txt"],
    "--model": ["missing.pt2", "evil.pt2", "damaged.pt2", "empty weights.pt2", "text.pt2", "fifo.pt2", "/dev/zero",
                "models"],
    "--out": ["", "/proc", "/sys/nope", "/dev/null", "good.png/out", "/proc/self/fd"],
}


def flag_cases(rng, models, kinds, n) -> list[Case]:
    """``n`` runs with one flag given a bad (or odd) value."""
    cases = []
    flags = sorted(BAD_VALUES)
    for _ in range(n):
        flag = flags[rng.integers(len(flags))]
        value = BAD_VALUES[flag][rng.integers(len(BAD_VALUES[flag]))]
        if flag in ("--labels", "--model") and not value.startswith("/"):
            value = str(models.get(value, models["tiny.pt2"].parent / value))
        if value == "good.png/out":
            value = str(kinds["RGB.jpg"] / "good.png" / "out")
        argv = ["explain", kinds["RGB.jpg"], "--model", models["tiny.pt2"], "--method", "anchor,gradcam", flag, value]
        if flag == "--timeout":
            argv += ["--workers", "1"]
        cases.append(Case("flags", f"{flag} {value!r}", argv, images=2))
    return cases


def file_cases(models, kinds) -> list[Case]:
    """One run per kind of file, as a folder and (for the odd ones) named directly."""
    cases = []
    for name, folder in sorted(kinds.items()):
        base = ["--model", models["tiny.pt2"], "--method", "anchor,gradcam"]
        files = [path for path in folder.iterdir() if not path.name.startswith(".") and not path.is_dir()]
        cases.append(Case("files", f"folder of {name}", ["explain", folder, *base], images=len(files)))
        for path in sorted(folder.iterdir()):
            if path.name != "good.png":  # a folder named x.png is a folder: its images (none) are explained
                cases.append(Case("files", f"{name} named", ["explain", path, *base],
                                  images=0 if path.is_dir() else 1))
    return cases


def _tamper(action):
    def prepare(out):
        action(out)
    return prepare


def tamper_cases(rng, models, kinds, sentinel, n) -> list[Case]:
    """Runs on an OUT that a first run filled and someone then changed."""
    table = "results.parquet"
    escape = os.path.relpath(sentinel / "keep.txt", "/")
    actions = {
        "user temp-like file": lambda out: (out / ".imgexplain-notes.txt").write_text("notes"),
        "user report folder": lambda out: ((out / "report").mkdir(exist_ok=True),
                                           (out / "report" / "page-0001.html").write_text("mine")),
        "pictures linked out": lambda out: (shutil.rmtree(out / "pictures"), (out / "pictures").symlink_to(sentinel)),
        "report linked out": lambda out: (out / "report").symlink_to(sentinel),
        "table linked out": lambda out: (shutil.rmtree(out / table), (out / table).symlink_to(sentinel)),
        "manifest linked to dev zero": lambda out: ((out / "imgexplain.json").unlink(),
                                                    (out / "imgexplain.json").symlink_to("/dev/zero")),
        "journal escaping": lambda out: (out / table / "_compaction.json").write_text(json.dumps(
            {"name": "compacted-00000000000000000009-abcdef01.parquet", "replaces": [f"../../../{escape}"]})),
        "journal absolute": lambda out: (out / table / "_compaction.json").write_text(json.dumps(
            {"name": str(sentinel / "keep.txt"), "replaces": []})),
        "journal keyless": lambda out: (out / table / "_compaction.json").write_text("{}"),
        "journal garbage": lambda out: (out / table / "_compaction.json").write_bytes(rng.bytes(200)),
        "manifest keyless": lambda out: (out / "imgexplain.json").write_text('{"generator": "imgexplain"}'),
        "manifest wrong types": lambda out: (out / "imgexplain.json").write_text(json.dumps(
            {"generator": "imgexplain", "entries": "all", "fingerprint": 1, "arguments": []})),
        "manifest garbage": lambda out: (out / "imgexplain.json").write_bytes(rng.bytes(100)),
        "part truncated": lambda out: _change_part(out, lambda data: data[: len(data) // 2]),
        "part emptied": lambda out: _change_part(out, lambda data: b""),
        "part random": lambda out: _change_part(out, lambda data: rng.bytes(len(data))),
        "part foreign": lambda out: _foreign_part(out),
        "part deleted": lambda out: _change_part(out, None),
        "lock file removed": lambda out: (out / ".imgexplain.lock").unlink(),
    }
    names = sorted(actions)
    cases = []
    for k in range(n):
        name = names[k % len(names)] if k < len(names) else names[rng.integers(len(names))]
        argv = ["explain", kinds["RGB.jpg"], kinds["L.png"], "--model", models["tiny.pt2"], "--method", "anchor"]
        user = {".imgexplain-notes.txt": "notes"} if name == "user temp-like file" else {}
        if name == "user report folder":
            user = {"report/page-0001.html": "mine"}
        cases.append(Case("tampered", name, argv, prepare=_tamper(actions[name]), images=4, user_files=user))
    return cases


def _change_part(out, change):
    for part in sorted((out / "results.parquet").glob("*.parquet")):
        if change is None:
            part.unlink()
        else:
            part.write_bytes(change(part.read_bytes()))


def _foreign_part(out):
    import pandas as pd

    pd.DataFrame({"x": [1, 2]}).to_parquet(out / "results.parquet" / "foreign.parquet")


def signal_cases(rng, models, kinds, many, n) -> list[Case]:
    """Runs of a folder of images stopped by a signal at a random moment, then resumed."""
    import signal

    cases = []
    choices = (signal.SIGINT, signal.SIGTERM, signal.SIGKILL)
    for k in range(n):
        signum = choices[rng.integers(len(choices))]
        workers = ["--workers", "1"] if k % 10 == 9 else []
        argv = ["explain", many, "--model", models["tiny.pt2"], "--method", "anchor,gradcam", *workers]
        delay = float(rng.uniform(0.2, 25.0 if workers else 8.0))
        cases.append(Case("signals", f"{signum.name} after {delay:.1f} s{' (1 worker)' if workers else ''}", argv,
                          signal=signum, delay=delay, images=len(list(many.iterdir()))))
    return cases


def twice_cases(models, kinds, many) -> list[Case]:
    """The same images named twice over, and an image whose content changes between runs."""
    base = ["--model", models["tiny.pt2"], "--method", "anchor"]
    good = kinds["RGB.jpg"] / "good.png"
    return [
        Case("twice", "file twice", ["explain", good, good, *base], images=1),
        Case("twice", "folder and a file in it", ["explain", kinds["RGB.jpg"], good, *base], images=2),
        Case("twice", "folder twice", ["explain", many, many, *base], images=len(list(many.iterdir()))),
        Case("twice", "relative and absolute", ["explain", os.path.relpath(good), good, *base], images=1),
        Case("twice", "content changed", ["explain", many, *base], images=len(list(many.iterdir())),
             prepare=lambda out: _repaint(many)),
    ]


def _repaint(folder):
    from PIL import Image

    first = sorted(folder.iterdir())[0]
    Image.new("RGB", (12, 12), (9, 99, 199)).save(first)
