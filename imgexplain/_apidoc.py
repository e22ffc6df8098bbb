"""Write the API reference, docs/api.md, from the docstrings: ``python -m imgexplain._apidoc``.

Every name of ``imgexplain.__all__`` is documented, then the public names of the public submodules
(their ``__all__``, or the functions and classes they define). Numpydoc sections become Markdown
lists; Examples stay doctests in code blocks, with their prose between them.
"""
from __future__ import annotations

import importlib
import inspect
import re
import sys
from pathlib import Path

SUBMODULES = ("imgexplain.backends", "imgexplain.backends.contract", "imgexplain.cam", "imgexplain.classes", "imgexplain.datasets",
              "imgexplain.evaluate", "imgexplain.models", "imgexplain.render", "imgexplain.targets", "imgexplain.zoo")
OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "api.md"
_LIST_SECTIONS = ("Parameters", "Other Parameters", "Attributes", "Returns", "Yields", "Raises", "Warns", "See Also")
_CODE_SECTIONS = ("Examples",)
_ROLE = re.compile(r":[a-z]+:`(~?)([^`<]*?)\s*(?:<[^`>]*>)?`")
_NAMES = re.compile(r"`?[*\w.]+`?(, `?[*\w.]+`?)*")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")


def _inline(text: str) -> str:
    """Sphinx roles and double backquotes as Markdown code: :func:`~a.b` -> `b`, ``x`` -> `x`."""
    def role(match):
        tilde, target = match.groups()
        return f"`{target.split('.')[-1] if tilde else target}`"

    return _ROLE.sub(role, text).replace("``", "`")


def _split_sections(docstring: str) -> list[tuple[str | None, list[str]]]:
    """``[(section title or None, lines), ...]`` of a cleaned docstring."""
    lines = inspect.cleandoc(docstring).splitlines()
    sections, title, body = [], None, []
    index = 0
    while index < len(lines):
        line = lines[index]
        underline = lines[index + 1] if index + 1 < len(lines) else ""
        if line.strip() and re.fullmatch(r"-{3,}", underline.strip()) and not line.startswith(" "):
            sections.append((title, body))
            title, body = line.strip(), []
            index += 2
            continue
        body.append(line)
        index += 1
    sections.append((title, body))
    return [(title, body) for title, body in sections if title or any(line.strip() for line in body)]


def _list_section(lines: list[str]) -> list[str]:
    """Numpydoc ``name : type`` entries, their descriptions indented below, as a Markdown list;
    unindented prose (a line that is neither ``name : type`` nor names) as a paragraph."""
    out = []
    for line in _inline("\n".join(lines)).splitlines():
        if not line.strip():
            continue
        if line.startswith(" "):
            out.append("  " + line.strip())
        elif " : " in line or line.rstrip().endswith(" :") or _NAMES.fullmatch(line.strip()):
            name, _, kind = f"{line.rstrip()} ".partition(" : ")
            names = ", ".join(f"`{part.strip().strip('`')}`" for part in name.split(","))
            out.append(f"- {names}" + (f" : {kind.strip()}" if kind.strip() else ""))
        else:
            out += [line.strip()] if out and not out[-1].startswith(("-", " ")) else ["", line.strip()]
    return out


def _text(lines: list[str]) -> list[str]:
    """Prose with inline code converted; doctest blocks (from ``>>>`` to a blank line) fenced as code, their
    lines without the indentation of the block's first ``>>>``."""
    out, prose, in_doctest, indent = [], [], False, 0
    for line in lines + [""]:
        if not in_doctest and line.lstrip().startswith(">>>"):
            out += _inline("\n".join(prose)).splitlines() + ["", "```python"]
            prose, in_doctest, indent = [], True, len(line) - len(line.lstrip())
        if in_doctest and not line.strip():
            out += ["```"]
            in_doctest = False
        if in_doctest:
            out.append(line[min(indent, len(line) - len(line.lstrip())):])
        else:
            prose.append(line)
    return out + _inline("\n".join(prose)).splitlines()


def _markdown_docstring(docstring: str | None) -> list[str]:
    """A docstring as Markdown lines, each section followed by one blank line."""
    if not docstring:
        return ["*(no docstring)*", ""]
    out = []
    for title, body in _split_sections(docstring):
        if title is None:
            section = _text(body)
        elif title in _LIST_SECTIONS:
            section = [f"**{title}**", "", *_list_section(body)]
        elif title in _CODE_SECTIONS:
            text = _text(body)
            while text and not text[0].strip():
                text.pop(0)
            section = [f"**{title}**", "", *text]
        else:
            section = [f"**{title}**", "", *_text(body)]
        while section and not section[-1].strip():
            section.pop()
        out += [*section, ""]
    return out


class _Shown:
    """A default value or annotation written as ``text`` in a signature."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _shown_default(value):
    """Defaults whose repr changes from run to run (an address) or reads badly (a class), by name."""
    if inspect.isclass(value) or inspect.isfunction(value):
        return _Shown(f"{value.__module__}.{value.__qualname__}")
    if _ADDRESS.search(repr(value)):
        name = getattr(value, "name", None)
        return _Shown(f"<{type(value).__name__}{f' {name!r}' if isinstance(name, str) else ''}>")
    return value


def _shown_annotation(annotation):
    return _Shown(annotation.strip("'\"")) if isinstance(annotation, str) else annotation


def _signature(name: str, obj, method: bool = False) -> str:
    """``name(parameters) -> return``; a method's ``self`` or ``cls`` left out."""
    try:
        signature = inspect.signature(obj)
    except (TypeError, ValueError):
        return name
    parameters = list(signature.parameters.values())[1 if method else 0:]
    parameters = [parameter.replace(
        default=parameter.default if parameter.default is parameter.empty else _shown_default(parameter.default),
        annotation=_shown_annotation(parameter.annotation)) for parameter in parameters]
    return name + str(signature.replace(parameters=parameters,
                                        return_annotation=_shown_annotation(signature.return_annotation)))


def _public_members(cls) -> list[tuple[str, object]]:
    """Methods and properties that ``cls`` itself defines, without a leading underscore."""
    return [(name, member) for name, member in vars(cls).items()
            if not name.startswith("_")
            and (inspect.isfunction(member) or isinstance(member, (classmethod, staticmethod, property)))]


def _document(qualified: str, obj, level: int = 3) -> list[str]:
    heading = "#" * level
    if inspect.isclass(obj):
        out = [f"{heading} class `{qualified}`", "", "```python", _signature(qualified, obj), "```", "",
               *_markdown_docstring(obj.__doc__)]
        for name, member in _public_members(obj):
            function = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
            out += [f"{heading}# `{qualified}.{name}`", ""]
            if not isinstance(member, property):
                out += ["```python", _signature(name, function, method=not isinstance(member, staticmethod)),
                        "```", ""]
            out += _markdown_docstring(function.__doc__)
        return out
    if callable(obj):
        return [f"{heading} `{qualified}`", "", "```python", _signature(qualified, obj), "```", "",
                *_markdown_docstring(obj.__doc__)]
    return [f"{heading} `{qualified}`", "", "```python", f"{qualified} = {_ADDRESS.sub('', repr(obj))}", "```", ""]


def _module_names(module) -> list[str]:
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return sorted(name for name, value in vars(module).items()
                  if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
                  and value.__module__ == module.__name__)


def api_markdown() -> str:
    """The text of docs/api.md, from the docstrings of the installed imgexplain."""
    import imgexplain

    out = ["# API reference", "",
           "Generated from the docstrings by `python -m imgexplain._apidoc`; do not edit by hand.", "",
           "## `imgexplain`", "", *_markdown_docstring(imgexplain.__doc__)]
    documented = {}
    for name in imgexplain.__all__:
        obj = getattr(imgexplain, name)
        if not inspect.ismodule(obj):
            out += _document(f"imgexplain.{name}", obj)
            documented[id(obj)] = f"imgexplain.{name}"
    for module_name in SUBMODULES:
        module = importlib.import_module(module_name)
        out += [f"## `{module_name}`", "", *_markdown_docstring(module.__doc__)]
        elsewhere = []
        for name in _module_names(module):
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                continue
            if id(obj) in documented and (callable(obj) or inspect.isclass(obj)):
                elsewhere.append(f"`{name}` (`{documented[id(obj)]}`)")
                continue
            out += _document(f"{module_name}.{name}", obj)
            documented[id(obj)] = f"{module_name}.{name}"
        if elsewhere:
            out += [f"Also here, documented above: {', '.join(elsewhere)}.", ""]
    text = "\n".join(line.rstrip() for line in out)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


def main(argv=None) -> int:
    """Write docs/api.md (or the path given as the only argument)."""
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else OUTPUT
    path.write_text(api_markdown(), encoding="utf-8")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
