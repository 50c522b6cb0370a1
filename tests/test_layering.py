"""The one layering rule (DESIGN.md): nothing under flowviz/ imports streamlit, pages or app.

Checked statically with `ast`, so it also catches imports hidden inside functions.
"""

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
LIBRARY = REPO_ROOT / "flowviz"
FORBIDDEN = {"streamlit", "views", "pages", "app"}


def forbidden_imports(source: str, filename: str = "<string>") -> list[tuple[int, str]]:
    """(line, module) for every absolute import of a FORBIDDEN top-level package in `source`."""
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif (
            isinstance(node, ast.Call)
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
            and (
                (isinstance(node.func, ast.Name) and node.func.id == "__import__")
                or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
            )
        ):
            names = [node.args[0].value]
        else:
            continue
        found += [(node.lineno, n) for n in names if n.split(".")[0] in FORBIDDEN]
    return found


def library_files() -> list[Path]:
    return sorted(LIBRARY.rglob("*.py")) if LIBRARY.is_dir() else []


def test_checker_detects_violations():
    bad = (
        "import streamlit as st\n"
        "from pages.home import x\n"
        "import app\n"
        "def f():\n"
        "    from streamlit.runtime import y\n"
        "    importlib.import_module('pages.a')\n"
    )
    assert [n for _, n in forbidden_imports(bad)] == [
        "streamlit",
        "pages.home",
        "app",
        "streamlit.runtime",
        "pages.a",
    ]
    ok = "import torch\nfrom . import paths\nfrom .pages_util import z\nimport application\n"
    assert forbidden_imports(ok) == []


def test_library_has_python_files():
    assert library_files(), f"no .py files under {LIBRARY}: the layering check would be vacuous"


def test_library_does_not_import_ui():
    offenders = []
    for path in library_files():
        rel = path.relative_to(REPO_ROOT)
        for line, name in forbidden_imports(path.read_text(encoding="utf-8"), str(path)):
            offenders.append(f"{rel}:{line} imports {name}")
    assert not offenders, "flowviz/ must not import streamlit, pages or app:\n" + "\n".join(
        offenders
    )


VIEWS = REPO_ROOT / "views"
MAX_VIEW_LINES = 260  # a page reads as its lesson; computation lives in flowviz/


def views_imports() -> dict[str, set[str]]:
    """views module -> the views modules it imports (at any depth of the file)."""
    graph = {}
    for path in sorted(VIEWS.glob("*.py")):
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "views":
                    deps |= {a.name for a in node.names}
                elif node.module.startswith("views."):
                    deps.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[1] for a in node.names
                         if a.name.startswith("views.")}
        graph[path.stem] = deps - {path.stem}
    return graph


def test_views_have_no_import_cycle():
    graph = views_imports()
    assert graph, "no views modules found"

    def visit(node, trail):
        assert node not in trail, "import cycle: " + " -> ".join([*trail, node])
        for dep in graph.get(node, ()):
            visit(dep, [*trail, node])

    for module in graph:
        visit(module, [])


def test_views_modules_are_short():
    long = {p.name: n for p in VIEWS.glob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_VIEW_LINES}
    assert not long, f"views/ modules over {MAX_VIEW_LINES} lines: {long}"
