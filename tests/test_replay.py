"""Committed histories replay under today's code: a failure here is a non-determinism bug."""

from __future__ import annotations

from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from workflows.ticket import TicketWorkflow

HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))
HISTORY_TEXT = {path: path.read_text() for path in HISTORIES}


def test_there_is_a_committed_history() -> None:
    assert HISTORIES, "record one with: .venv/bin/python -m tests.histories.record"


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays_under_current_code(path: Path) -> None:
    history = WorkflowHistory.from_json(f"ticket-{path.stem}", HISTORY_TEXT[path])
    replayer = Replayer(workflows=[TicketWorkflow], data_converter=pydantic_data_converter)
    result = await replayer.replay_workflow(history, raise_on_replay_failure=True)
    assert result.replay_failure is None
