"""What imgexplain does with OUT: writes only its own entries, never follows links out of it, checks its own
files as untrusted input, locks it, keeps one row per image, and moves damaged parts aside."""
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from imgexplain import results
from imgexplain.pipeline import explain_dataset
from imgexplain.results import OutputError, OutputFolder

ENTRIES = ["pictures", "report.html", "report", "summary.json"]


class MeanOfFile:
    """An explainer of image files: the mean of the decoded pixels."""

    def explain(self, image):
        from imgexplain.datasets import load_image

        return {"mean": float(load_image(image, target_size=None).mean())}


def run(images, out):
    import pyarrow as pa

    return list(explain_dataset(images, MeanOfFile, out=out, schema=pa.schema([("mean", pa.float64())]),
                                arguments={"method": "mean"}, n_workers=0, progress=False))


def table_of(out):
    import pandas as pd

    return pd.read_parquet(out / results.TABLE_NAME)


def picture(path, value):
    Image.new("RGB", (4, 4), (value, value, value)).save(path)
    return path


@pytest.fixture
def photos(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    return [picture(folder / f"{name}.png", value) for name, value in (("a", 10), ("b", 20), ("c", 30))]


@pytest.fixture
def sentinel(tmp_path):
    """A folder outside OUT with a file that no run may change."""
    folder = tmp_path / "sentinel"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    (folder / "part-00000000000000000001-abcdef01.parquet").write_text("mine too")
    return folder


def test_a_user_file_with_our_old_temporary_prefix_survives_runs(photos, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / ".imgexplain-notes.txt").write_text("notes")
    run(photos, out)
    run(photos, out)
    assert (out / ".imgexplain-notes.txt").read_text() == "notes"
    assert not list(out.rglob(f"{results.TEMPORARY_PREFIX}*"))


def test_the_manifest_records_only_entries_the_run_created(tmp_path):
    from imgexplain import pipeline, report, schema

    out = tmp_path / "out"
    with OutputFolder(out, ENTRIES, {}) as folder:
        folder.claim()
        assert json.loads((out / "imgexplain.json").read_text())["entries"] == [".imgexplain.lock", "imgexplain.json"]
        table = pipeline.results_table(folder, schema.row_schema(["anchor"]))
        table.append([{"image": f"{k}.png", "content_hash": "x", "index": k, "status": "error", "error_type": "OSError",
                       "error": "unreadable", "seconds": 0.0} for k in range(3)])
        report.write_report(out, table, {}, reserve=folder.reserve)
    entries = json.loads((out / "imgexplain.json").read_text())["entries"]
    assert "report" not in entries and {"report.html", "summary.json", "results.parquet"} <= set(entries)
    (out / "report").mkdir()
    (out / "report" / "page-0001.html").write_text("my page")
    with pytest.raises(OutputError, match="report' was not written by imgexplain"):
        OutputFolder(out, ENTRIES, {})
    assert (out / "report" / "page-0001.html").read_text() == "my page"


@pytest.mark.parametrize("entry", ["pictures", "report", "results.parquet", "imgexplain.json"])
def test_a_link_in_place_of_an_entry_is_refused_and_never_followed(photos, tmp_path, sentinel, entry):
    out = tmp_path / "out"
    run(photos, out)
    target = out / entry
    if target.is_dir():
        os.rename(target, tmp_path / "moved")
    else:
        target.unlink(missing_ok=True)
    target.symlink_to(sentinel)
    with pytest.raises(OutputError, match="symbolic link") as error:
        OutputFolder(out, ENTRIES, {"method": "mean"})
    assert "\n" not in str(error.value)
    assert sorted(path.name for path in sentinel.iterdir()) == ["keep.txt", "part-00000000000000000001-abcdef01.parquet"]


@pytest.mark.parametrize("journal", [
    {"name": "compacted-00000000000000000002-abcdef01.parquet", "replaces": ["../../sentinel/keep.txt"]},
    {"name": "/tmp/x.parquet", "replaces": []},
    {"name": "compacted-00000000000000000002-abcdef01.parquet"},
    {"name": 3, "replaces": "all"},
    [1, 2],
    "not json {",
])
def test_a_tampered_compaction_journal_is_refused_in_one_line_and_nothing_outside_changes(photos, tmp_path,
                                                                                         sentinel, journal):
    out = tmp_path / "out"
    run(photos, out)
    (out / "results.parquet" / "_compaction.json").write_text(journal if isinstance(journal, str)
                                                             else json.dumps(journal))
    with pytest.raises(OutputError, match="_compaction.json") as error:
        run(photos, out)
    assert "\n" not in str(error.value)
    assert (sentinel / "keep.txt").read_text() == "mine"
    assert len(table_of(out)) == 3


def test_a_journal_naming_a_link_is_refused(photos, tmp_path, sentinel):
    out = tmp_path / "out"
    run(photos, out)
    link = "part-00000000000000000001-abcdef01.parquet"
    (out / "results.parquet" / link).symlink_to(sentinel / link)
    (out / "results.parquet" / "_compaction.json").write_text(json.dumps(
        {"name": "compacted-00000000000000000002-abcdef01.parquet", "replaces": [link]}))
    with pytest.raises(OutputError, match="_compaction.json"):
        run(photos, out)
    assert (sentinel / link).read_text() == "mine too"


@pytest.mark.parametrize("manifest", [
    {"generator": "imgexplain", "fingerprint": "x", "arguments": {}},
    {"generator": "imgexplain", "entries": "all", "fingerprint": "x", "arguments": {}},
    {"generator": "imgexplain", "entries": ["../sentinel"], "fingerprint": "x", "arguments": {}},
    {"generator": "imgexplain", "entries": [], "fingerprint": 5, "arguments": {}},
    {"generator": "imgexplain", "entries": [], "fingerprint": "x", "arguments": []},
])
def test_a_tampered_manifest_is_refused_in_one_line(photos, tmp_path, manifest):
    out = tmp_path / "out"
    run(photos, out)
    (out / "imgexplain.json").write_text(json.dumps(manifest))
    with pytest.raises(OutputError, match="imgexplain.json' is damaged") as error:
        run(photos, out)
    assert "\n" not in str(error.value)


def test_a_second_run_on_the_same_out_is_refused_while_the_first_holds_it(photos, tmp_path):
    out = tmp_path / "out"
    first = OutputFolder(out, ENTRIES, {"method": "mean"})
    first.claim()
    with pytest.raises(OutputError, match="another imgexplain run is writing"):
        run(photos, out)
    code = f"from imgexplain.results import OutputFolder; OutputFolder({str(out)!r}, [], {{'method': 'mean'}})"
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "another imgexplain run is writing" in other.stderr
    first.close()
    assert len(run(photos, out)) == 3
    assert len(table_of(out)) == 3


def test_an_image_whose_content_changed_has_its_row_replaced(photos, tmp_path):
    out = tmp_path / "out"
    run(photos, out)
    picture(photos[1], 200)
    assert [result.image for result in run(photos, out)] == [str(photos[1])]
    table = table_of(out).set_index("image")
    assert len(table) == 3 and table.loc[str(photos[1]), "mean"] == 200


class MeanWithPicture:
    """The mean, and a picture named after the file's name and content, as the command names its pictures."""

    def explain(self, image):
        data = open(image, "rb").read()
        path = picture_named(image, data)
        return {**MeanOfFile().explain(image), "pictures": [{"path": path}], "files": {path: data}}


def picture_named(image, data) -> str:
    from pathlib import Path

    return f"pictures/{Path(image).stem}-{results.content_hash(data)[:8]}.png"


def run_with_pictures(images, out):
    import pyarrow as pa

    schema = pa.schema([("mean", pa.float64()), ("pictures", pa.list_(pa.struct([("path", pa.string())])))])
    with OutputFolder(out, ["pictures"], {"method": "mean"}) as folder:
        return list(explain_dataset(images, MeanWithPicture, out=folder, schema=schema, n_workers=0, progress=False))


def pictures_in(out) -> tuple[set, set]:
    """The files in OUT/pictures, and those that the table's rows name."""
    named = {entry["path"] for entries in table_of(out).pictures for entry in entries}
    return {f"pictures/{path.name}" for path in (out / "pictures").iterdir()}, named


def test_a_replaced_row_takes_its_own_pictures_with_it_but_not_those_another_row_names(photos, tmp_path):
    out = tmp_path / "out"
    twin = tmp_path / "elsewhere" / photos[1].name  # same name, same content: the same picture file
    twin.parent.mkdir()
    twin.write_bytes(photos[1].read_bytes())
    run_with_pictures([*photos, twin], out)
    old = {path: picture_named(path, path.read_bytes()) for path in photos}
    picture(photos[0], 99)
    picture(photos[1], 99)
    assert len(run_with_pictures([*photos, twin], out)) == 2
    on_disk, named = pictures_in(out)
    assert on_disk == named == {picture_named(path, path.read_bytes()) for path in photos} | {old[photos[1]]}
    assert old[photos[0]] not in on_disk  # a's old picture went; b's stays, the twin's row names it


def test_files_that_a_tampered_row_names_outside_our_pictures_are_never_removed(photos, tmp_path, sentinel):
    import pyarrow as pa

    from imgexplain.pipeline import table_schema

    out = tmp_path / "out"
    run_with_pictures(photos, out)
    (out / "pictures" / "link.png").symlink_to(sentinel / "keep.txt")
    (out / "pictures" / "sub").symlink_to(sentinel, target_is_directory=True)
    part = next((out / results.TABLE_NAME).glob("*.parquet")).name
    tampered = ["../sentinel/keep.txt", str(sentinel / "keep.txt"), "pictures/../../sentinel/keep.txt",
                "pictures/link.png", f"pictures/sub/{sentinel.joinpath('keep.txt').name}", f"results.parquet/{part}",
                "imgexplain.json", "pictures", f"{picture_named(photos[0], photos[0].read_bytes())}/x", "pictures/nul\0byte.png"]
    schema = table_schema(pa.schema([("mean", pa.float64()),
                                     ("pictures", pa.list_(pa.struct([("path", pa.string())])))]))
    results.ResultsTable(out / results.TABLE_NAME, schema).append(
        [{"image": str(photos[2]), "content_hash": "tampered", "status": "ok", "fingerprint": "x",
          "pictures": [{"path": path} for path in tampered]}])
    before = {path: path.read_bytes() for path in sentinel.iterdir()}
    run_with_pictures(photos, out)
    assert {path: path.read_bytes() for path in sentinel.iterdir()} == before
    assert (out / "pictures" / "link.png").is_symlink() and (out / "imgexplain.json").is_file()
    assert sorted(table_of(out).image) == sorted(map(str, photos))


def test_an_image_named_twice_is_explained_once(photos, tmp_path, monkeypatch):
    out = tmp_path / "out"
    folder = photos[0].parent
    (tmp_path / "alias").symlink_to(folder)
    monkeypatch.chdir(tmp_path)
    named = [photos[0], photos[0], folder, folder, os.path.relpath(photos[1]), str(photos[1]),
             tmp_path / "alias" / "c.png", folder / ".." / "photos" / "a.png"]
    assert sorted(result.image for result in run(named, out)) == sorted(map(str, photos))
    assert sorted(table_of(out).image) == sorted(map(str, photos))


@pytest.mark.parametrize("damage", ["other schema", "truncated", "empty", "random bytes"])
def test_a_damaged_or_foreign_part_is_moved_aside_and_its_images_explained_again(photos, tmp_path, caplog, damage):
    import pandas as pd

    out = tmp_path / "out"
    run(photos, out)
    (part,) = (out / "results.parquet").glob("*.parquet")
    if damage == "other schema":
        pd.DataFrame({"x": [1]}).to_parquet(out / "results.parquet" / "foreign.parquet")
        original = part.read_bytes()
    else:
        data = part.read_bytes()
        part.write_bytes({"truncated": data[: len(data) // 2], "empty": b"",
                          "random bytes": np.random.default_rng(0).bytes(500)}[damage])
    redone = run(photos, out)
    assert len(redone) == (0 if damage == "other schema" else 3)
    quarantined = results.ResultsTable(out / "results.parquet", None).quarantined_parts()
    assert len(quarantined) == 1 and quarantined[0].parent.name == "_quarantine"
    assert any("moved to" in record.getMessage() for record in caplog.records)
    if damage == "other schema":
        assert quarantined[0].name.endswith("foreign.parquet") and part.read_bytes() == original
    assert sorted(table_of(out).image) == sorted(map(str, photos))


def test_empty_paths_are_refused(photos, tmp_path):
    with pytest.raises(ValueError, match="empty path"):
        run([""], tmp_path / "out")
    with pytest.raises(ValueError, match="empty path"):
        run(photos, "")
    assert not (tmp_path / "out").exists()


def test_a_file_name_that_is_not_utf8_is_explained_and_resumed(photos, tmp_path):
    out = tmp_path / "out"
    folder = photos[0].parent
    strange = os.fsdecode(os.fsencode(str(folder)) + b"/\xff\xfe.png")
    picture(strange, 40)
    assert {result.status for result in run([folder], out)} == {"ok"}
    assert (str(folder) + "/\\xff\\xfe.png") in set(table_of(out).image)
    assert run([folder], out) == []


_FIFO_RUN = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    from test_results import run
    results = run({paths!r}, {out!r})
    print(sorted((result.status, result.error) for result in results))
""")


def test_a_fifo_or_a_device_named_like_an_image_is_an_error_row_never_a_hang(tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    picture(folder / "a.png", 10)
    os.mkfifo(folder / "x.png")
    (folder / "zero.png").symlink_to("/dev/zero")
    code = _FIFO_RUN.format(tests=os.path.dirname(__file__), paths=[str(folder)], out=str(tmp_path / "out"))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "not a regular file (a FIFO)" in done.stdout and "not a regular file (a character device)" in done.stdout
    assert done.stdout.count("'ok'") == 1


def test_only_our_own_leftover_temporary_files_are_removed_and_only_in_our_folders(photos, tmp_path):
    out = tmp_path / "out"
    run(photos, out)
    leftover = out / "results.parquet" / f"{results.TEMPORARY_PREFIX}{'0' * 32}"
    leftover.write_bytes(b"half a part, left by SIGKILL")
    mine = [out / f"{results.TEMPORARY_PREFIX}{'0' * 32}", out / "results.parquet" / f"{results.TEMPORARY_PREFIX}notes"]
    for path in mine:
        path.write_text("mine")
    run(photos, out)
    assert not leftover.exists() and all(path.read_text() == "mine" for path in mine)
