"""The worker side of bench/run.py: one JSON job per line on stdin, one JSON result per line.

Results go to the original stdout only; whatever the libraries print lands on stderr.
"""
import json
import os
import sys
import traceback
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BENCH))


def serve(handlers):
    results = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for line in sys.stdin:
        job = json.loads(line)
        try:
            answer = handlers[job["task"]](**job["args"])
        except Exception as error:  # reported to run.py, which shows it in the table
            traceback.print_exc()
            answer = {"error": f"{type(error).__name__}: {error}"}
        results.write(json.dumps(answer) + "\n")
        results.flush()
