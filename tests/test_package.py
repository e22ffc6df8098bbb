"""The package as a whole: importing it, or any module that needs no framework, stays light."""
import subprocess
import sys

import pytest

FRAMEWORKS = ("torch", "tensorflow", "keras", "onnxruntime")

FINDING_NO_BACKEND = ("from imgexplain import backends\n"
                      "for needs in (None, 'CAMBackend', 'randomize'):\n"
                      "    try:\n        backends.backend_for(object(), needs)\n    except TypeError:\n        pass")


@pytest.mark.parametrize("code, not_loaded", [
    ("import imgexplain", FRAMEWORKS + ("ray", "pyarrow", "matplotlib", "skimage.segmentation")),
    ("import imgexplain.cam, imgexplain.cam.api, imgexplain.render", ("torch", "tensorflow", "keras")),
    ("import imgexplain.zoo, imgexplain.datasets", FRAMEWORKS),
    (FINDING_NO_BACKEND, FRAMEWORKS),
], ids=["imgexplain", "cam and render", "zoo and datasets", "finding no backend"])
def test_importing_loads_no_framework(code, not_loaded):
    script = f"import sys\n{code}\nprint(sorted(m for m in {not_loaded!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_cam_has_one_public_path():
    import imgexplain
    from imgexplain import cam
    from imgexplain.cam import api, core

    assert imgexplain.CAM is core.CAM
    assert "CAM" not in cam.__all__ and "CAM" not in api.__all__
    with pytest.raises(AttributeError):
        cam.CAM
