"""The deployment files agree with the code and with DESIGN.md section 8.

Most tests read files (docker-compose.yml, Dockerfile, Makefile, .ci/run). The dev-server
tests start the real `temporal` binary from the venv, as `escalator up` does.
"""

from __future__ import annotations

import asyncio
import contextlib
import fnmatch
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import AliasChoices
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest
from temporalio.client import Client

from api.main import create_app
from bench.stack_bench import free_port
from runtime.settings import Settings
from store.keys import DEMO_KEYS
from tests.drill_support import until
from worker import cli, demo, supervisor
from worker.devserver import DYNAMIC_CONFIG, SEARCH_ATTRIBUTE_TYPES, DevServer, indexed_value_type
from workflows import search_attributes

ROOT = Path(__file__).resolve().parents[1]
BIN_DIR = Path(sys.executable).parent

# DESIGN.md section 8, copied by hand on purpose: the code must match the document.
DESIGN_SEARCH_ATTRIBUTES = {
    "TicketStatus": "Keyword",
    "SupportTier": "Keyword",
    "ProductType": "Keyword",
    "CustomerId": "Keyword",
    "PartnerId": "Keyword",
    "OwningLine": "Keyword",
    "TicketSeverity": "Int",
    "EscalationLevel": "Int",
    "SlaBreached": "Bool",
    "ResponseDueAt": "Datetime",
    # Issue 6: the partner's own breaches, apart from ConnectSoft's.
    "PartnerSlaBreached": "Bool",
    # Issue 19 (DESIGN.md §13): a ticket's incident; an incident's own id and status.
    "IncidentId": "Keyword",
    "IncidentStatus": "Keyword",
}


def compose_text() -> str:
    return (ROOT / "docker-compose.yml").read_text()


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(compose_text())
    return loaded


def services() -> dict[str, Any]:
    found: dict[str, Any] = compose()["services"]
    return found


def shell_script(service: str) -> str:
    """The `sh -ec` script of a one-shot service, as the container runs it (`$$` is `$`)."""
    found = services()[service]
    assert found["entrypoint"] == ["/bin/sh", "-ec"], service
    command = found["command"]
    script = command if isinstance(command, str) else "\n".join(command)
    return script.replace("$$", "$")


def script_commands(script: str, program: str) -> list[list[str]]:
    """Every call of `program` in a script, as words: one per line or per `||` alternative."""
    calls = []
    for line in script.splitlines():
        for part in re.split(r"\|\||&&|;|\{|\}", line):
            words = shlex.split(part.strip())
            while words and words[0] in SHELL_KEYWORDS:
                words = words[1:]
            if words and words[0] == program:
                calls.append(words)
    return calls


SHELL_KEYWORDS = {"until", "while", "if", "then", "do", "!"}


def parse_search_attribute_creates(script: str) -> dict[str, str]:
    """name -> type from the script's `temporal operator search-attribute create` lines."""
    registered: dict[str, str] = {}
    for words in script_commands(script, "temporal"):
        if words[1:4] != ["operator", "search-attribute", "create"]:
            continue
        types = [words[i + 1] for i, word in enumerate(words) if word == "--type"]
        names = [words[i + 1] for i, word in enumerate(words) if word == "--name"]
        # The CLI pairs --name and --type by position and drops an unpaired --name.
        assert len(names) == len(types) == 1, f"one attribute per create command: {words}"
        assert names[0] not in registered, f"{names[0]} registered twice"
        registered[names[0]] = types[0]
    return registered


def settings_env_names() -> set[str]:
    """Every environment variable Settings reads: ESCALATOR_<FIELD>, or a field's aliases."""
    names: set[str] = set()
    for field_name, field in Settings.model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names |= {choice for choice in alias.choices if isinstance(choice, str)}
        else:
            names.add(f"ESCALATOR_{field_name.upper()}")
    return names


def depends(service: str) -> dict[str, str]:
    """service -> the condition it waits for, for each service this one depends on."""
    needs = services()[service].get("depends_on", {})
    assert isinstance(needs, dict), f"{service}: depends_on must name a condition for each"
    return {name: spec["condition"] for name, spec in needs.items()}


def package_version() -> str:
    version: str = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    return version


def make_rules(makefile: str) -> dict[str, tuple[list[str], list[str]]]:
    """target -> (prerequisites, recipe lines), for the simple Makefile we write."""
    rules: dict[str, tuple[list[str], list[str]]] = {}
    current: list[str] = []
    for line in makefile.splitlines():
        if line.startswith("\t"):
            for target in current:
                rules[target][1].append(line.strip())
            continue
        match = re.match(r"^([^\s:=#][^:=]*):(?!=)\s*(.*)$", line)
        if match:
            current = match.group(1).split()
            for target in current:
                rules[target] = (match.group(2).split(), [])
        elif line.strip():
            current = []
    return rules


def make_variables(makefile: str) -> dict[str, str]:
    found = re.findall(r"^(\w+)\s*[:?]?=\s*(.*)$", makefile, flags=re.MULTILINE)
    return {name: value.strip() for name, value in found}


def expand(text: str, variables: dict[str, str]) -> str:
    for _ in range(5):
        text = re.sub(r"\$\((\w+)\)", lambda m: variables.get(m.group(1), m.group(0)), text)
    return text


# --- Search attributes -----------------------------------------------------------------------


def test_devserver_search_attributes_are_those_of_the_design() -> None:
    assert SEARCH_ATTRIBUTE_TYPES == DESIGN_SEARCH_ATTRIBUTES


def test_workflow_search_attribute_keys_have_the_registered_types() -> None:
    typed = {key.name: key.indexed_value_type for key in search_attributes.ALL_KEYS}
    assert typed == {name: indexed_value_type(kind) for name, kind in SEARCH_ATTRIBUTE_TYPES.items()}


def test_compose_registers_every_search_attribute_of_the_single_list_in_code() -> None:
    registered = parse_search_attribute_creates(shell_script("temporal-setup"))
    assert registered == SEARCH_ATTRIBUTE_TYPES == DESIGN_SEARCH_ATTRIBUTES
    assert set(registered) == {key.name for key in search_attributes.ALL_KEYS}


def test_dev_server_command_registers_search_attributes_on_a_wal_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "temporal.db"
    command = DevServer(db_filename=db, port=7300, ui_port=8300, executable=Path("temporal")).command()
    joined = " ".join(command)
    assert command[:3] == ["temporal", "server", "start-dev"]
    assert f"--db-filename {db}" in joined
    assert "--ip 127.0.0.1 --port 7300 --ui-port 8300" in joined
    assert "--sqlite-pragma journal_mode=WAL --sqlite-pragma synchronous=NORMAL" in joined
    assert "--namespace default" in joined
    for name, kind in DESIGN_SEARCH_ATTRIBUTES.items():
        assert f"--search-attribute {name}={kind}" in joined


def test_dev_server_default_is_the_documented_local_endpoint() -> None:
    server = supervisor.dev_server_for(Settings())
    assert (server.address, server.ui_url) == ("127.0.0.1:7233", "http://127.0.0.1:8233")
    assert server.db_filename == Path(".escalator/temporal.db")


def test_banner_prints_the_demo_keys_and_an_authenticated_sample(capsys: pytest.CaptureFixture[str]) -> None:
    settings = Settings()
    demo.print_banner(settings, supervisor.dev_server_for(settings))
    printed = capsys.readouterr().out

    assert printed.startswith("\nEscalator is up.")
    lines = {line.split()[0]: line for line in printed.splitlines() if line.startswith("  dev-")}
    assert (
        list(lines)
        == list(DEMO_KEYS)
        == [
            "dev-admin",
            "dev-support",
            "dev-partner-northwind",
            "dev-customer-acme",
        ]
    )
    assert "admin" in lines["dev-admin"]
    assert "Level 3" in lines["dev-support"]
    assert "partner northwind" in lines["dev-partner-northwind"]
    assert "customer acme" in lines["dev-customer-acme"]
    assert "curl -s -X POST http://127.0.0.1:8000/tickets -H 'authorization: Bearer dev-support'" in printed
    assert demo.SAMPLE_TICKET in printed


# --- docker-compose.yml and the image ----------------------------------------------------------

ESCALATOR_SERVICES = ("migrate", "worker", "api")
ONE_SHOTS = ("temporal-schema", "temporal-setup", "migrate")
# An exact release: major.minor.patch (or major.minor for PostgreSQL), optionally a variant.
PINNED_TAG = re.compile(r"^[a-z0-9./-]+:\d+\.\d+(\.\d+)?(-[a-z0-9.-]+)?$")


def test_compose_runs_postgres_temporal_its_setup_the_ui_the_api_and_workers() -> None:
    found = services()
    assert set(found) == {
        "postgres",
        "temporal-schema",
        "temporal",
        "temporal-setup",
        "temporal-ui",
        *ESCALATOR_SERVICES,
    }
    assert found["postgres"]["image"].startswith("postgres:16.")
    assert found["temporal"]["image"].startswith("temporalio/server:")
    assert found["temporal"]["environment"]["DB"] == "postgres12"
    assert found["temporal"]["environment"]["POSTGRES_SEEDS"] == "postgres"
    for one_shot in ("temporal-schema", "temporal-setup"):
        assert found[one_shot]["image"].startswith("temporalio/admin-tools:")
    # The admin tools match the server they set up.
    assert found["temporal-schema"]["image"].split(":")[1] == found["temporal"]["image"].split(":")[1]
    assert found["temporal-ui"]["image"].startswith("temporalio/ui:")
    assert any(str(port).endswith("8233:8080") for port in found["temporal-ui"]["ports"])
    assert any(str(port).endswith("8000:8000") for port in found["api"]["ports"])


def test_services_start_in_health_order() -> None:
    """postgres healthy -> schema done -> server healthy -> setup done -> API and workers."""
    found = services()
    assert depends("temporal-schema") == {"postgres": "service_healthy"}
    assert depends("temporal") == {"temporal-schema": "service_completed_successfully"}
    assert depends("temporal-setup") == {"temporal": "service_healthy"}
    assert depends("temporal-ui") == {"temporal-setup": "service_completed_successfully"}
    assert depends("migrate") == {"postgres": "service_healthy"}
    for name in ("worker", "api"):
        assert depends(name) == {
            "migrate": "service_completed_successfully",
            "temporal-setup": "service_completed_successfully",
        }
    # Each condition can be met: `healthy` needs a healthcheck, `completed` a one-shot.
    for name in found:
        for needed, condition in depends(name).items():
            if condition == "service_healthy":
                assert "healthcheck" in found[needed], f"{name} waits for {needed} to be healthy"
            else:
                assert condition == "service_completed_successfully", (name, needed, condition)
                assert needed in ONE_SHOTS, f"{name} waits for {needed}, which never completes"
    for one_shot in ONE_SHOTS:
        assert found[one_shot]["restart"] in ("no", "on-failure:5"), one_shot
    assert "healthcheck" in found["api"]


def test_every_image_is_pinned_to_an_exact_release() -> None:
    for name, service in services().items():
        image = service["image"]
        assert PINNED_TAG.match(image), f"{name}: {image} is not an exact release"
        assert "latest" not in image
    dockerfile = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert bases and all(re.match(r"^python:3\.11\.\d+-slim-\w+$", base) for base in bases), bases


def test_the_app_image_is_built_here_and_tagged_with_the_package_version() -> None:
    for name in ESCALATOR_SERVICES:
        service = services()[name]
        assert service["build"] == "."
        assert service["image"] == f"escalator:{package_version()}"


def test_the_dockerfile_runs_as_a_non_root_user() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    users = re.findall(r"^USER\s+(\S+)", dockerfile, flags=re.MULTILINE)
    assert users and users[-1] not in ("root", "0"), users
    assert re.search(rf"useradd .*{re.escape(users[-1])}$", dockerfile, flags=re.MULTILINE)


def test_secrets_are_required_variables_without_defaults() -> None:
    text = compose_text()
    interpolated = re.findall(r"(?<!\$)\$\{([^}]*)\}", text)
    assert interpolated
    for expression in interpolated:
        assert re.match(r"^[A-Z_]+:\?\S.*$", expression), f"${{{expression}}} must be ${{VAR:?message}}"
    required = {expression.split(":?")[0] for expression in interpolated}
    assert required == {"POSTGRES_PASSWORD", "ESCALATOR_CODEC_KEYS", "ESCALATOR_CODEC_KEY_ID"}
    # Every password-like value anywhere comes from one of them.
    for name, service in services().items():
        for key, value in (service.get("environment") or {}).items():
            secret = re.search(r"PASSWORD|PWD|KEYS?$|SECRET|TOKEN$", key)
            if secret and key != "TEMPORAL_CODEC_PASS_ACCESS_TOKEN":
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", str(value)), f"{name}.{key}"
        url = (service.get("environment") or {}).get("ESCALATOR_DATABASE_URL", "")
        if url:
            assert "${POSTGRES_PASSWORD:?" in url, f"{name}: the database URL's password must be required"


def test_escalator_services_set_only_settings_the_app_reads() -> None:
    known = settings_env_names()
    for name in ESCALATOR_SERVICES:
        env = services()[name]["environment"]
        unknown = set(env) - known
        assert not unknown, f"{name} sets variables that Settings ignores: {unknown}"
        assert env["ESCALATOR_TEMPORAL_ADDRESS"] == "temporal:7233"
        setup_env = services()["temporal-setup"]["environment"]
        assert env["ESCALATOR_TEMPORAL_NAMESPACE"] == setup_env["TEMPORAL_NAMESPACE"]
        assert env["ESCALATOR_DATABASE_URL"].startswith("postgresql+asyncpg://escalator:")
        assert env["ESCALATOR_DATABASE_URL"].endswith("@postgres:5432/escalator")
        # History is encrypted in production.
        assert {"ESCALATOR_CODEC_KEYS", "ESCALATOR_CODEC_KEY_ID"} <= set(env)
    # And every ESCALATOR_* name written anywhere in the file is a setting.
    written = set(re.findall(r"\bESCALATOR_[A-Z_]+", compose_text()))
    assert written <= known, written - known
    api_env = services()["api"]["environment"]
    assert (api_env["ESCALATOR_API_HOST"], str(api_env["ESCALATOR_API_PORT"])) == ("0.0.0.0", "8000")


def test_two_worker_replicas_share_the_task_queue() -> None:
    worker = services()["worker"]
    assert worker["deploy"]["replicas"] == 2
    # Replicas cannot share a container name or a host port.
    assert "container_name" not in worker and "ports" not in worker
    assert worker["command"] == ["worker"]


def test_the_ui_decodes_through_the_api_codec_from_an_allowed_origin() -> None:
    found = services()
    ui_env = found["temporal-ui"]["environment"]
    api_host_port = next(str(p) for p in found["api"]["ports"] if str(p).endswith(":8000"))
    api_origin = "http://" + api_host_port.rsplit(":", 1)[0]
    # The browser calls it, so it is the API as published on the host, not `api:8000`.
    assert ui_env["TEMPORAL_CODEC_ENDPOINT"] == f"{api_origin}/codec"
    ui_host_port = next(str(p) for p in found["temporal-ui"]["ports"] if str(p).endswith(":8080"))
    ui_origin = "http://" + ui_host_port.rsplit(":", 1)[0]
    assert ui_origin in Settings().codec_cors_origins


def test_the_schema_step_creates_and_migrates_both_temporal_databases() -> None:
    calls = script_commands(shell_script("temporal-schema"), "temporal-sql-tool")
    assert calls
    for words in calls:
        assert words[words.index("--plugin") + 1] == "postgres12"
        assert words[words.index("--ep") + 1] == "postgres"
        assert words[words.index("-u") + 1] == services()["postgres"]["environment"]["POSTGRES_USER"]
        assert {"create", "setup-schema", "update-schema"} & set(words), words
    assert {word for words in calls for word in words} >= {"create", "setup-schema", "update-schema"}
    script = shell_script("temporal-schema")
    assert "schema temporal /etc/temporal/schema/postgresql/v12/temporal/versioned" in script
    assert "schema temporal_visibility /etc/temporal/schema/postgresql/v12/visibility/versioned" in script
    server_env = services()["temporal"]["environment"]
    assert (server_env["DBNAME"], server_env["VISIBILITY_DBNAME"]) == ("temporal", "temporal_visibility")
    # temporal-sql-tool reads the password from SQL_PASSWORD, the server from POSTGRES_PWD.
    assert services()["temporal-schema"]["environment"]["SQL_PASSWORD"] == server_env["POSTGRES_PWD"]


async def test_every_temporal_cli_command_of_the_setup_step_exists() -> None:
    """Each `temporal ...` command the admin tools run is one the CLI knows (`--help` succeeds)."""
    calls = script_commands(shell_script("temporal-setup"), "temporal")
    paths = {tuple(word for word in words[1:4] if not word.startswith("-")) for words in calls}
    assert ("operator", "cluster", "health") in paths and ("operator", "namespace", "create") in paths

    async def temporal(*args: str) -> bytes:
        ran = await asyncio.create_subprocess_exec(
            str(BIN_DIR / "temporal"), *args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        output, _ = await ran.communicate()
        assert ran.returncode == 0, (args, output.decode()[-300:])
        return output

    global_options = await temporal("options")  # --namespace, --address, ... for every command
    for path in sorted(paths):
        output = await temporal(*path, "--help")
        assert b"Usage:" in output, path
        used = [words for words in calls if tuple(words[1:4]) == path]
        flags = {word.split("=")[0] for words in used for word in words if word.startswith("--")}
        for flag in flags:
            assert flag.encode() in output + global_options, f"temporal {' '.join(path)} has no {flag}"


def test_image_and_compose_commands_are_real_cli_subcommands() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^RUN pip install \.", dockerfile, flags=re.MULTILINE)
    entrypoint = re.search(r"^ENTRYPOINT (\[.*\])$", dockerfile, flags=re.MULTILINE)
    default_command = re.search(r"^CMD (\[.*\])$", dockerfile, flags=re.MULTILINE)
    assert entrypoint and default_command
    assert yaml.safe_load(entrypoint.group(1)) == ["escalator"]
    commands = [yaml.safe_load(default_command.group(1))]
    commands += [services()[name]["command"] for name in ESCALATOR_SERVICES]
    parser = cli.build_parser()
    for command in commands:
        # Exits (fails the test) on an unknown subcommand.
        assert parser.parse_args(command).command == command[0], command
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"]["escalator"] == "worker.cli:main"
    # The API's healthcheck asks a route the API has.
    probe = " ".join(services()["api"]["healthcheck"]["test"])
    assert "http://127.0.0.1:8000/healthz" in probe
    assert "/healthz" in create_app(Settings()).openapi()["paths"]


def test_installed_package_ships_the_alembic_migrations() -> None:
    """The image runs `pip install .`; `escalator migrate` needs these files in the wheel."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages = set(setuptools.get("packages", []))
    package_data = setuptools.get("package-data", {})
    migrations = ROOT / "store" / "migrations"
    scripts = [p for p in migrations.rglob("*") if p.is_file() and p.suffix in {".py", ".mako"}]
    assert scripts
    missing = []
    for script in scripts:
        module_dir = ".".join(script.parent.relative_to(ROOT).parts)
        in_package = module_dir in packages
        relative = script.relative_to(ROOT / "store").as_posix()
        as_data = any(fnmatch.fnmatch(relative, p) for p in package_data.get("store", []))
        if not (in_package or as_data):
            missing.append(relative)
    assert not missing, f"not installed by `pip install .` (pyproject.toml [tool.setuptools]): {missing}"


def test_dockerignore_keeps_local_state_out_of_the_image() -> None:
    ignored = (ROOT / ".dockerignore").read_text().split()
    for path in (".venv", ".escalator", ".git"):
        assert path in ignored


# --- Makefile and CI ---------------------------------------------------------------------------


def test_make_up_and_test_bootstrap_the_venv_from_pyproject() -> None:
    makefile = (ROOT / "Makefile").read_text()
    rules = make_rules(makefile)
    variables = make_variables(makefile)

    def requires(target: str, seen: frozenset[str] = frozenset()) -> set[str]:
        prerequisites = {expand(p, variables) for p in rules.get(target, ([], []))[0]}
        for prerequisite in prerequisites - seen:
            prerequisites |= requires(prerequisite, seen | {target})
        return prerequisites

    bootstrap = [t for t in (expand(t, variables) for t in rules) if t.startswith(".venv/")]
    assert len(bootstrap) == 1, f"one stamp rule under .venv/, got {bootstrap}"
    stamp = bootstrap[0]
    stamp_rule = next(rule for target, rule in rules.items() if expand(target, variables) == stamp)
    assert "pyproject.toml" in stamp_rule[0], "the venv must re-install when pyproject.toml changes"
    recipe = expand("\n".join(stamp_rule[1]), variables)
    assert "-m venv .venv" in recipe
    assert "pip install" in recipe and "-e '.[dev]'" in recipe

    for target in ("up", "test"):
        assert stamp in requires(target), f"make {target} does not bootstrap .venv"
    assert expand("\n".join(rules["up"][1]), variables) == ".venv/bin/escalator up"
    test_recipe = expand("\n".join(rules["test"][1] + rules["lint"][1]), variables)
    for step in (
        ".venv/bin/ruff check .",
        ".venv/bin/ruff format --check .",
        ".venv/bin/mypy workflows policies activities store runtime sinks api worker",
        ".venv/bin/pytest -q",
    ):
        assert step in test_recipe


def test_ci_runs_make_test_with_postgres() -> None:
    run = ROOT / ".ci" / "run"
    assert os.access(run, os.X_OK)
    script = run.read_text()
    assert script.startswith("#!/usr/bin/env bash") or script.startswith("#!/bin/bash")
    assert "set -euo pipefail" in script
    assert "ESCALATOR_TEST_POSTGRES_URL" in script
    assert script.strip().splitlines()[-1] == "make test"


# --- The dev server, for real ------------------------------------------------------------------


def dev_server(db: Path, **overrides: Any) -> DevServer:
    return DevServer(
        db_filename=db,
        port=free_port(),
        ui_port=free_port(),
        startup_timeout=60,
        **overrides,
    )


async def registered_search_attributes(address: str, namespace: str = "default") -> dict[str, str]:
    client = await Client.connect(address)
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    return {
        name: IndexedValueType.Name(kind)
        for name, kind in listed.custom_attributes.items()
        if name in DESIGN_SEARCH_ATTRIBUTES
    }


def expected_registered() -> dict[str, str]:
    return {
        name: IndexedValueType.Name(indexed_value_type(kind))
        for name, kind in DESIGN_SEARCH_ATTRIBUTES.items()
    }


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


async def test_dev_server_registers_search_attributes_and_restarts_on_the_same_file(tmp_path: Path) -> None:
    db = tmp_path / "temporal.db"
    for _ in range(2):  # the second start reuses the file, like a second `make up`
        server = dev_server(db)
        async with server:
            assert server.running
            assert await registered_search_attributes(server.address) == expected_registered()
        assert not server.running
        assert port_is_free(server.port)
    assert db.exists()


async def test_dev_server_adds_search_attributes_missing_from_an_existing_file(tmp_path: Path) -> None:
    # `start-dev --search-attribute` skips new attributes when the file already exists.
    db = tmp_path / "temporal.db"
    async with dev_server(db, search_attributes={"TicketStatus": "Keyword"}) as server:
        assert await registered_search_attributes(server.address) == {
            "TicketStatus": "INDEXED_VALUE_TYPE_KEYWORD"
        }
    async with dev_server(db) as server:
        assert await registered_search_attributes(server.address) == expected_registered()


async def test_compose_setup_step_makes_the_namespace_and_search_attributes_and_reruns(
    tmp_path: Path,
) -> None:
    """The temporal-setup script itself, run by sh against a dev server, as the container runs it."""
    async with dev_server(tmp_path / "temporal.db", search_attributes={}) as server:
        env = {
            **os.environ,
            "PATH": f"{BIN_DIR}{os.pathsep}{os.environ['PATH']}",
            **services()["temporal-setup"]["environment"],
            "TEMPORAL_ADDRESS": server.address,
            # A namespace the dev server does not have, so the script must create it.
            "TEMPORAL_NAMESPACE": "escalator-compose",
        }
        for _ in range(2):
            job = await asyncio.create_subprocess_exec(
                *services()["temporal-setup"]["entrypoint"],
                shell_script("temporal-setup"),
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
            output, _ = await job.communicate()
            assert job.returncode == 0, output.decode()
        registered = await registered_search_attributes(server.address, "escalator-compose")
        assert registered == expected_registered()


# --- `escalator up`, for real ---------------------------------------------------------------------


async def read_output(process: asyncio.subprocess.Process, lines: list[str], up: asyncio.Event) -> None:
    """Collect what `escalator up` prints; set `up` when its banner says the stack is up."""
    assert process.stdout is not None
    async for raw in process.stdout:
        line = raw.decode(errors="replace")
        lines.append(line)
        if line.startswith("Escalator is up."):
            up.set()


def up_environment(tmp_path: Path, api_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "ESCALATOR_DATA_DIR": str(tmp_path),
        "ESCALATOR_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'escalator.db'}",
        "ESCALATOR_TEMPORAL_ADDRESS": f"127.0.0.1:{free_port()}",
        "ESCALATOR_TEMPORAL_UI_PORT": str(free_port()),
        "ESCALATOR_API_PORT": str(api_port),
        "ESCALATOR_LOG_LEVEL": "WARNING",
        "PYTHONPATH": str(ROOT),
    }


@dataclass
class RunningUp:
    """An `escalator up` started by a test, with what it prints collected as it goes."""

    process: asyncio.subprocess.Process
    lines: list[str]
    up: asyncio.Event
    reader: asyncio.Task[None]

    @property
    def printed(self) -> str:
        return "".join(self.lines)

    async def finish(self) -> None:
        """Kill it if it still runs; wait (bounded) until its output is read to the end."""
        if self.process.returncode is None:
            self.process.kill()
            await self.process.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.reader, 60)


async def start_up(tmp_path: Path, env: dict[str, str]) -> RunningUp:
    lines: list[str] = []
    up = asyncio.Event()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "worker",
        "up",
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    return RunningUp(process, lines, up, asyncio.create_task(read_output(process, lines, up)))


def child_processes(pid: int) -> dict[int, list[str]]:
    """The direct children of `pid` and their command lines, from /proc."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found[int(entry.name)] = (entry / "cmdline").read_bytes().decode().split("\0")
    return found


def mapped_files(pid: int) -> str:
    """What a process has mapped (its shared libraries among them), from /proc."""
    return Path(f"/proc/{pid}/maps").read_text()


def process_alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def stack_processes(up_pid: int) -> dict[str, int]:
    """`escalator up`'s children by role: the worker, the API and the Temporal dev server."""
    roles: dict[str, int] = {}
    for pid, args in child_processes(up_pid).items():
        words = [word for word in args if word]
        if words[-3:] in (["-m", "worker", "worker"], ["-m", "worker", "api"]):
            assert words[-1] not in roles, f"two {words[-1]} processes: {roles}, {pid} {words}"
            roles[words[-1]] = pid
        elif any(Path(word).name == "temporal" for word in words[:1]):
            roles["temporal"] = pid
    return roles


async def wait_gone(pids: list[int], seconds: float) -> list[int]:
    """The pids still alive after waiting up to `seconds` for them to exit.

    They are grandchildren, so waitpid cannot wait for them; a pidfd (Linux) becomes readable
    when its process exits, so the wait is on that event, not a poll.
    """
    loop = asyncio.get_running_loop()

    async def exited(pid: int) -> None:
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:
            return
        try:
            done: asyncio.Future[None] = loop.create_future()
            loop.add_reader(fd, lambda: done.done() or done.set_result(None))
            try:
                await done
            finally:
                loop.remove_reader(fd)
        finally:
            os.close(fd)

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await asyncio.gather(*(exited(pid) for pid in pids))
    return [pid for pid in pids if process_alive(pid)]


async def test_escalator_up_stops_on_ctrl_c_and_resumes_open_tickets_on_restart(tmp_path: Path) -> None:
    api_port = free_port()
    env = up_environment(tmp_path, api_port)
    ticket: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=10) as http:
        for run in range(2):
            running = await start_up(tmp_path, env)
            process = running.process
            try:
                # The banner is printed once the API answers and the worker polls.
                await asyncio.wait_for(running.up.wait(), 60)
                # The API and the worker are processes of their own (one GIL each), children
                # of `escalator up` beside the dev server.
                children = stack_processes(process.pid)
                assert set(children) == {"worker", "api", "temporal"}, child_processes(process.pid)
                assert len(set(children.values())) == 3
                # The API serves on uvloop and httptools (docs/benchmarks.md).
                api_libraries = mapped_files(children["api"])
                assert "/uvloop/" in api_libraries and "/httptools/" in api_libraries
                if run == 0:
                    # The banner's own sample: the demo support key files it.
                    filed = await http.post(
                        "/tickets",
                        content=demo.SAMPLE_TICKET,
                        headers={"content-type": "application/json", "authorization": "Bearer dev-support"},
                    )
                    assert filed.is_success, filed.text
                    assert filed.headers["content-type"] == "application/json"
                    ticket = filed.json()
                    # Errors are still problems, whatever serializes the answers.
                    refused = await http.get("/tickets/nope", headers={"authorization": "Bearer dev-support"})
                    assert refused.status_code in (404, 422)
                    assert refused.headers["content-type"] == "application/problem+json"
                    assert refused.json()["status"] == 404
                else:
                    # Live state comes from the workflow: the restarted worker serves it.
                    resumed = await http.get(
                        f"/tickets/{ticket['ticket_id']}", headers={"authorization": "Bearer dev-support"}
                    )
                    assert resumed.status_code == 200, resumed.text
                    assert resumed.json()["status"] == ticket["status"]
                process.send_signal(signal.SIGINT)
                await asyncio.wait_for(process.wait(), 60)
            finally:
                await running.finish()
            printed = running.printed
            assert process.returncode == 0, printed
            assert f"http://127.0.0.1:{api_port}/docs" in printed
            assert f"-H '{demo.SAMPLE_AUTHORIZATION}'" in printed
            for secret in DEMO_KEYS:
                assert f"  {secret} " in printed
            assert "Stopping on SIGINT: API, worker, Temporal dev server" in printed
            # Nothing outlives a stopped `escalator up`.
            assert not [pid for pid in children.values() if process_alive(pid)], printed
            assert port_is_free(api_port)


async def test_escalator_up_stops_after_a_crash_loop_and_leaves_nothing_when_killed(tmp_path: Path) -> None:
    api_port = free_port()
    # One restart allowed per minute: the worker's second death within it is a crash loop.
    env = {
        **up_environment(tmp_path, api_port),
        "ESCALATOR_UP_RESTART_LIMIT": "1",
        "ESCALATOR_UP_RESTART_BACKOFF_SECONDS": "0.1",
    }

    # The API dies and is restarted, and answers again. Then the worker dies and is restarted;
    # the new one dies too: the whole stack stops, with a non-zero status that says why.
    running = await start_up(tmp_path, env)
    workers: list[int] = []
    apis: list[int] = []
    try:
        await asyncio.wait_for(running.up.wait(), 60)
        children = stack_processes(running.process.pid)
        apis.append(children["api"])
        os.kill(apis[0], signal.SIGKILL)

        async def api_answers_again() -> bool:
            api = stack_processes(running.process.pid).get("api")
            if api is None or api == apis[0]:
                return False
            async with httpx.AsyncClient(timeout=2) as http:
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get(f"http://127.0.0.1:{api_port}/readyz")).status_code == 200:
                        apis.append(api)
                        return True
            return False

        await until(api_answers_again, timeout=60, what="a new API answers /readyz")
        workers.append(children["worker"])
        os.kill(workers[0], signal.SIGKILL)

        async def restarted() -> bool:
            worker = stack_processes(running.process.pid).get("worker")
            if worker is None or worker == workers[0]:
                return False
            workers.append(worker)
            return True

        await until(restarted, timeout=60, what="a new worker process")
        os.kill(workers[1], signal.SIGKILL)
        await asyncio.wait_for(running.process.wait(), 60)
    finally:
        await running.finish()
    printed = running.printed
    assert running.process.returncode == 1, printed
    # Each child has its own count of restarts.
    assert "The API exited with status -9 (SIGKILL); restarting it in 0.1 s (restart 1 of 1" in printed
    assert "The worker exited with status -9 (SIGKILL); restarting it in 0.1 s (restart 1 of 1" in printed
    assert "Stopping after a crash loop: API, worker, Temporal dev server" in printed
    assert (
        "escalator up: the worker exited 2 times within 60 s (last with status -9 (SIGKILL)), "
        "so the stack was stopped"
    ) in printed
    assert not [pid for pid in [*children.values(), *workers, *apis] if process_alive(pid)], printed
    assert port_is_free(api_port)

    # `escalator up` itself is killed outright (no chance to stop anything): its children
    # still stop, so the next `make up` finds its ports free.
    running = await start_up(tmp_path, env)
    children = {}
    try:
        await asyncio.wait_for(running.up.wait(), 60)
        children = stack_processes(running.process.pid)
        assert set(children) == {"worker", "api", "temporal"}
        running.process.kill()
        await running.process.wait()
        left = await wait_gone(list(children.values()), 30)
        assert not left, f"outlived a killed `escalator up`: {left} of {children}"
    finally:
        await running.finish()
        for pid in children.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    assert port_is_free(api_port)


def test_the_cluster_has_the_dev_servers_dynamic_config() -> None:
    """Fairness by customer (DESIGN.md §10) runs on the cluster as on `escalator up`."""
    temporal = services()["temporal"]
    path = temporal["environment"]["DYNAMIC_CONFIG_FILE_PATH"]
    mounts = {target: source for source, target, *_ in (volume.split(":") for volume in temporal["volumes"])}
    mount = next(target for target in mounts if path.startswith(target + "/"))
    local = ROOT / mounts[mount] / path.removeprefix(mount + "/")
    settings = yaml.safe_load(local.read_text())
    assert {name: str(entries[0]["value"]).lower() for name, entries in settings.items()} == dict(
        DYNAMIC_CONFIG
    )
