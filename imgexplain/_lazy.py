"""Packages' public names that load their module on first use (PEP 562), so that importing a package stays light."""
from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any, Callable


def lazy_attributes(package: str, where: dict[str, str | None]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``package.<where[name]>`` the first time ``name`` is asked for.

    ``where[name]`` None, or a name not in ``where``: ``name`` is a submodule of ``package``. The value is
    then kept in the package, so the module is looked up once.

    Examples
    --------
    >>> getattr_ = lazy_attributes("imgexplain", {"check_number": "_checks", "datasets": None})
    >>> getattr_("check_number").__name__, getattr_("datasets").__name__
    ('check_number', 'imgexplain.datasets')
    """

    def __getattr__(name: str) -> Any:
        if name in where and where[name] is not None:
            value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        elif not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
            value = importlib.import_module(f"{package}.{name}")  # any subpackage, as after an eager import
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
