"""Who is calling: the principal of the request's API key (`Authorization: Bearer <key>`).

The secret is hashed and looked up, and never logged or echoed back. A live key's principal is
remembered for a few seconds (api/principal_cache.py), so most requests ask no database.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from api.errors import ApiError
from api.principal_cache import PrincipalCache
from api.rate_limit import check_api_request
from store.keys import hash_secret, live_key_for_secret
from workflows.models import Principal
from workflows.permissions import Capability, Grant, grant
from workflows.policy import current

# auto_error=False: a missing or malformed header gets our own 401, not FastAPI's 403.
bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="API key",
    description="An API key: `Authorization: Bearer <api key>`. `make up` prints the demo keys.",
)

UNAUTHENTICATED = (
    "Send your API key as `Authorization: Bearer <api key>`; this request had none, or a key "
    "that is unknown or revoked. `make up` prints the demo keys, and an admin makes real ones "
    "with `escalator keys create` or POST /api-keys."
)


def _unauthenticated() -> ApiError:
    return ApiError(401, UNAUTHENTICATED, rule="unauthenticated", headers={"WWW-Authenticate": "Bearer"})


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    if credentials is None or not credentials.credentials.strip():
        raise _unauthenticated()
    secret = credentials.credentials.strip()
    cache: PrincipalCache = request.app.state.principal_cache
    key_hash = hash_secret(secret)
    key = cache.get(key_hash)
    if key is None:
        sessionmaker: async_sessionmaker[AsyncSession] = request.app.state.sessionmaker
        async with sessionmaker() as session:
            key = await live_key_for_secret(session, secret)
        if key is None:
            raise _unauthenticated()
        cache.put(key_hash, key)
    # Only a known key spends tokens: an unknown one costs a hashed lookup, and no bucket.
    check_api_request(request, secret)
    return key.principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def require_admin(principal: PrincipalDep) -> Principal:
    if grant(current(), principal, Capability.CATALOG) == Grant.NO:
        raise ApiError(
            403,
            "Customers, partners, contracts and API keys are managed with an admin key; "
            f"this request was made as {principal}.",
            rule="forbidden",
        )
    return principal


AdminDep = Annotated[Principal, Depends(require_admin)]
