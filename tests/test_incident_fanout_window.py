"""The fan-out's window (activities/incidents.py `_in_slices`): SLICE tickets in flight, a slow
one holding back only its own place, and a heartbeat cursor that never passes a ticket still
unanswered (a retry resumes after the cursor, so passing one would skip it)."""

from __future__ import annotations

import asyncio

import pytest

from activities.incidents import SLICE, Progress, _in_slices


async def test_a_slow_ticket_holds_back_only_its_place_and_the_cursor_waits_for_it() -> None:
    page = [f"t{i:04d}" for i in range(3 * SLICE)]
    slow = page[1]
    release, others_done = asyncio.Event(), asyncio.Event()
    answered: list[str] = []
    in_flight = peak = 0
    cursors: list[str | None] = []

    class Watched(Progress):
        def beat(self) -> None:
            cursors.append(self.cursor)

    async def apply(ticket_id: str) -> bool:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        try:
            if ticket_id == slow:
                await release.wait()
            else:
                await asyncio.sleep(0)
            answered.append(ticket_id)
            if len(answered) == len(page) - 1:
                others_done.set()
            return ticket_id != page[-1]  # the last one no longer applies: skipped
        finally:
            in_flight -= 1

    progress = Watched(None)
    running = asyncio.create_task(_in_slices(page, apply, progress))
    # Every other ticket answers while the slow one waits: no slice waits for it.
    await asyncio.wait_for(others_done.wait(), 10)
    assert slow not in answered and not cursors  # nothing beaten past the unanswered ticket
    release.set()
    await running
    assert peak <= SLICE
    assert (progress.delivered, progress.skipped) == (len(page) - 1, 1)
    assert cursors == [page[SLICE - 1], page[2 * SLICE - 1], page[-1]]


async def test_a_failure_cancels_the_rest_and_leaves_the_cursor_before_it() -> None:
    page = [f"t{i:04d}" for i in range(2 * SLICE)]
    cursors: list[str | None] = []

    class Watched(Progress):
        def beat(self) -> None:
            cursors.append(self.cursor)

    async def apply(ticket_id: str) -> bool:
        await asyncio.sleep(0)
        if ticket_id == page[SLICE + 3]:
            raise RuntimeError("the server is away")
        return True

    progress = Watched(None)
    # The failure reaches the activity, which Temporal retries from the cursor.
    with pytest.raises(RuntimeError, match="the server is away"):
        await _in_slices(page, apply, progress)
    assert cursors == [page[SLICE - 1]] and progress.cursor == page[SLICE + 2]
