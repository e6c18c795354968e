"""/api-keys: make, list and revoke API keys. Admin keys only; a secret is shown once."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response, status

from api.auth import AdminDep
from api.catalog_schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic, refusal
from api.deps import SessionDep
from api.errors import ApiError, problem_responses
from store import keys
from store.catalog import CatalogRefused

log = logging.getLogger("escalator.keys")

router = APIRouter(prefix="/api-keys", tags=["api-keys"])

# Every catalog route needs an admin key.
REFUSALS = problem_responses(401, 403)


@router.get("", response_model=list[ApiKeyPublic], responses=REFUSALS)
async def list_api_keys(admin: AdminDep, session: SessionDep) -> list[ApiKeyPublic]:
    """Every key, revoked ones included. Secrets are never shown again, nor stored."""
    return await keys.list_keys(session=session)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    responses=REFUSALS | problem_responses(409, 422),
)
async def create_api_key(
    body: ApiKeyCreate, response: Response, admin: AdminDep, session: SessionDep
) -> ApiKeyCreated:
    """Make a key for one principal. The answer holds its secret, this once."""
    try:
        created, secret = await keys.create_key(session=session, **body.model_dump())
    except CatalogRefused as err:
        raise refusal(err) from None
    log.info("%s created API key %s for %s", admin, created.id, created.principal)
    response.headers["Location"] = f"/api-keys/{created.id}"
    # The secret must not linger in any cache on the way.
    response.headers["Cache-Control"] = "no-store"
    return ApiKeyCreated(**created.model_dump(), secret=secret)


@router.delete(
    "/{key_id}",
    response_model=ApiKeyPublic,
    responses=REFUSALS | problem_responses(404),
)
async def revoke_api_key(key_id: str, admin: AdminDep, session: SessionDep, request: Request) -> ApiKeyPublic:
    """Revoke a key at once; its next request gets a 401. Revoking again changes nothing."""
    revoked = await keys.revoke_key(session=session, key_id=key_id)
    # This replica refuses it from the next request on; others within the cache's bound.
    request.app.state.principal_cache.forget_key(key_id)
    if revoked is None:
        raise ApiError(404, f"No API key {key_id!r}: GET /api-keys lists them by id.", rule="unknown_api_key")
    log.info("%s revoked API key %s (%s)", admin, key_id, revoked.principal)
    return revoked
