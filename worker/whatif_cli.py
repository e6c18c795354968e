"""`escalator whatif`: replay the tickets received in a window under a candidate policy
(issue 20), or `--verify` that the simulation reproduces what the read model recorded.

    escalator whatif --candidate FILE --from 2026-10-01 --to 2027-01-01 [--customer ID]
                     [--group-by tier|severity|customer|line]
    escalator whatif --candidate-contract FILE --customer ID --from DATE --to DATE
    escalator whatif --verify --from DATE --to DATE
    (each with [--from-histories]: read Temporal histories instead of the read model)

Tickets come from the read model (received in the window), and so do their records (the pinned
opening and the actions applied), or from their Temporal histories with `--from-histories`
(api/whatif_service.py). It writes nothing, sends nothing, starts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api import whatif_service as whatif
from api.catalog_schemas import ContractUpdate
from runtime.settings import get_settings
from runtime.temporal import connect_client
from store.catalog import CatalogRefused, ContractNotFound, edited_terms
from store.db import make_engine, make_sessionmaker
from workflows.policy import TicketRules
from workflows.whatif_report import GroupBy


def _instant(text: str) -> datetime:
    at = datetime.fromisoformat(text)
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def add_commands(subcommands: Any) -> None:
    command = subcommands.add_parser(
        "whatif",
        help="replay a window's tickets under a candidate policy, before and after (changes nothing)",
        description="Run every ticket received in [--from, --to) through the ticket machine under "
        "its pinned terms and under a candidate policy document, and print the groups before and "
        "after and the clocks whose outcome flips (the answer of POST /policy/simulate).",
    )
    what = command.add_mutually_exclusive_group(required=True)
    what.add_argument("--candidate", type=Path, help="a policy document (JSON, as GET /policy serves)")
    what.add_argument(
        "--candidate-contract",
        type=Path,
        metavar="FILE",
        help="a contract for --customer (JSON, the body of PUT /customers/{id}/contract)",
    )
    what.add_argument(
        "--verify", action="store_true", help="check the simulation against the read model's timelines"
    )
    command.add_argument("--from", dest="start", type=_instant, required=True, help="ISO 8601, UTC if naive")
    command.add_argument("--to", dest="end", type=_instant, required=True, help="ISO 8601, exclusive")
    command.add_argument("--customer", default=None, help="only this customer's tickets")
    command.add_argument("--group-by", type=GroupBy, choices=list(GroupBy), default=None)
    command.add_argument(
        "--from-histories",
        action="store_true",
        help="replay the tickets from their Temporal histories, not the read model's record of them",
    )
    command.set_defaults(main=run_whatif)


def load_candidate(path: Path, command: str) -> TicketRules | None:
    """The candidate document, or None after naming each field that fails validation."""
    try:
        return TicketRules.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as err:
        print(f"escalator {command}: cannot read {path}: {err.strerror}", file=sys.stderr)
    except ValidationError as err:
        for error in err.errors():
            field = ".".join(str(part) for part in error["loc"]) or "(document)"
            print(f"escalator {command}: {path}: {field}: {error['msg']}", file=sys.stderr)
    return None


def load_contract(path: Path) -> ContractUpdate | None:
    """A candidate contract body, or None after naming each field that fails validation."""
    try:
        return ContractUpdate.model_validate_json(path.read_text(encoding="utf-8"))
    except OSError as err:
        print(f"escalator whatif: cannot read {path}: {err.strerror}", file=sys.stderr)
    except ValidationError as err:
        for error in err.errors():
            field = ".".join(str(part) for part in error["loc"]) or "(contract)"
            print(f"escalator whatif: {path}: {field}: {error['msg']}", file=sys.stderr)
    return None


def run_whatif(args: argparse.Namespace) -> int:
    candidate: TicketRules | ContractUpdate | None = None
    if args.candidate is not None:
        candidate = load_candidate(args.candidate, "whatif")
    elif args.candidate_contract is not None:
        if args.customer is None:
            print(
                "escalator whatif: --candidate-contract is one customer's: add --customer ID", file=sys.stderr
            )
            return 2
        candidate = load_contract(args.candidate_contract)
    if candidate is None and not args.verify:
        return 2
    return asyncio.run(_run(args, candidate))


async def _candidate(
    sessions: async_sessionmaker[AsyncSession],
    args: argparse.Namespace,
    candidate: TicketRules | ContractUpdate,
) -> whatif.Candidate | None:
    if isinstance(candidate, TicketRules):
        return whatif.Candidate(rules=candidate)
    async with sessions() as session:
        try:
            terms = await edited_terms(session=session, customer_id=args.customer, **candidate.model_dump())
        except ContractNotFound:
            print(f"escalator whatif: no customer {args.customer!r}", file=sys.stderr)
            return None
        except CatalogRefused as err:
            print(
                f"escalator whatif: the candidate contract: {err.detail} (rule: {err.rule})", file=sys.stderr
            )
            return None
    return whatif.Candidate(contract=terms)


async def _run(args: argparse.Namespace, candidate: TicketRules | ContractUpdate | None) -> int:
    settings = get_settings()
    engine = make_engine(settings.database_url)
    try:
        client = await connect_client(settings) if args.from_histories else None
        sessions = make_sessionmaker(engine)
        records = await whatif.recorded_tickets(
            client, sessions, args.start, args.end, args.customer, from_histories=args.from_histories
        )
        tickets = records.tickets
        if records.unrecorded:
            print(
                f"escalator whatif: {len(records.unrecorded)} tickets of the window have no record in the "
                "read model (filed before it kept one) and are left out: --from-histories reads them",
                file=sys.stderr,
            )
        if candidate is None:
            differences = await whatif.verify(tickets, sessions)
            for line in differences:
                print(line)
            print(f"{len(tickets)} tickets, {len(differences)} differ from the read model")
            return 1 if differences else 0
        chosen = await _candidate(sessions, args, candidate)
        if chosen is None:
            return 2
        answer = whatif.compare(tickets, chosen, args.group_by)
        if records.unrecorded:
            answer["unrecorded"] = len(records.unrecorded)
        print(json.dumps(answer, indent=2, default=str))
        return 0
    finally:
        await engine.dispose()
