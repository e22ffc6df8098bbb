"""BENCHMARKS.md, one section at a time.

Each benchmark module writes only its own ``## Title`` section(s) with `write_section`; every other
section, and the text above the first section, stays byte for byte as it was.
"""
import os
import tempfile
from pathlib import Path

NEW_FILE = "# Benchmarks\n\n"


def _heading(title):
    return f"## {title}"


def write_section(title, markdown, path):
    """Replace the section ``## title`` of ``path`` by ``markdown``, or append it when there is none.

    A section runs from its heading line up to the next line that starts with ``## `` (or the end of
    the file). The file is written atomically: a reader sees either the old text or the new one.

    Parameters
    ----------
    title : str
        The heading's text, without ``## `` (for example ``"Grad-CAM speed"``).
    markdown : str
        The section's body, without its heading; it may hold ``###`` subsections but no ``## `` line.
    path : str or pathlib.Path
        The Markdown file; created (``# Benchmarks`` and the section) when missing.

    Raises
    ------
    ValueError
        If ``title`` is empty or spans lines, if ``markdown`` holds a ``## `` line, or if the file holds
        the section twice.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> from imgexplain._markdown import write_section
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = pathlib.Path(folder) / "BENCHMARKS.md"
    ...     _ = path.write_text("# Benchmarks\\n\\n## Speed\\n\\nold\\n\\n## Memory\\n\\nkept\\n")
    ...     write_section("Speed", "new", path)
    ...     print(path.read_text())
    # Benchmarks
    <BLANKLINE>
    ## Speed
    <BLANKLINE>
    new
    <BLANKLINE>
    ## Memory
    <BLANKLINE>
    kept
    """
    if not title or "\n" in title or title != title.strip():
        raise ValueError(f"title must be one line of text without surrounding spaces; got {title!r}")
    if any(line.startswith("## ") for line in markdown.splitlines()):
        raise ValueError(f"the body of section {title!r} must not hold '## ' headings (it would split the section)")
    path = Path(path)
    lines = path.read_bytes().decode("utf-8").splitlines(keepends=True) if path.exists() else [NEW_FILE]
    starts = [k for k, line in enumerate(lines) if line.rstrip("\r\n") == _heading(title)]
    if len(starts) > 1:
        raise ValueError(f"{path} holds the section {_heading(title)!r} {len(starts)} times")
    section = f"{_heading(title)}\n\n{markdown.strip(chr(10))}\n"
    if starts:
        start = starts[0]
        end = next((k for k in range(start + 1, len(lines)) if lines[k].startswith("## ")), len(lines))
        text = "".join(lines[:start]) + section + ("\n" if end < len(lines) else "") + "".join(lines[end:])
    else:
        before = "".join(lines)
        separator = "" if not before or before.endswith("\n\n") else "\n" if before.endswith("\n") else "\n\n"
        text = before + separator + section
    _write_atomically(path, text)


def _write_atomically(path, text):
    """Write ``text`` to a temporary file beside ``path``, then rename it over ``path``."""
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8", newline="") as file:
            file.write(text)
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise
