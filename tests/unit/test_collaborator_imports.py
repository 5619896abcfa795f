"""Who imports whom, counting imports made only for type checking (``if TYPE_CHECKING:``) and
inside functions: the contract names nothing of the runtime and its modules form no cycle, and
the command and Matrix-side modules take their collaborators, never the Bridge. (The contract's
command event used to be typed ``Bridge | BridgeAPI`` with the database's Portal; the processor,
the router, the media links and the status reporter took the whole bridge.)"""

from __future__ import annotations

import ast
from pathlib import Path

import bridgekit

ROOT = Path(bridgekit.__file__).parent
#: Modules that must not import bridgekit.bridge, even for annotations.
COLLABORATOR_TAKERS = [
    *sorted((ROOT / "commands").glob("*.py")),
    ROOT / "matrix" / "router.py",
    ROOT / "matrix" / "media.py",
    ROOT / "matrix" / "message_status.py",
]


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every bridgekit module ``path`` imports, wherever the import statement is."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("bridgekit"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            if not module.startswith("bridgekit"):
                continue
            # ``from . import x`` or ``from .pkg import module``: count the submodule.
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                exists = (ROOT.parent / Path(*sub.split("."))).with_suffix(".py").exists()
                found.add(sub if exists else module)
    return found


def test_imports_of_sees_type_checking_and_relative_imports() -> None:
    found = imports_of(ROOT / "contract" / "commands.py")
    assert "bridgekit.contract.connector" in found


def test_the_contract_names_nothing_of_the_runtime() -> None:
    offences = {
        (_module_name(path), module)
        for path in sorted((ROOT / "contract").glob("*.py"))
        for module in imports_of(path)
        if not module.startswith("bridgekit.contract")
    }
    assert offences == set()


def test_the_contract_modules_import_each_other_without_a_cycle() -> None:
    graph = {
        _module_name(p): {m for m in imports_of(p) if m.startswith("bridgekit.contract.")}
        for p in sorted((ROOT / "contract").glob("*.py"))
    }
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        assert module not in path, " -> ".join([*path, module])
        if module in done:
            return
        for dep in sorted(graph.get(module, ())):
            visit(dep, [*path, module])
        done.add(module)

    for module in graph:
        visit(module, [])


def test_the_command_and_matrix_side_modules_do_not_import_the_bridge() -> None:
    offences = [_module_name(p) for p in COLLABORATOR_TAKERS if "bridgekit.bridge" in imports_of(p)]
    assert offences == []


def _runtime_graph() -> dict[str, set[str]]:
    return {
        _module_name(p): {m for m in imports_of(p) if m != _module_name(p)}
        for p in sorted(ROOT.rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def test_only_the_entry_points_import_the_bridge() -> None:
    """Services take their collaborators: the Bridge is built by the command line (and the
    tests), and nothing it builds names it (the whole runtime once did, for annotations)."""
    importers = {m for m, deps in _runtime_graph().items() if "bridgekit.bridge" in deps}
    assert importers <= {"bridgekit.cli", "bridgekit.__main__"}


def test_the_runtime_modules_import_each_other_without_a_cycle() -> None:
    """No cycle among all of bridgekit's modules, type-checking and in-function imports
    counted (there was one of 46 modules through bridge.py)."""
    graph = _runtime_graph()
    done: set[str] = set()

    def visit(module: str, path: list[str]) -> None:
        assert module not in path, " -> ".join([*path[path.index(module) :], module])
        if module in done:
            return
        for dep in sorted(graph.get(module, ())):
            visit(dep, [*path, module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
