"""House rules of the workspace, checked on the source: no phantom dependencies, the chassis
never imports a service, services never import each other (ARCHITECTURE.md, "Rules of the house")."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from msa_testing.workspace import members

REPO = Path(__file__).resolve().parents[1]
MEMBERS = [folder for folder in members() if folder.name != "tests"]


def _norm(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _member_packages() -> dict[str, str]:
    """import name -> workspace member (distribution) name."""
    found = {}
    for member in MEMBERS:
        project = tomllib.loads((member / "pyproject.toml").read_text())["project"]
        for package in (member / "src").iterdir():
            if (package / "__init__.py").exists():
                found[package.name] = _norm(project["name"])
    return found


def _imports(src: Path) -> set[str]:
    names: set[str] = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module.split(".")[0])
    return names


def _declared(member: Path) -> set[str]:
    deps = tomllib.loads((member / "pyproject.toml").read_text())["project"].get("dependencies", [])
    names = set()
    for dep in deps:
        name = dep.split(";")[0].split("[")[0]
        for sep in "<>=!~ ":
            name = name.split(sep)[0]
        names.add(_norm(name))
    return names


@pytest.mark.parametrize("member", MEMBERS, ids=lambda m: str(m.relative_to(REPO)))
def test_no_phantom_dependencies(member: Path) -> None:
    members = _member_packages()
    distributions = packages_distributions()
    declared = _declared(member)
    own = {p.name for p in (member / "src").iterdir()}
    missing = set()
    for name in _imports(member / "src") - own - set(sys.stdlib_module_names):
        dists = {_norm(d) for d in distributions.get(name, [])} or (
            {members[name]} if name in members else set()
        )
        if not dists & declared:
            missing.add(f"{name} ({', '.join(sorted(dists)) or 'unknown'})")
    assert not missing, (
        f"{member.name} imports packages its pyproject.toml does not declare: {sorted(missing)}"
    )


def test_chassis_never_imports_a_member_and_members_only_import_the_chassis() -> None:
    members = _member_packages()
    for member in MEMBERS:
        own = {p.name for p in (member / "src").iterdir()}
        foreign = (_imports(member / "src") & set(members)) - own
        allowed = set() if member.name == "chassis" else {"chassis"}
        if member.name == "tests":
            continue
        assert foreign <= allowed, f"{member.name} imports {sorted(foreign - allowed)}"


def test_members_import_the_chassis_top_level_names_from_chassis() -> None:
    # one way to import each name: chassis.__all__ from chassis, the rest from their modules
    import chassis

    exported = set(chassis.__all__)
    wrong = []
    for member in [*MEMBERS, REPO / "tests"]:
        if member.name == "chassis":
            continue  # the chassis's own code and tests import its modules directly
        for path in member.rglob("*.py"):
            if ".venv" in path.parts:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("chassis."):
                    wrong += [
                        f"{path.relative_to(REPO)}:{node.lineno} {a.name}"
                        for a in node.names
                        if a.name in exported
                    ]
    assert not wrong, f"import these from chassis: {wrong}"


def test_app_state_is_reached_through_its_types_only() -> None:
    # chassis.state: chassis_state(app) and provide/resource, never app.state.<name> by string
    allowed = {REPO / "chassis/src/chassis/state.py", REPO / "chassis/src/chassis/app.py"}
    wrong = []
    for member in [*MEMBERS, REPO / "tests", REPO / "scripts"]:
        for path in member.rglob("*.py"):
            if ".venv" in path.parts or path in allowed:
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                reads_state = (
                    isinstance(node, ast.Attribute)
                    and isinstance(node.value, ast.Attribute)
                    and node.value.attr == "state"
                    and node.attr not in {"name"}  # a breaker's state is a string, not app.state
                ) or (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Name)
                    and node.func.id in {"getattr", "setattr"}
                    and node.args
                    and isinstance(node.args[0], ast.Attribute)
                    and node.args[0].attr == "state"
                )
                if reads_state:
                    wrong.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not wrong, f"use chassis.state (chassis_state, provide, resource): {wrong}"
