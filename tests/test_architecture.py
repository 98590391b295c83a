"""The dependency rules of docs/architecture.md, as import-linter checks them (pyproject.toml)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def lint(contract: str) -> subprocess.CompletedProcess[str]:
    """Run one contract of pyproject.toml; its output and exit status."""
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-logo", "--no-cache", "--contract", contract],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )


@pytest.mark.parametrize("contract", ["no-workers", "services-layer", "blueprints-independent"])
def test_the_dependency_rule_holds(contract: str) -> None:
    result = lint(contract)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ticketing_imports_its_redis_connection_and_queue_names_from_itself() -> None:
    from ticketing import queues
    from workers import queues as worker_queues

    assert worker_queues.redis_connection is queues.redis_connection
    assert worker_queues.QUEUES is queues.QUEUES


def test_every_action_staff_take_by_hand_has_its_form_and_no_other() -> None:
    from ticketing.services.doors import BY_HAND_ACTIONS
    from ticketing.staff.forms import FORMS

    assert set(FORMS) == BY_HAND_ACTIONS


def test_no_test_module_imports_another() -> None:
    """Fixtures are shared through conftest.py, helpers through modules not named test_*."""
    offenders = []
    for path in sorted((ROOT / "tests").glob("test_*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            if any(name.startswith("tests.test_") for name in names):
                offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_code_and_docs_cite_only_files_in_the_repository() -> None:
    """The product's design notes live outside the repository; nothing here may cite them."""
    outside = ("DESIGN.md", "STYLE.md", "../shared")
    citing = [
        str(path.relative_to(ROOT))
        for folder in ("ticketing", "workers", "docs", "tests", "bench", "migrations", "templates")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in {".py", ".md", ".html", ".txt"} and path.name != "test_architecture.py"
        and any(name in path.read_text(encoding="utf-8", errors="replace") for name in outside)
    ] + [name for name in ("README.md", "config.py", "wsgi.py", "Makefile", "pyproject.toml")
         if any(o in (ROOT / name).read_text(encoding="utf-8") for o in outside)]
    assert citing == []


def committing_service_functions() -> set[str]:
    """`module.function` of every service function that commits the session itself."""
    found = set()
    for path in sorted((ROOT / "ticketing" / "services").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef) and any(
                    isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)
                    and call.func.attr == "commit" for call in ast.walk(node)):
                found.add(f"{path.stem}.{node.name}")
    return found


def test_every_service_function_that_commits_is_named_in_the_architecture() -> None:
    """Services leave the commit to the caller; the exceptions are listed, each with its reason."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    section = text.split("## What commits", 1)[1].split("\n## ", 1)[0]
    committing = committing_service_functions()
    assert committing, "the scan found nothing: it is broken"
    unnamed = sorted(name for name in committing
                     if f"`{name}`" not in section and f"`{name.split('.')[1]}`" not in section)
    assert unnamed == []
