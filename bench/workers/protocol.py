"""The worker side of bench/peers.py: one JSON job per line on stdin, one JSON result per line.

Results go to the original stdout only; whatever the libraries print lands on stderr.
"""
import json
import os
import sys
import traceback


def serve(handlers):
    results = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for line in sys.stdin:
        job = json.loads(line)
        try:
            answer = handlers[job["task"]](**job["args"])
        except Exception as error:  # reported to the benchmark, which raises it (bench.peers.Peer.ask)
            traceback.print_exc()
            answer = {"error": f"{type(error).__name__}: {error}"}
        results.write(json.dumps(answer) + "\n")
        results.flush()
