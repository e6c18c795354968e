"""`escalator policy show [VERSION]`: print a released policy document, as GET /policy serves it."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from workflows import policy


def add_commands(subcommands: Any) -> None:
    command = subcommands.add_parser(
        "policy",
        help="print a released policy document (the same JSON as GET /policy?version=)",
        description="The policy documents this build released (policies/<version>.json).",
    )
    actions = command.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="print one version's document")
    show.add_argument("version", nargs="?", default=None, help="a released version; the current by default")
    actions.add_parser("versions", help="list the released versions, the current one marked")
    command.set_defaults(main=run_policy)


def run_policy(args: argparse.Namespace) -> int:
    if args.policy_command == "versions":
        for version in policy.registered():
            print(f"{version}{' (current)' if version == policy.POLICY_VERSION else ''}")
        return 0
    try:
        rules = policy.rules_for(args.version) if args.version else policy.current()
    except policy.UnknownPolicyVersion:
        known = ", ".join(policy.registered())
        print(f"escalator policy: no policy version {args.version!r}; released: {known}", file=sys.stderr)
        return 2
    print(json.dumps(rules.document(), indent=2, ensure_ascii=False))
    return 0
