"""Type descriptors: how IDL types are validated and converted to and from msgpack values.

Generated code describes every IDL type as a :class:`TypeDesc`; the runtime calls
:meth:`TypeDesc.encode` on values the application hands it and :meth:`TypeDesc.decode` on values
that came off the network. Both validate and convert in one pass and raise only
:class:`ValidationError`, whatever the input (Contract 1 in ``docs/design.md``).

Speed matters here: every call encodes and decodes its arguments. So descriptors are plain
objects with an internal ``_enc``/``_dec`` pair that containers and records call directly, the
error path is built only when something fails (a :class:`ValidationError` collects its path on the
way out), and records loop over a precomputed tuple of their fields.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
import math
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any, Final

#: Deepest nesting of containers and records accepted, so hostile or cyclic input cannot
#: exhaust the interpreter stack (each level costs a few Python frames; the default recursion
#: limit is 1000).
MAX_NESTING: Final = 100

#: Largest finite IEEE 754 binary32 value (FLT_MAX).
F32_MAX: Final = 3.4028234663852886e38


class ValidationError(Exception):
    """A value does not match its IDL type or bounds.

    ``path`` names where in the call the value sits (``"put(item).tags[3]"``); ``problem``
    says what is wrong with it. This is not an ``RpcError``: the runtime turns it into
    ``InvalidArgument`` (or ``ProtocolError`` for a malformed reply).
    """

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(path, problem)
        self.path = path
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}" if self.path else self.problem

    def prefixed(self, prefix: str) -> ValidationError:
        """Prepend ``prefix`` to the path (used while the error propagates outwards)."""
        self.path = prefix + self.path
        self.args = (self.path, self.problem)
        return self


def _type_name(value: object) -> str:
    return "None" if value is None else type(value).__name__


def _wrong_type(expected: str, value: object) -> ValidationError:
    return ValidationError("", f"expected {expected}, got {_type_name(value)}")


def _too_deep() -> ValidationError:
    return ValidationError("", f"nested deeper than {MAX_NESTING} levels")


class TypeDesc(abc.ABC):
    """Describes one IDL type: validates and converts values of it (Contract 1)."""

    #: IDL spelling of the type, for messages.
    name: str
    #: True when values may be map keys or set elements.
    hashable: bool = True
    #: A type whose exact instances (``type(v) is plain``) are always valid values of this IDL
    #: type and encode and decode to themselves: callers may skip ``_enc``/``_dec`` for them
    #: (a call's ``bytes`` argument then costs one type check). ``None``: always convert.
    plain: type | None = None

    def encode(self, value: object, path: str = "") -> object:
        """Validate an application value and return its msgpack-ready form."""
        try:
            return self._enc(value, 0)
        except ValidationError as exc:
            raise exc.prefixed(path) from None
        except RecursionError:
            raise ValidationError(path, "value nested too deeply") from None

    def decode(self, wire: object, path: str = "") -> object:
        """Validate an untrusted msgpack value and return the application value."""
        try:
            return self._dec(wire, 0)
        except ValidationError as exc:
            raise exc.prefixed(path) from None
        except RecursionError:
            raise ValidationError(path, "value nested too deeply") from None

    @abc.abstractmethod
    def _enc(self, value: Any, depth: int, /) -> object:
        """Encode ``value`` at nesting ``depth``; raises ValidationError with a relative path."""

    @abc.abstractmethod
    def _dec(self, wire: Any, depth: int, /) -> object:
        """Decode ``wire`` at nesting ``depth``; raises ValidationError with a relative path."""

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


# --------------------------------------------------------------------------- base types


class _BoolDesc(TypeDesc):
    name = "bool"
    plain = bool

    def _enc(self, value: Any, depth: int) -> object:
        if value is True or value is False:
            return value
        raise _wrong_type("bool", value)

    _dec = _enc


class _IntDesc(TypeDesc):
    """A fixed-width integer; ``bool`` is rejected although it subclasses ``int``."""

    def __init__(self, name: str, low: int, high: int) -> None:
        self.name = name
        self.low = low
        self.high = high

    def _enc(self, value: Any, depth: int) -> object:
        if type(value) is int and self.low <= value <= self.high:
            return value
        return self._slow(value)

    def _slow(self, value: Any) -> int:
        # IntEnum members and other int subclasses are accepted and converted to plain ints.
        if not isinstance(value, int) or isinstance(value, bool):
            raise _wrong_type(self.name, value)
        if not self.low <= value <= self.high:
            raise ValidationError("", f"{value} is out of range for {self.name}")
        return int(value)

    _dec = _enc


def _signed(bits: int) -> _IntDesc:
    return _IntDesc(f"i{bits}", -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def _unsigned(bits: int) -> _IntDesc:
    return _IntDesc(f"u{bits}", 0, (1 << bits) - 1)


class _FloatDesc(TypeDesc):
    """A float; ints are accepted and converted. ``f32`` also checks the binary32 range."""

    def __init__(self, name: str, limit: float) -> None:
        self.name = name
        self.limit = limit
        if math.isinf(limit):  # f64: every float is in range
            self.plain = float

    def _enc(self, value: Any, depth: int) -> object:
        if type(value) is float:
            result = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            try:
                result = float(value)
            except OverflowError:
                raise ValidationError("", f"{value} is out of range for {self.name}") from None
        else:
            raise _wrong_type(self.name, value)
        if abs(result) > self.limit and not math.isinf(result):
            raise ValidationError("", f"{result} is out of range for {self.name}")
        return result

    _dec = _enc


class String(TypeDesc):
    """A Unicode string, at most ``max_len`` code points long when a bound is given."""

    def __init__(self, max_len: int | None = None) -> None:
        self.max_len = max_len
        self.name = "string" if max_len is None else f"string<{max_len}>"
        #: ``max_len`` or no bound at all: the common case is then one comparison.
        self._limit = sys.maxsize if max_len is None else max_len

    def _enc(self, value: Any, depth: int) -> object:
        text = self._check(value)
        if not text.isascii():
            # Lone surrogates cannot be sent as UTF-8: catch them here, not in the packer.
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ValidationError("", "string is not valid Unicode (lone surrogate)") from None
        return text

    def _dec(self, wire: Any, depth: int) -> object:
        if type(wire) is str and len(wire) <= self._limit:
            return wire
        return self._check(wire)

    def _check(self, value: Any) -> str:
        if type(value) is not str:
            raise _wrong_type("str", value)
        if self.max_len is not None and len(value) > self.max_len:
            raise ValidationError("", f"string of {len(value)} characters exceeds {self.name}")
        return value


class Bytes(TypeDesc):
    """A byte string, at most ``max_len`` bytes long when a bound is given."""

    def __init__(self, max_len: int | None = None) -> None:
        self.max_len = max_len
        self.name = "bytes" if max_len is None else f"bytes<{max_len}>"
        #: ``max_len`` or no bound at all: the common case is then one comparison.
        self._limit = sys.maxsize if max_len is None else max_len
        if max_len is None:
            self.plain = bytes

    def _enc(self, value: Any, depth: int) -> object:
        if type(value) is bytes and len(value) <= self._limit:
            return value
        if type(value) is not bytes:
            if not isinstance(value, (bytes, bytearray, memoryview)):
                raise _wrong_type("bytes", value)
            value = bytes(value)
        return self._check(value)

    def _dec(self, wire: Any, depth: int) -> object:
        if type(wire) is bytes and len(wire) <= self._limit:
            return wire
        if type(wire) is not bytes:
            raise _wrong_type("bytes", wire)
        return self._check(wire)

    def _check(self, value: bytes) -> bytes:
        if self.max_len is not None and len(value) > self.max_len:
            raise ValidationError("", f"{len(value)} bytes exceed {self.name}")
        return value


BOOL: Final[TypeDesc] = _BoolDesc()
I8: Final[TypeDesc] = _signed(8)
I16: Final[TypeDesc] = _signed(16)
I32: Final[TypeDesc] = _signed(32)
I64: Final[TypeDesc] = _signed(64)
U8: Final[TypeDesc] = _unsigned(8)
U16: Final[TypeDesc] = _unsigned(16)
U32: Final[TypeDesc] = _unsigned(32)
U64: Final[TypeDesc] = _unsigned(64)
F32: Final[TypeDesc] = _FloatDesc("f32", F32_MAX)
F64: Final[TypeDesc] = _FloatDesc("f64", math.inf)
STRING: Final[TypeDesc] = String()
BYTES: Final[TypeDesc] = Bytes()


# --------------------------------------------------------------------------- containers


def _bound_suffix(max_len: int | None) -> str:
    return "" if max_len is None else f", {max_len}"


def _check_count(desc: TypeDesc, count: int, max_len: int | None) -> None:
    if max_len is not None and count > max_len:
        raise ValidationError("", f"{count} elements exceed {desc.name}")


def _key_text(key: object) -> str:
    # Keys may be hostile and huge: show at most a short prefix of their repr.
    return f"[{key!r:.40}]"


class ListOf(TypeDesc):
    """``list<T>``: a Python list on both sides (tuples are accepted on encode)."""

    hashable = False

    def __init__(self, elem: TypeDesc, max_len: int | None = None) -> None:
        self.elem = elem
        self.max_len = max_len
        self.name = f"list<{elem.name}{_bound_suffix(max_len)}>"

    def _enc(self, value: Any, depth: int) -> object:
        if not isinstance(value, (list, tuple)):
            raise _wrong_type("list", value)
        return _convert_items(self, self.max_len, value, depth, self.elem._enc)

    def _dec(self, wire: Any, depth: int) -> object:
        if not isinstance(wire, (list, tuple)):
            raise _wrong_type("list", wire)
        return _convert_items(self, self.max_len, wire, depth, self.elem._dec)


def _convert_items(
    desc: TypeDesc,
    max_len: int | None,
    items: Sequence[Any],
    depth: int,
    convert: Callable[[Any, int], object],
) -> list[object]:
    """Convert every element of a list (or set's wire array), naming the index on failure."""
    _check_count(desc, len(items), max_len)
    if depth >= MAX_NESTING:
        raise _too_deep()
    depth += 1
    out = []
    for index, item in enumerate(items):
        try:
            out.append(convert(item, depth))
        except ValidationError as exc:
            raise exc.prefixed(f"[{index}]") from None
    return out


class SetOf(TypeDesc):
    """``set<T>``: a ``frozenset`` in Python (any ``Set`` on encode), an array on the wire."""

    def __init__(self, elem: TypeDesc, max_len: int | None = None) -> None:
        self.elem = elem
        self.max_len = max_len
        self.name = f"set<{elem.name}{_bound_suffix(max_len)}>"

    def _enc(self, value: Any, depth: int) -> object:
        if not isinstance(value, AbstractSet):
            raise _wrong_type("set", value)
        _check_count(self, len(value), self.max_len)
        if depth >= MAX_NESTING:
            raise _too_deep()
        convert = self.elem._enc
        out = []
        for item in value:
            try:
                out.append(convert(item, depth + 1))
            except ValidationError as exc:
                raise exc.prefixed(_key_text(item)) from None
        return out

    def _dec(self, wire: Any, depth: int) -> object:
        if not isinstance(wire, (list, tuple)):
            raise _wrong_type("set", wire)
        items = _convert_items(self, self.max_len, wire, depth, self.elem._dec)
        try:
            return frozenset(items)
        except TypeError:
            raise ValidationError("", f"elements of {self.name} are not hashable") from None


class MapOf(TypeDesc):
    """``map<K, V>``: a ``dict`` in Python (any ``Mapping`` on encode).

    On the wire a msgpack map when keys are base types or enums, else an array of
    ``[key, value]`` pairs (msgpack maps cannot portably carry compound keys).
    """

    hashable = False

    def __init__(self, key: TypeDesc, value: TypeDesc, max_len: int | None = None) -> None:
        self.key = key
        self.value = value
        self.max_len = max_len
        self.name = f"map<{key.name}, {value.name}{_bound_suffix(max_len)}>"
        self.as_pairs = isinstance(key, (StructOf, SetOf))

    def _enc(self, value: Any, depth: int) -> object:
        if not isinstance(value, Mapping):
            raise _wrong_type("mapping", value)
        _check_count(self, len(value), self.max_len)
        if depth >= MAX_NESTING:
            raise _too_deep()
        pairs = self._convert(value.items(), depth + 1, self.key._enc, self.value._enc)
        if self.as_pairs:
            return [[k, v] for k, v in pairs]
        return dict(pairs)

    def _dec(self, wire: Any, depth: int) -> object:
        if self.as_pairs:
            if not isinstance(wire, (list, tuple)):
                raise _wrong_type("array of pairs", wire)
            items: Iterable[tuple[Any, Any]] = self._split_pairs(wire)
        elif isinstance(wire, dict):
            items = wire.items()
        else:
            raise _wrong_type("map", wire)
        _check_count(self, len(wire), self.max_len)
        if depth >= MAX_NESTING:
            raise _too_deep()
        try:
            return dict(self._convert(items, depth + 1, self.key._dec, self.value._dec))
        except TypeError:
            raise ValidationError("", f"keys of {self.name} are not hashable") from None

    @staticmethod
    def _split_pairs(wire: Sequence[Any]) -> list[tuple[Any, Any]]:
        pairs = []
        for index, pair in enumerate(wire):
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise ValidationError(f"[{index}]", "expected a [key, value] pair")
            pairs.append((pair[0], pair[1]))
        return pairs

    @staticmethod
    def _convert(
        items: Iterable[tuple[Any, Any]],
        depth: int,
        convert_key: Callable[[Any, int], object],
        convert_value: Callable[[Any, int], object],
    ) -> list[tuple[object, object]]:
        out = []
        for key, item in items:
            try:
                converted_key = convert_key(key, depth)
            except ValidationError as exc:
                raise exc.prefixed(f" key {key!r:.40}") from None
            try:
                out.append((converted_key, convert_value(item, depth)))
            except ValidationError as exc:
                raise exc.prefixed(_key_text(key)) from None
        return out


class EnumOf(TypeDesc):
    """An IDL enum: an ``IntEnum`` in Python, its integer value on the wire.

    A value the reader does not know is an error (enums are closed; see docs/idl.md).
    """

    def __init__(self, enum_cls: type[enum.IntEnum]) -> None:
        self.enum_cls = enum_cls
        self.name = enum_cls.__name__
        self._members: dict[int, enum.IntEnum] = {int(m): m for m in enum_cls}

    def _enc(self, value: Any, depth: int) -> object:
        if type(value) is self.enum_cls:
            return int(value)
        return int(self._member(value))

    def _dec(self, wire: Any, depth: int) -> object:
        return self._member(wire)

    def _member(self, value: Any) -> enum.IntEnum:
        if not isinstance(value, int) or isinstance(value, bool):
            raise _wrong_type(self.name, value)
        member = self._members.get(value)
        if member is None:
            raise ValidationError("", f"{value} is not a value of enum {self.name}")
        return member


# --------------------------------------------------------------------------- records


class _Missing(enum.Enum):
    MISSING = "MISSING"


#: Marks a field without a default value.
MISSING: Final = _Missing.MISSING


@dataclasses.dataclass(frozen=True)
class Field:
    """One numbered field of a struct, union or exception.

    ``default`` is ``MISSING`` when the field has no default; otherwise the record class itself
    supplies the default (a dataclass default), so a reader missing the field lets the class
    fill it. Optional fields are ``None`` when unset and are omitted from the wire.
    """

    number: int
    name: str
    attr: str
    type: TypeDesc
    optional: bool = False
    default: object = MISSING

    @property
    def required(self) -> bool:
        """True when a reader must find this field on the wire."""
        return not self.optional and self.default is MISSING


class StructOf(TypeDesc):
    """A struct: a dataclass in Python, a msgpack map ``{field_number: value}`` on the wire.

    Create it with the class, then call :meth:`define` once every referenced descriptor exists
    (this is what lets recursive and mutually recursive records work).
    """

    #: What the record is called in messages ("struct", "union", "exception").
    kind = "struct"

    def __init__(self, cls: type, name: str | None = None) -> None:
        self.cls = cls
        self.name = name or cls.__name__
        params = getattr(cls, "__dataclass_params__", None)
        self.hashable = bool(params is not None and params.frozen)
        self.fields: tuple[Field, ...] = ()
        self._plan: tuple[tuple[int, str, str, bool, bool, TypeDesc], ...] = ()
        self._by_number: dict[int, tuple[str, str, TypeDesc]] = {}

    def define(self, fields: Sequence[Field]) -> StructOf:
        """Set the fields (in declaration order); returns ``self`` for chaining."""
        self.fields = tuple(fields)
        self._plan = tuple(
            (f.number, f.name, f.attr, f.optional, f.required, f.type) for f in self.fields
        )
        self._by_number = {f.number: (f.name, f.attr, f.type) for f in self.fields}
        return self

    def _enc(self, value: Any, depth: int) -> object:
        if not isinstance(value, self.cls):
            raise _wrong_type(self.name, value)
        if depth >= MAX_NESTING:
            raise _too_deep()
        depth += 1
        out: dict[int, object] = {}
        for number, name, attr, optional, _required, desc in self._plan:
            item = getattr(value, attr)
            if item is None:
                if optional:
                    continue
                raise ValidationError(f".{name}", "required field is None")
            try:
                out[number] = desc._enc(item, depth)
            except ValidationError as exc:
                raise exc.prefixed(f".{name}") from None
        return out

    def _dec(self, wire: Any, depth: int) -> object:
        if not isinstance(wire, dict):
            raise _wrong_type(f"{self.name} (a map)", wire)
        if depth >= MAX_NESTING:
            raise _too_deep()
        depth += 1
        kwargs: dict[str, object] = {}
        for number, name, attr, _optional, required, desc in self._plan:
            if number in wire:
                try:
                    kwargs[attr] = desc._dec(wire[number], depth)
                except ValidationError as exc:
                    raise exc.prefixed(f".{name}") from None
            elif required:
                raise ValidationError(f".{name}", f"required field {number} is missing")
            # Otherwise the record class fills its default (None for optional fields).
        return self._build(kwargs)

    def _build(self, kwargs: dict[str, object]) -> object:
        try:
            return self.cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ValidationError("", f"cannot build {self.name}: {exc}") from None


class ExceptionOf(StructOf):
    """An IDL exception: a subclass of ``rpc.ApplicationError`` encoded like a struct."""

    kind = "exception"
    hashable = False


class UnionOf(StructOf):
    """A union: exactly one field set; a one-entry map ``{field_number: value}`` on the wire.

    A reader that does not know the member number it receives rejects the value.
    """

    kind = "union"

    def _enc(self, value: Any, depth: int) -> object:
        if not isinstance(value, self.cls):
            raise _wrong_type(self.name, value)
        if depth >= MAX_NESTING:
            raise _too_deep()
        chosen = [entry for entry in self._plan if getattr(value, entry[2]) is not None]
        if len(chosen) != 1:
            raise ValidationError("", f"union {self.name} needs exactly one field set, "
                                      f"{len(chosen)} are set")
        number, name, attr, _optional, _required, desc = chosen[0]
        try:
            return {number: desc._enc(getattr(value, attr), depth + 1)}
        except ValidationError as exc:
            raise exc.prefixed(f".{name}") from None

    def _dec(self, wire: Any, depth: int) -> object:
        if not isinstance(wire, dict) or len(wire) != 1:
            raise ValidationError("", f"expected {self.name} (a one-entry map)")
        if depth >= MAX_NESTING:
            raise _too_deep()
        ((number, item),) = wire.items()
        member = self._by_number.get(number) if type(number) is int else None
        if member is None:
            raise ValidationError("", f"unknown member {number!r:.40} of union {self.name}")
        name, attr, desc = member
        try:
            return self._build({attr: desc._dec(item, depth + 1)})
        except ValidationError as exc:
            raise exc.prefixed(f".{name}") from None


__all__ = [
    "BOOL",
    "BYTES",
    "F32",
    "F64",
    "I8",
    "I16",
    "I32",
    "I64",
    "MAX_NESTING",
    "MISSING",
    "STRING",
    "U8",
    "U16",
    "U32",
    "U64",
    "Bytes",
    "EnumOf",
    "ExceptionOf",
    "Field",
    "ListOf",
    "MapOf",
    "SetOf",
    "String",
    "StructOf",
    "TypeDesc",
    "UnionOf",
    "ValidationError",
]
