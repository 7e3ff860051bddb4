"""The house's rules, checked on the source: models know nothing about training runs, and nothing imports in
a circle. (nanoGPT's model.py is the example: it knows nothing about the loop that trains it.)"""
import ast
from pathlib import Path

import pytest

import course_lib

LIB = Path(course_lib.__file__).parent
# Command-line shims at the top of the package (`python -m course_lib.doctor`): each only calls into the harness.
ENTRY_POINTS = ("doctor",)
MODEL_WINGS = ("recurrent", "translation", "transformer", "gpt", "bert", "emergence")
FORBIDDEN_IN_MODELS = ("course_lib.core.train", "course_lib.recipes", "course_lib.harness")


def module_name(path: Path) -> str:
    parts = path.relative_to(LIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """Every course_lib module `path` imports, at the top or inside a function, as absolute names."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("course_lib"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("course_lib"):
                continue
            for alias in node.names:        # `from ..core import paths` imports the module core.paths
                sub = f"{target}.{alias.name}"
                found.add(sub if (LIB.parent / (sub.replace(".", "/") + ".py")).exists() else target)
    return found


MODULES = {module_name(p): p for p in LIB.rglob("*.py")}
GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


@pytest.mark.parametrize("wing", MODEL_WINGS)
def test_model_wings_never_import_the_trainer_a_recipe_or_the_harness(wing):
    bad = {m: sorted(i for i in imports if i.startswith(FORBIDDEN_IN_MODELS))
           for m, imports in GRAPH.items() if m.startswith(f"course_lib.{wing}")}
    assert not {m: v for m, v in bad.items() if v}, "model code must not know about training runs"


def test_every_import_names_a_real_module():
    known = set(MODULES)
    unknown = {m: sorted(i for i in imports if i not in known) for m, imports in GRAPH.items()}
    assert not {m: v for m, v in unknown.items() if v}


def test_no_import_cycles():
    """Module level, counting that importing `a.b.c` first runs the package `a.b`'s __init__."""
    def edges(m):
        for target in GRAPH[m]:
            yield target
            package = target.rsplit(".", 1)[0]
            if package in MODULES and not m.startswith(package + ".") and package != m:
                yield package
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for t in edges(m):
            if state.get(t) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(t):] + [t]))
            if t not in state:
                visit(t)
        stack.pop()
        state[m] = "done"

    for m in sorted(MODULES):
        if m not in state:
            visit(m)


def test_wings_stack_in_layers():
    """core is the ground floor: it imports no wing. Wings import core and older wings, never the harness."""
    wing_of = lambda m: m.split(".")[1] if m.count(".") >= 1 else ""
    for m, imports in GRAPH.items():
        wing = wing_of(m)
        others = {wing_of(i) for i in imports} - {wing}
        if wing == "core":
            assert not others, f"{m} (core) imports {sorted(others)}"
        elif wing not in ("harness",) + ENTRY_POINTS:
            assert "harness" not in others, f"{m} imports the harness"
