"""The import table of docs/architecture.md, enforced: every import of a bidl module (at
the top of a file or inside a function) must be one the table allows, and no two modules
may import each other through any chain."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "bidl"
DOC = ROOT / "docs" / "architecture.md"


def layer_table() -> dict[str, set[str]]:
    """The table between the markers in docs/architecture.md: ``| `unit` | `a`, `b` |``."""
    text = DOC.read_text()
    block = text.split("<!-- import-table:start -->")[1].split("<!-- import-table:end -->")[0]
    table: dict[str, set[str]] = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].startswith("`"):
            continue
        unit = cells[0].strip("`")
        table[unit] = set(re.findall(r"`([\w.]+)`", cells[1]))
    return table


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def unit_of(module: str) -> str:
    """The table's unit of a module: ``bidl.datasets.events.formats`` -> ``datasets``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "bidl"


def bidl_imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported bidl module, line, inside a function) for every import in ``path``."""
    tree = ast.parse(path.read_text())
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = []
    nested = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            nested |= {id(n) for n in ast.walk(node) if n is not node}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            if name == "bidl" or name.startswith("bidl."):
                found.append((name, node.lineno, id(node) in nested))
    return found


def existing_module(name: str, modules: set[str]) -> str | None:
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_the_table_names_every_unit_of_the_package():
    table = layer_table()
    units = {unit_of(m) for m in all_modules() if m != "bidl"}
    assert units <= set(table), f"units missing from docs/architecture.md: {units - set(table)}"


def test_every_import_is_one_the_table_allows():
    table = layer_table()
    modules = all_modules()
    wrong = []
    for module, path in modules.items():
        unit = unit_of(module)
        for name, line, _ in bidl_imports(path):
            target = existing_module(name, set(modules))
            if target is None or target == "bidl":
                continue
            other = unit_of(target)
            if other != unit and other not in table.get(unit, set()):
                wrong.append(f"{path.relative_to(ROOT)}:{line} {unit} -> {other} ({target})")
    assert not wrong, "imports the table in docs/architecture.md forbids:\n" + "\n".join(wrong)


def test_no_import_cycles_between_modules():
    modules = all_modules()
    graph = {
        m: {
            t
            for name, _, _ in bidl_imports(p)
            if (t := existing_module(name, set(modules))) and t != m and t != "bidl"
        }
        for m, p in modules.items()
    }
    # a package's __init__ re-exporting its own modules is not a cycle of concepts
    for m in graph:
        graph[m] = {t for t in graph[m] if not (m.startswith(t + ".") and t in modules)}
    cycles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


# Imports of bidl modules inside functions, each with its reason. Everything else imports at
# the top of the file, so the table above sees it and a cycle cannot hide.
DEFERRED = {
    "bidl/cli.py": "the command starts fast: a subcommand's module loads only when it runs",
    "bidl/__init__.py": "`import bidl` stays light: the public API loads on first use",
    "bidl/registry.py": "registries import the packages that fill them on first use",
    "bidl/neurons/kernels/__init__.py": "Triton is optional: its kernels load on the first CUDA call",
    "bidl/commands/": "`bidl --help` stays fast: a subcommand's heavy modules load when it runs",
}


def test_imports_inside_functions_are_only_the_documented_ones():
    inside = []
    for path in all_modules().values():
        rel = str(path.relative_to(PACKAGE.parent))
        if any(rel == key or (key.endswith("/") and rel.startswith(key)) for key in DEFERRED):
            continue
        inside += sorted(
            {f"{rel}:{line}" for _, line, nested in bidl_imports(path) if nested},
            key=lambda entry: int(entry.rpartition(":")[2]),
        )
    assert not inside, "bidl imports inside functions:\n" + "\n".join(inside)
