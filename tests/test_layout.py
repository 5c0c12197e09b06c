"""The package's layout: imports point one way, and no module reaches into another's privates.

Both checks read the source with `ast` (nothing is imported, so no TensorFlow), and count every
import statement wherever it is: at module level, under `if TYPE_CHECKING:`, or inside a
function (a function-level import hides a cycle from Python, not from the layout).
"""

from __future__ import annotations

import ast
import pathlib

PACKAGE = "asc_keras"
ROOT = pathlib.Path(__file__).resolve().parent.parent / PACKAGE


def _modules(root: pathlib.Path = ROOT) -> dict[str, pathlib.Path]:
    """`{dotted module name: source file}` of every module of the package under `root`."""
    out = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: pathlib.Path, modules) -> list[tuple[str, int, str | None]]:
    """`(imported module, line, imported name or None)` for each package import in `path`.

    `from P import n` imports module `P.n` when that is a module of the package, else name `n`
    of module `P`. Relative imports are resolved against `name`.
    """
    is_package = path.name == "__init__.py"
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(a.name, node.lineno, None) for a in node.names if a.name in modules]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join(anchor + ([base] if base else []))
            if base != PACKAGE and not base.startswith(PACKAGE + "."):
                continue
            for a in node.names:
                sub = f"{base}.{a.name}"
                if sub in modules:
                    out.append((sub, node.lineno, None))
                else:
                    out.append((base, node.lineno, a.name))
    return out


def import_graph(root: pathlib.Path = ROOT) -> dict[str, dict[str, int]]:
    """`{module: {module it imports: first line}}` over the package (self-imports left out)."""
    modules = _modules(root)
    graph = {}
    for name, path in modules.items():
        edges = {}
        for target, line, _ in _imports(name, path, modules):
            if target != name and target in modules:
                edges.setdefault(target, line)
        graph[name] = edges
    return graph


def import_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle `[a, b, ..., a]` per strongly connected group of modules (Tarjan)."""
    index, low, on_stack, stack, groups = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(set(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    cycles = []
    for group in groups:
        start = min(group)
        # The shortest way back to `start` inside the group (breadth first).
        came_from, frontier = {start: None}, [start]
        while frontier:
            nxt = []
            for v in frontier:
                for w in sorted(graph[v]):
                    if w in group and w not in came_from:
                        came_from[w] = v
                        nxt.append(w)
            frontier = nxt
        last = min((v for v in group if start in graph[v]), key=lambda v: _depth(v, came_from))
        path = [last]
        while came_from[path[-1]] is not None:
            path.append(came_from[path[-1]])
        cycles.append(list(reversed(path)) + [start])
    return sorted(cycles)


def _depth(v, came_from) -> int:
    n = 0
    while came_from[v] is not None:
        v, n = came_from[v], n + 1
    return n


def _describe(cycle: list[str], graph) -> str:
    hops = [f"{a} (line {graph[a][b]})" for a, b in zip(cycle[:-1], cycle[1:], strict=True)]
    return " -> ".join(hops + [cycle[-1]])


def private_imports(root: pathlib.Path = ROOT) -> list[str]:
    """`module:line imports _name from other` for each `from other import _name` across modules,
    and `module:line uses other._name` for each private name read through an imported module."""
    modules = _modules(root)
    found = []
    for name, path in modules.items():
        for target, line, imported in _imports(name, path, modules):
            if imported and imported.startswith("_") and target != name:
                found.append(f"{name}:{line} imports {imported} from {target}")
        tree = ast.parse(path.read_text(), filename=str(path))
        bound = {}  # local name -> package module it is bound to
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module in modules:
                for a in node.names:
                    if f"{node.module}.{a.name}" in modules:
                        bound[a.asname or a.name] = f"{node.module}.{a.name}"
            elif isinstance(node, ast.Import):
                bound.update(
                    {a.asname: a.name for a in node.names if a.asname and a.name in modules}
                )
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and bound.get(node.value.id, name) != name
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(f"{name}:{node.lineno} uses {bound[node.value.id]}.{node.attr}")
    return found


def test_the_package_has_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 50, sorted(graph)  # the scan found the package
    cycles = import_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(_describe(c, graph) for c in cycles)


def test_no_module_imports_another_modules_private_names():
    found = private_imports()
    assert not found, "private names imported across modules:\n" + "\n".join(found)


def _write(root: pathlib.Path, files: dict[str, str]) -> pathlib.Path:
    for rel, text in files.items():
        path = root / PACKAGE / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / PACKAGE


def test_the_scan_sees_cycles_hidden_in_functions_and_relative_imports(tmp_path):
    root = _write(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "from asc_keras import b\n",
            "b.py": "def f():\n    from asc_keras.c import g\n",
            "c.py": "def g():\n    from . import a\n",
            "d.py": "import asc_keras.a\n",  # imports into the cycle, not part of it
            "sub/__init__.py": "from .e import x\n",
            "sub/e.py": "from asc_keras.sub import f, g\n",  # module f, name g of the package
            "sub/f.py": "",
        },
    )
    graph = import_graph(root)
    assert graph["asc_keras.sub.e"] == {"asc_keras.sub.f": 1, "asc_keras.sub": 1}
    assert import_cycles(graph) == [
        ["asc_keras.a", "asc_keras.b", "asc_keras.c", "asc_keras.a"],
        ["asc_keras.sub", "asc_keras.sub.e", "asc_keras.sub"],
    ]
    text = _describe(import_cycles(graph)[0], graph)
    assert text == (
        "asc_keras.a (line 1) -> asc_keras.b (line 2) -> asc_keras.c (line 2) -> asc_keras.a"
    )


def test_the_scan_sees_private_names_imported_from_other_modules(tmp_path):
    root = _write(
        tmp_path,
        {
            "__init__.py": "",
            "a.py": "_x = 1\ny = 2\n",
            "b.py": "from asc_keras.a import y\n\n\ndef f():\n    from .a import _x\n",
            "c.py": "from asc_keras import a\n\nz = a.y + a._x + a.__name__\n",
            "d.py": "import asc_keras.a as other\n\n\ndef g():\n    return other._x\n",
        },
    )
    assert private_imports(root) == [
        "asc_keras.b:5 imports _x from asc_keras.a",
        "asc_keras.c:3 uses asc_keras.a._x",
        "asc_keras.d:5 uses asc_keras.a._x",
    ]


MAX_MODULE_LINES = 450  # a module longer than this holds more than one job: split it


def test_no_module_of_the_package_is_longer_than_one_job():
    long = {
        name: n
        for name, path in _modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_every_script_is_a_thin_main():
    """The scripts parse flags, build configs and call the library: no module of their own."""
    scripts = sorted(ROOT.parent.glob("*.py"))
    assert {p.name for p in scripts} >= {"train.py", "evaluate.py", "export.py", "predict.py"}
    for path in scripts:
        tree = ast.parse(path.read_text())
        functions = [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
        assert len(path.read_text().splitlines()) < 150, path.name
        assert "main" in functions, path.name
