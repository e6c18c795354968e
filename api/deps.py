"""Typed dependencies: one Temporal client and one session factory per process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession
from temporalio.client import Client

from runtime.settings import Settings
from store.catalog import TermsByRevision


def get_client(request: Request) -> Client:
    client: Client = request.app.state.temporal_client
    return client


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessionmaker() as session:
        yield session


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_terms(request: Request) -> TermsByRevision:
    """Intake's contract terms, kept by revision (store/catalog.py)."""
    terms: TermsByRevision = request.app.state.terms_by_revision
    return terms


ClientDep = Annotated[Client, Depends(get_client)]
SessionDep = Annotated[AsyncSession, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_app_settings)]
TermsDep = Annotated[TermsByRevision, Depends(get_terms)]
