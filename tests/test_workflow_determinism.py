"""TicketWorkflow runs outside the workflow sandbox; these checks stand where it stood.

The sandbox re-imported the workflow module for every instance and guarded nothing the ticket
calls (the machine was passed through, where neither the clock nor randomness is stopped). So
the workflow runs unsandboxed, and determinism rests on two things checked here and in
tests/test_replay.py: the code the workflow runs reads neither the clock, randomness, the
environment nor files, and every committed history replays.
"""

from __future__ import annotations

import ast
import importlib.machinery
from pathlib import Path
from typing import Any

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from worker.worker import TICKET_WORKFLOWS
from workflows.ticket import TicketWorkflow

WORKFLOWS = Path(__file__).parents[1] / "workflows"
# Every module TicketWorkflow runs. Intake (entitlement.py, with the `holidays` package) is
# not one of them: the workflow learns holidays from its input and an activity.
WORKFLOW_MODULES = [
    "ticket",
    "machine",
    "actions",
    "actions.base",
    "actions.lines",
    "actions.acknowledge",
    "actions.comment",
    "actions.escalate",
    "actions.handoff",
    "actions.handback",
    "actions.change_severity",
    "actions.wait_on_customer",
    "actions.resume",
    "actions.resolve",
    "actions.reopen",
    "actions.close",
    "actions.outage",
    "actions.incident",
    "incident",
    "incident_model",
    "incident_notices",
    "incident_watch",
    "incident_watch_model",
    "ladder",
    "clocks",
    "calendars",
    "timeline",
    "policy",
    "models",
    "enums",
    "terms",
    "payload",
    "permissions",
    "text",
    "search_attributes",
    "outages",
    "changes",
]
FORBIDDEN_MODULES = {
    "random",
    "secrets",
    "uuid",
    "os",
    "time",
    "threading",
    "socket",
    "subprocess",
}
# The workflow's own event loop runs tasks deterministically; nothing else of asyncio (its
# clock, sleeps, threads, other loops) belongs in workflow code.
ALLOWED_ASYNCIO = {"create_task", "gather", "Task"}
FORBIDDEN_CALLS = {"now", "utcnow", "today", "open", "sleep", "getenv", "perf_counter", "monotonic"}


def imported(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def forbidden_calls(tree: ast.Module) -> set[str]:
    """Calls such as `datetime.now()` or `open(...)`; `workflow.now()` is the workflow's clock."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            if name.split(".")[-1] in FORBIDDEN_CALLS and not name.startswith("workflow."):
                found.add(name)
    return found


def asyncio_used(tree: ast.Module) -> set[str]:
    """`asyncio.x` names the code uses; `from asyncio import x` counts as every name."""
    used: set[str] = set()
    for node in ast.walk(tree):
        named = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
        if named and node.value.id == "asyncio":  # type: ignore[attr-defined]
            used.add(node.attr)  # type: ignore[attr-defined]
        elif isinstance(node, ast.ImportFrom) and node.module == "asyncio":
            used.add("*")
    return used


@pytest.mark.parametrize("module", WORKFLOW_MODULES)
def test_the_workflow_code_reads_no_clock_randomness_or_files(module: str) -> None:
    path = WORKFLOWS / module.replace(".", "/")
    tree = ast.parse((path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).read_text())
    roots = {name.split(".")[0] for name in imported(tree)}
    assert not roots & FORBIDDEN_MODULES
    assert not forbidden_calls(tree)
    assert asyncio_used(tree) <= ALLOWED_ASYNCIO
    # And it imports no other part of the project than the workflow's own modules.
    project = {name.removeprefix("workflows.") for name in imported(tree) if name.startswith("workflows.")}
    assert project <= set(WORKFLOW_MODULES)
    outside = ("activities", "store", "runtime", "sinks", "api", "worker")
    assert not {name for name in imported(tree) if name.split(".")[0] in outside}


def test_the_ticket_workflow_runs_outside_the_sandbox() -> None:
    assert workflow._Definition.must_from_class(TicketWorkflow).sandboxed is False


async def test_replaying_a_ticket_compiles_and_reimports_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    """In the sandbox, every instance (each start, each replay after a cache eviction)
    compiled the workflow module from source again (PYTHONDONTWRITEBYTECODE=1)."""
    loaded: list[str] = []
    get_code = importlib.machinery.SourceFileLoader.get_code

    def counting_get_code(self: Any, fullname: str) -> Any:
        loaded.append(fullname)
        return get_code(self, fullname)

    history_path = Path(__file__).parent / "histories" / "reopen.json"
    history = WorkflowHistory.from_json("ticket-reopen", history_path.read_text())
    replayer = Replayer(workflows=TICKET_WORKFLOWS, data_converter=pydantic_data_converter)
    # The first replay may import what this process has not imported yet; count the second.
    assert (await replayer.replay_workflow(history)).replay_failure is None
    monkeypatch.setattr(importlib.machinery.SourceFileLoader, "get_code", counting_get_code)

    result = await replayer.replay_workflow(history)

    assert result.replay_failure is None
    assert loaded == []
