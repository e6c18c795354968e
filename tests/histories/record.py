"""Record the committed replay histories, one per path of a ticket's life: `make histories`.

    .venv/bin/python -m tests.histories.record                  # every scenario
    .venv/bin/python -m tests.histories.record reopen signals   # only these

Each scenario below drives one path on a real Temporal server, with the real worker and its
activities on a SQLite read model in a temporary directory: the time-skipping test server,
except continue-as-new, which needs the dev server (the test server never suggests it). It then
checks, from the read model's timeline, the final state and the history itself, that its path
really happened, so a scenario that quietly stops covering its path fails here instead of
committing a history that proves nothing. Only when every chosen scenario passed are the
histories written next to this file: `<scenario>.json`, and for a workflow that continued as
new, each later run as `<scenario>.run<N>.json`. tests/test_replay.py replays them all.

Every target the scenarios time is on the `24x7` calendar, so what each one covers does not
depend on the weekday or the hour it is recorded at. Re-record only on purpose: a committed
history that no longer replays is a breaking change for tickets that are open.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.enums.v1 import EventType, IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import WorkflowHandle, WorkflowHistory, WorkflowUpdateFailedError
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.runtime import LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.testing import WorkflowEnvironment

import policies
from api.priority import PERSON_PRIORITY_KEY, set_priority
from api.priority import person_priority as raised_priority
from runtime.settings import Settings
from store.db import IncidentPage, OutboxNotification, make_engine, make_sessionmaker, migrate
from store.quarantine import quarantined_records
from store.tickets import get_timeline
from store.whatif_inputs import recorded_tickets as whatif_records
from tests.factories import ADMIN, DEMO_TERMS, SUPPORT, customer, engineer, opened_ticket, partner
from worker.worker import build_worker
from workflows import search_attributes
from workflows.actions.acknowledge import Acknowledge
from workflows.actions.base import ActionModel
from workflows.actions.change_severity import ChangeSeverity
from workflows.actions.close import Close
from workflows.actions.comment import Comment
from workflows.actions.escalate import Escalate
from workflows.actions.handback import Handback
from workflows.actions.handoff import Handoff
from workflows.actions.incident import IncidentResolve, IncidentUpdate, LinkIncident, UnlinkIncident
from workflows.actions.outage import RecordOutage
from workflows.actions.reopen import Reopen
from workflows.actions.resolve import Resolve
from workflows.actions.resume import Resume
from workflows.actions.wait_on_customer import WaitOnCustomer
from workflows.enums import (
    Channel,
    ClockKind,
    ClockStatus,
    CoverageCalendar,
    EscalationTrigger,
    HandoffCategory,
    OwningLine,
    Product,
    Severity,
    TicketStatus,
)
from workflows.incident import PAGE_ACKNOWLEDGE_PATCH, IncidentWorkflow
from workflows.incident_model import (
    AcknowledgeIncidentPage,
    AddLinkRule,
    IncidentOpened,
    IncidentState,
    LinkRule,
    PostIncidentUpdate,
    ResolveIncident,
    incident_workflow_id,
)
from workflows.models import TASK_QUEUE, SlaClock, TicketEvent, TicketState, workflow_id_for
from workflows.terms import ContractTerms, ResponseTarget, TargetOverrides
from workflows.ticket import TicketWorkflow
from workflows.whatif import simulate

HERE = Path(__file__).parent
BIN_DIR = Path(sys.executable).parent
# A scenario takes seconds; one that hangs (a ticket that never ends) fails instead.
SCENARIO_TIMEOUT = timedelta(minutes=3)
# Actions land at the server's time, a few milliseconds after the instant a test skipped to.
SLACK = timedelta(minutes=1)
HOUR = 60


class PathNotCovered(AssertionError):
    """The scenario ran, but its path did not happen the way it claims: nothing is written."""


def check(condition: bool, what: str) -> None:
    # Not `assert`: `python -O` must not turn the recorder into one that checks nothing.
    if not condition:
        raise PathNotCovered(what)


def near(at: datetime | None, expected: datetime) -> bool:
    return at is not None and abs(at - expected) <= SLACK


def on_24x7(hours: int) -> ResponseTarget:
    return ResponseTarget(minutes=hours * HOUR, calendar=CoverageCalendar.ALWAYS, label=f"{hours} h 24x7")


# Premium with the 24/7 option: every target of the tier runs on `24x7`.
ACME_24X7 = DEMO_TERMS["acme"].model_copy(update={"coverage_24x7": True})
CONTOSO_24X7 = DEMO_TERMS["contoso"].model_copy(update={"coverage_24x7": True})
# Standard, with a Sev 3 first response of 8 h and a resolution target of 24 h, both on 24x7.
GLOBEX_24X7 = DEMO_TERMS["globex"].model_copy(
    update={"overrides": TargetOverrides(response={"3": on_24x7(8)}, resolution={"3": on_24x7(24)})}
)

CTO = engineer(4, "cto")
NORTHWIND = partner("northwind")
GLOBEX = customer("globex")


# --- What a scenario leaves behind ------------------------------------------------------------


@dataclass
class Evidence:
    """A finished ticket as the read model and the workflow's final state show it."""

    state: TicketState
    timeline: list[TicketEvent]
    # (audience, page, subject) of every notice in the outbox.
    notices: list[tuple[str, bool, str]]

    def kinds(self) -> list[str]:
        return [event.kind for event in self.timeline]

    def all(self, kind: str, **detail: str) -> list[TicketEvent]:
        return [
            event
            for event in self.timeline
            if event.kind == kind and all(event.detail.get(k) == v for k, v in detail.items())
        ]

    def one(self, kind: str, **detail: str) -> TicketEvent:
        found = self.all(kind, **detail)
        check(
            len(found) == 1, f"expected one {kind!r} event with {detail}, found {len(found)}: {self.kinds()}"
        )
        return found[0]

    def clocks(self, kind: ClockKind) -> list[SlaClock]:
        return [clock for clock in self.state.clocks if clock.kind == kind]

    def clock(self, kind: ClockKind) -> SlaClock:
        found = self.clocks(kind)
        check(len(found) == 1, f"expected one {kind.value} clock, found {len(found)}")
        return found[0]

    def noticed(self, audience: str, *, page: bool | None = None, subject: str = "") -> bool:
        return any(a == audience and (page is None or p == page) and subject in s for a, p, s in self.notices)


@dataclass
class Ticket:
    """A ticket's workflow, driven through its public update and signal names."""

    run: Run
    ticket_id: str
    received: datetime
    handle: WorkflowHandle[Any, Any]
    updates: int = 0
    signals: int = 0

    async def act(self, update: str, action: ActionModel) -> None:
        await self.handle.execute_update(update, action)
        self.updates += 1

    async def refused(self, update: str, action: ActionModel) -> None:
        """The validator refuses it, so it leaves no trace in the history."""
        try:
            await self.handle.execute_update(update, action)
        except WorkflowUpdateFailedError:
            return
        raise PathNotCovered(f"the {update} update was accepted; the scenario needs it refused")

    async def signal(self, name: str, action: ActionModel) -> None:
        await self.handle.signal(f"{name}-signal", action)
        self.signals += 1

    async def state(self) -> TicketState:
        state: TicketState = await self.handle.query(TicketWorkflow.state)
        return state

    async def until(self, what: str, predicate: Callable[[TicketState], bool]) -> TicketState:
        """Poll the state until the worker has applied what the scenario sent (signals)."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            state = await self.state()
            if predicate(state):
                return state
            await asyncio.sleep(0.05)
        raise PathNotCovered(f"the ticket never got to: {what}")

    async def finish(self) -> Evidence:
        """Wait for the workflow to end; then its events are all in the read model."""
        await self.handle.result()
        state = await self.state()
        async with self.run.sessions() as session:
            timeline = await get_timeline(session=session, ticket_id=self.ticket_id)
            rows = await session.scalars(
                select(OutboxNotification).where(OutboxNotification.ticket_id == self.ticket_id)
            )
            notices = [(row.audience, row.page, row.subject) for row in rows]
        check(bool(timeline) and timeline[0].kind == "opened", "the read model has the ticket's timeline")
        check(
            [e.seq for e in timeline] == list(range(1, len(timeline) + 1)),
            "every event is recorded once, in order",
        )
        check(
            state.status == TicketStatus.CLOSED and timeline[-1].kind == "closed", "the ticket ended closed"
        )
        return Evidence(state, timeline, notices)

    def pinned(self, run_id: str | None = None) -> WorkflowHandle[Any, Any]:
        """A handle on one run (the latest without a run id), for its history."""
        return self.run.env.client.get_workflow_handle(self.handle.id, run_id=run_id)


@dataclass
class Run:
    """One scenario's server, worker and read model."""

    name: str
    env: WorkflowEnvironment
    sessions: async_sessionmaker[AsyncSession]
    tickets: list[Ticket] = field(default_factory=list)

    async def open(
        self,
        customer_id: str,
        severity: int,
        *,
        terms: ContractTerms,
        channel: Channel = Channel.EMAIL,
    ) -> Ticket:
        received = (await self.env.get_current_time()).replace(microsecond=0)
        opened = opened_ticket(customer_id, severity, received, terms=terms, channel=channel)
        # One stable id per scenario: its workflow id is ticket-<scenario>.
        opened = opened.model_copy(update={"ticket_id": self.name})
        handle = await self.env.client.start_workflow(
            TicketWorkflow.run, opened, id=workflow_id_for(opened.ticket_id), task_queue=TASK_QUEUE
        )
        ticket = Ticket(self, opened.ticket_id, received, handle)
        self.tickets.append(ticket)
        return ticket

    async def sleep(self, delta: timedelta) -> None:
        """Let `delta` pass on the server: the time-skipping server skips it, timers firing."""
        await self.env.sleep(delta)


# --- Scenarios --------------------------------------------------------------------------------


class Server(Enum):
    TIME_SKIPPING = "time-skipping test server"
    # History events past which the dev server suggests continue-as-new (default: thousands).
    DEV_SMALL_HISTORY = "dev server, continue-as-new suggested after 60 events"
    # The dev server as it comes: an incident's fan-out needs real updates of real tickets.
    DEV = "dev server"


Drive = Callable[[Run], Awaitable[list[WorkflowHandle[Any, Any]]]]


@dataclass(frozen=True)
class Scenario:
    name: str
    covers: str
    drive: Drive
    server: Server
    runs: int

    @property
    def files(self) -> list[str]:
        """One history per run: `<name>.json`, then `<name>.run2.json`, ..."""
        return [f"{self.name}.json"] + [f"{self.name}.run{n}.json" for n in range(2, self.runs + 1)]


SCENARIOS: dict[str, Scenario] = {}


def scenario(
    covers: str, *, server: Server = Server.TIME_SKIPPING, runs: int = 1
) -> Callable[[Drive], Drive]:
    def register(drive: Drive) -> Drive:
        name = drive.__name__
        SCENARIOS[name] = Scenario(name, covers, drive, server, runs)
        return drive

    return register


@scenario("breach and auto-escalation: the first response breaches and the ticket climbs L1 -> L2")
async def breach_auto_escalation(run: Run) -> list[WorkflowHandle[Any, Any]]:
    t = await run.open("acme", 2, terms=ACME_24X7)  # Premium Sev 2: 4 h on 24x7, at L1
    l2 = engineer(2, "bo")
    # Nobody answers: the 75% warning at 3 h, the breach at 4 h, the climb to L2.
    await run.sleep(timedelta(hours=4, minutes=1))
    await t.act("acknowledge", Acknowledge(actor=l2, note="looking at it"))
    await t.act("comment", Comment(actor=l2, body="Restarted the identity pods"))
    await t.act("resolve", Resolve(actor=l2, resolution="pods restarted"))
    await t.act("close", Close(actor=l2))
    ev = await t.finish()

    warning = ev.one("sla_warning", clock="first_response")
    check(near(warning.at, t.received + timedelta(hours=3)), "the first response warns at 75%")
    breach = ev.one("sla_breached", clock="first_response", line="connectsoft")
    check(breach.at == t.received + timedelta(hours=4), "the first response breaches at 4 h")
    climb = ev.one("escalated", trigger="sla_breach", from_level="1")
    check(climb.level == 2 and climb.seq > breach.seq and climb.at == breach.at, "the breach climbs L1 -> L2")
    check(ev.one("acknowledged").seq > climb.seq, "L2 acknowledges after the climb")
    check(ev.state.sla_breached and ev.state.level == 2, "the ticket stays breached, at L2")
    check(ev.clock(ClockKind.FIRST_RESPONSE).status == ClockStatus.BREACHED, "a breach is permanent")
    check(ev.clock(ClockKind.ESCALATION_ACK).status == ClockStatus.MET, "L2 met its acknowledgement clock")
    check(ev.noticed("support_l2", subject="Escalated to L2"), "L2 is told of the escalation")
    return [t.pinned()]


@scenario("manual escalation: L1 -> L2 -> L3 -> L4, each level acknowledging in time")
async def manual_escalation(run: Run) -> list[WorkflowHandle[Any, Any]]:
    t = await run.open("acme", 3, terms=ACME_24X7)  # Premium Sev 3: 8 h on 24x7
    await run.sleep(timedelta(minutes=10))
    await t.act("acknowledge", Acknowledge(actor=engineer(1, "ines")))
    await t.act(
        "escalate",
        Escalate(actor=SUPPORT, level=2, trigger=EscalationTrigger.REQUIRES_TECHNICAL_EXPERTISE),
    )
    await run.sleep(timedelta(minutes=10))
    await t.act("acknowledge", Acknowledge(actor=engineer(2, "bo")))
    await t.act(
        "escalate",
        Escalate(
            actor=SUPPORT,
            level=3,
            trigger=EscalationTrigger.REQUIRES_ENGINEERING,
            note="needs a fix in the token service",
        ),
    )
    await run.sleep(timedelta(minutes=10))
    await t.act("acknowledge", Acknowledge(actor=SUPPORT))
    await t.act(
        "escalate", Escalate(actor=ADMIN, level=4, trigger=EscalationTrigger.BUSINESS_CRITICAL_PROBLEM)
    )
    await run.sleep(timedelta(minutes=10))
    await t.act("acknowledge", Acknowledge(actor=CTO))
    await t.act("resolve", Resolve(actor=CTO, resolution="token service patched"))
    await t.act("close", Close(actor=SUPPORT))
    ev = await t.finish()

    climbs = [(e.detail.get("from_level"), e.level, e.detail.get("trigger")) for e in ev.all("escalated")]
    check(
        climbs
        == [
            ("1", 2, "requires_technical_expertise"),
            ("2", 3, "requires_engineering"),
            ("3", 4, "business_critical_problem"),
        ],
        f"three manual escalations, by trigger: {climbs}",
    )
    check(len(ev.all("acknowledged")) == 4, "the first line and each new level acknowledge")
    check(not ev.all("sla_breached") and not ev.state.sla_breached, "nothing breaches")
    acks = ev.clocks(ClockKind.ESCALATION_ACK)
    check(
        [(c.level, c.status) for c in acks] == [(level, ClockStatus.MET) for level in (2, 3, 4)],
        "each level's acknowledgement clock is met",
    )
    check(ev.state.level == 4, "the ticket ends at L4")
    return [t.pinned()]


@scenario(
    "the acknowledgement ladder: L2 and L3 miss their acknowledgement and it climbs on, "
    "then L4 misses it at the top of the ladder"
)
async def acknowledgement_ladder(run: Run) -> list[WorkflowHandle[Any, Any]]:
    t = await run.open("acme", 2, terms=ACME_24X7)  # Premium Sev 2: 4 h on 24x7
    await run.sleep(timedelta(minutes=10))
    await t.act("acknowledge", Acknowledge(actor=engineer(1, "ines")))  # the first response is met
    await t.act(
        "escalate",
        Escalate(actor=SUPPORT, level=2, trigger=EscalationTrigger.ARCHITECTURE_OR_DESIGN_QUESTION),
    )
    escalated_at = t.received + timedelta(minutes=10)
    # L2, then L3, then L4 each let 4 h pass without acknowledging.
    await run.sleep(timedelta(hours=12, minutes=1))
    # L4's clock breached: nothing awaits acknowledgement any more, so this is refused...
    await t.refused("acknowledge", Acknowledge(actor=CTO))
    # ... and L4 answers with a comment instead.
    await t.act("comment", Comment(actor=CTO, body="On it; sorry for the wait"))
    await t.act("resolve", Resolve(actor=CTO, resolution="design reviewed"))
    await t.act("close", Close(actor=CTO))
    ev = await t.finish()

    breaches = ev.all("sla_breached", clock="escalation_ack", line="connectsoft")
    check(
        [e.level for e in breaches] == [2, 3, 4]
        and all(near(e.at, escalated_at + timedelta(hours=4 * n)) for n, e in enumerate(breaches, start=1)),
        f"L2, L3 and L4 each miss their 4 h: {[(e.level, e.at) for e in breaches]}",
    )
    climbs = ev.all("escalated", trigger="sla_breach")
    check(
        [(e.detail.get("from_level"), e.level) for e in climbs] == [("2", 3), ("3", 4)],
        "each miss below the top climbs one level",
    )
    check(climbs[-1].seq < breaches[-1].seq, "the miss at the top climbs no further")
    check(
        ev.noticed("leadership_l4", subject="top of the ladder"),
        "a miss at the top of the ladder goes to L4 leadership",
    )
    check(len(ev.all("sla_warning", clock="escalation_ack")) == 3, "each acknowledgement clock warns first")
    check(ev.clock(ClockKind.FIRST_RESPONSE).status == ClockStatus.MET, "the first response was met")
    check(ev.state.level == 4 and ev.state.sla_breached, "the ticket ends at L4, breached")
    return [t.pinned()]


@scenario(
    "partner handoff and handback: the partner's first line breaches, answers late and hands off; "
    "ConnectSoft answers in time and hands back; the partner resolves"
)
async def partner_handoff_handback(run: Run) -> list[WorkflowHandle[Any, Any]]:
    t = await run.open("contoso", 1, terms=CONTOSO_24X7)  # partner-delivered Premium Sev 1: 1 h
    await run.sleep(timedelta(hours=1, minutes=5))
    await t.act("acknowledge", Acknowledge(actor=NORTHWIND))
    await t.act("comment", Comment(actor=NORTHWIND, body="Looks like the SSO bridge", public=False))
    await t.act("handoff", Handoff(actor=NORTHWIND, category=HandoffCategory.SECURITY_ISSUE))
    await run.sleep(timedelta(minutes=30))
    await t.act("acknowledge", Acknowledge(actor=SUPPORT))
    await t.act("comment", Comment(actor=SUPPORT, body="Token leak in the SSO bridge", public=False))
    await t.act("comment", Comment(actor=SUPPORT, body="A fix ships in 4.2.1"))
    await t.act("handback", Handback(actor=SUPPORT, note="patched in 4.2.1"))
    await t.act("resolve", Resolve(actor=NORTHWIND, resolution="upgraded to 4.2.1"))
    await t.act("close", Close(actor=NORTHWIND))
    ev = await t.finish()

    intake = ev.one("critical_incident", line="partner")
    check(intake.seq < ev.one("handed_off").seq, "a Sev 1 on the partner's line is the partner's at intake")
    check(ev.noticed("partner_on_call", page=True), "the partner's on-call is paged at intake")
    breach = ev.one("sla_breached")
    check(
        breach.detail.get("line") == "partner" and breach.at == t.received + timedelta(hours=1),
        "the partner's first line breaches its hour",
    )
    check(
        ev.state.partner_sla_breached and not ev.state.sla_breached,
        "the miss is the partner's, not ConnectSoft's",
    )
    check(not ev.all("escalated"), "a partner miss does not climb ConnectSoft's ladder")
    check(ev.one("acknowledged", line="partner").seq > breach.seq, "the partner answers late")
    handoff = ev.one("handed_off", category="security_issue")
    check(ev.one("critical_incident", line="connectsoft").seq > handoff.seq, "ConnectSoft routes the Sev 1")
    check(
        ev.one("acknowledged", line="connectsoft", met="handoff_response").seq > handoff.seq,
        "ConnectSoft answers the handoff in time",
    )
    check(ev.clock(ClockKind.HANDOFF_RESPONSE).status == ClockStatus.MET, "the handoff clock is met")
    check(
        {e.detail.get("visibility") for e in ev.all("commented")}
        == {"partner_internal", "internal", "public"},
        "partner-internal and internal notes and a public comment",
    )
    resolved = ev.one("resolved")
    check(
        ev.one("handed_back").seq < resolved.seq
        and resolved.actor == str(NORTHWIND)
        and ev.state.owning_line == OwningLine.PARTNER,
        "ConnectSoft hands back, then the partner resolves with its customer",
    )
    check(not ev.noticed("customer"), "no notice goes to the partner's customer directly")
    return [t.pinned()]


@scenario(
    "wait-on-customer and resume: the resolution clock pauses while the ticket waits, "
    "and its deadline moves by the time it waited"
)
async def wait_on_customer_resume(run: Run) -> list[WorkflowHandle[Any, Any]]:
    t = await run.open("globex", 3, terms=GLOBEX_24X7)  # response 8 h, resolution 24 h, on 24x7
    l1 = engineer(1, "ines")
    await run.sleep(timedelta(hours=1))
    await t.act("acknowledge", Acknowledge(actor=l1))
    await run.sleep(timedelta(hours=1))
    await t.act("wait-on-customer", WaitOnCustomer(actor=l1, note="send us the HAR file"))
    # Two days waiting: far past the 24 h the resolution clock had, yet nothing fires.
    await run.sleep(timedelta(hours=48))
    waiting = await t.state()
    paused = waiting.clock(ClockKind.RESOLUTION)
    check(paused is not None and paused.status == ClockStatus.PAUSED, "the resolution clock is paused")
    await t.act("resume", Resume(actor=GLOBEX, note="HAR attached"))
    # Resumed at 50 h with 48 h banked: the warning is due at 18 + 48 = 66 h, the deadline at 72 h.
    await run.sleep(timedelta(hours=18))
    await t.act("resolve", Resolve(actor=l1, resolution="proxy timeout raised"))
    await t.act("close", Close(actor=l1))
    ev = await t.finish()

    waited, resumed = ev.one("waiting_on_customer"), ev.one("resumed")
    check(waited.seq < resumed.seq and resumed.actor == str(GLOBEX), "the customer's answer resumes work")
    warning = ev.one("sla_warning", clock="resolution")
    check(
        warning.seq > resumed.seq and near(warning.at, t.received + timedelta(hours=66)),
        f"the resolution clock warns at 66 h, after the pause, not at 18 h: {warning.at - t.received}",
    )
    check(not ev.all("sla_breached"), "the paused clock never breached")
    clock = ev.clock(ClockKind.RESOLUTION)
    check(
        clock.status == ClockStatus.MET and abs(clock.paused_seconds - 48 * 3600) <= SLACK.total_seconds(),
        f"the resolution is met, with 48 h banked: {clock.status}, {clock.paused_seconds} s",
    )
    check(near(clock.due_at, t.received + timedelta(hours=72)), "the resolution deadline moved by 48 h")
    return [t.pinned()]


@scenario("reopen: the customer reopens a resolved ticket and its resolution clock runs on")
async def reopen(run: Run) -> list[WorkflowHandle[Any, Any]]:
    t = await run.open("globex", 3, terms=GLOBEX_24X7)  # response 8 h, resolution 24 h, on 24x7
    l1 = engineer(1, "ines")
    await run.sleep(timedelta(hours=1))
    await t.act("acknowledge", Acknowledge(actor=l1))
    await run.sleep(timedelta(hours=1))
    await t.act("resolve", Resolve(actor=l1, resolution="cleared the cache"))
    await run.sleep(timedelta(days=2))  # inside the 7 days before auto-close
    await t.act("reopen", Reopen(actor=GLOBEX, reason="still failing since Monday"))
    reopened = await t.state()
    running = reopened.clock(ClockKind.RESOLUTION)
    check(
        reopened.status == TicketStatus.ACKNOWLEDGED
        and running is not None
        and running.status == ClockStatus.RUNNING,
        "reopening sets the resolution clock running again",
    )
    await run.sleep(timedelta(hours=1))
    await t.act("comment", Comment(actor=l1, body="Rolled back the proxy change"))
    await t.act("resolve", Resolve(actor=l1, resolution="proxy change rolled back"))
    await t.act("close", Close(actor=GLOBEX))  # the customer withdraws its own ticket
    ev = await t.finish()

    resolved = ev.all("resolved")
    reopen_event = ev.one("reopened")
    check(
        len(resolved) == 2 and resolved[0].seq < reopen_event.seq < resolved[1].seq,
        f"resolved, reopened, resolved again: {ev.kinds()}",
    )
    check(reopen_event.actor == str(GLOBEX), "the customer reopens")
    check(ev.one("closed").actor == str(GLOBEX), "the customer closes")
    clock = ev.clock(ClockKind.RESOLUTION)
    check(
        clock.status == ClockStatus.MET and abs(clock.paused_seconds - 48 * 3600) <= SLACK.total_seconds(),
        f"the resolution is met, the 2 days resolved banked: {clock.status}, {clock.paused_seconds} s",
    )
    check(not ev.all("sla_breached"), "nothing breaches")
    return [t.pinned()]


@scenario("auto-close: a resolved ticket closes by itself 7 days later")
async def auto_close(run: Run) -> list[WorkflowHandle[Any, Any]]:
    t = await run.open("acme", 3, terms=ACME_24X7)
    l1 = engineer(1, "ines")
    await run.sleep(timedelta(minutes=30))
    await t.act("acknowledge", Acknowledge(actor=l1))
    await t.act("comment", Comment(actor=l1, body="Cleared the stale sessions"))
    await run.sleep(timedelta(minutes=30))
    await t.act("resolve", Resolve(actor=l1, resolution="stale sessions cleared"))
    # No one closes it: waiting for the result skips time to the auto-close timer.
    ev = await t.finish()

    resolved, closed = ev.one("resolved"), ev.one("closed")
    check(closed.actor == "system" and "automatically" in closed.summary, "the ticket closes by itself")
    check(
        near(closed.at, resolved.at + timedelta(days=7)),
        f"7 days after resolving: {closed.at - resolved.at}",
    )
    check(ev.kinds()[-2:] == ["resolved", "closed"], "nothing happens between resolving and closing")
    return [t.pinned()]


@scenario(
    "continue-as-new: a long ticket's run continues as new, and the new run carries on",
    server=Server.DEV_SMALL_HISTORY,
    runs=2,
)
async def continue_as_new(run: Run) -> list[WorkflowHandle[Any, Any]]:
    t = await run.open("acme", 3, terms=ACME_24X7)
    first_run = (await t.handle.describe()).run_id
    for n in range(30):
        await t.act("comment", Comment(actor=SUPPORT, body=f"note {n}"))
    # The first run hands over once it is idle after its history grew past the limit.
    first = t.pinned(first_run)
    async with asyncio.timeout(60):
        async for event in first.fetch_history_events(wait_new_event=True):
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                break
        else:
            raise PathNotCovered("the first run ended without continuing as new")
    await t.act("acknowledge", Acknowledge(actor=engineer(1, "ines")))
    await t.act("close", Close(actor=SUPPORT))
    ev = await t.finish()

    second_run = (await t.handle.describe()).run_id
    check(second_run != first_run, "the ticket ended on a new run")
    check(ev.kinds().count("commented") == 30, "the new run kept all 30 comments")
    check(ev.one("acknowledged").seq > ev.all("commented")[-1].seq, "the new run takes actions")
    check(ev.clock(ClockKind.FIRST_RESPONSE).status == ClockStatus.MET, "and keeps the clocks")
    check(ev.clock(ClockKind.FIRST_RESPONSE).started_at == t.received, "as they were")
    return [first, t.pinned(second_run)]


@scenario(
    "signals: the same actions as signals, for systems that talk to Temporal directly; "
    "refused signals (above the entitlement, a customer acknowledging) are ignored"
)
async def signals(run: Run) -> list[WorkflowHandle[Any, Any]]:
    t = await run.open("globex", 3, terms=GLOBEX_24X7)
    crm = engineer(1, "l1-via-crm")
    # A Standard contract stops at L2, and customers do not acknowledge: both are ignored.
    await t.signal(
        "escalate", Escalate(actor=SUPPORT, level=3, trigger=EscalationTrigger.REQUIRES_ENGINEERING)
    )
    await t.signal("acknowledge", Acknowledge(actor=GLOBEX))
    await t.signal("acknowledge", Acknowledge(actor=crm))
    state = await t.until("acknowledged", lambda s: s.status == TicketStatus.ACKNOWLEDGED)
    check(state.level == 1, "the refused escalation left the ticket at L1")
    await t.signal("comment", Comment(actor=crm, body="Synced from the CRM"))
    await t.signal(
        "change-severity", ChangeSeverity(actor=crm, severity=Severity.LOW, reason="cosmetic only")
    )
    await t.signal("wait-on-customer", WaitOnCustomer(actor=crm))
    await t.until("waiting", lambda s: s.status == TicketStatus.WAITING_ON_CUSTOMER)
    await t.signal("resume", Resume(actor=GLOBEX, note="here are the logs"))
    await t.signal("resolve", Resolve(actor=crm, resolution="fixed upstream"))
    await t.signal("close", Close(actor=GLOBEX))
    ev = await t.finish()

    check(
        ev.kinds()
        == [
            "opened",
            "acknowledged",
            "commented",
            "severity_changed",
            "waiting_on_customer",
            "resumed",
            "resolved",
            "closed",
        ],
        f"every accepted signal is one event, the refused ones none: {ev.kinds()}",
    )
    check(ev.one("acknowledged").actor == str(crm), "the engineer's acknowledgement, not the customer's")
    check(
        ev.state.level == 1 and ev.state.severity == Severity.LOW,
        "no escalation; the severity change applied",
    )
    check(
        ev.clock(ClockKind.FIRST_RESPONSE).status == ClockStatus.MET, "the signalled acknowledgement met it"
    )
    return [t.pinned()]


@scenario(
    "a person's actions on a ticket raised to the person's priority (api/priority.py): the "
    "options-updated event the raise writes is nothing the workflow reads",
    server=Server.DEV,
)
async def person_priority(run: Run) -> list[WorkflowHandle[Any, Any]]:
    t = await run.open("globex", 3, terms=GLOBEX_24X7)
    await t.act("comment", Comment(actor=SUPPORT, body="Looking at it"))
    # What the API does once a person's first action on a ticket is accepted.
    await set_priority(run.env.client, t.handle.id, raised_priority("globex"))
    await t.act("acknowledge", Acknowledge(actor=SUPPORT))
    await t.act("resolve", Resolve(actor=SUPPORT, resolution="index rebuilt"))
    await t.act("close", Close(actor=GLOBEX))
    ev = await t.finish()

    check(
        ev.kinds() == ["opened", "commented", "acknowledged", "resolved", "closed"],
        f"the raise is no event of the ticket's: {ev.kinds()}",
    )
    history = await t.handle.fetch_history()
    types = [event.event_type for event in history.events]
    raised = EventType.EVENT_TYPE_WORKFLOW_EXECUTION_OPTIONS_UPDATED
    check(types.count(raised) == 1, "one raise in the history")
    check(
        types.index(raised) > types.index(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED),
        "the raise comes after the first action was accepted",
    )
    described = await t.handle.describe()
    check(
        described.raw_description.workflow_execution_info.priority.priority_key == PERSON_PRIORITY_KEY,
        "the ticket ran on the person's priority key",
    )
    return [t.pinned()]


@scenario(
    "a critical incident at intake: a Premium Sev 1 goes to L3, pages on-call and tells L4; "
    "the hour passes, the first response and L3's acknowledgement breach as one, it climbs to L4, "
    "and the customer update falls overdue"
)
async def critical_incident(run: Run) -> list[WorkflowHandle[Any, Any]]:
    t = await run.open("acme", 1, terms=ACME_24X7, channel=Channel.ON_CALL)
    await run.sleep(timedelta(hours=1, minutes=5))
    await t.act("acknowledge", Acknowledge(actor=CTO))
    await t.act("comment", Comment(actor=CTO, body="Rolled back the release"))
    await run.sleep(timedelta(hours=2))  # no update for two hours: the customer update is overdue
    await t.act("resolve", Resolve(actor=SUPPORT, resolution="release rolled back"))
    await t.act("close", Close(actor=SUPPORT))
    ev = await t.finish()

    intake = ev.one("critical_incident", line="connectsoft")
    check(intake.level == 3, "a Premium Sev 1 goes straight to L3")
    check(ev.noticed("on_call", page=True) and ev.noticed("leadership_l4"), "on-call paged, L4 told")
    breach = ev.one("sla_breached")
    check(
        breach.detail.get("clocks") == "first_response,escalation_ack"
        and breach.at == t.received + timedelta(hours=1),
        "the first response and L3's acknowledgement breach together, as one miss",
    )
    climb = ev.one("escalated", trigger="sla_breach", from_level="3")
    check(climb.level == 4 and climb.seq > breach.seq, "the miss climbs to L4")
    check(bool(ev.all("update_overdue")), "the customer update falls overdue")
    check(ev.state.sla_breached and ev.state.level == 4, "breached, at L4")
    return [t.pinned()]


@scenario(
    "severity change: a Sev 3 raised to Sev 1 is due one hour after intake and routed to L3, "
    "then lowered again once acknowledged"
)
async def severity_change(run: Run) -> list[WorkflowHandle[Any, Any]]:
    t = await run.open("acme", 3, terms=ACME_24X7)
    await run.sleep(timedelta(minutes=30))
    await t.act(
        "change-severity",
        ChangeSeverity(actor=SUPPORT, severity=Severity.CRITICAL, reason="all tenants down"),
    )
    raised = await t.state()
    check(
        raised.response_due == t.received + timedelta(hours=1) and raised.level == 3,
        "raised to Sev 1: due 1 h after intake, at L3",
    )
    await run.sleep(timedelta(minutes=10))
    await t.act("acknowledge", Acknowledge(actor=SUPPORT))
    await t.act(
        "change-severity",
        ChangeSeverity(actor=SUPPORT, severity=Severity.MEDIUM, reason="workaround in place"),
    )
    await t.act("resolve", Resolve(actor=SUPPORT, resolution="root cause fixed"))
    await t.act("close", Close(actor=SUPPORT))
    ev = await t.finish()

    changes = [
        (e.detail.get("from_severity"), e.detail.get("to_severity")) for e in ev.all("severity_changed")
    ]
    check(changes == [("3", "1"), ("1", "3")], f"raised, then lowered: {changes}")
    check(ev.one("critical_incident").level == 3, "the raise routes the critical incident to L3")
    first = ev.clock(ClockKind.FIRST_RESPONSE)
    check(
        first.status == ClockStatus.MET and first.due_at == t.received + timedelta(hours=1),
        "the first response, due 1 h after intake, is met",
    )
    check(not ev.all("sla_breached"), "nothing breaches")
    return [t.pinned()]


@scenario("outage: a Sev 1 records when its service went down and, later, when it came back")
async def outage(run: Run) -> list[WorkflowHandle[Any, Any]]:
    t = await run.open("acme", 1, terms=ACME_24X7)
    began = t.received - timedelta(minutes=20)
    await run.sleep(timedelta(minutes=10))
    await t.act("acknowledge", Acknowledge(actor=SUPPORT))
    await t.act("outage", RecordOutage(actor=SUPPORT, started_at=began))
    await run.sleep(timedelta(minutes=30))
    came_back = began + timedelta(minutes=55)
    await t.act(
        "outage", RecordOutage(actor=SUPPORT, started_at=began, ended_at=came_back, note="rolled back")
    )
    await t.act("resolve", Resolve(actor=SUPPORT, resolution="rolled back the release"))
    await t.act("close", Close(actor=SUPPORT))
    ev = await t.finish()

    recorded = ev.all("outage_recorded")
    check(len(recorded) == 2, f"the outage is recorded twice (begun, then ended): {len(recorded)}")
    check(
        recorded[-1].detail.get("ended_at") == came_back.isoformat(), "the second record says when it ended"
    )
    return [t.pinned()]


@scenario(
    "a read-model write refused on its data: the breach's record is quarantined, not retried; the "
    "ticket climbs, is answered and closes, and its later records are written"
)
async def record_quarantined(run: Run) -> list[WorkflowHandle[Any, Any]]:
    async with run.sessions.begin() as session:
        # The database refuses the breach's event (an IntegrityError), as it would a bad value.
        await session.execute(
            text(
                "CREATE TRIGGER refuse_breach BEFORE INSERT ON ticket_events WHEN NEW.kind = 'sla_breached' "
                "BEGIN SELECT RAISE(ABORT, 'refused for the replay history'); END"
            )
        )
    t = await run.open("acme", 2, terms=ACME_24X7)  # Premium Sev 2: 4 h on 24x7, at L1
    l2 = engineer(2, "bo")
    await run.sleep(timedelta(hours=4, minutes=1))
    await t.act("acknowledge", Acknowledge(actor=l2, note="looking at it"))
    await t.act("close", Close(actor=l2, note="fixed"))
    await t.handle.result()
    state = await t.state()
    async with run.sessions() as session:
        timeline = await get_timeline(session=session, ticket_id=t.ticket_id)
        kept = await quarantined_records(session=session, ticket_id=t.ticket_id)
    kinds = [event.kind for event in timeline]
    check(state.records_quarantined == 1 and len(kept) == 1, "one record is quarantined")
    check(
        "sla_breached" in kept[0].record and "sla_breached" not in kinds, "the breach's record is set aside"
    )
    check(kinds[0] == "opened" and kinds[-1] == "closed", "the records before and after it are written")
    check(state.sla_breached and state.level == 2, "the ticket breached and climbed all the same")
    history = await t.pinned().fetch_history()
    failed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED]
    check(len(failed) == 1, "the refused record failed once, not retried")
    return [t.pinned()]


@scenario(
    "what-if's record: the first record carries the pinned opening and each later one the actions "
    "applied (an update and a signal), with their bodies and times; replayed from the read model "
    "alone, the ticket's timeline comes out as recorded"
)
async def whatif_inputs(run: Run) -> list[WorkflowHandle[Any, Any]]:
    t = await run.open("acme", 2, terms=ACME_24X7)  # Premium Sev 2: 4 h on 24x7, at L1
    l2 = engineer(2, "bo")
    await run.sleep(timedelta(hours=4, minutes=1))
    await t.act("acknowledge", Acknowledge(actor=l2, note="looking at it"))
    acked = (await t.state()).next_seq
    await t.signal("comment", Comment(actor=l2, body="Synced from the CRM"))
    await t.until("commented", lambda s: s.next_seq > acked)
    await t.act("close", Close(actor=l2, note="fixed"))
    ev = await t.finish()
    async with run.sessions() as session:
        [ticket], missing = await whatif_records(session=session, ticket_ids=[t.ticket_id])
    check(missing == [] and ticket.opened.ticket_id == t.ticket_id, "the read model has the opening")
    applied = [(type(each.action).__name__, each.signal) for each in ticket.actions]
    check(
        applied == [("Acknowledge", False), ("Comment", True), ("Close", False)],
        f"and every action applied, in order: {applied}",
    )
    simulated = simulate(ticket)
    check(
        [e.model_dump() for e in simulated.events] == [e.model_dump() for e in ev.timeline],
        "replayed from the read model, the timeline comes out as recorded",
    )
    return [t.pinned()]


# --- Major incidents (issue 19, DESIGN.md §13) -------------------------------------------------

INCIDENT = "inc-recorded"


@scenario(
    "an incident's path on one ticket: linked, its update as the first response (once), unlinked "
    "and linked again, resolved by the incident, then closed by itself"
)
async def incident_ticket(run: Run) -> list[WorkflowHandle[Any, Any]]:
    t = await run.open("acme", 2, terms=ACME_24X7)  # Premium Sev 2: 4 h on 24x7
    await t.act("link-incident", LinkIncident(actor=SUPPORT, incident_id=INCIDENT))
    await run.sleep(timedelta(minutes=30))
    update = IncidentUpdate(
        actor=SUPPORT, incident_id=INCIDENT, update_id=f"{INCIDENT}-u1", message="Restoring"
    )
    await t.act("incident-update", update)
    await t.refused("incident-update", update)
    await t.act("unlink-incident", UnlinkIncident(actor=SUPPORT, incident_id=INCIDENT))
    await t.act("link-incident", LinkIncident(actor=ADMIN, incident_id=INCIDENT))
    resolution = IncidentResolve(
        actor=SUPPORT, incident_id=INCIDENT, update_id=f"{INCIDENT}-u2", resolution="IdP failed over"
    )
    await t.act("incident-resolve", resolution)
    ev = await t.finish()

    check(
        len(ev.all("incident_linked")) == 2 and len(ev.all("incident_unlinked")) == 1,
        "linked, unlinked, linked",
    )
    comment = ev.one("commented", update_id=f"{INCIDENT}-u1")
    first = ev.clock(ClockKind.FIRST_RESPONSE)
    check(
        first.status == ClockStatus.MET and first.stopped_at == comment.at,
        "the update met the first response",
    )
    check(near(comment.at, t.received + timedelta(minutes=30)), "when it reached the ticket")
    check(INCIDENT in ev.one("resolved").summary, "resolved with the incident's resolution")
    check(
        ev.kinds()[-1] == "closed" and ev.state.incident_updates[-2:] == [f"{INCIDENT}-u1", f"{INCIDENT}-u2"],
        "each once",
    )
    return [t.pinned()]


@scenario(
    "an incident's own workflow: two tickets linked by id, an update fanned out from an activity, "
    "a rule whose sweep links a third, and the resolution fanned out to all three",
    server=Server.DEV,
)
async def incident_workflow(run: Run) -> list[WorkflowHandle[Any, Any]]:
    at = (await run.env.get_current_time()).replace(microsecond=0)
    tickets = []
    for n in range(3):
        opened_one = opened_ticket("acme", 2, at, terms=ACME_24X7).model_copy(
            update={"ticket_id": f"{run.name}-{n}"}
        )
        tickets.append(
            await run.env.client.start_workflow(
                TicketWorkflow.run,
                opened_one,
                id=workflow_id_for(opened_one.ticket_id),
                task_queue=TASK_QUEUE,
            )
        )
    # The tickets' own updates are not the scenario's: its history is the incident's.
    for each in tickets[:2]:
        await each.execute_update("link-incident", LinkIncident(actor=SUPPORT, incident_id=INCIDENT))
    await recorded_incidents(run, 2)
    incident = await start_identity_incident(run, at, Severity.HIGH)
    handle = incident.handle
    await incident.act("post-update", PostIncidentUpdate(actor=SUPPORT, message="Restoring sign-in"))
    await incident_until(incident, lambda s: all(u.done for u in s.updates))
    rule = LinkRule(
        product=Product.IDENTITY, severities=[Severity.HIGH], received_from=at - timedelta(hours=1)
    )
    await incident.act("add-rule", AddLinkRule(actor=SUPPORT, rule=rule))
    await incident_until(incident, lambda s: s.linked_by_rule == 1)
    await recorded_incidents(run, 3)
    await incident.act("resolve", ResolveIncident(actor=ADMIN, resolution="IdP failed over"))
    final: IncidentState = await handle.result()

    update, resolution = final.updates
    check((update.delivered, update.total) == (2, 2), f"the update reached the two linked: {update}")
    check(
        (resolution.delivered, resolution.total) == (3, 3), f"the resolution reached all three: {resolution}"
    )
    states: list[TicketState] = [await each.query(TicketWorkflow.state) for each in tickets]
    check(all(state.status == TicketStatus.RESOLVED for state in states), "each linked ticket resolved")
    check(states[2].incident_updates == [resolution.update_id], "the third got only what came after its link")
    check(
        states[0].incident_updates == [update.update_id, resolution.update_id],
        "the first got both, once each",
    )
    return [handle]


@scenario(
    "an incident's workflow continues as new while it sweeps for its rule, and the new run resolves it",
    server=Server.DEV_SMALL_HISTORY,
    runs=2,
)
async def incident_continue_as_new(run: Run) -> list[WorkflowHandle[Any, Any]]:
    at = await run.env.get_current_time()
    opened = IncidentOpened(
        incident_id=INCIDENT,
        title="Identity outage",
        description="SSO fails",
        products=[Product.IDENTITY],
        severity=Severity.HIGH,
        opened_by=SUPPORT,
        opened_at=at,
        sweep_seconds=1,
        # Its digest window's flushes run between the sweeps.
        digest_seconds=2,
    )
    handle = await run.env.client.start_workflow(
        IncidentWorkflow.run, opened, id=incident_workflow_id(INCIDENT), task_queue=TASK_QUEUE
    )
    incident = Ticket(run, INCIDENT, at, handle)
    run.tickets.append(incident)
    first_run = (await handle.describe()).run_id
    rule = LinkRule(product=Product.IDENTITY, severities=[Severity.HIGH], received_from=at)
    await incident.act("add-rule", AddLinkRule(actor=SUPPORT, rule=rule))
    # A sweep a second: the history grows past the limit, and the idle run hands over.
    first = incident.pinned(first_run)
    async with asyncio.timeout(90):
        async for event in first.fetch_history_events(wait_new_event=True):
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
                break
        else:
            raise PathNotCovered("the incident's first run ended without continuing as new")
    await incident.act("resolve", ResolveIncident(actor=SUPPORT, resolution="IdP failed over"))
    final: IncidentState = await handle.result()

    check((await handle.describe()).run_id != first_run, "the incident ended on a new run")
    check(final.rules == [rule], "the new run kept the rule")
    check(final.status.value == "resolved" and final.updates[-1].done, "and resolved")
    return [first, incident.pinned((await handle.describe()).run_id)]


@scenario(
    "an incident's page: a linked Premium Sev 1 pages on-call (the incident's page), support "
    "acknowledges it and the incident sends the acknowledge once (a second acknowledge sends "
    "nothing), then the resolution fans out and resolves the page",
    server=Server.DEV,
)
async def incident_page(run: Run) -> list[WorkflowHandle[Any, Any]]:
    at = (await run.env.get_current_time()).replace(microsecond=0)
    incident = await start_identity_incident(run, at, Severity.CRITICAL)
    handle = incident.handle
    # Linked from its start, as intake links a ticket a rule matches: its intake pages on-call,
    # which triggers the incident's page. The ticket's own history is not the scenario's.
    sev1 = opened_ticket("acme", 1, at, terms=ACME_24X7).model_copy(
        update={"ticket_id": f"{run.name}-sev1", "incident_id": INCIDENT}
    )
    ticket = await run.env.client.start_workflow(
        TicketWorkflow.run, sev1, id=workflow_id_for(sev1.ticket_id), task_queue=TASK_QUEUE
    )
    await incident_page_is(run, "trigger")
    await recorded_incidents(run, 1)
    await incident.act("acknowledge-page", AcknowledgeIncidentPage(actor=SUPPORT))
    await incident_until(incident, lambda s: s.page_acknowledge_sent)
    await incident_page_is(run, "acknowledge")
    await incident.act("acknowledge-page", AcknowledgeIncidentPage(actor=ADMIN))
    await incident.act("resolve", ResolveIncident(actor=SUPPORT, resolution="IdP failed over"))
    final: IncidentState = await handle.result()

    check(final.page_acknowledged_by == SUPPORT, "the first acknowledge is the one kept")
    check(await incident_page_is(run, "resolve") == 1, "one page, resolved with the incident")
    history = await handle.fetch_history()
    settled = [
        event
        for event in history.events
        if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
        and event.activity_task_scheduled_event_attributes.activity_type.name == "settle_incident_page"
    ]
    check(len(settled) == 2, f"one acknowledge and one resolve sent, got {len(settled)} settles")
    check(
        any(
            PAGE_ACKNOWLEDGE_PATCH.encode()
            in event.marker_recorded_event_attributes.details["patch-data"].payloads[0].data
            for event in history.events
            if event.event_type == EventType.EVENT_TYPE_MARKER_RECORDED
            and "patch-data" in event.marker_recorded_event_attributes.details
        ),
        "the acknowledge runs on the patched branch",
    )
    ticket_state: TicketState = await ticket.query(TicketWorkflow.state)
    check(ticket_state.status == TicketStatus.RESOLVED, "the linked ticket resolved with the incident")
    return [handle]


async def incident_page_is(run: Run, status: str) -> int:
    """Until the incident's page has `status` (its linked ticket's notice and the incident's
    activity write it): the number of its pages then."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        async with run.sessions() as session:
            pages = list(
                await session.scalars(select(IncidentPage).where(IncidentPage.incident_id == INCIDENT))
            )
        if pages and all(page.status == status for page in pages):
            return len(pages)
        await asyncio.sleep(0.05)
    raise PathNotCovered(f"the incident's page never got to {status!r}")


async def start_identity_incident(run: Run, at: datetime, severity: Severity) -> Ticket:
    """The scenarios' identity incident, opened at `at`: its history is the scenario's."""
    opened = IncidentOpened(
        incident_id=INCIDENT,
        title="Identity outage",
        description="SSO fails",
        products=[Product.IDENTITY],
        severity=severity,
        opened_by=SUPPORT,
        opened_at=at,
        sweep_seconds=3600,
    )
    handle = await run.env.client.start_workflow(
        IncidentWorkflow.run, opened, id=incident_workflow_id(INCIDENT), task_queue=TASK_QUEUE
    )
    incident = Ticket(run, INCIDENT, at, handle)
    run.tickets[:] = [incident]
    return incident


async def incident_until(incident: Ticket, done: Callable[[IncidentState], bool]) -> IncidentState:
    async for _ in incident.handle.fetch_history_events(wait_new_event=True):
        state: IncidentState = await incident.handle.query(IncidentWorkflow.state)
        if done(state):
            return state
    raise PathNotCovered("the incident ended first")


async def recorded_incidents(run: Run, count: int) -> None:
    """Until the read model shows `count` tickets linked to the incident (the fan-out reads it)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        async with run.sessions() as session:
            found = await session.scalar(
                text("SELECT count(*) FROM tickets WHERE incident_id = :id"), {"id": INCIDENT}
            )
        if found == count:
            return
        await asyncio.sleep(0.05)
    raise PathNotCovered(f"the read model never showed {count} linked tickets")


# --- Recording --------------------------------------------------------------------------------


def quiet_runtime() -> Runtime:
    """The SDK core logs errors only: the test server's missing capabilities are not news."""
    filter = TelemetryFilter(core_level="ERROR", other_level="ERROR")
    return Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(filter=filter)))


@asynccontextmanager
async def server(kind: Server, runtime: Runtime) -> AsyncIterator[WorkflowEnvironment]:
    """A fresh server per scenario, so each one starts alone, at the current time."""
    if kind == Server.TIME_SKIPPING:
        env = await WorkflowEnvironment.start_time_skipping(
            runtime=runtime,
            data_converter=pydantic_data_converter,
            test_server_existing_path=str(BIN_DIR / "temporal-test-server"),
        )
        # The test server knows no custom search attributes until they are added.
        await env.client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(
                namespace=env.client.namespace,
                search_attributes={
                    key.name: IndexedValueType.ValueType(key.indexed_value_type)
                    for key in search_attributes.ALL_KEYS
                },
            )
        )
    else:
        env = await WorkflowEnvironment.start_local(
            runtime=runtime,
            data_converter=pydantic_data_converter,
            dev_server_existing_path=str(BIN_DIR / "temporal"),
            search_attributes=search_attributes.ALL_KEYS,
            dev_server_log_level="error",
            dev_server_extra_args=(
                ["--dynamic-config-value", "limit.historyCount.suggestContinueAsNew=60"]
                if kind == Server.DEV_SMALL_HISTORY
                else []
            ),
        )
    try:
        yield env
    finally:
        await env.shutdown()


def check_history(scenario: Scenario, histories: list[WorkflowHistory], tickets: list[Ticket]) -> None:
    """What every history must show, whatever its path: complete, clean, every action in it."""
    check(len(histories) == scenario.runs, f"{scenario.runs} run(s), got {len(histories)}")
    for n, history in enumerate(histories, start=1):
        types = [event.event_type for event in history.events]
        last = (
            EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED
            if n == len(histories)
            else EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW
        )
        check(types[-1] == last, f"run {n} ends with {EventType.Name(last)}, not {EventType.Name(types[-1])}")
        check(EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in types, f"run {n} had a failed workflow task")
    every = [event.event_type for history in histories for event in history.events]
    updates = every.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED)
    signalled = every.count(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
    check(updates == sum(t.updates for t in tickets), "every accepted update, and no refused one, in history")
    check(signalled == sum(t.signals for t in tickets), "every signal sent is in history")


async def record_one(scenario: Scenario, runtime: Runtime) -> list[WorkflowHistory]:
    async with server(scenario.server, runtime) as env:
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(f"sqlite+aiosqlite:///{tmp}/record.db")
            await migrate(engine)
            sessions = make_sessionmaker(engine)
            try:
                # The worker `escalator worker` runs, with its real activities.
                async with build_worker(env.client, sessions, Settings(task_queue=TASK_QUEUE)):
                    run = Run(scenario.name, env, sessions)
                    async with asyncio.timeout(SCENARIO_TIMEOUT.total_seconds()):
                        handles = await scenario.drive(run)
                        histories = [await handle.fetch_history() for handle in handles]
                    check_history(scenario, histories, run.tickets)
            finally:
                await engine.dispose()
    return histories


async def record(names: list[str]) -> None:
    unknown = [name for name in names if name not in SCENARIOS]
    if unknown:
        raise SystemExit(f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    chosen = [SCENARIOS[name] for name in names] if names else list(SCENARIOS.values())
    recorded: dict[str, WorkflowHistory] = {}
    runtime = quiet_runtime()
    started = time.monotonic()
    for each in chosen:
        began = time.monotonic()
        try:
            histories = await record_one(each, runtime)
        except PathNotCovered as err:
            raise SystemExit(f"{each.name}: path not covered, nothing written: {err}") from err
        recorded.update(zip(each.files, histories, strict=True))
        sizes = " + ".join(str(len(h.events)) for h in histories)
        print(f"{each.name}: {sizes} events, {time.monotonic() - began:.1f} s", flush=True)
    # Only now that every chosen scenario covered its path.
    for file, history in recorded.items():
        (HERE / file).write_text(history.to_json() + "\n")
    if not names:  # a full recording also drops histories no scenario records any more
        expected = {file for each in SCENARIOS.values() for file in each.files}
        for stale in sorted(HERE.glob("*.json")):
            if stale.name not in expected:
                stale.unlink()
                print(f"removed {stale.name}: no scenario records it")
    print(f"wrote {len(recorded)} histories to {HERE} in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    policies.install()
    asyncio.run(record(sys.argv[1:]))
