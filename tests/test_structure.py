"""Structural rules of the imgsent package, read from its source with ``ast`` (nothing is imported).

* no module over 400 lines;
* no import cycle between imgsent modules, counting imports made inside functions
  (imports under ``if TYPE_CHECKING:`` are annotations only and do not count);
* exactly one place in the package constructs a ``torch.utils.data.DataLoader``;
* no function of the command line (``imgsent/cli``) is over 60 lines: a command parses,
  validates, calls one library function and renders.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "imgsent"
MAX_LINES = 400
MAX_CLI_FUNCTION_LINES = 60
LONG_CLI_FUNCTIONS: frozenset[str] = frozenset({
    "imgsent.cli.classify:classify",  # its Typer signature declares 21 options; the body is about 25 lines
})
"""Known exceptions to the CLI function limit; each entry names its function as module:name."""


def _modules() -> dict[str, Path]:
    """Dotted module name -> file, for every .py file in the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _runtime_nodes(tree: ast.AST):
    """Every node except those under ``if TYPE_CHECKING:`` (their ``else`` branch still counts)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        stack.extend(ast.iter_child_nodes(node))


def _imports(name: str, path: Path) -> set[str]:
    """The imgsent modules that ``name`` imports at run time, anywhere in its body."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _runtime_nodes(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                submodule = f"{module}.{alias.name}"
                targets.add(submodule if submodule in MODULES else module)
    return {t for t in targets if t in MODULES and t != name}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _dataloader_calls(path: Path) -> list[int]:
    """Line numbers where ``path`` calls ``DataLoader(...)`` (under any import alias)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {"DataLoader"}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.update(a.asname for a in node.names if a.name == "DataLoader" and a.asname)
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
            if called in names:
                lines.append(node.lineno)
    return lines


def test_the_package_is_found() -> None:
    assert {"imgsent", "imgsent.predictor", "imgsent.hub", "imgsent.images"} <= set(MODULES)


def test_no_module_is_over_400_lines() -> None:
    sizes = {name: len(path.read_text(encoding="utf-8").splitlines()) for name, path in MODULES.items()}
    too_long = {name: n for name, n in sizes.items() if n > MAX_LINES}
    assert not too_long, f"split these modules along their seams (limit {MAX_LINES} lines): {too_long}"


def test_no_import_cycles_between_modules() -> None:
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    cycles = _cycles(graph)
    detail = "; ".join(
        " <-> ".join(c) + " (" + ", ".join(f"{a} -> {b}" for a in c for b in sorted(graph[a]) if b in c) + ")"
        for c in cycles
    )
    assert not cycles, f"import cycles, counting imports inside functions: {detail}"


def test_cycle_finder_sees_imports_inside_functions(tmp_path: Path) -> None:
    a = tmp_path / "a.py"
    a.write_text("def f():\n    from imgsent import predictor\n")
    b = tmp_path / "b.py"
    b.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from imgsent.predictor import Predictor\n")
    assert _imports("imgsent.x", a) == {"imgsent.predictor"}
    assert _imports("imgsent.y", b) == set()
    assert _cycles({"p": {"q"}, "q": {"r"}, "r": {"p"}, "s": {"p"}}) == [["p", "q", "r"]]


def test_exactly_one_place_constructs_a_dataloader() -> None:
    calls = {
        f"{name}:{line}" for name, path in MODULES.items() for line in _dataloader_calls(path)
    }
    assert len(calls) == 1, f"DataLoader is constructed in {sorted(calls) or 'no module'}; build it in one place"


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_the_hub_never_imports_the_converters() -> None:
    """Downloads live in imgsent.hub; converters sit above it and are handed in, never imported by it."""
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    hub = [m for m in MODULES if m == "imgsent.hub" or m.startswith("imgsent.hub.")]
    paths = {
        f"{start} -> {target}"
        for start in hub
        for target in _reachable(graph, start)
        if target == "imgsent.convert" or target.startswith("imgsent.convert.")
    }
    assert not paths, f"imgsent.hub reaches imgsent.convert: {sorted(paths)}"


def test_reachability_sees_indirect_imports() -> None:
    assert _reachable({"a": {"b"}, "b": {"c"}, "c": set()}, "a") == {"b", "c"}


def _long_functions(path: Path, limit: int) -> dict[str, int]:
    """Functions (methods and nested ones included) longer than ``limit`` lines, by name, decorators excluded."""
    return {
        node.name: node.end_lineno - node.lineno + 1
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.end_lineno - node.lineno + 1 > limit
    }


def test_cli_functions_are_short() -> None:
    long = {
        f"{name}:{function}": n
        for name, path in MODULES.items() if name.startswith("imgsent.cli.")
        for function, n in _long_functions(path, MAX_CLI_FUNCTION_LINES).items()
    }
    unexpected = {k: n for k, n in long.items() if k not in LONG_CLI_FUNCTIONS}
    assert not unexpected, (
        f"CLI functions over {MAX_CLI_FUNCTION_LINES} lines; move the logic into the library: {unexpected}"
    )
    stale = sorted(LONG_CLI_FUNCTIONS - set(long))
    assert not stale, f"these functions are short now; remove them from LONG_CLI_FUNCTIONS: {stale}"


def test_function_length_check_counts_lines(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def short():\n    return 1\n\n\ndef long():\n" + "    x = 1\n" * 70)
    assert _long_functions(source, MAX_CLI_FUNCTION_LINES) == {"long": 71}
