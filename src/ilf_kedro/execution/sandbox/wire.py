"""How a value crosses from the program's process to the harness: encoder and decoder.

The encoder runs in the program's process (it is the program's claim, trusted for
nothing); the decoder runs in the harness and rebuilds, from fresh objects of types whose
code is the harness's own (built-ins, the standard library, numpy), a value that compares
under Python's ``==`` as the program's value would if it could not lie about its
equality. Values are read by their contents, never by asking them to compare:

- exact built-ins as themselves (``bool``, ``int``, ``float``, ``complex``, ``str``,
  ``bytes``, ``bytearray``, ``None``, ``...``, ``list``, ``tuple``, ``set``,
  ``frozenset``, ``dict``, ``range``, ``collections.deque``, dict views,
  ``fractions.Fraction``, ``decimal.Decimal``);
- numpy scalars and arrays of booleans and numbers as numpy values of the same dtype;
- a subclass of any of these (``numpy.float64``, ``namedtuple``, ``Counter``,
  ``OrderedDict``, ``IntEnum``, a class of the program's) as its base type's contents
  (read with the base type's own methods, so an overridden ``__eq__`` plays no part);
  ``UserList``/``UserDict``/``UserString`` as their data;
- anything else as an opaque object: unequal to every other value, as Python's default
  ``==`` makes it, and refused where its truth would be needed.

Format: JSON. ``None``/``bool``/``int``/``float``/``str`` and lists are themselves; every
other type is a one-key object ``{tag: body}`` (:data:`TAGS`). At most ``MAX_NESTING``
deep and ``max_bytes`` long, on both sides.
"""

from __future__ import annotations

import collections
import decimal
import fractions
import json
import sys

from .records import MAX_NESTING


class NotPlainData(ValueError):
    """A value that cannot be handed back or judged as data (the reason says why)."""


_KEYS, _VALUES, _ITEMS = type({}.keys()), type({}.values()), type({}.items())
_NUMPY_KINDS = {"b": 1, "i": 8, "u": 8, "f": 8, "c": 16}  # dtype kind -> largest itemsize
MAX_DIGITS = 4300  # Python's own bound on int <-> str conversions
MAX_RANGE = 1_000_000

# --------------------------------------------------------------------------- encoder
# (runs in the program's process: the standard library only)


def _numpy_dtype(value: object) -> str | None:
    dtype = getattr(value, "dtype", None)
    if _NUMPY_KINDS.get(getattr(dtype, "kind", None), 0) < getattr(dtype, "itemsize", 99):
        return None
    return dtype.str


def encode_value(value: object, max_bytes: int) -> str:
    """JSON text of ``value``'s contents (see the module docstring); :class:`NotPlainData`
    when it is nested too deep, larger than ``max_bytes`` or not encodable."""
    budget = [max_bytes]  # elements still allowed; each costs at least one byte
    np = sys.modules.get("numpy")  # only a program that imported numpy returns its values

    def seq(items, depth):
        return [enc(x, depth + 1) for x in items]

    def enc(v: object, depth: int):
        if depth > MAX_NESTING:
            raise NotPlainData(f"nested deeper than {MAX_NESTING} levels")
        budget[0] -= 1
        if budget[0] < 0:
            raise NotPlainData(f"larger than {max_bytes} bytes")
        t = type(v)
        if t is str or t is int or t is bool or t is float or v is None:
            return v
        if t is list:
            return seq(v, depth)
        if t is tuple:
            return {"tuple": seq(v, depth)}
        if np is not None and isinstance(v, np.generic | np.ndarray):
            dtype = _numpy_dtype(v)
            if dtype is not None:
                if isinstance(v, np.ndarray):
                    budget[0] -= v.size
                    if budget[0] < 0:
                        raise NotPlainData(f"larger than {max_bytes} bytes")
                    flat = [enc(x, depth + 1) for x in v.ravel().tolist()]
                    return {"ndarray": [dtype, list(v.shape), flat]}
                return {"numpy": [dtype, enc(v.item(), depth + 1)]}
        # Built-in types and their subclasses, read through the base type's own methods.
        if isinstance(v, int):
            return int.__int__(v)
        if isinstance(v, float):
            return float.__float__(v)
        if isinstance(v, complex):
            return {"complex": [complex.real.__get__(v), complex.imag.__get__(v)]}
        if isinstance(v, str):
            return str.__str__(v)
        if isinstance(v, bytes):
            return {"bytes": bytes.hex(v)}
        if isinstance(v, bytearray):
            return {"bytearray": bytearray.hex(v)}
        if isinstance(v, list):
            return seq(list.__getitem__(v, slice(None)), depth)
        if isinstance(v, tuple):
            return {"tuple": seq(tuple.__getitem__(v, slice(None)), depth)}
        if isinstance(v, frozenset):
            return {"frozenset": seq(frozenset.__iter__(v), depth)}
        if isinstance(v, set):
            return {"set": seq(set.__iter__(v), depth)}
        if isinstance(v, dict):
            return {"dict": [[enc(k, depth + 1), enc(x, depth + 1)] for k, x in dict.items(v)]}
        if isinstance(v, collections.deque):
            return {"deque": seq(collections.deque.__iter__(v), depth)}
        if isinstance(v, range):
            return {"range": [v.start, v.stop, v.step]}  # range cannot be subclassed
        if isinstance(v, _KEYS | _VALUES | _ITEMS):
            tag = (
                "keys" if isinstance(v, _KEYS) else "values" if isinstance(v, _VALUES) else "items"
            )
            return {tag: seq(iter(v), depth)}
        if isinstance(v, fractions.Fraction):
            num, den = fractions.Fraction.numerator.fget(v), fractions.Fraction.denominator.fget(v)
            return {"fraction": [int.__int__(num), int.__int__(den)]}
        if isinstance(v, decimal.Decimal):
            return {"decimal": decimal.Decimal.__str__(v)}
        if isinstance(v, collections.UserString):
            return enc(v.data, depth + 1)
        if isinstance(v, collections.UserList | collections.UserDict):
            return enc(v.data, depth + 1)
        if v is Ellipsis:
            return {"ellipsis": None}
        return {"opaque": f"{t.__module__}.{t.__qualname__}"[:200]}

    try:
        text = json.dumps(enc(value, 0))
    except (ValueError, TypeError, RecursionError, MemoryError) as exc:  # a 5,000-digit int
        raise NotPlainData(str(exc) or type(exc).__name__) from None
    if len(text) > max_bytes:
        raise NotPlainData(f"larger than {max_bytes} bytes")
    return text


# --------------------------------------------------------------------------- decoder
# (runs in the harness: rebuilds the value from the harness's own types)


class Opaque:
    """A value that is not data (an object of the program's own class, a generator...).

    Equal only to itself, like an object whose ``__eq__`` is Python's default: its own
    ``__eq__`` is the program's code, and the harness never runs it. Its truth would be
    the program's code as well, so asking for it raises :class:`NotPlainData`.
    """

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __bool__(self) -> bool:
        raise NotPlainData(f"the truth of an object of type {self.type_name!r} is its own code")

    def __repr__(self) -> str:
        return f"<an object of type {self.type_name!r}>"


def decode_value(text: str) -> object:
    """The value encoded by :func:`encode_value` in ``text``, from fresh objects of the
    harness's own types; ValueError if ``text`` is anything else."""
    try:
        return _decode(json.loads(text), 0)
    except (TypeError, RecursionError, MemoryError, OverflowError, json.JSONDecodeError) as exc:
        raise ValueError(f"not an encoded value ({type(exc).__name__})") from None


def _numpy_type(dtype: object):
    import numpy as np  # the harness's numpy (a dependency of pandas), imported on demand

    if type(dtype) is not str:
        raise ValueError("not an encoded value")
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise ValueError("not an encoded value") from None
    if _NUMPY_KINDS.get(dt.kind, 0) < dt.itemsize:
        raise ValueError("not an encoded value")
    return np, dt


def _decode(v: object, depth: int) -> object:
    if depth > MAX_NESTING:
        raise ValueError(f"nested deeper than {MAX_NESTING} levels")
    t = type(v)
    if v is None or t is bool or t is int or t is float or t is str:
        return v
    if t is list:
        return [_decode(x, depth + 1) for x in v]
    if t is not dict or len(v) != 1:
        raise ValueError("not an encoded value")
    ((tag, body),) = v.items()
    decode = _TAGS.get(tag)
    if decode is None:
        raise ValueError(f"not an encoded value (tag {tag!r})")
    return decode(body, depth + 1)


def _items(body: object, depth: int) -> list:
    if type(body) is not list:
        raise ValueError("not an encoded value")
    return [_decode(x, depth) for x in body]


def _pairs(body: object, depth: int) -> list:
    items = _items(body, depth)
    if not all(type(p) in (list, tuple) and len(p) == 2 for p in items):
        raise ValueError("not an encoded value")
    return items


def _ints(body: object, n: int) -> list:
    if type(body) is not list or len(body) != n or not all(type(x) is int for x in body):
        raise ValueError("not an encoded value")
    return body


def _hex(body: object) -> bytes:
    if type(body) is not str:
        raise ValueError("not an encoded value")
    return bytes.fromhex(body)


def _complex(body: object, depth: int) -> complex:
    parts = _items(body, depth)
    if len(parts) != 2 or not all(type(x) in (int, float) for x in parts):
        raise ValueError("not an encoded value")
    return complex(parts[0], parts[1])


def _fraction(body: object, depth: int) -> fractions.Fraction:
    num, den = _ints(body, 2)
    if den <= 0:
        raise ValueError("not an encoded value")
    return fractions.Fraction(num, den)


def _decimal(body: object, depth: int) -> decimal.Decimal:
    if type(body) is not str or len(body) > 5000:
        raise ValueError("not an encoded value")
    try:
        value = decimal.Decimal(body)
    except decimal.InvalidOperation:
        raise ValueError("not an encoded value") from None
    if value.is_finite() and abs(value.adjusted()) > MAX_DIGITS:  # int() of it would hang
        raise ValueError(f"a Decimal beyond 1e{MAX_DIGITS}, too large to judge")
    return value


def _range(body: object, depth: int) -> range:
    start, stop, step = _ints(body, 3)
    if step == 0:
        raise ValueError("not an encoded value")
    value = range(start, stop, step)
    if len(value) > MAX_RANGE:  # list(), sum()... of it would hang the judge
        raise ValueError(f"a range of more than {MAX_RANGE} numbers, too large to judge")
    return value


def _numpy_scalar(body: object, depth: int):
    if type(body) is not list or len(body) != 2:
        raise ValueError("not an encoded value")
    np, dt = _numpy_type(body[0])
    value = _decode(body[1], depth)
    if type(value) not in (bool, int, float, complex):
        raise ValueError("not an encoded value")
    try:
        return dt.type(value)
    except (OverflowError, TypeError, ValueError):
        raise ValueError("not an encoded value") from None


def _ndarray(body: object, depth: int):
    if type(body) is not list or len(body) != 3 or type(body[2]) is not list:
        raise ValueError("not an encoded value")
    np, dt = _numpy_type(body[0])
    shape = body[1]
    if type(shape) is not list or len(shape) > 32 or not all(type(n) is int for n in shape):
        raise ValueError("not an encoded value")
    flat = _items(body[2], depth)
    if any(n < 0 for n in shape) or _product(shape) != len(flat):
        raise ValueError("not an encoded value")
    if not all(type(x) in (bool, int, float, complex) for x in flat):
        raise ValueError("not an encoded value")
    try:
        return np.array(flat, dtype=dt).reshape(shape)
    except (OverflowError, TypeError, ValueError):
        raise ValueError("not an encoded value") from None


def _product(shape: list) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def _opaque(body: object, depth: int) -> Opaque:
    if type(body) is not str:
        raise ValueError("not an encoded value")
    return Opaque(body[:200])


def _ellipsis(body: object, depth: int):
    if body is not None:
        raise ValueError("not an encoded value")
    return Ellipsis


_TAGS = {
    "tuple": lambda b, d: tuple(_items(b, d)),
    "set": lambda b, d: set(_items(b, d)),
    "frozenset": lambda b, d: frozenset(_items(b, d)),
    "dict": lambda b, d: dict(_pairs(b, d)),
    "deque": lambda b, d: collections.deque(_items(b, d)),
    "keys": lambda b, d: dict.fromkeys(_items(b, d)).keys(),
    "values": lambda b, d: dict(enumerate(_items(b, d))).values(),
    "items": lambda b, d: dict(_pairs(b, d)).items(),
    "bytes": lambda b, d: _hex(b),
    "bytearray": lambda b, d: bytearray(_hex(b)),
    "complex": _complex,
    "fraction": _fraction,
    "decimal": _decimal,
    "range": _range,
    "numpy": _numpy_scalar,
    "ndarray": _ndarray,
    "opaque": _opaque,
    "ellipsis": _ellipsis,
}
TAGS = tuple(_TAGS)
