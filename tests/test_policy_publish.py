"""`escalator policy publish FILE` (issue 20): a candidate document becomes the policy of the
tickets filed after it; open tickets keep the version they pinned."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from temporalio.testing import WorkflowEnvironment

from api.main import create_app
from runtime.settings import Settings
from store import published_policies
from store.db import PublishedPolicy
from tests.fixtures_api import settled_state, sqlite_stack
from worker.cli import main as escalator
from workflows import policy
from workflows.policy import TicketRules

NEXT = "2027.01-1"
TICKET = {
    "customer_id": "globex",
    "title": "Checkout down",
    "description": "Every payment fails",
    "product": "identity",
    "severity": 1,
    "channel": "email",
    "category": "incident",
}


@pytest.fixture(autouse=True)
def own_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The registry is the process's: what a test publishes leaves with the test."""
    monkeypatch.setattr(policy, "_REGISTRY", policy.registered())
    monkeypatch.setattr(policy, "_FINGERPRINTS", dict(policy._FINGERPRINTS))
    monkeypatch.setattr(policy, "_published_current", None)
    yield


def candidate(**changes: Any) -> dict[str, Any]:
    """The current document as a new version, Standard Sev 1 answered within 2 h."""
    document = policy.current().document()
    document["version"] = NEXT
    document["response_targets"]["standard"]["1"]["minutes"] = 120
    return {**document, **changes}


def write(tmp_path: Path, document: dict[str, Any]) -> Path:
    path = tmp_path / "candidate.json"
    path.write_text(json.dumps(document))
    return path


def test_the_cli_publishes_a_new_version_and_refuses_a_reused_or_invalid_one(
    cli_database: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    released = policy.POLICY_VERSION
    assert escalator(["policy", "publish", str(write(tmp_path, candidate()))]) == 0
    assert f"published policy {NEXT}" in capsys.readouterr().out
    assert escalator(["policy", "versions"]) == 0
    listed = capsys.readouterr().out.splitlines()
    assert f"{NEXT} (current)" in listed and released in listed

    assert escalator(["policy", "show"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert (shown["version"], shown["response_targets"]["standard"]["1"]["minutes"]) == (NEXT, 120)

    # A version never changes: publishing it again, or a released one, is refused.
    assert escalator(["policy", "publish", str(write(tmp_path, candidate()))]) == 2
    assert "already published" in capsys.readouterr().err
    assert escalator(["policy", "publish", str(write(tmp_path, candidate(version=released)))]) == 2
    assert "released version" in capsys.readouterr().err
    bad = candidate(version="2027.02-1")
    bad["response_targets"]["standard"]["1"]["minutes"] = -5
    assert escalator(["policy", "publish", str(write(tmp_path, bad))]) == 2
    assert "response_targets.standard.1.minutes" in capsys.readouterr().err
    assert escalator(["policy", "publish", str(write(tmp_path, candidate(version="v" * 65)))]) == 2
    assert "at most 64 characters" in capsys.readouterr().err
    assert escalator(["policy", "publish", str(tmp_path / "missing.json")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert escalator(["policy", "versions"]) == 0
    assert "2027.02-1" not in capsys.readouterr().out


async def test_tickets_filed_after_a_publish_pin_it_and_open_tickets_keep_theirs(
    dev_env: WorkflowEnvironment, tmp_path: Path
) -> None:
    headers = {"Authorization": "Bearer dev-support"}
    async with sqlite_stack(dev_env, tmp_path / "api.db", policy_refresh_seconds=3600) as stack:
        filed = await stack.http.post("/tickets", json=TICKET, headers=headers)
        assert filed.status_code == 201, filed.text
        before = filed.json()["ticket_id"]
        async with stack.sessionmaker() as session:
            await published_policies.publish(
                session, TicketRules.model_validate(candidate()), published_by="test"
            )
        # An API that starts now pins the newest version from its first request on.
        engine = stack.sessionmaker.kw["bind"]
        settings = Settings(
            database_url=engine.url.render_as_string(hide_password=False),
            temporal_address=dev_env.client.service_client.config.target_host,
            policy_refresh_seconds=3600,
        )
        fresh = create_app(settings, engine=engine)
        async with fresh.router.lifespan_context(fresh):
            assert policy.current().version == NEXT
        policy.set_current(None)
        # What the API's and the worker's refresh do every ESCALATOR_POLICY_REFRESH_SECONDS.
        assert await published_policies.install_published(stack.sessionmaker) == NEXT
        after = (await stack.http.post("/tickets", json=TICKET, headers=headers)).json()["ticket_id"]

        old, new = [await settled_state(stack, ticket) for ticket in (before, after)]
        assert old["entitlement"]["policy_version"] == policy.POLICY_VERSION
        assert new["entitlement"]["policy_version"] == NEXT
        standard_sev1 = policy.rules_for(policy.POLICY_VERSION).response_targets["standard"]
        assert [state["clocks"][0]["target"]["minutes"] for state in (old, new)] == [
            standard_sev1[1].minutes,
            120,
        ]
        served = (await stack.http.get("/policy", params={"version": NEXT})).json()
        assert served["response_targets"]["standard"]["1"]["minutes"] == 120

        # A row edited in place is refused when a process loads it.
        async with stack.sessionmaker() as session:
            await session.execute(
                update(PublishedPolicy).values(document=json.dumps(candidate(version="x-edited")))
            )
            await session.commit()
        policy.set_current(None)
        policy._REGISTRY.pop(NEXT)
        with pytest.raises(policy.PolicyMismatch):
            await published_policies.install_published(stack.sessionmaker)
