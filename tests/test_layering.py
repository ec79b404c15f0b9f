"""The package layering (arch <- workloads <- kernels <- sim <- explore) and our own `arch`."""

import ast
import pathlib

import arch

ORDER = ["arch", "workloads", "kernels", "sim", "explore"]
ROOT = pathlib.Path(__file__).resolve().parents[1]


def _imports(path: pathlib.Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def test_no_package_imports_one_above_it():
    rank = {p: i for i, p in enumerate(ORDER)}
    bad = []
    for pkg in ORDER:
        for f in (ROOT / pkg).rglob("*.py"):
            bad += [
                f"{f.relative_to(ROOT)} imports {m}"
                for m in _imports(f)
                if m in rank and rank[m] > rank[pkg]
            ]
    assert bad == []


def test_only_explore_imports_optuna_or_matplotlib():
    bad = [
        str(f)
        for pkg in ORDER[:-1]
        for f in (ROOT / pkg).rglob("*.py")
        if {"optuna", "matplotlib"} & set(_imports(f))
    ]
    assert bad == []


def test_arch_is_ours_not_the_pypi_package():
    assert pathlib.Path(arch.__file__).resolve().parent == ROOT / "arch"
