"""The tree shows the architecture (DESIGN.md §2): dependencies point one way, and each
package holds what its name says."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("workflows", "policies", "activities", "store", "runtime", "sinks", "api", "worker")


def top_level_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def modules(package: str) -> list[Path]:
    return [p for p in (ROOT / package).rglob("*.py") if "migrations" not in p.parts]


# What each package may import of the project's own packages.
ALLOWED = {
    "workflows": set(),
    # The policy documents, validated by workflows/policy.py; read at process start.
    "policies": {"workflows"},
    "sinks": set(),
    "runtime": {"workflows"},
    "store": {"workflows", "runtime"},
    "activities": {"workflows", "runtime", "store", "sinks"},
    "api": {"workflows", "policies", "runtime", "store", "api"},
    "worker": {"workflows", "policies", "runtime", "store", "activities", "worker", "api"},
}


@pytest.mark.parametrize("package", PACKAGES)
def test_dependencies_point_one_way(package: str) -> None:
    own = set(PACKAGES) - {package}
    wrong = {
        f"{path.relative_to(ROOT)} imports {name}"
        for path in modules(package)
        for name in top_level_imports(path) & own
        if name not in ALLOWED[package]
    }
    assert not wrong


def test_activities_holds_temporal_activities_only() -> None:
    not_activities = [
        path.name
        for path in modules("activities")
        if path.name != "__init__.py" and "@activity.defn" not in path.read_text()
    ]
    assert not not_activities
