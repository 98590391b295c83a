"""Job names are declared once (ticketing/queues.py), and every one of them resolves."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
from werkzeug.utils import import_string

from ticketing import queues

PACKAGE = Path(queues.__file__).resolve().parent
JOB_NAME = re.compile(r"""["']workers\.jobs\.\w+["']""")


@pytest.mark.parametrize("name", queues.JOBS)
def test_every_declared_job_resolves_to_a_declared_job(name: str) -> None:
    assert hasattr(import_string(name), "job_options")


@pytest.mark.parametrize("name", sorted(queues.BATCHES))
def test_every_batch_form_belongs_to_a_declared_job_and_resolves(name: str) -> None:
    assert name in queues.JOBS
    assert callable(import_string(queues.BATCHES[name]))


def test_every_declared_job_runs_on_a_declared_queue() -> None:
    assert {import_string(name).job_options.queue for name in queues.JOBS} <= set(queues.QUEUES)


def test_no_module_of_the_app_spells_a_job_name_but_the_declaration() -> None:
    spelled = [
        f"{path.relative_to(PACKAGE)}:{number}"
        for path in sorted(PACKAGE.rglob("*.py")) if path != Path(queues.__file__).resolve()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if JOB_NAME.search(line)
    ]
    assert spelled == []
