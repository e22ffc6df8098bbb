"""The package as a whole: importing it stays light."""
import subprocess
import sys


def test_importing_imgexplain_loads_no_framework_no_runtime_and_no_ray():
    code = ("import sys, imgexplain; "
            "print(sorted(m for m in ('torch', 'tensorflow', 'keras', 'ray', 'onnxruntime') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
