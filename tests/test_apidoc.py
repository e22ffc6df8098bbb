"""The API reference, docs/api.md, is generated from the docstrings and kept up to date."""
from pathlib import Path

import numpy as np

import imgexplain
from imgexplain import _apidoc

API_PAGE = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def _example(values, scale=(0, 1)):
    """Scale ``values`` to :data:`scale`.

    A second paragraph.

    Parameters
    ----------
    values : ndarray
        The values,
        on two lines.
    scale : (float, float)
        The range.

    Returns
    -------
    ndarray

    Examples
    --------
    >>> _example([1, 2])
    array([0., 1.])
    """
    values = np.asarray(values, dtype=float)
    return scale[0] + (scale[1] - scale[0]) * (values - values.min()) / np.ptp(values)


def test_a_numpydoc_docstring_becomes_markdown():
    assert _apidoc._document("module._example", _example) == [
        "### `module._example`", "", "```python", "module._example(values, scale=(0, 1))", "```", "",
        "Scale `values` to `scale`.", "", "A second paragraph.", "",
        "**Parameters**", "", "- `values` : ndarray", "  The values,", "  on two lines.",
        "- `scale` : (float, float)", "  The range.", "",
        "**Returns**", "", "- `ndarray`", "",
        "**Examples**", "", "```python", ">>> _example([1, 2])", "array([0., 1.])", "```", "",
    ]


def _grouped(image, layer=None, method="gradcam"):
    """Grouped parameters.

    Parameters
    ----------
    image : ndarray
        The image.
    layer, method :
        As in `CAM`.

    Raises
    ------
    TypeError, ValueError
        Bad input.

    Examples
    --------
        >>> 1 + 1
        2
    """


def test_grouped_parameters_and_indented_doctests_render_as_lists_and_code():
    lines = _apidoc._markdown_docstring(_grouped.__doc__)
    assert "- `layer`, `method`" in lines and "  As in `CAM`." in lines
    assert "- `TypeError`, `ValueError`" in lines
    assert lines[lines.index("```python") + 1:lines.index("```python") + 3] == [">>> 1 + 1", "2"]


def test_every_public_name_has_a_section():
    text = _apidoc.api_markdown()
    for name in imgexplain.__all__:
        if name not in ("datasets", "evaluate", "targets", "zoo"):
            assert f"`imgexplain.{name}`" in text.split("\n## `imgexplain.", 1)[0], name
    for module in _apidoc.SUBMODULES:
        assert f"## `{module}`" in text
    assert " at 0x" not in text  # no default written as an address that changes from run to run


def test_the_api_page_is_up_to_date_with_the_docstrings():
    assert API_PAGE.read_text(encoding="utf-8") == _apidoc.api_markdown(), (
        "docs/api.md is out of date with the docstrings: run `python -m imgexplain._apidoc`")
