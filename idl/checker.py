"""The checker: resolves names across includes and reports every problem it finds.

Each file is checked in two passes (declare every name, then resolve and check every
definition), included files before their includers. Program-wide checks (hashability of map
keys and set elements, records that can never be constructed) run last. Nothing is generated
unless the whole program is free of diagnostics.
"""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from idl import model as m
from idl import syntax as s
from idl.diagnostics import Diagnostic, DiagnosticSink
from idl.loader import LoadResult, Reader, SourceFile, load, module_name, read_utf8
from idl.records import check_constructible, check_hashable
from idl.values import ConstRef, ValueChecker, type_name

#: IDL spellings of the base types and their canonical names (Thrift aliases included).
BASE_TYPES = {
    "bool": "bool", "i8": "i8", "byte": "i8", "i16": "i16", "i32": "i32", "i64": "i64",
    "u8": "u8", "u16": "u16", "u32": "u32", "u64": "u64", "f32": "f32", "f64": "f64",
    "double": "f64", "float": "f32", "string": "string", "bytes": "bytes", "binary": "bytes",
}  # fmt: skip
#: Field and parameter numbers are positive 16-bit values, as Thrift field ids.
FIELD_NUMBER_MAX = 32767
#: Explicit method numbers; numbers derived from names lie above this range.
METHOD_NUMBER_MAX = 0xFFFF
AUTO_METHOD_BASE = 0x10000
AUTO_METHOD_SPAN = 0x7FFF0000
#: Service versions travel as u32 (docs/protocol.md).
VERSION_MAX = 2**32 - 1
#: Enum values are i32, as in Thrift.
ENUM_MIN, ENUM_MAX = -(2**31), 2**31 - 1

#: Stands in for a type that failed to resolve, so one mistake gives one diagnostic.
ERROR_TYPE = m.BaseType("?")


def auto_method_number(name: str) -> int:
    """The number of a method declared without one: stable under reordering (docs/idl.md)."""
    return AUTO_METHOD_BASE + zlib.crc32(name.encode("utf-8")) % AUTO_METHOD_SPAN


@dataclasses.dataclass
class CheckResult:
    """Checked modules (included files first) and every diagnostic found."""

    modules: list[m.Module]
    diagnostics: list[Diagnostic]
    sources: dict[str, str]
    roots: list[str]

    @property
    def ok(self) -> bool:
        """True when there are no diagnostics."""
        return not self.diagnostics


@dataclasses.dataclass
class Scope:
    """What one file exports to its includers: its types and constants by name."""

    symbols: dict[str, Any] = dataclasses.field(default_factory=dict)
    consts: dict[str, ConstRef] = dataclasses.field(default_factory=dict)


class _ModuleChecker:
    """Checks one file; ``scopes`` holds the exports of the files it includes, by stem."""

    def __init__(self, source: SourceFile, scopes: dict[str, Scope], broken: set[str]) -> None:
        self.source = source
        self.sink = DiagnosticSink(source.path)
        self.module = m.Module(module_name(source.path), source.path)
        self.scopes = scopes
        self.broken = broken  # stems of includes that failed to load: stay quiet about them
        self.scope = Scope()
        self.nodes: dict[str, s.Definition] = {}  # name -> the node that owns it
        self.services: dict[int, m.Service] = {}  # id(node) -> checked service
        self.hash_uses: list[tuple[m.Type, s.Pos, str]] = []
        self.values = ValueChecker(self.sink, self.resolve_value_name)

    # -- pass 1: declare -----------------------------------------------------------------

    def declare(self) -> None:
        """Give every definition a model object, so later definitions can be referred to."""
        services: dict[tuple[str, int], s.Pos] = {}
        service_names: set[str] = set()
        for node in self.source.document.definitions:
            if isinstance(node, s.Service):
                key = (node.name, node.version)
                if key in services:
                    self.sink.error(node.pos, f"service '{node.name}' version {node.version} "
                                              f"is already defined at line {services[key].line}")
                elif node.name not in service_names and self._name_free(node):
                    service_names.add(node.name)
                services.setdefault(key, node.pos)
            elif node.name not in service_names and self._name_free(node):
                self.nodes[node.name] = node
                self.scope.symbols[node.name] = self._shell(node)

    def _name_free(self, node: s.Definition) -> bool:
        name, pos = node.name, node.pos
        if name in BASE_TYPES or name in ("void", "list", "set", "map"):
            self.sink.error(pos, f"'{name}' is a built-in type name")
        elif name in self.scopes or name in self.broken:
            self.sink.error(pos, f"'{name}' is the name of an included file")
        elif name in self.nodes:
            self.sink.error(pos, f"'{name}' is already defined at line "
                                 f"{self.nodes[name].pos.line}")
        else:
            return True
        return False

    def _shell(self, node: s.Definition) -> Any:
        stem = self.module.name
        if isinstance(node, s.Enum):
            return m.Enum(node.name, stem, doc=node.doc, pos=node.pos)
        if isinstance(node, s.Record):
            return m.Record(node.kind, node.name, stem, doc=node.doc, pos=node.pos)
        if isinstance(node, s.Typedef):
            return m.Typedef(node.name, stem, ERROR_TYPE, doc=node.doc, pos=node.pos)
        assert isinstance(node, s.Const)
        const = m.Const(node.name, stem, ERROR_TYPE, False, doc=node.doc, pos=node.pos)
        self.scope.consts[node.name] = ConstRef(const, node.value, self.resolve_value_name)
        return const

    # -- pass 2: resolve and check -------------------------------------------------------

    def check(self) -> m.Module:
        """Resolve and check every definition; returns the module's model."""
        # Enums and typedefs first: constant values and defaults refer to them.
        order = {s.Enum: 0, s.Typedef: 1, s.Const: 2, s.Record: 3, s.Service: 4}
        checks: dict[type, Callable[[Any], None]] = {
            s.Enum: self._enum, s.Typedef: self._typedef, s.Const: self._const,
            s.Record: self._record, s.Service: self._service,
        }  # fmt: skip
        definitions = self.source.document.definitions
        for node in sorted(definitions, key=lambda d: order[type(d)]):
            checks[type(node)](node)
        for node in definitions:
            if id(node) in self.services:
                self.module.definitions.append(self.services[id(node)])
            elif self.nodes.get(node.name) is node:
                self.module.definitions.append(self.scope.symbols[node.name])
        self.module.includes = sorted(self.scopes)
        return self.module

    def _enum(self, node: s.Enum) -> None:
        enum = self._own(node, m.Enum)
        if enum is None:
            return
        names: dict[str, s.Pos] = {}
        values: dict[int, str] = {}
        next_value = 0
        for item in node.items:
            value = item.value.value if item.value is not None else next_value
            where = item.value.pos if item.value is not None else item.pos
            if item.name in names:
                self.sink.error(item.pos, f"duplicate enum value name '{item.name}'")
            elif not ENUM_MIN <= value <= ENUM_MAX:
                self.sink.error(where, f"enum value {value} is out of range for i32")
            elif value in values:
                self.sink.error(where, f"enum value {value} is already used by "
                                       f"'{values[value]}'")
            else:
                enum.values.append(m.EnumValue(item.name, value, item.doc, item.pos))
                values[value] = item.name
            names.setdefault(item.name, item.pos)
            next_value = value + 1
        if not node.items:
            self.sink.error(node.pos, f"enum '{node.name}' has no values")

    def _typedef(self, node: s.Typedef) -> None:
        typedef = self._own(node, m.Typedef)
        if typedef is not None and typedef.target is ERROR_TYPE:
            self._resolve_typedef(typedef, node, [])

    def _resolve_typedef(self, typedef: m.Typedef, node: s.Typedef, active: list[str]) -> None:
        if node.name in active:
            self.sink.error(node.pos, f"typedef '{node.name}' refers to itself")
            return
        active.append(node.name)
        typedef.target = self.resolve_type(node.type, active)
        active.pop()

    def _const(self, node: s.Const) -> None:
        const = self._own(node, m.Const)
        if const is None:
            return
        const.type = self.resolve_type(node.type)
        value = self.values.check_const(const, node.value)
        if value is not None:
            const.value = value

    def _record(self, node: s.Record) -> None:
        record = self._own(node, m.Record)
        if record is None:
            return
        record.fields = self._fields(node.fields, record.kind)

    def _fields(self, nodes: Sequence[s.Field], kind: str) -> list[m.Field]:
        """Check fields of a record (``kind``) or parameters of a method (``"method"``)."""
        what = "parameter" if kind == "method" else "field"
        names: set[str] = set()
        numbers: dict[int, str] = {}
        fields = []
        for node in nodes:
            if node.name in names:
                self.sink.error(node.pos, f"duplicate {what} '{node.name}'")
            if not 1 <= node.number <= FIELD_NUMBER_MAX:
                self.sink.error(node.number_pos, f"{what} number {node.number} is out of "
                                                 f"range (1..{FIELD_NUMBER_MAX})")
            elif node.number in numbers:
                self.sink.error(node.number_pos, f"{what} number {node.number} is already "
                                                 f"used by '{numbers[node.number]}'")
            names.add(node.name)
            numbers.setdefault(node.number, node.name)
            fields.append(self._field(node, kind))
        return fields

    def _field(self, node: s.Field, kind: str) -> m.Field:
        field_type = self.resolve_type(node.type)
        optional = node.requiredness == "optional" or kind == "union"
        if kind == "union" and node.requiredness == "required":
            self.sink.error(node.pos, "union members cannot be required")
        default = None
        if node.default is not None:
            if kind == "union":
                self.sink.error(node.default.pos, "union members cannot have default values")
            elif kind == "method":
                self.sink.error(node.default.pos, "parameters cannot have default values")
            else:
                default = self.values.check(field_type, node.default)
        return m.Field(node.number, node.name, field_type, optional, default, node.doc, node.pos)

    def _service(self, node: s.Service) -> None:
        if not 1 <= node.version <= VERSION_MAX:
            self.sink.error(node.version_pos, f"service version {node.version} is out of "
                                              f"range (1..{VERSION_MAX})")
        service = m.Service(node.name, node.version, [], node.doc, node.pos)
        names: set[str] = set()
        numbers: dict[int, str] = {}
        for method_node in node.methods:
            method = self._method(method_node)
            where = method_node.number_pos or method_node.pos
            if method.name in names:
                self.sink.error(method_node.pos, f"duplicate method '{method.name}'")
            elif method.number in numbers:
                derived = " (derived from its name)" if method_node.number is None else ""
                self.sink.error(where, f"method number {method.number}{derived} is already "
                                       f"used by '{numbers[method.number]}'")
            names.add(method.name)
            numbers.setdefault(method.number, method.name)
            service.methods.append(method)
        self.services[id(node)] = service

    def _method(self, node: s.Method) -> m.Method:
        number = node.number if node.number is not None else auto_method_number(node.name)
        if node.number is not None and not 1 <= node.number <= METHOD_NUMBER_MAX:
            assert node.number_pos is not None
            self.sink.error(node.number_pos, f"method number {node.number} is out of range "
                                             f"(1..{METHOD_NUMBER_MAX})")
        result = self.resolve_type(node.result) if node.result is not None else None
        if node.oneway and node.result is not None:
            self.sink.error(node.result.pos, f"oneway method '{node.name}' cannot return a "
                                             "value; declare it 'oneway void'")
        if node.oneway and node.throws:
            self.sink.error(node.throws[0].pos, f"oneway method '{node.name}' cannot declare "
                                                "exceptions (no reply is sent)")
        return m.Method(node.name, number, self._fields(node.params, "method"), result,
                        self._throws(node.throws), node.oneway, node.idempotent, node.doc,
                        node.pos)

    def _throws(self, nodes: Sequence[s.Throw]) -> list[m.Throw]:
        throws: list[m.Throw] = []
        numbers: dict[int, str] = {}
        for index, node in enumerate(nodes, start=1):
            number = node.number if node.number is not None else index
            resolved = self.resolve_type(node.type)
            target = m.resolve_alias(resolved)
            if resolved is ERROR_TYPE:
                continue
            if not isinstance(target, m.Record) or target.kind != "exception":
                self.sink.error(node.pos, f"'{type_name(resolved)}' is not an exception")
            elif not 1 <= number <= FIELD_NUMBER_MAX:
                self.sink.error(node.pos, f"exception number {number} is out of range "
                                          f"(1..{FIELD_NUMBER_MAX})")
            elif number in numbers:
                self.sink.error(node.pos, f"exception number {number} is already used by "
                                          f"'{numbers[number]}'")
            elif any(t.record is target for t in throws):
                self.sink.error(node.pos, f"exception '{target.name}' is declared twice")
            else:
                numbers[number] = target.name
                throws.append(m.Throw(number, node.name or target.name, target))
        return throws

    def _own(self, node: s.Definition, kind: type) -> Any:
        """This file's model object for ``node`` (None if its name was a duplicate)."""
        return self.scope.symbols[node.name] if self.nodes.get(node.name) is node else None

    # -- name resolution -----------------------------------------------------------------

    def resolve_type(self, ref: s.TypeRef, active: list[str] | None = None) -> m.Type:
        """Resolve a type reference; reports problems and returns ERROR_TYPE for them."""
        if isinstance(ref, s.NamedType):
            return self._named_type(ref, active if active is not None else [])
        if not self._bound_ok(ref.bound, ref.pos):
            return ERROR_TYPE
        if isinstance(ref, s.ListType):
            return m.ListType(self.resolve_type(ref.elem, active), ref.bound)
        if isinstance(ref, s.SetType):
            elem = self.resolve_type(ref.elem, active)
            self.hash_uses.append((elem, ref.elem.pos, "set elements"))
            return m.SetType(elem, ref.bound)
        key = self.resolve_type(ref.key, active)
        self.hash_uses.append((key, ref.key.pos, "map keys"))
        return m.MapType(key, self.resolve_type(ref.value, active), ref.bound)

    def _bound_ok(self, bound: int | None, pos: s.Pos) -> bool:
        if bound is not None and bound < 1:
            self.sink.error(pos, "a length bound must be at least 1")
            return False
        return True

    def _named_type(self, ref: s.NamedType, active: list[str]) -> m.Type:
        if ref.name in BASE_TYPES:
            canonical = BASE_TYPES[ref.name]
            if ref.bound is not None and canonical not in ("string", "bytes"):
                self.sink.error(ref.pos, f"only string and bytes take a length bound, "
                                         f"not {ref.name}")
                return ERROR_TYPE
            return m.BaseType(canonical, ref.bound) if self._bound_ok(ref.bound, ref.pos) \
                else ERROR_TYPE
        if ref.name == "void":
            self.sink.error(ref.pos, "'void' can only be the result of a method")
            return ERROR_TYPE
        found = self._lookup(ref.name, ref.pos, "type")
        if found is None:
            return ERROR_TYPE
        if isinstance(found, (m.Const,)):
            self.sink.error(ref.pos, f"'{ref.name}' is a constant, not a type")
            return ERROR_TYPE
        if ref.bound is not None:
            self.sink.error(ref.pos, f"only string and bytes take a length bound, "
                                     f"not {ref.name}")
            return ERROR_TYPE
        node = self.nodes.get(ref.name)
        if isinstance(found, m.Typedef) and found.target is ERROR_TYPE and \
                isinstance(node, s.Typedef):
            self._resolve_typedef(found, node, active)
        return found  # type: ignore[no-any-return]

    def _lookup(self, name: str, pos: s.Pos, what: str) -> Any:
        """Find a (possibly include-qualified) name in scope; reports and returns None."""
        stem, _, rest = name.rpartition(".")
        if not stem:
            if name in self.scope.symbols:
                return self.scope.symbols[name]
            self.sink.error(pos, f"unknown {what} '{name}'")
            return None
        if stem in self.broken:
            return None
        if stem not in self.scopes:
            self.sink.error(pos, f"unknown {what} '{name}': '{stem}' is not an included file")
            return None
        if rest not in self.scopes[stem].symbols:
            self.sink.error(pos, f"unknown {what} '{name}': '{stem}' has no '{rest}'")
            return None
        return self.scopes[stem].symbols[rest]

    def resolve_value_name(self, value: s.NameValue) -> ConstRef | m.EnumMember | str:
        """Resolve a name used as a value: a constant, or `Enum.VALUE` (maybe qualified)."""
        parts = value.name.split(".")
        scope = self.scope
        if len(parts) > 1 and parts[0] in self.broken:
            return f"'{value.name}' comes from a file that failed to load"
        if len(parts) > 1 and parts[0] in self.scopes:
            scope, parts = self.scopes[parts[0]], parts[1:]
        if len(parts) == 1 and parts[0] in scope.consts:
            return scope.consts[parts[0]]
        found = scope.symbols.get(parts[0])
        if len(parts) == 2 and isinstance(found, m.Enum):
            member = next((v for v in found.values if v.name == parts[1]), None)
            if member is None:
                return f"'{parts[1]}' is not a value of enum '{found.name}'"
            return m.EnumMember(found, member)
        return f"unknown constant '{value.name}'"


def check(loaded: LoadResult) -> CheckResult:
    """Check every loaded file (included files first) and the program as a whole."""
    diagnostics = list(loaded.diagnostics)
    scopes: dict[str, Scope] = {}  # file key -> exports
    modules: list[m.Module] = []
    hash_uses: list[tuple[str, m.Type, s.Pos, str]] = []
    for key, source in loaded.files.items():
        included = {module_name(loaded.files[k].path): scopes[k]
                    for k in source.includes.values() if k in scopes}
        broken = {module_name(i.path) for i in source.document.includes
                  if i.path not in source.includes}
        checker = _ModuleChecker(source, included, broken)
        try:
            checker.declare()
            modules.append(checker.check())
        except RecursionError:
            checker.sink.error(s.Pos(1, 1), "the file is nested too deeply to check")
        scopes[key] = checker.scope
        diagnostics.extend(checker.sink.items)
        hash_uses.extend((source.path, *use) for use in checker.hash_uses)
    diagnostics.extend(check_hashable(hash_uses))
    diagnostics.extend(check_constructible(modules))
    return CheckResult(modules, sorted(set(diagnostics)), loaded.sources, loaded.roots)


def check_files(paths: Sequence[str], read: Reader = read_utf8) -> CheckResult:
    """Load and check files and everything they include."""
    return check(load(paths, read))
