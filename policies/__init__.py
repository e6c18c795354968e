"""The released policy documents, one JSON file per version (workflows/policy.py `TicketRules`).

`install()` reads them into the registry of workflows/policy.py once, at the start of a
process: the worker, the API, the CLI and the tests call it. Never at the import of a workflow
module: the workflow reads no files (tests/test_workflow_determinism.py). Each document must
have the fingerprint this build released for its version, or the process refuses to start.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workflows import policy
from workflows.policy import TicketRules

DIRECTORY = Path(__file__).parent
SCHEMA = DIRECTORY / "schema.json"


def paths() -> list[Path]:
    return sorted(path for path in DIRECTORY.glob("*.json") if path != SCHEMA)


def load(path: Path) -> TicketRules:
    return TicketRules.model_validate_json(path.read_text(encoding="utf-8"))


def install() -> None:
    """Register every released version (idempotent)."""
    known = policy.registered()
    for path in paths():
        if path.stem not in known:
            rules = load(path)
            if rules.version != path.stem:
                raise policy.PolicyMismatch(f"{path.name} holds policy version {rules.version!r}.")
            policy.register(rules)
    missing = set(policy.RELEASED) - set(policy.registered())
    if missing:
        raise policy.UnknownPolicyVersion(f"No document for released policy versions {sorted(missing)}.")


def schema() -> dict[str, Any]:
    """The JSON schema of a policy document (policies/schema.json is this, committed)."""
    return TicketRules.model_json_schema()


def schema_text() -> str:
    return json.dumps(schema(), indent=2, sort_keys=True) + "\n"
