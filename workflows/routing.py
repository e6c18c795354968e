"""Which audience hears of a ticket on which channel: data, shown by `GET /policy`.

Pure: no Temporal, no I/O. The machine decides who hears of an event (workflows/ladder.py,
machine.py, actions.py); this table decides how. Recipients come from the catalog at send
time (store/recipients.py): a customer's and a partner's contacts, each level's team.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from workflows.models import Audience, NoticeChannel, Tier


@dataclass(frozen=True)
class Route:
    audiences: tuple[Audience, ...]
    channel: NoticeChannel
    when: str


ROUTES: Final = (
    Route(
        (Audience.ON_CALL,),
        NoticeChannel.PAGER,
        "A Sev 1 for a Premium customer at intake, and any breach of ConnectSoft's clocks "
        "while the ticket is at L3 or L4. Acknowledging the ticket acknowledges the page; "
        "resolving or closing it resolves the page. The dedup key is the ticket id.",
    ),
    Route(
        (Audience.PARTNER_ON_CALL,),
        NoticeChannel.PAGER,
        "A Sev 1 on a partner's first line pages the partner's own on-call service (its "
        "routing key is a setting); a partner without one gets the page by email.",
    ),
    Route(
        (
            Audience.SUPPORT_L1,
            Audience.SUPPORT_L2,
            Audience.ENGINEERING_L3,
            Audience.LEADERSHIP_L4,
            Audience.SUPPORT_LEAD,
        ),
        NoticeChannel.CHAT,
        "Every notice for a support level goes to the level's chat channel.",
    ),
    Route(
        (Audience.CUSTOMER,),
        NoticeChannel.EMAIL,
        "Customer-facing notices go to the customer's contacts by email.",
    ),
    Route(
        (Audience.PARTNER,),
        NoticeChannel.EMAIL,
        "On a partner ticket every customer-facing notice goes to the partner's contacts "
        "instead, never to the customer (DESIGN.md section 6).",
    ),
)

CHANNELS: Final[dict[Audience, NoticeChannel]] = {
    audience: route.channel for route in ROUTES for audience in route.audiences
}

# The pages the machine raises, as data: Sev 1 at intake for these tiers, and breaches of
# ConnectSoft's clocks while the ticket is at these levels.
PAGE_SEV1_TIERS: Final = frozenset({Tier.PREMIUM})
PAGE_BREACH_LEVELS: Final = frozenset({3, 4})
# Whose pages a line's acknowledgement settles; resolving or closing settles them all.
PAGED_AUDIENCES: Final = (Audience.ON_CALL, Audience.PARTNER_ON_CALL)


def channel_for(audience: Audience) -> NoticeChannel:
    return CHANNELS[audience]


def routing_document() -> dict[str, object]:
    """The routing table as JSON, for GET /policy."""
    return {
        "routes": [
            {
                "audiences": [audience.value for audience in route.audiences],
                "channel": route.channel.value,
                "when": route.when,
            }
            for route in ROUTES
        ],
        "pages": {
            "sev1_at_intake_for_tiers": sorted(tier.value for tier in PAGE_SEV1_TIERS),
            "breach_at_levels": sorted(PAGE_BREACH_LEVELS),
            "dedup_key": "the ticket id",
            "acknowledged_when": "the line that was paged acknowledges the ticket",
            "resolved_when": "the ticket is resolved or closed",
        },
        "recipients": {
            "customer": "the customer's contacts (catalog)",
            "partner": "the partner's contacts (catalog)",
            "partner_on_call": "the partner's on-call contacts, or its pager routing key (settings)",
            "support levels": "each level's team: chat channel and address (catalog)",
        },
        "delivery": "once per notice: the key <ticket id>/<event seq>-<audience> is the "
        "idempotency key of every send; Temporal retries a failing sink with backoff",
    }
