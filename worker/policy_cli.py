"""`escalator policy show [VERSION]`, `versions` and `publish FILE`.

`show` prints a policy document, as GET /policy serves it; `versions` lists the released and
the published ones; `publish` makes a candidate document (validated as POST /policy/simulate
validates it) the version that tickets filed from then on pin. Open tickets keep theirs.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from runtime.settings import get_settings
from store import published_policies
from worker.admin import migrated_session
from workflows import policy


def add_commands(subcommands: Any) -> None:
    command = subcommands.add_parser(
        "policy",
        help="show, list and publish policy documents (the same JSON as GET /policy?version=)",
        description="The policy documents: released by this build (policies/<version>.json) "
        "or published by an admin (in the database).",
    )
    actions = command.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="print one version's document")
    show.add_argument("version", nargs="?", default=None, help="a known version; the current by default")
    actions.add_parser("versions", help="list the released and published versions, the current one marked")
    publish = actions.add_parser(
        "publish", help="make a candidate document the policy of tickets filed from now on"
    )
    publish.add_argument(
        "file", type=Path, metavar="FILE", help="a policy document (JSON) with a new version"
    )
    command.set_defaults(main=run_policy)


def run_policy(args: argparse.Namespace) -> int:
    if args.policy_command == "publish":
        try:
            text = args.file.read_text(encoding="utf-8")
        except OSError as err:
            print(f"escalator policy publish: cannot read {args.file}: {err.strerror}", file=sys.stderr)
            return 2
        return asyncio.run(_publish(args.file, text))
    return asyncio.run(_run(args))


async def _load_published() -> None:
    """Register the published versions (the database is migrated first)."""
    async with migrated_session(get_settings()) as session:
        await published_policies.install_from(session)


async def _run(args: argparse.Namespace) -> int:
    try:
        await _load_published()
    except policy.PolicyMismatch as err:
        print(f"escalator policy: a published version was edited in place: {err}", file=sys.stderr)
        return 2
    if args.policy_command == "versions":
        current = policy.current_version()
        for version in policy.registered():
            print(f"{version}{' (current)' if version == current else ''}")
        return 0
    try:
        rules = policy.rules_for(args.version) if args.version else policy.current()
    except policy.UnknownPolicyVersion:
        known = ", ".join(policy.registered())
        print(f"escalator policy: no policy version {args.version!r}; known: {known}", file=sys.stderr)
        return 2
    print(json.dumps(rules.document(), indent=2, ensure_ascii=False))
    return 0


async def _publish(path: Path, text: str) -> int:
    try:
        rules = published_policies.parse(text)
        async with migrated_session(get_settings()) as session:
            row = await published_policies.publish(session, rules, published_by=f"cli:{getpass.getuser()}")
    except published_policies.PublishRefused as err:
        print(f"escalator policy publish: {path} refused: {err}", file=sys.stderr)
        return 2
    print(
        f"published policy {row.version} (fingerprint {row.fingerprint}): tickets filed from now on pin it, "
        f"once the API and the worker have loaded it (within ESCALATOR_POLICY_REFRESH_SECONDS); "
        "open tickets keep theirs"
    )
    return 0
