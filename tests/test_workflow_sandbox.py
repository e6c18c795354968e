"""What the workflow sandbox runs again for every workflow instance: only the tiny workflow
module. The pure machine and the shell are passed through, imported once per process.

Each workflow start, and each replay after a cache eviction, creates an instance; with
`PYTHONDONTWRITEBYTECODE=1` (the Dockerfile's) every module it runs again is compiled from
source each time, so this is a cost per ticket step under load, not a one-off.
"""

from __future__ import annotations

import importlib.machinery
from pathlib import Path
from typing import Any

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.ticket import TicketWorkflow

HISTORIES = Path(__file__).parent / "histories"


async def test_replaying_a_ticket_runs_only_the_workflow_module_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    loaded: list[str] = []
    get_code = importlib.machinery.SourceFileLoader.get_code

    def counting_get_code(self: Any, fullname: str) -> Any:
        loaded.append(fullname)
        return get_code(self, fullname)

    history = WorkflowHistory.from_json("ticket-reopen", (HISTORIES / "reopen.json").read_text())
    replayer = Replayer(workflows=[TicketWorkflow], data_converter=pydantic_data_converter)
    # The first replay may import what this process has not imported yet; count the second.
    assert (await replayer.replay_workflow(history)).replay_failure is None
    monkeypatch.setattr(importlib.machinery.SourceFileLoader, "get_code", counting_get_code)

    result = await replayer.replay_workflow(history)

    assert result.replay_failure is None
    # The workflow's own module (and its package) is the sandbox's to run again; a from-import
    # of a submodule in it would drag that submodule (the machine, the shell) in too.
    assert set(loaded) <= {"workflows", "workflows.ticket"}
    assert "workflows.ticket" in loaded
