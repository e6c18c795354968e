"""Who a notification goes to: its audience, resolved against the catalog for one ticket.

- `customer`: the customer's contacts;
- `partner`: the partner's `notify` contacts; `partner_on_call`: its `on_call` contacts, and
  its own pager routing key when the settings have one (ESCALATOR_PARTNER_PAGER_ROUTING_KEYS);
- support_l1 ... leadership_l4, support_lead and on_call: the support team's address and chat
  channel; `on_call` also gets ConnectSoft's pager routing key (ESCALATOR_PAGER_ROUTING_KEY).

Due times are shown in the zone of the first contact that names one, else in the customer's
contract zone (the calendar the ticket's clocks run on); a team shows its own. Nothing set up
gives no emails and no channel: the caller logs the notice instead of sending it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import SecretStr
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from runtime.settings import Settings
from store.catalog import ContactRole
from store.contacts import TEAM_AUDIENCES
from store.db import Contact, Contract, SupportTeam
from workflows.enums import Audience

DEFAULT_TIMEZONE = "UTC"


@dataclass(frozen=True)
class Recipients:
    emails: tuple[str, ...]
    chat_channel: str | None
    # The zone to show due times in.
    timezone: str
    # For on_call: settings.pager_routing_key; for partner_on_call: the partner's own key.
    pager_routing_key: SecretStr | None

    @property
    def reachable(self) -> bool:
        """Whether anyone can be sent anything: an address, a channel or a pager."""
        return bool(self.emails or self.chat_channel or self.pager_routing_key)


def pager_routing_key(settings: Settings, audience: Audience, partner_id: str | None) -> SecretStr | None:
    """The pager service an audience is paged on: ConnectSoft's for on_call, the partner's own
    for partner_on_call (if the settings have one); nobody else is paged."""
    if audience == Audience.ON_CALL:
        return settings.pager_routing_key
    if audience == Audience.PARTNER_ON_CALL and partner_id:
        return settings.partner_pager_routing_keys.get(partner_id)
    return None


async def team_recipients(session: AsyncSession, settings: Settings, audience: Audience) -> Recipients:
    pager = pager_routing_key(settings, audience, None)
    team = await session.get(SupportTeam, audience.value)
    if team is None:
        return Recipients(emails=(), chat_channel=None, timezone=DEFAULT_TIMEZONE, pager_routing_key=pager)
    return Recipients(
        emails=(team.email,) if team.email else (),
        chat_channel=team.chat_channel,
        timezone=team.timezone,
        pager_routing_key=pager,
    )


async def recipients_for(
    *,
    session: AsyncSession,
    settings: Settings,
    customer_id: str,
    partner_id: str | None,
    audience: Audience,
) -> Recipients:
    """Who hears of a notice to `audience` on a ticket of `customer_id` (delivered by
    `partner_id`, if any). One query, two when no contact names a zone."""
    audience = Audience(audience)
    if audience in TEAM_AUDIENCES:
        return await team_recipients(session, settings, audience)

    if audience == Audience.CUSTOMER:
        owner, role = Contact.customer_id == customer_id, ContactRole.NOTIFY
    elif audience == Audience.PARTNER:
        owner, role = Contact.partner_id == partner_id, ContactRole.NOTIFY
    else:
        owner, role = Contact.partner_id == partner_id, ContactRole.ON_CALL
    contacts: list[tuple[str, str | None]] = []
    # A ticket no partner delivers has no partner to tell.
    if audience == Audience.CUSTOMER or partner_id is not None:
        query = select(Contact.email, Contact.timezone).where(owner, Contact.role == role.value)
        contacts = [(email, zone) for email, zone in await session.execute(query.order_by(Contact.id))]
    timezone = next((zone for _, zone in contacts if zone), None)
    if timezone is None:
        timezone = await session.scalar(
            select(Contract.timezone).where(Contract.customer_id == customer_id, Contract.active)
        )
    return Recipients(
        emails=tuple(email for email, _ in contacts),
        chat_channel=None,
        timezone=timezone or DEFAULT_TIMEZONE,
        pager_routing_key=pager_routing_key(settings, audience, partner_id),
    )
