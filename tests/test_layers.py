"""The runtime's layers, as its packages say: imports only go down, and the sans-I/O cores
import no event loop and no socket. Read from the sources (``ast``), so that a violation fails
here whether or not the module is ever imported in a test."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RPC = Path(__file__).resolve().parent.parent / "rpc"

#: Rank of each part of ``rpc``: a module may import its own part and parts of lower rank.
#: ``calls`` and ``drivers`` share a rank but must not import each other.
RANKS = {
    "rpc.errors": 0,
    "rpc.transport": 1,
    "rpc.calls": 2,
    "rpc.drivers": 2,
    "rpc": 3,  # the runtime: clients, server, execution, the package itself
    "rpc.testing": 4,
}
SANS_IO = ("rpc.transport", "rpc.calls")
IO_MODULES = {"trio", "asyncio", "socket", "select", "selectors", "uvloop"}


def part_of(module: str) -> str:
    """The part of ``rpc`` a dotted module name belongs to."""
    for part in sorted(RANKS, key=len, reverse=True):
        if module == part or module.startswith(part + "."):
            return part
    raise AssertionError(f"{module} is not in rpc")


def module_name(path: Path) -> str:
    relative = path.relative_to(RPC.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth (inside functions too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and not node.level:
            found.add(node.module)
            if node.module in RANKS:  # ``from rpc.x import y``: y may be a module of x
                found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


MODULES = sorted(RPC.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(RPC.parent)))
def test_imports_only_go_down(path: Path) -> None:
    own = part_of(module_name(path))
    for imported in imports_of(path):
        if imported != "rpc" and not imported.startswith("rpc."):
            continue
        if imported == "rpc" or (part_of(imported) == "rpc" and imported.count(".") == 1
                                 and not (RPC / f"{imported.split('.')[1]}.py").exists()
                                 and not (RPC / imported.split(".")[1]).is_dir()):
            continue  # ``from rpc import <name>``: a re-exported name, checked by its module
        theirs = part_of(imported)
        if theirs == own:
            continue
        assert RANKS[theirs] < RANKS[own], f"{module_name(path)} imports {imported} (up or across)"


@pytest.mark.parametrize(
    "path",
    [p for p in MODULES if part_of(module_name(p)) in SANS_IO],
    ids=lambda p: str(p.relative_to(RPC.parent)),
)
def test_sans_io_cores_import_no_event_loop_and_no_socket(path: Path) -> None:
    roots = {imported.split(".")[0] for imported in imports_of(path)}
    assert not roots & IO_MODULES, f"{module_name(path)} imports {sorted(roots & IO_MODULES)}"


def test_the_layer_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("import trio\nfrom rpc.drivers import _trio\nfrom rpc.calls.schema import X\n")
    assert {"trio", "rpc.drivers", "rpc.drivers._trio", "rpc.calls.schema"} <= imports_of(bad)
    assert part_of("rpc.drivers._trio") == "rpc.drivers"
    assert RANKS[part_of("rpc.drivers._trio")] > RANKS[part_of("rpc.transport.wire")]
