"""The import rules of DESIGN.md's layout table, checked on every first-party module.

data imports nothing of the project; model imports only data; evaluation imports data and model; training
imports data, model and evaluation; serving imports data and model. Only the composition layer (`medcode/`:
the console script, its commands and the settings) imports everything. data/ and model/ never read the
settings: they take what they need as arguments. Imports inside functions count as much as top-level ones.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("data", "model", "training", "evaluation", "serving")
ALLOWED: dict[str, set[str]] = {
    "data": {"data"},
    "model": {"data", "model"},
    "evaluation": {"data", "model", "evaluation", "settings"},
    "training": {"data", "model", "evaluation", "training", "settings"},
    "serving": {"data", "model", "serving", "settings"},
}
"""package -> the first-party parts it may import (`settings` is `medcode.settings`, read at the edges)."""


def first_party_imports(path: Path) -> list[tuple[int, str]]:
    """(line, imported module) for every import of medcode or of a bare top-level project package."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
            if node.module == "medcode":
                names = [f"medcode.{alias.name}" for alias in node.names]
        for name in names:
            if name.split(".")[0] in ("medcode", *PACKAGES):
                found.append((node.lineno, name))
    return sorted(found)


def target_of(module: str) -> str:
    """'medcode.model.text.pipeline' -> 'model'; 'medcode.settings' -> 'settings'; 'medcode.cli' -> 'cli'."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "medcode"


def problem(package: str, module: str) -> str | None:
    """Why `package` may not import `module`, or None when it may."""
    if not module.startswith("medcode."):
        return f"imports {module} outside the medcode import root"
    if target_of(module) not in ALLOWED[package]:
        return f"({package}) imports {module}"
    return None


def violations(package: str) -> list[str]:
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for line, module in first_party_imports(path):
            why = problem(package, module)
            if why:
                wrong.append(f"{path.relative_to(ROOT)}:{line} {why}")
    return wrong


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_follow_the_layout_table(package: str) -> None:
    assert violations(package) == []


def test_a_wrong_arrow_is_caught(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text(
        "from medcode.serving.app import create_app\n"
        "def f():\n    from medcode.settings import get_settings\n"
        "import model.text\n"
    )
    found = [module for _, module in first_party_imports(bad)]
    assert found == ["medcode.serving.app", "medcode.settings", "model.text"]
    assert problem("training", "medcode.serving.app") is not None
    assert problem("model", "medcode.settings") is not None
    assert problem("serving", "model.text") is not None
    assert problem("training", "medcode.evaluation.metrics") is None


def test_no_top_level_project_package_is_installed() -> None:
    """The installed distribution names only `medcode`: `import data` does not find medcode's data."""
    from importlib.metadata import distribution

    top = (distribution("medcode").read_text("top_level.txt") or "").split()
    assert set(top) <= {"medcode"}
    import subprocess
    import sys

    probe = f"import importlib.util as u; print([n for n in {PACKAGES!r} if u.find_spec(n)])"
    shown = subprocess.run(
        [sys.executable, "-c", probe], cwd="/", capture_output=True, text=True, check=True
    ).stdout.strip()
    assert shown == "[]"
