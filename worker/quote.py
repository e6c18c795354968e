"""`escalator due`: when a first response is due, as GET /sla/deadline answers it."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from workflows.entitlement import IntakeRefused, quote_response_deadline
from workflows.enums import ProductType, Severity, Tier


def add_commands(subcommands: Any) -> None:
    due = subcommands.add_parser(
        "due",
        help="when is a first response due? (same answer as GET /sla/deadline)",
        description="Quote the first-response deadline under the default policy.",
    )
    due.add_argument("--tier", required=True, choices=[t.value for t in Tier])
    due.add_argument("--severity", required=True, type=int, choices=[1, 2, 3, 4])
    due.add_argument("--product", default=ProductType.PLATFORM.value, choices=[p.value for p in ProductType])
    due.add_argument(
        "--submitted-at",
        required=True,
        type=datetime.fromisoformat,
        help="ISO 8601, e.g. 2026-11-27T16:00; local to --timezone when it has no offset",
    )
    due.add_argument("--timezone", default="UTC", help="IANA zone, e.g. Europe/Berlin")
    due.add_argument("--country", default=None, help="ISO country code for public holidays, e.g. DE")
    due.add_argument("--subdivision", default=None, help="ISO 3166-2 for regional holidays, e.g. GB-ENG")
    due.add_argument("--coverage-24x7", action="store_true", help="the Premium 24/7 option")
    due.set_defaults(main=run_due)


def run_due(args: argparse.Namespace) -> int:
    try:
        quote = quote_response_deadline(
            tier=Tier(args.tier),
            severity=Severity(args.severity),
            product_type=ProductType(args.product),
            submitted_at=args.submitted_at,
            timezone=args.timezone,
            country=args.country,
            subdivision=args.subdivision,
            coverage_24x7=args.coverage_24x7,
        )
    except IntakeRefused as err:
        print(f"escalator due: {err.message}", file=sys.stderr)
        return 2
    print(quote.model_dump_json(indent=2))
    return 0
