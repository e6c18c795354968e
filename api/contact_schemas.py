"""Request and response bodies of the contacts and support-team endpoints (admin only).

A GET answers exactly the body its PUT takes, so a client can read, edit and send it back.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from store.contacts import MAX_CONTACTS, CatalogContact, CatalogSupportTeam, ContactRole
from workflows.enums import Audience
from workflows.text import VisibleText

__all__ = ["ContactUpdate", "ContactsPublic", "ContactsUpdate", "SupportTeamPublic", "SupportTeamUpdate"]


class _Body(BaseModel):
    # A misspelled field is refused, never silently dropped.
    model_config = ConfigDict(extra="forbid")


class ContactUpdate(_Body):
    name: VisibleText = Field(min_length=1, max_length=200, examples=["Acme Operations"])
    # Checked by the catalog (store/contacts.py check_email), which names the rule.
    email: str = Field(min_length=1, max_length=320, examples=["ops@acme.example"])
    role: ContactRole = Field(
        default=ContactRole.NOTIFY, description="notify (ticket updates), or on_call (a partner's pages)"
    )
    timezone: str | None = Field(
        default=None,
        min_length=1,
        max_length=64,
        description="The IANA zone to show due times in; none: the customer's contract zone",
        examples=["Europe/Berlin"],
    )


class ContactsUpdate(_Body):
    """The owner's whole list: PUT replaces every contact it had."""

    contacts: list[ContactUpdate] = Field(max_length=MAX_CONTACTS)


class ContactPublic(BaseModel):
    name: str
    email: str
    role: ContactRole
    timezone: str | None


class ContactsPublic(BaseModel):
    contacts: list[ContactPublic]

    @classmethod
    def of(cls, contacts: list[CatalogContact]) -> ContactsPublic:
        return cls(contacts=[ContactPublic.model_validate(c.model_dump()) for c in contacts])


class SupportTeamUpdate(_Body):
    """Where a ConnectSoft audience is reached: an email, a chat channel, or both."""

    name: VisibleText = Field(min_length=1, max_length=200, examples=["Support L2"])
    email: str | None = Field(default=None, min_length=1, max_length=320, examples=["l2@connectsoft.example"])
    chat_channel: str | None = Field(default=None, min_length=1, max_length=81, examples=["#support-l2"])
    timezone: str = Field(default="UTC", min_length=1, max_length=64, examples=["Europe/Berlin"])


class SupportTeamPublic(BaseModel):
    audience: Audience
    name: str
    email: str | None
    chat_channel: str | None
    timezone: str

    @classmethod
    def of(cls, team: CatalogSupportTeam) -> SupportTeamPublic:
        return cls.model_validate(team.model_dump())
