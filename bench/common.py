"""What the benchmarks run in imgexplain's environment share: the photos, logging, the machine's description."""
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from bench.problems import ANCHOR_ARGS, OUT, PHOTOS


def log(message):
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def photos():
    """skimage's sample photos (`bench.problems.PHOTOS`) at 224x224x3, float32 pixels in 0..255."""
    from skimage import data
    from skimage.transform import resize

    images = []
    for name in PHOTOS:
        image = np.asarray(getattr(data, name)(), dtype=np.float64)
        if image.ndim == 2:  # horse is a black and white silhouette
            image = np.repeat(image[..., None] * (255.0 / image.max()), 3, axis=2)
        image = resize(image[..., :3], (224, 224), anti_aliasing=True, preserve_range=True)
        images.append(np.clip(image, 0, 255).astype(np.float32))
    return np.stack(images)


def save(name, array):
    """Save ``array`` as bench/out/inputs/NAME.npy, for a worker to load; its path as a string."""
    path = OUT / "inputs" / f"{name}.npy"
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)
    return str(path)


def as_explanation(result, segments):
    """An anchor found by either library, as the Explanation that imgexplain.evaluate takes."""
    from imgexplain import Explanation

    return Explanation(meta={"params": dict(ANCHOR_ARGS)},
                       data={"segments": segments, "precision": result["precision"],
                             "raw": {"feature": result["feature"]}})


def machine():
    """The CPU, its cores, Python and the system, in one line."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def load_average():
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def command_line(module, argv):
    """How a benchmark module was run: ``python -m MODULE ARGUMENTS``."""
    return " ".join(["python -m", module, *(sys.argv[1:] if argv is None else argv)])


def context(command, load_before, versions):
    """The first paragraph of a generated section: the command (unless None), when, where, the load, the versions."""
    when = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    return ((f"Command: `{command}`, {when}" if command else f"Measured {when}") + f"; machine: {machine()}; load "
            f"average before / after: {load_before} / {load_average()} (other work on the machine inflates every "
            "wall time; the ratios compare runs made side by side); versions: "
            + ", ".join(f"{name} {version}" for name, version in versions.items()) + ".")


def versions(peers=None):
    """{package: version}: imgexplain, torch and numpy here, then the peers' packages (None: not available)."""
    import torch

    import imgexplain

    here = {"imgexplain": imgexplain.__version__, "torch": torch.__version__, "numpy": np.__version__}
    return {**here, **{name: version for name, version in (peers or {}).items() if version is not None}}
