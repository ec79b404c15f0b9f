"""The package layering (arch <- workloads <- kernels <- sim <- explore), explore's rooms, no
import circles, no private names across modules, and our own `arch`.

Imports are read from the source (every ``import`` statement, including those inside functions:
a lazy import is still a dependency)."""

import ast
import pathlib
from collections import defaultdict

import arch

ORDER = ["arch", "workloads", "kernels", "sim", "explore"]
ROOMS = ["api", "cli", "report", "search", "tco", "validation"]
ROOT = pathlib.Path(__file__).resolve().parents[1]


def _module(path: pathlib.Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _sources():
    for pkg in ORDER:
        yield from sorted((ROOT / pkg).rglob("*.py"))


MODULES = {_module(f): f for f in _sources()}


def _typing_only(tree: ast.AST) -> set[int]:
    """ids of the nodes under ``if TYPE_CHECKING:`` (annotations only, never run)."""
    return {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and getattr(node.test, "id", "") == "TYPE_CHECKING"
        for n in ast.walk(node)
    }


def _imports(path: pathlib.Path):
    """(module imported, names taken from it) for every absolute import in ``path`` that runs."""
    tree = ast.parse(path.read_text())
    skip = _typing_only(tree)
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            yield from ((a.name, ()) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module, tuple(a.name for a in node.names)


def _edges() -> dict[str, set[str]]:
    """Module -> our modules it imports (``from pkg import submodule`` goes to the submodule)."""
    out: dict[str, set[str]] = defaultdict(set)
    for mod, path in MODULES.items():
        for target, names in _imports(path):
            subs = {f"{target}.{n}" for n in names if f"{target}.{n}" in MODULES}
            if subs:
                out[mod] |= subs
            if target in MODULES and len(subs) < len(names or ("",)):
                out[mod].add(target)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in list(graph):
        if v not in index:
            visit(v)
    return found


def test_no_package_imports_one_above_it():
    rank = {p: i for i, p in enumerate(ORDER)}
    bad = [
        f"{mod} imports {t}"
        for mod, path in MODULES.items()
        for t, _ in _imports(path)
        if t.split(".")[0] in rank and rank[t.split(".")[0]] > rank[mod.split(".")[0]]
    ]
    assert bad == []


def test_no_import_circles_between_modules():
    assert _cycles(_edges()) == []


def test_explore_rooms_form_no_circle_and_every_room_names_its_api():
    rooms: dict[str, set[str]] = defaultdict(set)
    for mod, targets in _edges().items():
        parts = mod.split(".")
        if parts[0] != "explore" or len(parts) < 2:
            continue
        for t in targets:
            tp = t.split(".")
            if tp[0] == "explore" and len(tp) > 1 and tp[1] != parts[1]:
                rooms[parts[1]].add(tp[1])
    assert _cycles(rooms) == []
    flat = [f.name for f in (ROOT / "explore").glob("*.py") if f.name != "__init__.py"]
    assert flat == [], "explore/ modules live in rooms (sub-packages)"
    for room in ROOMS:
        init = ROOT / "explore" / room / "__init__.py"
        assert "__all__" in init.read_text(), f"explore/{room}/__init__.py names no public API"


def test_no_module_imports_another_modules_private_name():
    """Sources, benchmarks and tests use public names only."""
    bad = [
        f"{mod} imports {t}.{n}"
        for mod, path in MODULES.items()
        for t, names in _imports(path)
        for n in names
        if t.split(".")[0] in ORDER and n.startswith("_") and not n.startswith("__")
    ]
    bad += [
        f"{f.relative_to(ROOT)} imports {t}.{n}"
        for top in ("benchmarks", "tests")
        for f in sorted((ROOT / top).rglob("*.py"))
        for t, names in _imports(f)
        for n in names
        if t.split(".")[0] in ORDER and n.startswith("_")
    ]
    assert bad == []


def test_the_circle_check_can_fail():
    """The cycle finder on a hand-made graph: a -> b -> c -> a is one circle; d -> a is not."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_explore_imports_optuna_or_matplotlib():
    bad = [
        mod
        for mod, path in MODULES.items()
        if not mod.startswith("explore")
        and {"optuna", "matplotlib"} & {t.split(".")[0] for t, _ in _imports(path)}
    ]
    assert bad == []


def test_arch_is_ours_not_the_pypi_package():
    assert pathlib.Path(arch.__file__).resolve().parent == ROOT / "arch"
