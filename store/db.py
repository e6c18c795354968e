"""The read model's tables, the async engine, and schema migration.

The schema is created only by the Alembic migrations in `store/migrations`; these ORM
classes must match them (a test compares the two).
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from types import NoneType, UnionType
from typing import TYPE_CHECKING, Any, Union, cast, get_args, get_origin

from alembic import command
from alembic.config import Config
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    Connection,
    DateTime,
    Dialect,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    event,
    false,
    make_url,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import Insert as PostgresInsert
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import Insert as SQLiteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql.elements import ColumnElement, TextClause
from sqlalchemy.types import TypeDecorator, TypeEngine

from workflows.models import TicketRow

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Arbitrary constant identifying "escalator schema migration" among PostgreSQL advisory locks.
MIGRATION_LOCK_KEY = 0x65736361

# Deterministic constraint names, so the hand-written migration and the ORM agree.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

ID = String(200)
ENUM_VALUE = String(32)


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out, on every backend.

    SQLite has no timezone type: values are stored as naive UTC text (so they also sort
    correctly) and come back tagged UTC. PostgreSQL stores timestamptz.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the read model stores only aware times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


JSONDocument = JSON().with_variant(JSONB(), "postgresql")


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime()}


class Customer(Base):
    __tablename__ = "customers"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    # A deactivated customer files no new tickets; its contract stays for the record.
    active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())


class Partner(Base):
    __tablename__ = "partners"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    connectsoft_tier: Mapped[str] = mapped_column(ENUM_VALUE)
    # The partner's own 24/7 option with ConnectSoft (DESIGN.md §6): its handoff targets.
    coverage_24x7: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class Contract(Base):
    __tablename__ = "contracts"

    id: Mapped[str] = mapped_column(ID, primary_key=True)
    customer_id: Mapped[str] = mapped_column(ID, ForeignKey("customers.id"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    tier: Mapped[str] = mapped_column(ENUM_VALUE)
    product_type: Mapped[str] = mapped_column(ENUM_VALUE)
    timezone: Mapped[str] = mapped_column(String(64))
    country: Mapped[str | None] = mapped_column(String(8))
    # ISO 3166-2, e.g. GB-ENG: regional public holidays (DESIGN.md §3).
    subdivision: Mapped[str | None] = mapped_column(String(16))
    coverage_24x7: Mapped[bool] = mapped_column(Boolean, default=False)
    partner_id: Mapped[str | None] = mapped_column(ID, ForeignKey("partners.id"))
    project: Mapped[str | None] = mapped_column(Text)
    # TargetOverrides.model_dump(mode="json")
    overrides: Mapped[dict[str, Any]] = mapped_column(JSONDocument, default=dict)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


# At most one active contract per customer; superseded ones stay for the record.
Index(
    "ix_contracts_one_active_per_customer",
    Contract.customer_id,
    unique=True,
    sqlite_where=Contract.active,
    postgresql_where=Contract.active,
)


class Contact(Base):
    """Someone notified for a customer or a partner (store/contacts.py): exactly one owner.

    `role` is `notify` (updates on the owner's tickets) or `on_call` (a partner's pages).
    """

    __tablename__ = "contacts"
    __table_args__ = (CheckConstraint("(customer_id IS NULL) <> (partner_id IS NULL)", name="one_owner"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str | None] = mapped_column(ID, ForeignKey("customers.id"))
    partner_id: Mapped[str | None] = mapped_column(ID, ForeignKey("partners.id"))
    role: Mapped[str] = mapped_column(ENUM_VALUE)
    name: Mapped[str] = mapped_column(Text)
    email: Mapped[str] = mapped_column(String(254))
    # The zone to show due times in; None: the customer's contract zone.
    timezone: Mapped[str | None] = mapped_column(String(64))


# One address once per owner and role; they also serve the lookups by owner. A NULL owner
# column never conflicts, so each index only constrains its own kind of owner.
Index("ix_contacts_customer_role_email", Contact.customer_id, Contact.role, Contact.email, unique=True)
Index("ix_contacts_partner_role_email", Contact.partner_id, Contact.role, Contact.email, unique=True)


class SupportTeam(Base):
    """Where ConnectSoft's own audiences are reached: support_l1 ... leadership_l4,
    support_lead and on_call (workflows.enums.Audience). No secrets: pager keys are settings."""

    __tablename__ = "support_teams"

    audience: Mapped[str] = mapped_column(ENUM_VALUE, primary_key=True)
    name: Mapped[str] = mapped_column(Text)
    email: Mapped[str | None] = mapped_column(String(254))
    chat_channel: Mapped[str | None] = mapped_column(String(81))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")


def column_type(python_type: type) -> TypeEngine[Any]:
    """The column type of a model field's Python type: an enum by its value (a string, or an
    integer for an IntEnum), a string as an identifier (`ID`), a time as aware UTC."""
    if issubclass(python_type, bool):
        return Boolean()
    if issubclass(python_type, Enum):
        return Integer() if issubclass(python_type, int) else ENUM_VALUE
    plain: dict[type, TypeEngine[Any]] = {int: Integer(), float: Double(), str: ID, datetime: UTCDateTime()}
    for kind, column in plain.items():
        if issubclass(python_type, kind):
            return column
    raise TypeError(f"no column type for {python_type!r}: declare the column on the ORM class")


def _server_default(value: object) -> str | TextClause | ColumnElement[bool]:
    if isinstance(value, bool):
        return true() if value else false()
    if isinstance(value, Enum):
        value = value.value
    return value if isinstance(value, str) else text(repr(value))


def column_for(name: str, field: FieldInfo) -> Column[Any]:
    """A model field's column: its type's, NULL only where the field may be None, and the
    field's default as the server's too, so that a migration can add it to existing rows."""
    annotation = field.annotation
    nullable = get_origin(annotation) in (Union, UnionType)
    stored = [arg for arg in get_args(annotation) if arg is not NoneType] if nullable else [annotation]
    if len(stored) != 1 or not isinstance(stored[0], type):
        raise TypeError(f"no column type for {name}: {annotation!r}; declare the column on the ORM class")
    defaults: dict[str, Any] = {}
    if not field.is_required() and field.default is not None and field.default_factory is None:
        defaults = {"default": field.default, "server_default": _server_default(field.default)}
    return Column(name, column_type(stored[0]), nullable=nullable, **defaults)


def add_columns(entity: type[Base], model: type[BaseModel]) -> None:
    """Give `entity` a column made from the field's type (`column_for`) for each field of
    `model` that it does not declare itself: a declaration says what a type cannot (a key, a
    length, a longer text)."""
    table = cast(Table, entity.__table__)
    for name, field in model.model_fields.items():
        if name not in table.c:
            setattr(entity, name, column_for(name, field))


class Ticket(Base):
    """The read model's row of a ticket: a column per field of workflows.models.TicketRow,
    made from the field's type (`add_columns` below), plus the report facts and rollups. No
    foreign keys: it is a projection of workflows."""

    __tablename__ = "tickets"

    # The row's columns that its types do not say: the key, and other lengths than `ID`'s.
    ticket_id: Mapped[str] = mapped_column(ID, primary_key=True)
    workflow_id: Mapped[str] = mapped_column(String(250))
    policy_version: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(Text)
    # Indexed: an incident pages through its linked tickets (store/incidents.py).
    incident_id: Mapped[str | None] = mapped_column(ID, index=True)
    if TYPE_CHECKING:
        # Made from TicketRow's fields by `add_columns`: typed here for the checker, for the
        # columns the queries name (tests/test_ticket_projections.py holds them to the row).
        customer_id: Mapped[str]
        partner_id: Mapped[str | None]
        product: Mapped[str]
        tier: Mapped[str]
        severity: Mapped[int]
        status: Mapped[str]
        level: Mapped[int]
        owning_line: Mapped[str]
        received_at: Mapped[datetime]
        sla_breached: Mapped[bool]
        partner_sla_breached: Mapped[bool]
        updated_at: Mapped[datetime]
        # The clock the console's queue counts down and orders by (api/console/queue.py).
        next_clock_kind: Mapped[str | None]
        next_clock_owner: Mapped[str | None]
        next_clock_level: Mapped[int | None]
        next_clock_status: Mapped[str | None]
        next_clock_warn_at: Mapped[datetime | None]
        next_clock_due_at: Mapped[datetime | None]
        next_clock_binding: Mapped[bool | None]
        next_clock_awaited: Mapped[bool]
    # Facts for the reports (store/clock_outcomes.py): MTTA, MTTR and uptime.
    acknowledged_at: Mapped[datetime | None] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    # Wall-clock seconds spent waiting on the customer, which MTTR leaves out.
    waiting_seconds: Mapped[float] = mapped_column(Double, default=0, server_default=text("0"))
    outage_started_at: Mapped[datetime | None] = mapped_column(index=True)
    outage_ended_at: Mapped[datetime | None] = mapped_column()
    # Rollups of ticket_clocks and ticket_events, recounted by each sync (clock_outcomes.py):
    # per line, its response clocks (first response, ConnectSoft's response to a handoff) and
    # of those binding and ended, how many were met and breached; and the escalations by level.
    partner_response_clocks: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    partner_responses_met: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    partner_responses_breached: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    connectsoft_response_clocks: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    connectsoft_responses_met: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    connectsoft_responses_breached: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    escalations_l2: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    escalations_l3: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    escalations_l4: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


add_columns(Ticket, TicketRow)
Index("ix_tickets_customer_id", Ticket.customer_id)
Index("ix_tickets_tier", Ticket.tier)
Index("ix_tickets_status", Ticket.status)
Index("ix_tickets_received_at", Ticket.received_at)


class TicketEventRecord(Base):
    __tablename__ = "ticket_events"

    ticket_id: Mapped[str] = mapped_column(
        ID, ForeignKey("tickets.ticket_id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column()
    # Indexed: GET /metrics counts the SLA events by kind (api/metrics.py).
    kind: Mapped[str] = mapped_column(String(64), index=True)
    summary: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(200))
    level: Mapped[int | None] = mapped_column(Integer)
    detail: Mapped[dict[str, str]] = mapped_column(JSONDocument, default=dict)


class TicketClockRecord(Base):
    """One SLA clock of a ticket, by its index in the ticket's clock list (DESIGN.md §12)."""

    __tablename__ = "ticket_clocks"

    ticket_id: Mapped[str] = mapped_column(
        ID, ForeignKey("tickets.ticket_id", ondelete="CASCADE"), primary_key=True
    )
    clock_no: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(ENUM_VALUE)
    # The line that owns the clock, the one a breach counts against: partner or connectsoft.
    line: Mapped[str] = mapped_column(ENUM_VALUE)
    level: Mapped[int | None] = mapped_column(Integer)
    target_minutes: Mapped[int] = mapped_column(Integer)
    calendar: Mapped[str] = mapped_column(ENUM_VALUE)
    binding: Mapped[bool] = mapped_column(Boolean)
    started_at: Mapped[datetime] = mapped_column()
    due_at: Mapped[datetime] = mapped_column()
    stopped_at: Mapped[datetime | None] = mapped_column()
    status: Mapped[str] = mapped_column(ENUM_VALUE)
    paused_seconds: Mapped[float] = mapped_column(Double)
    # The ticket's updated_at when this row was written: an older sync never overwrites it.
    updated_at: Mapped[datetime] = mapped_column()


class TicketOpening(Base):
    """A ticket's pinned opening (its `TicketOpened`: entitlement, holidays), as its workflow
    started, for `escalator whatif` (issue 20). No foreign key: it may land before the row."""

    __tablename__ = "ticket_openings"

    ticket_id: Mapped[str] = mapped_column(ID, primary_key=True)
    opened: Mapped[dict[str, Any]] = mapped_column(JSONDocument)


class TicketActionRecord(Base):
    """An action a ticket's workflow applied, with its body and time (workflows.models.AppliedAction),
    keyed by the ticket's next event number when it was applied."""

    __tablename__ = "ticket_actions"

    ticket_id: Mapped[str] = mapped_column(ID, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column()
    update: Mapped[str] = mapped_column(String(64))
    signal: Mapped[bool] = mapped_column(Boolean)
    body: Mapped[dict[str, Any]] = mapped_column(JSONDocument)


class OutboxNotification(Base):
    """The notification outbox. No foreign key: a notice may precede the ticket's first sync."""

    __tablename__ = "notifications"

    ticket_id: Mapped[str] = mapped_column(ID, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    audience: Mapped[str] = mapped_column(ENUM_VALUE)
    subject: Mapped[str] = mapped_column(Text)
    body: Mapped[str] = mapped_column(Text)
    page: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    # How it went out (activities/delivery.py): email, chat or pager, through which sink
    # (smtp, webhook, pagerduty, or log when none is set), to whom, after how many attempts.
    channel: Mapped[str | None] = mapped_column(String(16))
    page_action: Mapped[str | None] = mapped_column(String(16))
    recipients: Mapped[str | None] = mapped_column(Text)
    sink: Mapped[str | None] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    last_attempt_at: Mapped[datetime | None] = mapped_column()
    delivered_at: Mapped[datetime | None] = mapped_column()
    # A linked ticket's notice (DESIGN.md §13): its incident, what raised it, and the digest or
    # incident page it went out in (activities/incident_notices.py).
    incident_id: Mapped[str | None] = mapped_column(ID)
    event_kind: Mapped[str | None] = mapped_column(ENUM_VALUE)
    clock_kind: Mapped[str | None] = mapped_column(ENUM_VALUE)
    group_key: Mapped[str | None] = mapped_column(String(200), index=True)


# The notices waiting for an incident's digest are found by incident and audience.
Index("ix_notifications_incident_id_audience", OutboxNotification.incident_id, OutboxNotification.audience)


class IncidentDigest(Base):
    """One message per (incident, audience, window): claimed with its notices before it is
    sent, so a crash before `sent_at` resends it with the same key and text."""

    __tablename__ = "incident_digests"

    incident_id: Mapped[str] = mapped_column(ID, primary_key=True)
    audience: Mapped[str] = mapped_column(ENUM_VALUE, primary_key=True)
    window_start: Mapped[datetime] = mapped_column(primary_key=True)
    digest_key: Mapped[str] = mapped_column(String(200), unique=True)
    title: Mapped[str | None] = mapped_column(Text)
    text: Mapped[str] = mapped_column(Text, default="")
    notices: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    sink: Mapped[str | None] = mapped_column(String(16))
    recipients: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[datetime | None] = mapped_column()


class IncidentPage(Base):
    """An incident's page on one audience's pager (dedup key = the incident id): triggered by
    the first linked ticket that pages, settled by the incident."""

    __tablename__ = "incident_pages"

    incident_id: Mapped[str] = mapped_column(ID, primary_key=True)
    audience: Mapped[str] = mapped_column(ENUM_VALUE, primary_key=True)
    # A trigger after a resolve opens the next cycle: its acknowledge and resolve are new sends.
    cycle: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # trigger, acknowledge or resolve: the last action sent.
    status: Mapped[str] = mapped_column(String(16))
    # The idempotency key of the notice whose trigger opened this cycle.
    trigger_key: Mapped[str] = mapped_column(String(200))
    triggered_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Incident(Base):
    """A major incident as its workflow last wrote it (when it opened, and when it resolved):
    what the reports read of it, its outage above all (DESIGN.md §12, §13). The outage times are
    filled in: given at opening and resolving, else when it opened and resolved."""

    __tablename__ = "incidents"

    incident_id: Mapped[str] = mapped_column(ID, primary_key=True)
    title: Mapped[str] = mapped_column(Text)
    severity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(ENUM_VALUE)
    opened_at: Mapped[datetime] = mapped_column()
    resolved_at: Mapped[datetime | None] = mapped_column()
    outage_started_at: Mapped[datetime] = mapped_column()
    # None while the incident is open: the uptime report counts it down until now.
    outage_ended_at: Mapped[datetime | None] = mapped_column()


class IncidentProduct(Base):
    """A product an incident is about: its outage is that product's, for each customer with a
    ticket linked to it."""

    __tablename__ = "incident_products"

    incident_id: Mapped[str] = mapped_column(
        ID, ForeignKey("incidents.incident_id", ondelete="CASCADE"), primary_key=True
    )
    product: Mapped[str] = mapped_column(ENUM_VALUE, primary_key=True)


class ApiKey(Base):
    """One API key, one principal (DESIGN.md §11). Only the SHA-256 of the secret is stored."""

    __tablename__ = "api_keys"
    # A name names one key per role (issue 17 §4): the audit trail tells people apart by it.
    __table_args__ = (Index("uq_api_keys_role_name", "role", "name", unique=True),)

    # Public id, e.g. key_3f2a9c1b7d4e: safe to show, log and revoke by.
    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(ENUM_VALUE)
    level: Mapped[int | None] = mapped_column(Integer)
    partner_id: Mapped[str | None] = mapped_column(ID, ForeignKey("partners.id"))
    customer_id: Mapped[str | None] = mapped_column(ID, ForeignKey("customers.id"))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True, index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column()


class IdempotencyRecord(Base):
    """What an Idempotency-Key was first used for, per API key (`scope`, the key's id)."""

    __tablename__ = "idempotency_keys"

    scope: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    # SHA-256 of the request the key was first sent with.
    digest: Mapped[str] = mapped_column(String(64))
    # What the first request made (a ticket id), so a retry answers with the same one.
    resource_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class QuarantinedRecord(Base):
    """A read-model write the database refused on its data (store/quarantine.py), kept with
    its error for an operator instead of being retried for ever (issue 17 §1).

    No foreign key and no length limits: the ticket's row may never have been written, and
    nothing here may be refused in turn.
    """

    __tablename__ = "quarantined_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(Text, index=True)
    # The activity that tried the write: a retry after a crash sets the same record aside once.
    run_id: Mapped[str] = mapped_column(Text)
    activity_id: Mapped[str] = mapped_column(Text)
    # overflow, data or integrity; the error's own words, escaped to ASCII.
    error_kind: Mapped[str] = mapped_column(Text)
    error: Mapped[str] = mapped_column(Text)
    # The TicketRecord the workflow sent, as ASCII JSON: replayable once the cause is fixed.
    record: Mapped[str] = mapped_column(Text)
    quarantined_at: Mapped[datetime] = mapped_column(default=utcnow)


Index(
    "ix_quarantined_records_run_activity",
    QuarantinedRecord.run_id,
    QuarantinedRecord.activity_id,
    unique=True,
)


class ConsoleSession(Base):
    """A signed-in console session (api/console/session.py): its cookie holds a random id, and
    only the id's SHA-256 is stored here, with the key it acts as and when it ends. Signing
    out deletes the row; revoking the key ends its sessions too (the key is looked up each time).
    """

    __tablename__ = "console_sessions"

    id_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    key_id: Mapped[str] = mapped_column(String(32), ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


# --- Engine ---------------------------------------------------------------------------------


def async_database_url(url: str | URL) -> URL:
    """Pick the async driver for plain URLs such as postgres://... or sqlite:///..."""
    parsed = make_url(url)
    drivers = {
        "postgres": "postgresql+asyncpg",
        "postgresql": "postgresql+asyncpg",
        "sqlite": "sqlite+aiosqlite",
    }
    if parsed.drivername in drivers:
        parsed = parsed.set(drivername=drivers[parsed.drivername])
    return parsed


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in (
        "journal_mode=WAL",
        "synchronous=NORMAL",
        "foreign_keys=ON",
        "busy_timeout=15000",  # bursts of activities queue for the one writer
    ):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def make_engine(url: str | URL, **engine_kwargs: Any) -> AsyncEngine:
    """An async engine; extra keyword arguments go to `create_async_engine`."""
    parsed = async_database_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    # A pooled connection that an outage cut is found out (and replaced) before it is used,
    # so the first request after the database is back does not fail on it (issue 17 §3).
    engine_kwargs.setdefault("pool_pre_ping", True)
    engine = create_async_engine(parsed, **engine_kwargs)
    if parsed.get_backend_name() == "sqlite":
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Rows are turned into pydantic models after commit; keep them readable.
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


# Alembic keeps its `context` and `op` proxies in module globals, so two migrations running
# at once in one process (two databases, each awaiting its own DDL) install and remove each
# other's: one ran its DDL on the other's connection, or failed with KeyError: 'config'
# (the flaky fault drill, issue 17). One migration at a time per event loop (the loop is
# single-threaded, and a process migrates from one loop at a time).
_MIGRATING: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision (Alembic `upgrade head`)."""

    def upgrade(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    lock = _MIGRATING.setdefault(asyncio.get_running_loop(), asyncio.Lock())
    async with lock:
        await _migrate_with(engine, upgrade)


async def _migrate_with(engine: AsyncEngine, upgrade: Callable[[Connection], None]) -> None:
    async with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            # Worker and API replicas may start together; one migrates, the rest wait and no-op.
            await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        await connection.run_sync(upgrade)


def dialect_insert(session: AsyncSession, entity: type[Base]) -> PostgresInsert | SQLiteInsert:
    """INSERT with ON CONFLICT support for the session's backend (SQLite or PostgreSQL).

    Both dialects' Insert share the `on_conflict_do_nothing/_update` API used here.
    """
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql_insert(entity)
    if name == "sqlite":
        return sqlite_insert(entity)
    raise ValueError(f"the read model supports sqlite and postgresql, not {name}")


class PublishedPolicy(Base):
    """A policy version an admin published (`escalator policy publish`): the next version for
    tickets filed after it, beside the versions the build released (policies/*.json). Never
    edited: the fingerprint recorded here must still match the document when it is loaded."""

    __tablename__ = "published_policies"

    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    document: Mapped[str] = mapped_column(Text)
    fingerprint: Mapped[str] = mapped_column(String(64))
    published_by: Mapped[str] = mapped_column(String(200))
    published_at: Mapped[datetime] = mapped_column(default=utcnow)
