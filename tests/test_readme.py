"""Every Python code block of the README runs as written, in order, in one namespace."""
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_the_readme_has_python_blocks():
    blocks = python_blocks(README.read_text())
    assert len(blocks) >= 4 and all(block.strip() for block in blocks)


def test_every_python_block_of_the_readme_runs(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "readme"}
    for number, block in enumerate(python_blocks(README.read_text()), start=1):
        try:
            exec(compile(block, f"README.md python block {number}", "exec"), namespace)
        except Exception as error:
            raise AssertionError(f"README python block {number} fails: {error!r}\n{block}") from error
    plt.close("all")
    assert namespace["maps"].shape == (2, 224, 224)
    assert namespace["overlay"].shape == (224, 224, 3)


def test_the_readme_pictures_and_caption_come_from_the_current_code():
    """A cheap check instead of a re-render: the recorded fingerprint of the drawing code, and the caption."""
    import json

    import readme_record

    record = json.loads(readme_record.RECORD.read_text())
    assert record["code"] == readme_record.code_fingerprint(), (
        "the code that draws README's pictures changed: run python -m bench.readme_pictures")
    text = README.read_text()
    assert readme_record.rewrite_caption(text, record) == text, "run python -m bench.readme_pictures"
    assert f"superpixel{'s' if len(record['anchor']) > 1 else ''} {', '.join(map(str, record['anchor']))}" in text
