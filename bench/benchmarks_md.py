"""BENCHMARKS.md, one section at a time: each benchmark module writes only its own ``## Title`` section(s)
(:func:`imgexplain._markdown.write_section`: every other byte stays as it was)."""
from imgexplain import _markdown

from bench.problems import ROOT

BENCHMARKS_MD = ROOT / "BENCHMARKS.md"


def write_section(title, markdown, path=BENCHMARKS_MD):
    """Replace (or append) the section ``## title`` of ``path`` (default: BENCHMARKS.md) by ``markdown``."""
    _markdown.write_section(title, markdown, path)
