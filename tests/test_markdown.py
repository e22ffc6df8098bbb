"""imgexplain._markdown.write_section (BENCHMARKS.md's sections): one section replaced or appended, every other
byte kept."""
import os

import pytest

from imgexplain._markdown import write_section

HEAD = "# Benchmarks\n\nText above the sections,\r\nwith a CRLF line.\n\n"
FIRST = "## First\n\nKept | as | it is\n\n"
MIDDLE = "## Middle\n\nOld figures.\n\n### A subsection\n\nStill the middle.\n\n"
LAST = "## Last\n\nNo trailing blank line."


@pytest.fixture
def benchmarks(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    path.write_bytes((HEAD + FIRST + MIDDLE + LAST).encode())
    return path


def test_rewriting_the_middle_section_keeps_the_others_byte_for_byte(benchmarks):
    write_section("Middle", "New figures.\n\n| a | b |\n|---|---|", path=benchmarks)
    assert benchmarks.read_bytes() == (HEAD + FIRST + "## Middle\n\nNew figures.\n\n| a | b |\n|---|---|\n\n"
                                       + LAST).encode()


def test_rewriting_the_last_section(benchmarks):
    write_section("Last", "\n\nReplaced.\n\n", path=benchmarks)
    assert benchmarks.read_bytes() == (HEAD + FIRST + MIDDLE + "## Last\n\nReplaced.\n").encode()


def test_a_new_section_is_appended(benchmarks):
    write_section("Fourth", "Appended.", path=benchmarks)
    assert benchmarks.read_bytes() == (HEAD + FIRST + MIDDLE + LAST + "\n\n## Fourth\n\nAppended.\n").encode()


def test_a_missing_file_is_created(tmp_path):
    path = tmp_path / "BENCHMARKS.md"
    write_section("Only", "Body.", path=path)
    assert path.read_text() == "# Benchmarks\n\n## Only\n\nBody.\n"


def test_a_heading_is_matched_whole(benchmarks):
    """"Mid" is not "Middle", and "### A subsection" is not a section of its own."""
    write_section("Mid", "Another section.", path=benchmarks)
    write_section("A subsection", "Not the subsection.", path=benchmarks)
    text = benchmarks.read_text()
    assert MIDDLE in text
    assert text.endswith("## Mid\n\nAnother section.\n\n## A subsection\n\nNot the subsection.\n")


def test_the_file_keeps_its_permissions_and_no_temporary_file_is_left(benchmarks):
    os.chmod(benchmarks, 0o640)
    write_section("First", "Changed.", path=benchmarks)
    assert benchmarks.stat().st_mode & 0o777 == 0o640
    assert [p.name for p in benchmarks.parent.iterdir()] == ["BENCHMARKS.md"]


@pytest.mark.parametrize("title, markdown", [
    ("", "Body."),
    ("Two\nlines", "Body."),
    (" Padded", "Body."),
    ("Fine", "Body.\n## Another section\n"),
])
def test_bad_titles_and_bodies_raise_value_error_and_leave_the_file_alone(benchmarks, title, markdown):
    with pytest.raises(ValueError):
        write_section(title, markdown, path=benchmarks)
    assert benchmarks.read_bytes() == (HEAD + FIRST + MIDDLE + LAST).encode()


def test_a_section_held_twice_is_an_error(benchmarks):
    benchmarks.write_text(FIRST + FIRST)
    with pytest.raises(ValueError, match="2 times"):
        write_section("First", "Which one?", path=benchmarks)
