"""Side-by-side benchmarks; the tests folder is on the path, so that the benchmarks share the tests' known-answer
anchor problems (tests/anchor_problems.py) instead of the tests importing bench."""
import sys
from pathlib import Path

_TESTS = str(Path(__file__).resolve().parents[1] / "tests")
if _TESTS not in sys.path:
    sys.path.append(_TESTS)
