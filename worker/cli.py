"""`escalator`: the project's processes and admin commands, one subcommand each.

- escalator up        dev server + migrations + demo catalog, then `escalator worker` and
                      `escalator api` as child processes (one GIL each), restarted if they die,
                      stopped in order (worker.supervisor)
- escalator worker    only the worker, against ESCALATOR_TEMPORAL_ADDRESS (worker.serve)
- escalator api       only the HTTP API
- escalator migrate   bring the read-model schema to the newest revision
- escalator seed      insert the demo catalog and the demo API keys
- escalator due       quote a first-response deadline (worker.quote)
- escalator keys      create, list and revoke API keys (worker.admin)
- escalator customers onboard customers, edit contracts, deactivate customers
- escalator partners  register partners
- escalator contacts  list and replace a customer's or a partner's contacts
- escalator teams     list and set up ConnectSoft's support teams (who each level is)
- escalator policy    print a released policy document (worker.policy_cli)
- escalator whatif    replay a window's tickets under a candidate policy (worker.whatif_cli)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any, Protocol

import policies
from worker import admin, policy_cli, quote, serve, supervisor, whatif_cli


class CommandModule(Protocol):
    """A module of subcommands. `add_commands` adds its parsers to `subcommands` and sets on
    each a default `main`: a function of the parsed arguments that returns the exit status."""

    def add_commands(self, subcommands: Any) -> None: ...


# Where subcommands are registered: one line per module, in the order `--help` lists them.
COMMAND_MODULES: tuple[CommandModule, ...] = (
    supervisor,  # up
    serve,  # worker, api, migrate, seed
    quote,  # due
    admin,  # keys, customers, partners, contacts, teams
    policy_cli,  # policy
    whatif_cli,  # whatif
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="escalator",
        description="Support-ticket escalation orchestrator on Temporal.",
    )
    subcommands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMAND_MODULES:
        module.add_commands(subcommands)
    return parser


def main(argv: list[str] | None = None) -> int:
    # The policy documents, read once as the process starts (workflows/policy.py).
    policies.install()
    args = build_parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.main
    return command(args)


if __name__ == "__main__":
    sys.exit(main())
