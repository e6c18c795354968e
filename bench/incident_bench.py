"""Issue 19's incident storm on the real stack: `python -m bench incident`.

`escalator up` on a temporary directory and free ports (bench/stack_bench.py's `running_stack`),
driven over loopback as a client would:

1. a customer onboarded with a short Sev 3 response target (stack_bench's storm contract), and
   a major incident opened with a rule for its product and severity, so that intake links each
   ticket filed after it (the incident's sweep links any intake missed);
2. N tickets of that customer filed at the bench's concurrency, then waited on until the read
   model shows all N linked and every first response has breached (warnings and breaches, with
   their escalations, are the storm's notices), and until the read model has been still for
   15 s (the breaches' backlog worked off: the update and the comments below each start on a
   quiet stack);
3. **one update**: `POST /incidents/{id}/updates`, timed until `GET /incidents/{id}` reports it
   delivered to its total, and the tickets whose read-model timeline shows it counted;
4. **the baseline, in the same run**: the same N tickets each commented one by one through
   `POST /tickets/{id}/comment` at the same concurrency, timed from the first request to the
   last answer.

   Both start at a calm point in the tickets' lives (`until_clocks_calm`): no linked ticket's
   clock warns or falls due within `Options.calm` seconds, so neither meets a wave of the
   tickets' own deadlines (after the first responses' breaches, their next clocks fire a few
   minutes later, all together) that the other does not. The SLA notices that did fire during
   each are counted beside it, so a comparison that was not fair says so;
5. **messages to people**: once no linked ticket's notice waits for a digest, the messages that
   went to ConnectSoft's own audiences (the digests sent, and the pages sent: the incident's
   trigger, and its acknowledge or resolve if any) against the per-ticket notices the same
   tickets raised to those audiences, each of which would have been one message without the
   incident (every notice keeps its own outbox row, with the `group_key` it went out in).

Loops are bounded in count and time; nothing but 127.0.0.1 is contacted.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from temporalio.api.enums.v1 import PendingActivityState, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

from bench import storm_parts
from bench.common import Result
from bench.stack_bench import (
    ADMIN,
    STORM_CUSTOMER,
    SUPPORT,
    TASK_QUEUE,
    Stack,
    file_tickets,
    first_notices,
    running_stack,
    storm_contract,
    ticket_body,
    timed_all,
    until_quiet,
)
from bench.storm_parts import ReadModelAccess
from workflows.enums import INTERNAL_AUDIENCES
from workflows.models import workflow_id_for

PRODUCT = "identity"  # what stack_bench's ticket_body files for the storm customer
SEVERITY = 3  # the storm contract's short target is its Sev 3
POLL_SECONDS = 0.5
# How long, at most, each wait below is given: a phase that stalls fails the run instead of hanging.
# A wait fails when what it waits for has not moved for this long (see `_until`).
STALL_SECONDS = 300.0
_INTERNAL = tuple(audience.value for audience in INTERNAL_AUDIENCES)
_IN_INTERNAL = f"({', '.join('?' * len(_INTERNAL))})"


@dataclass
class Options:
    tickets: int = 10_000
    concurrency: int = 50
    # Short enough that the storm's breaches fire soon after filing, long enough that the
    # filing of 10,000 (about a minute and a half here) is done before the first is due.
    target_minutes: int = 3
    grace: float = 120.0
    # Seconds in which no linked ticket's clock may fire when the update (or the comments)
    # starts: what the longer of the two takes here at 3,000 tickets, with room.
    calm: float = 300.0


@dataclass
class IncidentStorm:
    tickets: int
    filing_seconds: float
    linking_seconds: float
    breached: int
    fan_out_seconds: float
    delivered: int
    total: int
    commented: int
    comment_seconds: float
    update_clock_notices: int
    comment_clock_notices: int
    calm_waited: float
    comments_answered: int
    internal_notices: int
    digests: int
    pages: int
    windows: int
    audiences: int
    customer_notices: int


async def _count(access: ReadModelAccess, sql: str, *args: Any) -> int:
    [(number,)] = await access.fetch(sql, *args)
    return int(number or 0)


async def _until(what: str, check: Callable[[], Awaitable[tuple[bool, int]]]) -> float:
    """Poll `check()` (whether it is done, and a count that moves as it gets there) until done;
    the seconds it took. A storm's backlog may take many minutes to drain on this machine, so
    it fails only when the count has not moved for `STALL_SECONDS`."""
    started = moved_at = time.perf_counter()
    last: int | None = None
    while True:
        done, count = await check()
        now = time.perf_counter()
        if done:
            return now - started
        if count != last:
            moved_at, last = now, count
        elif now - moved_at > STALL_SECONDS:
            raise TimeoutError(f"{what}: stuck at {count} for {STALL_SECONDS:.0f} s")
        await asyncio.sleep(POLL_SECONDS)


def firing_within(rows: Iterable[Sequence[Any]], now: datetime, calm: float) -> list[datetime]:
    """Of live clocks (`status`, `due_at`, `target_minutes`), the times at which one fires within
    `calm` seconds of `now`: its due time (also when already past: a breach not yet recorded),
    and a running clock's warning at 75% of its target (a warned clock's has fired)."""
    horizon = now + timedelta(seconds=calm)
    firing: list[datetime] = []
    for status, due_at, target_minutes in rows:
        due = storm_parts.as_utc(due_at)
        warn = due - timedelta(minutes=float(target_minutes)) / 4
        if due < horizon:
            firing.append(due)
        elif status == "running" and now <= warn < horizon:
            firing.append(warn)
    return firing


async def until_clocks_calm(
    access: ReadModelAccess, incident_id: str, calm: float, bound: float = 1800.0
) -> float:
    """Until no open linked ticket's live clock warns (at 75% of its target, 24x7 as the storm's
    contract has it) or falls due within the next `calm` seconds, and the read model is quiet
    after the last that did: the seconds waited. A clock still running past its due time is a
    breach not yet recorded, so it is waited for too. Fails after `bound` seconds."""
    started = time.monotonic()
    while True:
        rows = await access.fetch(
            "SELECT c.status, c.due_at, c.target_minutes FROM ticket_clocks c "
            "JOIN tickets t ON t.ticket_id = c.ticket_id "
            "WHERE t.incident_id = ? AND c.status IN ('running', 'warned')",
            incident_id,
        )
        now = datetime.now(UTC)
        firing = firing_within(rows, now, calm)
        if not firing:
            await until_quiet(access)
            return time.monotonic() - started
        if time.monotonic() - started > bound:
            raise TimeoutError(f"no calm {calm:.0f} s for the incident's tickets within {bound:.0f} s")
        # Past the last of them; a breach still unrecorded keeps it firing, so this loops until
        # it is, and the quiet wait above then lets their notices be written.
        await asyncio.sleep(max(1.0, (max(firing) - now).total_seconds() + 1.0))


async def _clock_notices(access: ReadModelAccess, incident_id: str, since: datetime) -> int:
    """The linked tickets' SLA warnings and breaches written since `since`."""
    return await _count(
        access,
        "SELECT count(*) FROM notifications n JOIN tickets t ON t.ticket_id = n.ticket_id "
        "WHERE t.incident_id = ? AND n.created_at >= ? AND n.subject LIKE 'SLA %'",
        incident_id,
        since.replace(tzinfo=None).isoformat(sep=" "),
    )


async def _answered(response: httpx.Response, status: int, what: str) -> dict[str, Any]:
    if response.status_code != status:
        raise RuntimeError(f"{what} answered {response.status_code}: {response.text[:300]}")
    body: dict[str, Any] = response.json()
    return body


async def _why_unlinked(
    stack: Stack, access: ReadModelAccess, filed: list[dict[str, Any]], incident_id: str
) -> str:
    """What a stalled link looks like: the read model's counts, what intake answered, one
    unlinked ticket's workflow (its pending activities and their last failure) and the log tail."""
    linked = {
        row[0]
        for row in await access.fetch("SELECT ticket_id FROM tickets WHERE incident_id = ?", incident_id)
    }
    rows = await _count(access, "SELECT count(*) FROM tickets")
    answered = Counter(str(ticket.get("incident_id")) for ticket in filed)
    lines = [f"read model: {len(linked)} linked of {rows} rows; intake answered incident_id {dict(answered)}"]
    unlinked = [ticket["ticket_id"] for ticket in filed if ticket["ticket_id"] not in linked]
    for ticket_id in unlinked[:2]:
        described = await stack.client.get_workflow_handle(workflow_id_for(ticket_id)).describe()
        pending = [
            (
                a.activity_type.name,
                PendingActivityState.Name(a.state),
                a.attempt,
                a.scheduled_time.ToDatetime().isoformat(timespec="seconds"),
                a.last_started_time.ToDatetime().isoformat(timespec="seconds")
                if a.HasField("last_started_time")
                else None,
                a.last_worker_identity,
                a.last_failure.message,
            )
            for a in described.raw_description.pending_activities
        ]
        lines.append(f"{ticket_id}: {described.status}, pending activities {pending}")
    for kind in (TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY):
        queue = await stack.client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=stack.client.namespace,
                task_queue=TaskQueue(name=TASK_QUEUE),
                task_queue_type=kind,
                report_stats=True,
            )
        )
        pollers = [
            (p.identity, p.last_access_time.ToDatetime().isoformat(timespec="seconds")) for p in queue.pollers
        ]
        lines.append(f"{TaskQueueType.Name(kind)}: {queue.stats} pollers {pollers}")
    lines.append(stack.up.tail(40))
    return "\n".join(lines)


async def run_storm(options: Options) -> IncidentStorm:
    n, concurrency = options.tickets, options.concurrency
    async with running_stack(1) as stack:
        access = stack.access
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        async with httpx.AsyncClient(base_url=stack.api_url, timeout=600, limits=limits) as http:
            await _answered(
                await http.post(
                    "/customers",
                    json={
                        "id": STORM_CUSTOMER,
                        "name": "Storm Ltd",
                        "contract": storm_contract(options.target_minutes),
                    },
                    headers=ADMIN,
                ),
                201,
                "POST /customers",
            )
            opened = await _answered(
                await http.post(
                    "/incidents",
                    json={
                        "title": "Identity outage (bench)",
                        "description": "Sign-in fails for every tenant",
                        "product": PRODUCT,
                        "severity": SEVERITY,
                        "customer_ids": [STORM_CUSTOMER],
                    },
                    headers=SUPPORT,
                ),
                201,
                "POST /incidents",
            )
            incident_id: str = opened["incident_id"]
            since = (datetime.now(UTC) - timedelta(minutes=1)).replace(microsecond=0).isoformat()
            await _answered(
                await http.post(
                    f"/incidents/{incident_id}/links",
                    json={"product": PRODUCT, "severities": [SEVERITY], "received_from": since},
                    headers=SUPPORT,
                ),
                200,
                "POST /incidents/{id}/links",
            )

            bodies = [ticket_body(i, customer=STORM_CUSTOMER, severity=SEVERITY) for i in range(n)]
            started = time.perf_counter()
            filed, _ = await file_tickets(http, bodies, concurrency)
            filing_seconds = time.perf_counter() - started
            ids = [ticket["ticket_id"] for ticket in filed]

            async def all_linked() -> tuple[bool, int]:
                linked = await _count(
                    access, "SELECT count(*) FROM tickets WHERE incident_id = ?", incident_id
                )
                return linked >= n, linked

            try:
                linking_seconds = filing_seconds + await _until("tickets linked", all_linked)
            except TimeoutError as timeout:
                why = await _why_unlinked(stack, access, filed, incident_id)
                raise TimeoutError(f"{timeout}\n{why}") from None

            due = [
                datetime.fromisoformat(
                    next(c for c in t["clocks"] if c["kind"] == "first_response")["due_at"]
                )
                for t in filed
            ]
            wanted = set(ids)
            while True:
                breaches, _ = await first_notices(access, wanted)
                if len(breaches) >= n or datetime.now(UTC) > max(due) + timedelta(seconds=options.grace):
                    break
                await asyncio.sleep(1.0)

            # The breaches' notices and escalations worked off first, and the tickets' next
            # clocks too: the update and the comments each have the stack to themselves, as in
            # the same run they must to compare.
            calm_waited = await until_clocks_calm(access, incident_id, options.calm)

            # One update answers them all.
            update_since = datetime.now(UTC)
            started = time.perf_counter()
            posted = await _answered(
                await http.post(
                    f"/incidents/{incident_id}/updates",
                    json={"message": "We have found the cause and are failing over"},
                    headers=SUPPORT,
                ),
                202,
                "POST /incidents/{id}/updates",
            )
            update_id: str = posted["update_id"]
            progress: dict[str, Any] = {}

            async def fanned_out() -> tuple[bool, int]:
                answer = await _answered(
                    await http.get(f"/incidents/{incident_id}", headers=SUPPORT), 200, "GET /incidents/{id}"
                )
                progress.update(next(u for u in answer["updates"] if u["update_id"] == update_id))
                done = bool(progress["done"]) and progress["delivered"] == progress["total"]
                return done, int(progress["delivered"])

            await _until("the update's fan-out", fanned_out)
            fan_out_seconds = time.perf_counter() - started
            shown = f'%"{update_id}"%'

            async def commented_count() -> int:
                return await _count(
                    access,
                    "SELECT count(DISTINCT ticket_id) FROM ticket_events WHERE detail LIKE ?",
                    shown,
                )

            async def timelines_show_it() -> tuple[bool, int]:
                shown_in = await commented_count()
                return shown_in >= int(progress["delivered"]), shown_in

            # The read model records each ticket's comment just after the ticket applies it.
            await _until("the update in the timelines", timelines_show_it)
            commented = await commented_count()

            # The baseline: the same tickets, one comment each.
            async def comment(i: int) -> int:
                answer = await http.post(
                    f"/tickets/{ids[i]}/comment",
                    json={"body": "We have found the cause and are failing over"},
                    headers=SUPPORT,
                )
                return answer.status_code

            update_clocks = await _clock_notices(access, incident_id, update_since)
            calm_waited += await until_clocks_calm(access, incident_id, options.calm)
            comment_since = datetime.now(UTC)
            started = time.perf_counter()
            statuses, _ = await timed_all(n, concurrency, comment)
            comment_seconds = time.perf_counter() - started
            await until_quiet(access)
            comment_clocks = await _clock_notices(access, incident_id, comment_since)

        # Every linked ticket's notice to ConnectSoft's teams gone out in a digest.
        async def none_waiting() -> tuple[bool, int]:
            waiting = await _count(
                access,
                "SELECT count(*) FROM notifications WHERE incident_id = ? AND channel = 'chat' "
                f"AND audience IN {_IN_INTERNAL} AND delivered_at IS NULL AND group_key IS NULL",
                incident_id,
                *_INTERNAL,
            )
            return waiting == 0, waiting

        await _until("the digests", none_waiting)
        internal = await _count(
            access,
            f"SELECT count(*) FROM notifications WHERE incident_id = ? AND audience IN {_IN_INTERNAL}",
            incident_id,
            *_INTERNAL,
        )
        customer = await _count(
            access,
            f"SELECT count(*) FROM notifications WHERE incident_id = ? AND audience NOT IN {_IN_INTERNAL}",
            incident_id,
            *_INTERNAL,
        )
        digests = await _count(
            access,
            "SELECT count(*) FROM incident_digests WHERE incident_id = ? AND sent_at IS NOT NULL",
            incident_id,
        )
        # One digest per (audience, window) at most: the table's primary key.
        windows = await _count(
            access,
            "SELECT count(DISTINCT window_start) FROM incident_digests "
            "WHERE incident_id = ? AND sent_at IS NOT NULL",
            incident_id,
        )
        audiences = await _count(
            access,
            "SELECT count(DISTINCT audience) FROM incident_digests "
            "WHERE incident_id = ? AND sent_at IS NOT NULL",
            incident_id,
        )
        # Pages that went to the pager: the trigger that opened the incident's page, and its
        # settles (acknowledge, resolve) if any; the linked tickets' own are recorded `grouped`.
        triggers = await _count(
            access,
            "SELECT count(*) FROM notifications WHERE incident_id = ? AND channel = 'pager' "
            f"AND audience IN {_IN_INTERNAL} AND delivered_at IS NOT NULL AND sink <> 'grouped'",
            incident_id,
            *_INTERNAL,
        )
        settles = await _count(
            access,
            "SELECT count(*) FROM incident_pages WHERE incident_id = ? AND status <> 'trigger'",
            incident_id,
        )
    return IncidentStorm(
        tickets=n,
        filing_seconds=filing_seconds,
        linking_seconds=linking_seconds,
        breached=len(breaches),
        fan_out_seconds=fan_out_seconds,
        delivered=int(progress["delivered"]),
        total=int(progress["total"]),
        commented=commented,
        comment_seconds=comment_seconds,
        update_clock_notices=update_clocks,
        comment_clock_notices=comment_clocks,
        calm_waited=calm_waited,
        comments_answered=sum(1 for status in statuses if status == 200),
        internal_notices=internal,
        digests=digests,
        pages=triggers + settles,
        windows=windows,
        audiences=audiences,
        customer_notices=customer,
    )


def results(storm: IncidentStorm, concurrency: int, calm: float) -> list[Result]:
    n = storm.tickets
    return [
        Result(
            name="incident",
            metric=f"one update to {n:,} linked tickets vs {n:,} comments one by one "
            f"(concurrency {concurrency})",
            unit="s",
            subject=storm.fan_out_seconds,
            baseline=storm.comment_seconds,
            goal="< 60 s for 10,000 linked (issue 19)",
            notes=[
                f"{n:,} tickets filed in {storm.filing_seconds:.0f} s ({n / storm.filing_seconds:.1f}/s), "
                f"all linked by rule {storm.linking_seconds:.0f} s after the first; "
                f"{storm.breached:,} first responses breached before the update",
                f"the update: delivered to {storm.delivered:,} of {storm.total:,}; "
                f"{storm.commented:,} timelines show it",
                f"the comments: {storm.comments_answered:,} of {n:,} answered 200 "
                f"in {storm.comment_seconds:.0f} s",
                f"each started with no clock due within {calm:.0f} s ({storm.calm_waited:.0f} s "
                f"waited for that); SLA notices of the linked tickets written meanwhile: "
                f"{storm.update_clock_notices:,} during the update, "
                f"{storm.comment_clock_notices:,} during the comments",
            ],
        ),
        Result(
            name="incident",
            metric=f"messages to ConnectSoft's teams (digests + pages), {n:,} linked tickets, "
            "vs one per notice",
            unit="messages",
            subject=storm.digests + storm.pages,
            baseline=storm.internal_notices,
            goal="at most one per audience per window",
            notes=[
                f"{storm.digests:,} digests to {storm.audiences} audience(s) over {storm.windows} "
                f"window(s) and {storm.pages} page event(s), for {storm.internal_notices:,} notices "
                "to internal audiences",
                "customers' and partners' own notices, one per ticket per event as ever: "
                f"{storm.customer_notices:,}",
            ],
        ),
    ]


def run(options: Options | None = None) -> list[Result]:
    options = options or Options()
    return results(asyncio.run(run_storm(options)), options.concurrency, options.calm)
