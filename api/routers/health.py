"""Probes (DESIGN.md 8, no key needed): `/healthz` says the process is alive, `/readyz` that it
can serve, because Temporal and the database both answer."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from fastapi import APIRouter, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
from temporalio.client import Client

from api.deps import SettingsDep
from api.errors import ApiError, problem_responses

router = APIRouter(tags=["health"])

# A probe that waits longer than this counts the dependency as down; a load balancer's own
# probe timeout is usually a few seconds.
PROBE_TIMEOUT = timedelta(seconds=2)


@router.get("/healthz")
async def healthz(settings: SettingsDep) -> dict[str, str]:
    """Alive: the process answers. It asks nothing of Temporal or the database (see /readyz),
    so an outage of either never gets the API restarted."""
    return {"status": "ok", "namespace": settings.temporal_namespace}


async def database_answers(sessionmaker: async_sessionmaker[AsyncSession]) -> str | None:
    """None if the database answers `SELECT 1` in time, else why not."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT.total_seconds()), sessionmaker() as session:
            await session.execute(text("SELECT 1"))
    except TimeoutError:
        return f"did not answer within {PROBE_TIMEOUT.total_seconds():g} s"
    except Exception as err:  # whatever the driver raises; only its kind is shown, no URL
        return f"did not answer ({type(err).__name__})"
    return None


async def temporal_answers(client: Client) -> str | None:
    """None if Temporal answers GetSystemInfo in time, else why not."""
    try:
        await client.workflow_service.get_system_info(GetSystemInfoRequest(), timeout=PROBE_TIMEOUT)
    except Exception as err:  # an RPCError, or a RuntimeError from a client that cannot connect
        return f"did not answer ({type(err).__name__})"
    return None


@router.get(
    "/readyz",
    responses={
        200: {"description": "Temporal and the database answer"},
        **problem_responses(503),
    },
)
async def readyz(request: Request, settings: SettingsDep) -> dict[str, str]:
    """Ready: Temporal and the database both answer. 503 names each one that does not."""
    database, temporal = await asyncio.gather(
        database_answers(request.app.state.sessionmaker),
        temporal_answers(request.app.state.temporal_client),
    )
    down = [f"{name} {why}" for name, why in (("the database", database), ("Temporal", temporal)) if why]
    if down:
        raise ApiError(
            503,
            f"Not ready: {' and '.join(down)}. Retry once it is back.",
            rule="not_ready",
            headers={"Retry-After": "5"},
        )
    return {"status": "ready", "database": "ok", "temporal": "ok", "namespace": settings.temporal_namespace}
