"""`make run`: the links in residents' messages point where it serves."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make")


def run_recipe(*assignments: str, **env: str) -> list[str]:
    """The flask commands `make run` would execute (dry run), with PUBLIC_URL unset unless given."""
    environment = {k: v for k, v in os.environ.items() if k not in ("PUBLIC_URL", "HOST", "PORT")}
    result = subprocess.run(["make", "-n", "--no-print-directory", "run", *assignments], cwd=ROOT,
                            env={**environment, **env}, capture_output=True, text=True, timeout=30, check=True)
    return [line for line in result.stdout.splitlines() if "flask demo load" in line or "flask serve" in line]


def test_make_run_on_another_port_points_links_at_that_port() -> None:
    lines = run_recipe("PORT=5101")
    assert len(lines) == 2
    assert all(line.startswith("PUBLIC_URL=http://127.0.0.1:5101 ") for line in lines)


def test_a_public_url_given_to_make_run_is_kept() -> None:
    lines = run_recipe("PORT=5101", PUBLIC_URL="https://minhu.example.org")
    assert all(line.startswith("PUBLIC_URL=https://minhu.example.org ") for line in lines)
    assert "--url https://minhu.example.org/" in lines[0]
