"""The architecture as declared in code agrees with the documents and the deployment files.

- docs/ARCHITECTURE.md's service table is the one generated from the services' declared routes;
- every launcher entry (``deploy.run.SERVICES``) has a docker-compose service running the same command;
- every service's ``__main__`` has the one form (``main(build)``) and no service imports another.
"""

from __future__ import annotations

import ast
from pathlib import Path

import yaml

from deploy.run import SERVICES
from scripts import architecture
from tests.conftest import ROOT

SERVICE_DIRS = sorted(p for p in (ROOT / "services").iterdir() if (p / "__main__.py").exists())


def test_architecture_doc_lists_the_declared_routes() -> None:
    doc = architecture.DOC.read_text()
    assert architecture.render(doc) == doc, "run `python -m scripts.architecture --write`"
    for name, svc in architecture.declared():
        for route in svc.routes:
            assert f"`{architecture.short(route.filter)}`" in doc, (name, route.filter)


def test_every_launched_service_is_in_compose() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    for name, module, args in SERVICES:
        assert name in compose, f"docker-compose.yml has no service {name!r}"
        assert compose[name]["command"] == " ".join(["python", "-m", module, *args]), name


def test_launcher_starts_every_service_package() -> None:
    launched = {module for _, module, _ in SERVICES}
    assert launched == {f"services.{p.name}" for p in SERVICE_DIRS}


def test_every_main_has_the_one_form() -> None:
    for d in SERVICE_DIRS:
        tree = ast.parse((d / "__main__.py").read_text())
        imports = {(n.module, a.name) for n in tree.body if isinstance(n, ast.ImportFrom) for a in n.names}
        assert imports == {(f"services.{d.name}.service", "build"), ("shared.service", "main")}, d.name
        calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "main"]
        assert [ast.unparse(c) for c in calls] == ["main(build)"], d.name


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
    return out


def test_no_service_imports_another() -> None:
    offenders = []
    for d in SERVICE_DIRS:
        for path in d.rglob("*.py"):
            for mod in imported_modules(path):
                parts = mod.split(".")
                if parts[0] == "services" and len(parts) > 1 and parts[1] != d.name:
                    offenders.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert offenders == []


def test_shared_imports_no_service() -> None:
    offenders = [
        f"{p.relative_to(ROOT)} imports {m}"
        for p in (ROOT / "shared").rglob("*.py")
        for m in imported_modules(p)
        if m.split(".")[0] == "services"
    ]
    assert offenders == []
