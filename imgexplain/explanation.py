"""Explanation objects: attribute and dict access, JSON round trip, pictures in Jupyter."""
from __future__ import annotations

import base64
import copy
import json
import zlib
from typing import Any

import numpy as np

_NDARRAY_TAG = "__ndarray__"
_PACKED = "zlib+base64"  # an array's bytes, compressed: exact, and far smaller than a list of numbers
_LISTED_UP_TO = 64  # arrays of at most this many values are written as lists, readable in the JSON


def _encode(obj: Any) -> Any:
    """Turn numpy values into JSON; arrays keep their dtype and shape (large ones as compressed bytes)."""
    if hasattr(obj, "to_json_value"):
        return obj.to_json_value()
    if isinstance(obj, np.ndarray):
        if obj.size <= _LISTED_UP_TO or obj.dtype.hasobject:
            return {_NDARRAY_TAG: obj.tolist(), "dtype": str(obj.dtype), "shape": list(obj.shape)}
        packed = base64.b64encode(zlib.compress(np.ascontiguousarray(obj).tobytes(), 6)).decode("ascii")
        return {_NDARRAY_TAG: packed, "encoding": _PACKED, "dtype": obj.dtype.str, "shape": list(obj.shape)}
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, dict):
        return {str(key): _encode(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_encode(value) for value in obj]
    if isinstance(obj, type):
        return obj.__name__
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)


def _decode(obj: Any) -> Any:
    if isinstance(obj, dict):
        if _NDARRAY_TAG in obj:
            if obj.get("encoding") == _PACKED:
                raw = zlib.decompress(base64.b64decode(obj[_NDARRAY_TAG]))
                return np.frombuffer(raw, dtype=np.dtype(obj["dtype"])).reshape(obj["shape"]).copy()
            return np.asarray(obj[_NDARRAY_TAG], dtype=obj["dtype"]).reshape(obj["shape"])
        from imgexplain.anchors.examples import EXAMPLES_TAG, CoveredExamples

        if EXAMPLES_TAG in obj:
            return CoveredExamples.from_json_value(obj)
        return {key: _decode(value) for key, value in obj.items()}
    if isinstance(obj, list):
        return [_decode(value) for value in obj]
    return obj


class Explanation:
    """The result of an explainer: ``meta`` (name, params, version) and ``data`` (the explanation).

    Every key of ``data`` is also an attribute (``exp.anchor`` is ``exp.data['anchor']``)
    and an item (``exp['anchor']``). :class:`imgexplain.AnchorImageExplanation` and
    :class:`imgexplain.CAMExplanation` are the explanations the explainers return.

    Parameters
    ----------
    meta : dict
        ``name`` (the explainer), ``params`` (its arguments) and ``version`` (imgexplain's).
    data : dict
        The explanation itself.

    Examples
    --------
    >>> import numpy as np
    >>> from imgexplain import Explanation
    >>> explanation = Explanation(meta={"name": "demo"}, data={"anchor": np.array([[0, 1]])})
    >>> explanation
    Explanation(name='demo', data keys: anchor)
    >>> explanation.anchor is explanation["anchor"]
    True
    """

    def __init__(self, meta: dict, data: dict):
        object.__setattr__(self, "meta", meta)
        object.__setattr__(self, "data", data)

    def __getattr__(self, name: str) -> Any:
        data = self.__dict__.get("data", {})
        if name in data:
            return data[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}; data keys: {sorted(data)}")

    def __getitem__(self, key: str) -> Any:
        return self.data[key]

    def __contains__(self, key: str) -> bool:
        return key in self.data

    def __dir__(self):
        return sorted(set(super().__dir__()) | set(self.data))

    def __repr__(self) -> str:
        keys = ", ".join(sorted(self.data))
        return f"{type(self).__name__}(name={self.meta.get('name')!r}, data keys: {keys})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Explanation):
            return NotImplemented
        return self.to_json() == other.to_json()

    def to_json(self) -> str:
        """Serialise to a JSON string; numpy arrays come back with their dtype, shape and values.

        Arrays of more than 64 values are written as their compressed bytes (zlib, base64); values
        JSON does not know are written as their ``repr``.

        Returns
        -------
        str

        Examples
        --------
        >>> import numpy as np
        >>> from imgexplain import Explanation
        >>> Explanation(meta={}, data={"mask": np.array([True])}).to_json()
        '{"meta": {}, "data": {"mask": {"__ndarray__": [true], "dtype": "bool", "shape": [1]}}}'
        """
        return json.dumps({"meta": _encode(self.meta), "data": _encode(self.data)})

    @classmethod
    def from_json(cls, text: str) -> "Explanation":
        """Rebuild an explanation saved with :meth:`to_json`.

        Parameters
        ----------
        text : str
            What :meth:`to_json` returned.

        Returns
        -------
        Explanation
            Of the class this is called on.

        Raises
        ------
        json.JSONDecodeError, KeyError
            `text` is not JSON, or not an explanation's.

        Examples
        --------
        >>> import numpy as np
        >>> from imgexplain import Explanation
        >>> saved = Explanation(meta={}, data={"segments": np.zeros((2, 2), np.int32)})
        >>> Explanation.from_json(saved.to_json()).segments.dtype
        dtype('int32')
        """
        content = json.loads(text)
        return cls(meta=_decode(content["meta"]), data=_decode(content["data"]))

    def copy(self) -> "Explanation":
        """A deep copy: changing it leaves this explanation as it is.

        Returns
        -------
        Explanation
            Of the same class.

        Examples
        --------
        >>> from imgexplain import Explanation
        >>> original = Explanation(meta={}, data={"features": [1, 2]})
        >>> copied = original.copy()
        >>> copied.features.append(3)
        >>> original.features
        [1, 2]
        """
        return type(self)(meta=copy.deepcopy(self.meta), data=copy.deepcopy(self.data))

    def plot(self, ax=None):
        """Draw the explanation with matplotlib; subclasses say how.

        Parameters
        ----------
        ax : matplotlib.axes.Axes, optional
            Where to draw; a new figure by default.

        Returns
        -------
        matplotlib.figure.Figure

        Raises
        ------
        NotImplementedError
            This class has no picture (the base class).
        """
        raise NotImplementedError(f"{type(self).__name__} has no picture")

    def _repr_png_(self) -> bytes | None:
        """Jupyter shows the explanation as the picture that :meth:`plot` draws."""
        from imgexplain.render import figure_png

        try:
            figure = self.plot()
        except NotImplementedError:
            return None
        return figure_png(figure)
