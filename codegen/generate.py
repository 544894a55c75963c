"""From checked IDL to Python sources: name everything, then write one module per file."""

from __future__ import annotations

import dataclasses

from codegen.emit import generate_module
from codegen.names import PyNames, assign_names
from idl.checker import CheckResult
from idl.diagnostics import Diagnostic


@dataclasses.dataclass
class Generated:
    """Generated sources by module name, or the diagnostics that prevented generating them."""

    sources: dict[str, str]
    diagnostics: list[Diagnostic]


def generate(checked: CheckResult) -> Generated:
    """Generate every checked module (included files too), unless there are diagnostics.

    Naming problems (clashes, unusable module names) are diagnostics like the checker's.
    """
    diagnostics = list(checked.diagnostics)
    names: dict[str, PyNames] = {}
    for module in checked.modules:
        if module.name in names:
            diagnostics.append(Diagnostic(module.path, 1, 1, f"'{names[module.name].path}' "
                                          f"also generates module '{module.name}'"))
            continue
        module_names, problems = assign_names(module)
        names[module.name] = module_names
        diagnostics.extend(problems)
    if diagnostics:
        return Generated({}, sorted(set(diagnostics)))
    sources = {module.name: generate_module(module, names) for module in checked.modules}
    return Generated(sources, [])
