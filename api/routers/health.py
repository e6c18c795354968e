from __future__ import annotations

from fastapi import APIRouter
from sqlalchemy import text
from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from api.deps import ClientDep, SessionDep

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz(client: ClientDep, session: SessionDep) -> dict[str, str]:
    """Ready when both the database and Temporal answer."""
    await session.execute(text("SELECT 1"))
    await client.workflow_service.get_system_info(GetSystemInfoRequest())
    return {"status": "ok", "namespace": client.namespace}
