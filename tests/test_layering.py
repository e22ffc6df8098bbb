"""The package's layering (README, "Layout"): a module imports only from its own layer or below.

Every ``import`` statement of the package is read with :mod:`ast` (those inside functions too, and those
under ``if TYPE_CHECKING``), so a lazy import from a higher layer fails as an eager one does.
"""
import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "imgexplain"
README = PACKAGE.parent / "README.md"

# From the bottom up; a module belongs to the layer of the longest prefix of its dotted name listed here.
LAYERS = (
    ("_checks", "_files", "_lazy", "_logging", "_markdown", "_pixels", "_version", "_reaper", "outputs",
     "model_outputs", "progress", "schema", "tasks"),
    ("predictor", "segmentation", "datasets", "output_folder", "results"),
    ("backends",),
    ("anchors", "cam", "targets", "zoo", "classes", "classifier", "model_files"),
    ("render",),
    ("explanation", "anchors.explanation", "anchors.examples", "anchors.image", "cam.explanation", "cam.api",
     "evaluate", "report_table", "report"),
    ("models", "explainers", "pipeline", "distributed", "stream", "ray_cluster"),
    ("cli_options", "cli_checks", "cli"),
    ("", "_apidoc", "__main__"),  # the public API (the package's __init__) and the tools that walk it
)
# Documented names kept where users find them, resolved when first used: (module, what it imports).
COMPATIBILITY = {("predictor", "backends.onnx"), ("predictor", "backends.torch.runtime")}


def layer_of(module: str) -> int:
    """The layer of ``module`` (a dotted name inside the package, without 'imgexplain.')."""
    parts = module.split(".")
    for length in range(len(parts), 0, -1):
        prefix = ".".join(parts[:length])
        for index, names in enumerate(LAYERS):
            if prefix in names:
                return index
    raise KeyError(f"imgexplain.{module} is in no layer of tests/test_layering.py: add it to LAYERS")


def module_name(path: Path, root: Path = PACKAGE) -> str:
    """'cam.core' for imgexplain/cam/core.py, 'cam' for imgexplain/cam/__init__.py."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imported_modules(path: Path, root: Path = PACKAGE) -> list[tuple[int, str]]:
    """(line, module) for every import of the package's own modules in ``path`` (relative imports resolved)."""
    name = module_name(path, root)
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(["imgexplain", *package[:len(package) - node.level + 1], *filter(None, [base])])
            found += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    own = []
    for line, module in found:
        if module == "imgexplain" or module.startswith("imgexplain."):
            own.append((line, _existing_module(module.removeprefix("imgexplain").lstrip("."), root)))
    return own


def _existing_module(module: str, root: Path) -> str:
    """The longest prefix of ``module`` that is a module of the package ('cam.core.CAM' -> 'cam.core')."""
    parts = module.split(".") if module else []
    while parts:
        candidate = root.joinpath(*parts)
        if candidate.with_suffix(".py").is_file() or (candidate / "__init__.py").is_file():
            return ".".join(parts)
        parts.pop()
    return ""


def upward_imports(package: Path = PACKAGE) -> list[str]:
    """'file:line: a (layer i) imports b (layer j)' for every import of a higher layer."""
    found = []
    for path in sorted(package.rglob("*.py")):
        importer = module_name(path, package)
        for line, imported in imported_modules(path, package):
            if layer_of(imported) > layer_of(importer) and (importer, imported) not in COMPATIBILITY:
                found.append(f"{path.relative_to(package.parent)}:{line}: imgexplain.{importer} "
                             f"(layer {layer_of(importer)}) imports imgexplain.{imported} "
                             f"(layer {layer_of(imported)})")
    return found


def test_every_module_is_in_a_layer():
    for path in PACKAGE.rglob("*.py"):
        layer_of(module_name(path))


def test_no_module_imports_from_a_higher_layer():
    assert upward_imports() == []


def test_an_upward_import_is_found(tmp_path):
    copy = tmp_path / "imgexplain"
    (copy / "backends").mkdir(parents=True)
    (copy / "__init__.py").write_text("")
    (copy / "render.py").write_text("")
    (copy / "backends" / "__init__.py").write_text("")
    (copy / "backends" / "onnx.py").write_text("def f():\n    from ..render import x\n")
    assert upward_imports(copy) == [
        "imgexplain/backends/onnx.py:2: imgexplain.backends.onnx (layer 2) imports imgexplain.render (layer 4)"]


@pytest.mark.parametrize("module, layer", [("outputs", 0), ("backends.torch.cam", 2), ("cam.core", 3),
                                           ("cam.explanation", 5), ("cli", 7), ("", 8), ("_apidoc", 8)])
def test_layers_of_known_modules(module, layer):
    assert layer_of(module) == layer


def test_the_readme_draws_these_layers():
    drawing = README.read_text().split("The layering, from the bottom up", 1)[1].split("```")[1]
    rows = {}
    for line in drawing.strip("\n").splitlines():
        number, _, names = line.partition("  ")
        if number.strip():
            current = int(number)
        rows[current] = rows.get(current, "") + " " + names
    assert sorted(rows) == list(range(len(LAYERS)))
    for layer, names in enumerate(LAYERS):
        for name in names:
            shown = name.replace(".", "/") or "__init__"
            assert re.search(rf"(?<![\w/]){re.escape(shown)}(?!\w)", rows[layer]), (shown, layer)


def test_the_package_imports_neither_bench_nor_tests():
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            found += [f"{path.name}:{node.lineno}: {name}" for name in names
                      if name.split(".")[0] in ("bench", "tests")]
    assert found == []
