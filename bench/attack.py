"""A seeded attack on `imgexplain explain`: bad flags, files of every kind, tampered outputs, signals at random points.

    nice -n 10 /work/main/.venv/bin/python -m bench.attack [--seed 0] [--flags 150] [--tampered 60] [--signals 40]

Everything happens in a temporary folder, next to a sentinel folder outside every OUT whose files must never
change. Each input runs the command in a child forked from a process that imported imgexplain once (so
hundreds of runs take minutes), in its own process group, with a deadline: a run past it is killed and
counted as a hang. Each outcome is classified as one of

- clear error: exit status 2 (or 130/143 after SIGINT/SIGTERM) with one line on stderr and no traceback;
- correct result: exit status 0, one row per image, no temporary file left, the user's files in OUT intact;
- data loss: a user's file in OUT changed or gone, two rows for an image, or images missing after success;
- write outside OUT: the sentinel folder changed, or a new file appeared outside OUT;
- hang: past the deadline;
- obscure traceback: anything else (a traceback, several lines, another exit status).

Prints the counts per family and every outcome that is not a clear error or a correct result; writes
bench/out/attack.json.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

from bench import attack_inputs

OUTCOMES = ("clear error", "correct result", "data loss", "write outside OUT", "hang", "obscure traceback")


def snapshot(root: Path, skip) -> dict[str, str]:
    """Hash of every file under ``root`` outside the folders ``skip`` says to leave out (links as their target)."""
    found = {}
    for folder, folders, files in os.walk(root):
        folders[:] = [name for name in folders if not skip(Path(folder, name))]
        for name in files:
            path = Path(folder, name)
            try:
                found[str(path)] = (hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() and not
                                    path.is_symlink() else f"link to {os.readlink(path)}" if path.is_symlink() else "other")
            except OSError as error:
                found[str(path)] = f"unreadable: {error.strerror}"
    return found


def run_child(argv, cwd, deadline, signum=None, delay=0.0) -> tuple[int | None, str]:
    """Fork, run the command line in the child; (exit status or None on a hang, stderr)."""
    from imgexplain import cli

    err = tempfile.TemporaryFile()
    pid = os.fork()
    if pid == 0:  # the child: its own process group, so that a deadline kills its Ray processes too
        try:
            os.setpgid(0, 0)
            signal.signal(signal.SIGINT, signal.default_int_handler)  # a shell's background job ignores it
            os.chdir(cwd)
            os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
            os.dup2(err.fileno(), 2)
            sys.stderr = os.fdopen(2, "w", buffering=1)
            code = cli.main([str(arg) for arg in argv])
            sys.stderr.flush()
            os._exit(code if isinstance(code, int) else 1)
        except BaseException:
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            os._exit(70)
    start, sent, status = time.monotonic(), False, None
    while True:
        done, raw = os.waitpid(pid, os.WNOHANG)
        if done:
            status = os.waitstatus_to_exitcode(raw)
            break
        elapsed = time.monotonic() - start
        if signum is not None and not sent and elapsed >= delay:
            os.kill(pid, signum)
            sent = True
        if elapsed > deadline:
            os.killpg(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            break
        time.sleep(0.02)
    _kill_group(pid)
    err.seek(0)
    return status, err.read().decode("utf-8", "replace")


def _kill_group(pid):
    """Leftover processes of the child's group (Ray's), stopped so that the next input starts clean."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def one_line(status, stderr, allowed=(2,)) -> bool:
    lines = [line for line in stderr.splitlines() if line.strip() and not _noise(line)]
    return status in allowed and "Traceback" not in stderr and len(lines) == 1 and lines[0].startswith("imgexplain: ")


def _noise(line) -> bool:
    """Progress bars and warnings that are not errors."""
    return "explaining" in line or "Warning" in line or line.startswith("  ") or "moved to" in line


def table_rows(out: Path) -> list[str] | None:
    import pyarrow.dataset as ds

    if not any((out / "results.parquet").glob("*.parquet")):
        return []  # a run over no image leaves an empty table
    try:
        return ds.dataset(out / "results.parquet", format="parquet").to_table(columns=["image"]).column(
            "image").to_pylist()
    except Exception:  # unreadable as one table: classified by the caller
        return None


def classify(case, out, status, stderr, outside_before, outside_after, signalled=False) -> str:
    if status is None:
        return "hang"
    if outside_before != outside_after:
        return "write outside OUT"
    for name, content in case.user_files.items():
        if not (out / name).is_file() or (out / name).read_text() != content:
            return "data loss"
    if status == 0:
        rows = table_rows(out)
        if rows is None or len(rows) != len(set(rows)):
            return "data loss"
        if case.images is not None and len(rows) != case.images:
            return "data loss"
        if list(out.rglob(".imgexplain-tmp-*")) or "Traceback" in stderr:
            return "obscure traceback"
        return "correct result"
    allowed = (2, 130, 143, -9) if signalled else (2,)
    if status == -9 and signalled:
        return "clear error"
    return "clear error" if one_line(status, stderr, allowed) else "obscure traceback"


def attack(case, root, sentinel, deadline) -> dict:
    out = root / "outs" / f"{case.family}-{abs(hash(case.name)) % 10**8}-{time.monotonic_ns()}"
    skip = lambda path: path.parent == root / "outs" or path.name in ("outs",)  # noqa: E731
    outside = snapshot(root, skip)
    detail = ""
    if case.family in ("tampered", "twice") and case.name not in ("file twice", "folder and a file in it",
                                                                    "folder twice", "relative and absolute"):
        status, stderr = run_child(case.argv + ["--out", out], root, deadline)
        if status != 0:
            return {"family": case.family, "name": case.name, "outcome": "obscure traceback",
                    "detail": f"first run: {status} {stderr[-300:]}"}
        case.prepare(out)
        for name, content in case.user_files.items():
            (out / name).parent.mkdir(exist_ok=True)
            (out / name).write_text(content)
        outside = snapshot(root, skip)
    given = [str(arg) for arg in case.argv]
    argv = case.argv + ["--out", out] if "--out" not in given else case.argv
    out = Path(given[given.index("--out") + 1]) if "--out" in given else out
    status, stderr = run_child(argv, root, deadline, case.signal, case.delay)
    outcome = classify(case, out, status, stderr, outside, snapshot(root, skip), signalled=case.signal is not None)
    if case.family == "signals" and outcome == "clear error":  # stopped: the same command must finish the job
        if case.signal != signal.SIGKILL and list(out.rglob(".imgexplain-tmp-*")):
            outcome, detail = "obscure traceback", "temporary files left"
        else:
            status, stderr = run_child(argv, root, deadline)
            outcome = classify(case, out, status, stderr, outside, snapshot(root, skip))
            detail = "resumed"
    elif case.family == "signals" and outcome == "correct result":
        detail = "finished before the signal"
    if "--out" not in given:
        shutil.rmtree(out, ignore_errors=True)  # links in it are removed, never followed
    return {"family": case.family, "name": case.name, "outcome": outcome, "status": status,
            "detail": detail or (stderr.strip().splitlines() or [""])[-1][:300]}


def markdown(records, seed, seconds, options) -> str:
    """The counts per family and outcome as a Markdown table, and every outcome that is neither clear nor correct."""
    families = list(dict.fromkeys(record["family"] for record in records))
    counts = {family: Counter(r["outcome"] for r in records if r["family"] == family) for family in families}
    total = Counter(record["outcome"] for record in records)
    lines = [f"`nice -n 10 python -m bench.attack {options}`".replace(" `", "`"),
             f"(seed {seed}): {len(records)} inputs in {seconds / 60:.0f} minutes.", "",
             "| family | inputs | " + " | ".join(OUTCOMES) + " |", "|---|---|" + "---|" * len(OUTCOMES)]
    for family in families + ["all"]:
        row = total if family == "all" else counts[family]
        lines.append(f"| {family} | {sum(row.values())} | " + " | ".join(str(row[o]) for o in OUTCOMES) + " |")
    odd = [record for record in records if record["outcome"] not in OUTCOMES[:2]]
    lines += [""] + [f"- {r['family']}: {r['name']}: {r['outcome']} ({r['detail']})" for r in odd]
    return "\n".join(lines)


def _import_once() -> None:
    """Import what every run imports lazily, so that each forked child starts with it (no torch op runs here)."""
    import matplotlib.pyplot  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.dataset  # noqa: F401
    import pyarrow.parquet  # noqa: F401
    import skimage.segmentation  # noqa: F401
    import torch  # noqa: F401
    import torch.export  # noqa: F401
    import tqdm  # noqa: F401

    from imgexplain import cli, explainers, models, pipeline, render, report  # noqa: F401
    from imgexplain.backends.torch import cam, model  # noqa: F401


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--flags", type=int, default=150, help="runs with a bad flag value")
    parser.add_argument("--tampered", type=int, default=60, help="runs on a tampered OUT")
    parser.add_argument("--signals", type=int, default=40, help="runs stopped by a signal, then resumed")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds before a run counts as a hang")
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    root = Path(tempfile.mkdtemp(prefix="imgexplain-attack-"))
    sentinel = root / "sentinel"
    sentinel.mkdir()
    (sentinel / "keep.txt").write_text("never touched")
    (sentinel / attack_inputs.PART).write_text("not a part")
    (root / "outs").mkdir()
    # The tiny models are made in a child: torch must not have run in the process that forks the runs.
    subprocess.run([sys.executable, "-c", f"from bench import attack_inputs; from pathlib import Path; "
                    f"attack_inputs.make_models(Path({str(root)!r}))"], check=True)
    models = {path.name: path for path in (root / "models").iterdir()}
    kinds = attack_inputs.make_files(root, rng)
    many = root / "many"
    many.mkdir()
    from PIL import Image

    for k in range(12):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(many / f"{k:02d}.png")
    os.chdir(root)
    _import_once()
    cases = (attack_inputs.flag_cases(rng, models, kinds, args.flags) + attack_inputs.file_cases(models, kinds)
             + attack_inputs.tamper_cases(rng, models, kinds, sentinel, args.tampered)
             + attack_inputs.signal_cases(rng, models, kinds, many, args.signals)
             + attack_inputs.twice_cases(models, kinds, many))
    started, records = time.perf_counter(), []
    for number, case in enumerate(cases, start=1):
        records.append(attack(case, root, sentinel, args.deadline))
        print(f"{number}/{len(cases)} {case.family}: {case.name}: {records[-1]['outcome']}", file=sys.stderr)
    seconds = time.perf_counter() - started
    print(markdown(records, args.seed, seconds, " ".join(sys.argv[1:])))
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / "attack.json").write_text(json.dumps({"seed": args.seed, "seconds": seconds, "argv": sys.argv[1:],
                                                 "records": records}, indent=1, default=str))
    shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
