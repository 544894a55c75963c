"""How checked IDL types and values are spelled in generated Python.

Three renderings of a type: the *value* annotation (what decoding produces: `list`, `frozenset`,
`dict`), the *parameter* annotation (what callers may pass: `Sequence`, `Set`, `Mapping`), and the
runtime descriptor expression (`rpc.schema.ListOf(rpc.schema.I32, 10)`).
"""

from __future__ import annotations

from collections.abc import Mapping

from codegen.names import PyNames
from codegen.writer import Atom, Expr, Pair, Seq, Str, call, flat
from idl import model as m

_PYTHON_BASE = {
    "bool": "bool", "i8": "int", "i16": "int", "i32": "int", "i64": "int", "u8": "int",
    "u16": "int", "u32": "int", "u64": "int", "f32": "float", "f64": "float", "string": "str",
    "bytes": "bytes",
}  # fmt: skip
_DESCRIPTOR_BASE = {
    "bool": "BOOL", "i8": "I8", "i16": "I16", "i32": "I32", "i64": "I64", "u8": "U8",
    "u16": "U16", "u32": "U32", "u64": "U64", "f32": "F32", "f64": "F64", "string": "STRING",
    "bytes": "BYTES",
}  # fmt: skip
#: Container annotations by (type, parameter flavour).
_CONTAINERS: dict[tuple[type, bool], str] = {
    (m.ListType, False): "list", (m.ListType, True): "collections.abc.Sequence",
    (m.SetType, False): "frozenset", (m.SetType, True): "collections.abc.Set",
    (m.MapType, False): "dict", (m.MapType, True): "collections.abc.Mapping",
}  # fmt: skip
_RECORD_DESCRIPTORS = {"struct": "StructOf", "union": "UnionOf", "exception": "ExceptionOf"}
SCHEMA = "rpc.schema"


class Spelling:
    """Renders types and values for one generated module (``names`` are all modules' names)."""

    def __init__(self, module: str, names: Mapping[str, PyNames]) -> None:
        self.module = module
        self.names = names
        #: Included modules and ``collections.abc`` as referenced so far (for the imports).
        self.used_modules: set[str] = set()
        self.used_collections = False

    def _qualified(self, module: str, python: str) -> str:
        if module == self.module:
            return python
        self.used_modules.add(module)
        return f"{module}.{python}"

    def ref(self, definition: m.Enum | m.Record | m.Typedef | m.Const) -> str:
        """The name of a definition, qualified by its module when it is included."""
        return self._qualified(definition.module, self.names[definition.module].of[definition])

    def private_ref(self, definition: m.Enum | m.Record) -> str:
        """The descriptor variable of a record or enum, qualified when included."""
        return self._qualified(definition.module,
                               self.names[definition.module].private[definition])

    # -- annotations ---------------------------------------------------------------------

    def annotation(self, t: m.Type, *, param: bool = False) -> str:
        """The Python type of ``t``; ``param`` selects the abstract types callers may pass."""
        if isinstance(t, m.BaseType):
            return _PYTHON_BASE[t.name]
        if isinstance(t, (m.ListType, m.SetType, m.MapType)):
            self.used_collections |= param
            outer = _CONTAINERS[type(t), param]
            if isinstance(t, m.MapType):
                key = self.annotation(t.key, param=param)
                return f"{outer}[{key}, {self.annotation(t.value, param=param)}]"
            return f"{outer}[{self.annotation(t.elem, param=param)}]"
        return self.ref(t)

    # -- descriptors ---------------------------------------------------------------------

    def descriptor(self, t: m.Type) -> Expr:
        """The ``rpc.schema`` descriptor expression of ``t``."""
        if isinstance(t, m.BaseType):
            if t.bound is None:
                return Atom(f"{SCHEMA}.{_DESCRIPTOR_BASE[t.name]}")
            return call(f"{SCHEMA}.{'String' if t.name == 'string' else 'Bytes'}",
                        Atom(str(t.bound)))
        if isinstance(t, m.Typedef):
            return self.descriptor(t.target)
        if isinstance(t, (m.Enum, m.Record)):
            return Atom(self.private_ref(t))
        bound = () if t.bound is None else (Atom(str(t.bound)),)
        if isinstance(t, m.ListType):
            return call(f"{SCHEMA}.ListOf", self.descriptor(t.elem), *bound)
        if isinstance(t, m.SetType):
            return call(f"{SCHEMA}.SetOf", self.descriptor(t.elem), *bound)
        return call(f"{SCHEMA}.MapOf", self.descriptor(t.key), self.descriptor(t.value), *bound)

    @staticmethod
    def record_descriptor_class(record: m.Record) -> str:
        """``rpc.schema.StructOf`` / ``UnionOf`` / ``ExceptionOf``."""
        return f"{SCHEMA}.{_RECORD_DESCRIPTORS[record.kind]}"

    # -- values --------------------------------------------------------------------------

    def value(self, value: m.ConstValue) -> Expr:
        """A Python expression for a checked constant value."""
        if isinstance(value, bool):
            return Atom("True" if value else "False")
        if isinstance(value, (int, float)):
            return Atom(repr(value))
        if isinstance(value, str):
            return Str(value)
        if isinstance(value, bytes):
            return Atom(repr(value))
        if isinstance(value, m.EnumMember):
            member = self.names[value.enum.module].of[value.value]
            return Atom(f"{self.ref(value.enum)}.{member}")
        if isinstance(value, m.ListValue):
            items = tuple(self.value(item) for item in value.items)
            if not value.is_set:
                return Seq("[", items, "]")
            return Seq("frozenset({", items, "})") if items else Atom("frozenset()")
        pairs = tuple(Pair(flat(self.value(k)), ": ", self.value(v)) for k, v in value.pairs)
        return Seq("{", pairs, "}")

    @staticmethod
    def is_mutable(value: m.ConstValue) -> bool:
        """Lists and dicts need a ``default_factory`` in dataclasses."""
        return isinstance(value, m.MapValue) or (
            isinstance(value, m.ListValue) and not value.is_set
        )
