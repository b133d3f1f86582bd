"""The folders import one way: the shared core (corral/) imports no method folder, and no two top
folders import each other, directly or around a loop. Every import counts, also one inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FOLDERS = ("corral", "data_prep", "evals", "reward", "finetune", "tinyworld", "apps", "realshape")


def folder_imports() -> dict[str, dict[str, set[str]]]:
    """{folder: {imported folder: {module that imports it, ...}}} over every .py file of every folder."""
    graph: dict[str, dict[str, set[str]]] = {f: {} for f in FOLDERS}
    for folder in FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            for node in ast.walk(tree):
                names = []
                if isinstance(node, ast.Import):
                    names = [a.name for a in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = [node.module]
                for name in names:
                    top = name.split(".")[0]
                    if top in FOLDERS and top != folder:
                        graph[folder].setdefault(top, set()).add(str(path.relative_to(REPO)))
    return graph


def find_cycle(graph: dict[str, dict[str, set[str]]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the stack, 2 done

    def visit(node: str, stack: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [node, nxt] if nxt in stack else [node, nxt]
            if nxt not in state:
                found = visit(nxt, stack + [node])
                if found:
                    return found
        state[node] = 2
        return None

    for start in graph:
        if start not in state:
            found = visit(start, [])
            if found:
                return found
    return None


def test_every_folder_exists_and_has_modules():
    for folder in FOLDERS:
        assert list((REPO / folder).rglob("*.py")), folder


def test_the_core_imports_no_method_folder():
    graph = folder_imports()
    assert graph["corral"] == {}, f"corral/ must import none of {FOLDERS[1:]}: {graph['corral']}"


def test_the_folder_import_graph_has_no_loop():
    graph = folder_imports()
    cycle = find_cycle(graph)
    if cycle:
        edges = [f"{a} -> {b} (in {sorted(graph[a][b])[0]})" for a, b in zip(cycle, cycle[1:])]
        raise AssertionError("folder import loop: " + "; ".join(edges))


def test_the_loop_finder_finds_a_planted_loop():
    graph = {"a": {"b": {"a/x.py"}}, "b": {"c": {"b/y.py"}}, "c": {"a": {"c/z.py"}}}
    assert find_cycle(graph) is not None
    graph["c"] = {}
    assert find_cycle(graph) is None
