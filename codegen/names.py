"""Python names for everything in a checked module, and diagnostics for names that clash.

The rule (docs/idl.md, "Names in Python"): a name is used as written unless it is a Python
keyword or would shadow something the generated code needs in that scope; then `_` is appended
(until it is free). Two IDL names that end up as the same Python name are an error.
"""

from __future__ import annotations

import dataclasses
import keyword
import re
import sys
from collections.abc import Iterable

from idl import model as m
from idl.diagnostics import Diagnostic
from idl.syntax import Pos

KEYWORDS = frozenset(keyword.kwlist)
#: Names generated modules use at module level: their imports and the builtins they refer to.
MODULE_NAMES = frozenset({
    "abc", "annotations", "collections", "dataclasses", "enum", "typing", "rpc",
    "bool", "bytes", "dict", "float", "frozenset", "int", "list", "str", "super", "repr",
})  # fmt: skip
#: Attributes that generated exceptions inherit from ``rpc.ApplicationError``.
EXCEPTION_ATTRIBUTES = frozenset({
    "args", "message", "outcome", "safe_to_retry", "default_outcome", "with_traceback",
    "add_note", "idempotent", "attempts",
})  # fmt: skip
#: Attributes every ``IntEnum`` member already has.
ENUM_ATTRIBUTES = frozenset({"name", "value"})
#: Parameter names taken by generated methods themselves.
PARAMETER_NAMES = frozenset({"self", "timeout", "retry"})
#: Class attributes of generated handlers.
HANDLER_ATTRIBUTES = frozenset({"SERVICE"})


def safe_name(name: str, reserved: Iterable[str] | frozenset[str]) -> str:
    """``name`` with `_` appended while it is a keyword or reserved."""
    taken = reserved if isinstance(reserved, frozenset) else frozenset(reserved)
    while name in KEYWORDS or name in taken:
        name += "_"
    return name


def upper_snake(name: str) -> str:
    """`KeyValue` -> `KEY_VALUE`, for service spec constants."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).upper()


@dataclasses.dataclass(frozen=True)
class ServiceNames:
    """The generated names of one service version."""

    client: str
    sync_client: str
    handler: str
    spec: str
    #: Plain names (``CalcClient``...) when this is the highest of several versions.
    aliases: tuple[str, str, str] | None


@dataclasses.dataclass
class PyNames:
    """Python names of one module's definitions, members, methods and private helpers."""

    module: str
    path: str
    of: dict[object, str] = dataclasses.field(default_factory=dict)
    services: dict[object, ServiceNames] = dataclasses.field(default_factory=dict)
    #: Module-private helper variables: descriptors of records and enums, method specs.
    private: dict[object, str] = dataclasses.field(default_factory=dict)


class _Namespace:
    """One Python scope: reports a second thing that wants a name already taken.

    Things with the same IDL identity (``key``) are duplicates the checker already reported.
    """

    def __init__(self, path: str, diagnostics: list[Diagnostic]) -> None:
        self.path = path
        self.diagnostics = diagnostics
        self.owners: dict[str, tuple[str, str]] = {}

    def claim(self, python_name: str, what: str, pos: Pos, key: str | None = None) -> None:
        key = what if key is None else key
        owner = self.owners.get(python_name)
        if owner is None:
            self.owners[python_name] = (what, key)
        elif owner[1] != key:
            self.diagnostics.append(Diagnostic.at(
                self.path, pos, f"{what} would be named '{python_name}' in generated code, "
                f"which {owner[0]} already uses"))


def _module_diagnostics(module: m.Module) -> list[Diagnostic]:
    name = module.name
    problem = None
    if not name.isidentifier() or keyword.iskeyword(name):
        problem = "is not a Python identifier"
    elif name in MODULE_NAMES or name in sys.stdlib_module_names:
        problem = "would shadow a module the generated code or the standard library needs"
    if problem is None:
        return []
    return [Diagnostic(module.path, 1, 1, f"module name '{name}' (the file name) {problem}; "
                                          "rename the file")]


def assign_names(module: m.Module) -> tuple[PyNames, list[Diagnostic]]:
    """Name everything in ``module``; diagnostics for clashes and unusable module names."""
    diagnostics = _module_diagnostics(module)
    names = PyNames(module.name, module.path)
    top = _Namespace(module.path, diagnostics)
    reserved = MODULE_NAMES | frozenset(module.includes)
    for definition in module.definitions:
        if isinstance(definition, m.Service):
            continue
        python = safe_name(definition.name, reserved)
        names.of[definition] = python
        top.claim(python, f"{_kind(definition)} '{definition.name}'", definition.pos)
        if isinstance(definition, (m.Record, m.Enum)):
            names.private[definition] = f"_T_{python}"
    _name_services(module, names, top)
    module_level = reserved | frozenset(top.owners)
    for definition in module.definitions:
        if isinstance(definition, m.Record):
            _name_fields(definition, names, module_level, module.path, diagnostics)
        elif isinstance(definition, m.Enum):
            space = _Namespace(module.path, diagnostics)
            for value in definition.values:
                python = safe_name(value.name, ENUM_ATTRIBUTES)
                names.of[value] = python
                space.claim(python, f"enum value '{value.name}'", value.pos)
        elif isinstance(definition, m.Service):
            _name_methods(definition, names, module_level, module.path, diagnostics)
    return names, diagnostics


def _kind(definition: m.Definition) -> str:
    if isinstance(definition, m.Record):
        return definition.kind
    return type(definition).__name__.lower()


def _name_services(module: m.Module, names: PyNames, top: _Namespace) -> None:
    services = [d for d in module.definitions if isinstance(d, m.Service)]
    versions: dict[str, set[int]] = {}
    for service in services:
        versions.setdefault(service.name, set()).add(service.version)
    for service in services:
        several = len(versions[service.name]) > 1
        base = f"{service.name}V{service.version}" if several else service.name
        highest = several and service.version == max(versions[service.name])
        generated = ServiceNames(
            client=f"{base}Client",
            sync_client=f"{base}SyncClient",
            handler=f"{base}Handler",
            spec=f"{upper_snake(service.name)}_V{service.version}",
            aliases=(f"{service.name}Client", f"{service.name}SyncClient",
                     f"{service.name}Handler") if highest else None,
        )
        names.services[service] = generated
        what = f"service '{service.name}' version {service.version}"
        for python in (generated.client, generated.sync_client, generated.handler,
                       generated.spec, *(generated.aliases or ())):
            top.claim(python, what, service.pos, key=f"service {service.name}")
        for method in service.methods:
            names.private[method] = f"_M_{service.name}_v{service.version}_{method.name}"


def _name_fields(record: m.Record, names: PyNames, module_level: frozenset[str], path: str,
                 diagnostics: list[Diagnostic]) -> None:
    reserved = module_level | (EXCEPTION_ATTRIBUTES if record.kind == "exception" else set())
    space = _Namespace(path, diagnostics)
    for field in record.fields:
        python = safe_name(field.name, reserved)
        names.of[field] = python
        space.claim(python, f"field '{field.name}'", field.pos)


def _name_methods(service: m.Service, names: PyNames, module_level: frozenset[str], path: str,
                  diagnostics: list[Diagnostic]) -> None:
    space = _Namespace(path, diagnostics)
    for method in service.methods:
        python = safe_name(method.name, module_level | HANDLER_ATTRIBUTES)
        names.of[method] = python
        space.claim(python, f"method '{method.name}'", method.pos)
        params = _Namespace(path, diagnostics)
        for param in method.params:
            python = safe_name(param.name, module_level | PARAMETER_NAMES)
            names.of[param] = python
            params.claim(python, f"parameter '{param.name}'", param.pos)
