"""README's pictures' record (``docs/pictures.json``) and caption: what ``python -m bench.readme_pictures`` writes
after drawing them, and what tests/test_readme.py checks (the fingerprint of the code that draws them, the
caption made from the record). A test helper that bench/readme_pictures.py imports (bench/__init__.py puts
tests/ on the path).
"""
import hashlib
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RECORD = ROOT / "docs" / "pictures.json"
CAPTION = re.compile(r"(<!-- readme-pictures: caption -->\n)(.*?)(\n<!-- /readme-pictures -->)", re.S)
# The code whose changes can change the pictures.
SOURCES = ("imgexplain/anchors/*.py", "imgexplain/render/*.py", "imgexplain/cam/*.py", "imgexplain/segmentation.py",
           "imgexplain/predictor.py", "imgexplain/datasets.py", "imgexplain/_pixels.py", "imgexplain/zoo/*.py",
           "bench/readme_pictures.py", "tests/readme_record.py")


def code_fingerprint() -> str:
    """SHA-256 of the files of :data:`SOURCES`, by path and content."""
    digest = hashlib.sha256()
    for path in sorted(path for pattern in SOURCES for path in ROOT.glob(pattern)):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def caption(record: dict) -> str:
    """README's caption of the anchor picture, from what bench/readme_pictures.py recorded."""
    features = record["anchor"]
    ids = ", ".join(map(str, features))
    kept = (f"keeping superpixel {ids} alone as it is" if len(features) == 1
            else f"keeping superpixels {ids} as they are")
    return (f"*The anchor (middle): {kept} keeps the prediction \"{record['label']}\" in "
            f"{record['precision']:.0%} of the samples where the other superpixels are perturbed (precision "
            f"{record['precision']:.2f}), and it applies to {record['coverage']:.0%} of all perturbed samples "
            f"(coverage {record['coverage']:.2f}: for images, (1 - p_sample) to the power of the anchor's size).\n"
            "Right: the superpixels and their ids.*")


def rewrite_caption(text: str, record: dict) -> str:
    """README's ``text`` with the caption between the markers made from ``record``."""
    if not CAPTION.search(text):
        raise ValueError("README.md has no '<!-- readme-pictures: caption -->' ... '<!-- /readme-pictures -->' block")
    return CAPTION.sub(lambda match: match[1] + caption(record) + match[3], text)
