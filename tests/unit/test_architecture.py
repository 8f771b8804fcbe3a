"""Dependencies point one way: core <- backend, core <- dashboard; tools use everything; nothing uses tools.

Every module of model_backend/, dashboard/ and tools/ is parsed with ``ast``
(imports inside functions count too: a lazy import is still a dependency) and
each import is checked against the rule (README.md, "Dependencies point one way"):

* core (protocol, errors, settings, client and the helpers they need: sockets,
  security) imports no backend module, no dashboard, no tools, no TensorFlow;
* the dashboard imports only core modules of model_backend, and never
  TensorFlow or Keras (it starts in well under a second, on a machine without
  an accelerator);
* model_backend never imports the dashboard or tools; nothing in
  model_backend/ or dashboard/ imports tools.

A failure names the module, the line and the import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.support.helpers import ROOT

PACKAGES = ("model_backend", "dashboard", "tools")
#: the core of model_backend: what the dashboard (and anyone) may import
CORE = {"model_backend", "model_backend.protocol", "model_backend.errors", "model_backend.settings", "model_backend.client",
        "model_backend.sockets", "model_backend.security"}
HEAVY = ("tensorflow", "keras", "tf_keras")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def modules() -> list[tuple[str, Path]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            found.append((module_name(path), path))
    return found


def imports_of(name: str, path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module) for every import in the file, relative ones resolved; ``from X import y`` gives X.y too."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: list[tuple[int, str]] = []
    source = path.read_text(encoding="utf-8") if source is None else source
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names if alias.name != "*")
    return found


def known_module(target: str) -> str | None:
    """The project module ``target`` names (X.y may be a name inside module X), or None for a third-party one."""
    while target:
        if target.split(".")[0] not in PACKAGES:
            return None
        path = ROOT / Path(*target.split("."))
        if path.with_suffix(".py").is_file() or (path / "__init__.py").is_file():
            return target
        target = target.rpartition(".")[0]
    return None


def top(target: str) -> str:
    return target.split(".")[0]


def violations_of(name: str, path: Path, source: str | None = None) -> list[str]:
    problems = []
    layer = "core" if name in CORE else top(name)
    seen = set()
    for line, target in imports_of(name, path, source):
        own = known_module(target)
        if (line, own or target) in seen:  # ``from X import y``: X and X.y are one import of module X
            continue
        seen.add((line, own or target))
        where = f"{name} ({path.relative_to(ROOT)}:{line}) imports {own or target}"
        if layer in ("core", "dashboard") and top(target) in HEAVY:
            problems.append(f"{where}: {layer} must not import TensorFlow or Keras")
        if own is None:
            continue
        if layer != "tools" and top(own) == "tools":
            problems.append(f"{where}: nothing outside tools/ may import tools")
        elif layer in ("core", "model_backend") and top(own) == "dashboard":
            problems.append(f"{where}: model_backend must not import the dashboard")
        elif layer in ("core", "dashboard") and top(own) == "model_backend" and own not in CORE:
            problems.append(f"{where}: {layer} may import only core modules of model_backend ({', '.join(sorted(CORE))})")
    return problems


def test_the_rule_sees_every_module_and_its_imports():
    names = {name for name, _ in modules()}
    assert CORE <= names, f"core modules missing: {sorted(CORE - names)}"
    assert "model_backend.server" in names and "dashboard" in names
    # imports inside functions count: cli.py imports the service (and TensorFlow behind it) lazily
    assert "model_backend.service" in {target for _, target in imports_of("model_backend.cli", ROOT / "model_backend" / "cli.py")}


@pytest.mark.parametrize("name, path", modules(), ids=[name for name, _ in modules()])
def test_dependencies_point_one_way(name, path):
    problems = violations_of(name, path)
    assert not problems, "\n".join(problems)


def test_a_wrong_import_is_named_in_the_failure():
    source = "def later():\n    from dashboard.history import HistoryStore\n    import tensorflow\n    from .server import BackendServer\n"
    problems = violations_of("model_backend.protocol", ROOT / "model_backend" / "protocol.py", source)
    assert any("model_backend.protocol (model_backend/protocol.py:2) imports dashboard.history" in p for p in problems)
    assert any("imports tensorflow" in p for p in problems)
    assert any("imports model_backend.server" in p and "only core" in p for p in problems)
    dashboard_source = "from model_backend.models import build_model\nfrom tools.bench import run\n"
    problems = violations_of("dashboard.app", ROOT / "dashboard" / "app.py", dashboard_source)
    assert any("imports model_backend.models" in p for p in problems) and any("imports tools.bench" in p for p in problems)
