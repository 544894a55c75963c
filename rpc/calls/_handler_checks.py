"""Checks of a handler against its service spec, made when a server's service table is built.

A handler method the server could never call (missing, a plain ``def``, or parameters that do
not fit the IDL's) would otherwise be found only by its callers, each call failing with
``REMOTE_ERROR``. The server calls ``fn(*args)`` with the IDL's parameters in order, so a
method fits when it takes exactly those positionally, under the same names; further
parameters need defaults; ``*args`` and ``**kwargs`` are welcome.

The expected Python names are those of the generated handler's abstract method (they may be
escaped, ``class`` -> ``class_``); a handler that is not a generated subclass is compared
with the IDL names, allowing the trailing ``_`` rpcgen appends to escape a name.
"""

from __future__ import annotations

import functools
import inspect
import types
from collections.abc import Sequence
from typing import Any

from rpc.calls.service import MethodSpec, ServiceSpec

_POSITIONAL = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)


def handler_problems(handler: object, spec: ServiceSpec) -> list[str]:
    """Every problem of ``handler``'s methods, one line each, naming service and method."""
    where = f"{spec.name} version {spec.version}: {type(handler).__name__}"
    problems = []
    for method in spec.methods:
        for problem in _method_problems(handler, spec, method):
            problems.append(f"{where}.{method.python_name}(): {problem}")
    return problems


def is_coroutine_callable(fn: object) -> bool:
    """True when calling ``fn`` makes a coroutine by construction.

    ``async def`` functions and methods, ``functools.partial`` of them, functions marked with
    ``inspect.markcoroutinefunction`` (Python 3.12), and objects whose ``__call__`` is one.
    """
    while isinstance(fn, functools.partial):
        fn = fn.func
    if inspect.iscoroutinefunction(fn):
        return True
    if inspect.isfunction(fn) or inspect.ismethod(fn) or inspect.isbuiltin(fn):
        return False
    return inspect.iscoroutinefunction(inspect.getattr_static(type(fn), "__call__", None))


def _method_problems(handler: object, spec: ServiceSpec, method: MethodSpec[Any]) -> list[str]:
    fn = getattr(handler, method.python_name, None)
    if not callable(fn):
        return ["is missing"]
    if getattr(fn, "__isabstractmethod__", False):
        return ["is abstract (not implemented)"]
    problems = []
    if not is_coroutine_callable(fn):
        problems.append("is not a coroutine function (write it as async def)")
    generated = _generated_names(type(handler), spec, method.python_name)
    if generated is None:
        expected, exact = tuple(p.name for p in method.params), False
    else:
        expected, exact = generated, True
    return problems + _signature_problems(fn, expected, exact=exact)


def _generated_names(cls: type, spec: ServiceSpec, name: str) -> tuple[str, ...] | None:
    """The parameter names of the generated abstract method, if ``cls`` derives from it."""
    for base in cls.__mro__:
        if base.__dict__.get("SERVICE") is not spec:
            continue
        abstract = base.__dict__.get(name)
        if isinstance(abstract, types.FunctionType) and getattr(
            abstract, "__isabstractmethod__", False
        ):
            return tuple(inspect.signature(abstract).parameters)[1:]  # without self
    return None


def _signature_problems(fn: object, expected: Sequence[str], *, exact: bool) -> list[str]:
    try:
        signature = inspect.signature(fn)  # type: ignore[arg-type]  # callable, checked above
    except (TypeError, ValueError):  # no signature to read (a builtin): nothing to judge
        return []
    params = list(signature.parameters.values())
    positional = [p for p in params if p.kind in _POSITIONAL]
    catch_all = any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in params)
    problems = []
    for index, (param, want) in enumerate(zip(positional, expected), 1):
        if not _same_name(param.name, want, exact=exact):
            problems.append(f"parameter {index} is {param.name!r}, the IDL's is {want!r}")
    if len(positional) < len(expected) and not catch_all:
        missing = ", ".join(repr(name) for name in expected[len(positional):])
        problems.append(f"takes {len(positional)} of the IDL's {len(expected)} parameters "
                        f"(missing {missing})")
    for param in positional[len(expected):]:
        if param.default is inspect.Parameter.empty:
            problems.append(f"extra parameter {param.name!r} has no default")
    for param in params:
        if param.kind is inspect.Parameter.KEYWORD_ONLY and param.default is param.empty:
            problems.append(f"keyword-only parameter {param.name!r} has no default")
    return problems


def _same_name(got: str, want: str, *, exact: bool) -> bool:
    if exact or got == want:
        return got == want
    # The IDL name, escaped by rpcgen with trailing underscores (docs/idl.md, "Names in Python").
    return got.startswith(want) and got[len(want):] == "_" * (len(got) - len(want))
