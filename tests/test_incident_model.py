"""The incident's pure model (workflows/incident_model.py): which tickets its rules match, the
order its updates go out in, and what the Temporal UI shows of its progress. Fast: no Temporal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from tests.factories import SUPPORT
from workflows.enums import Product, Severity
from workflows.incident_model import IncidentOpened, IncidentState, IncidentStatus, LinkRule, UpdateKind

AT = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def incident(customer_ids: list[str] | None = None) -> IncidentState:
    state = IncidentState.opened(
        IncidentOpened(
            incident_id="inc-1",
            title="Identity outage",
            description="SSO fails",
            products=[Product.IDENTITY],
            severity=Severity.CRITICAL,
            customer_ids=customer_ids,
            opened_by=SUPPORT,
            opened_at=AT,
        )
    )
    state.rules.append(
        LinkRule(
            product=Product.IDENTITY,
            severities=[Severity.CRITICAL, Severity.HIGH],
            received_from=AT,
            received_to=AT + timedelta(hours=2),
        )
    )
    return state


@pytest.mark.parametrize(
    ("product", "severity", "received", "matches"),
    [
        (Product.IDENTITY, Severity.CRITICAL, AT, True),
        (Product.IDENTITY, Severity.HIGH, AT + timedelta(minutes=119), True),
        (Product.IDENTITY, Severity.MEDIUM, AT, False),
        (Product.AUDIT, Severity.CRITICAL, AT, False),
        (Product.IDENTITY, Severity.CRITICAL, AT - timedelta(seconds=1), False),
        (Product.IDENTITY, Severity.CRITICAL, AT + timedelta(hours=2), False),
    ],
)
def test_a_rule_matches_its_product_severities_and_window(
    product: Product, severity: Severity, received: datetime, matches: bool
) -> None:
    found = incident().matches(customer_id="acme", product=product, severity=severity, received_at=received)
    assert found is matches


def test_the_customer_filter_and_the_resolution_end_the_matching() -> None:
    state = incident(customer_ids=["globex"])
    ticket = {"product": Product.IDENTITY, "severity": Severity.CRITICAL, "received_at": AT}
    assert not state.matches(customer_id="acme", **ticket)
    assert state.matches(customer_id="globex", **ticket)
    state.post(UpdateKind.RESOLUTION, "failed over", SUPPORT, AT + timedelta(hours=1))
    assert state.status == IncidentStatus.RESOLVED
    assert not state.matches(customer_id="globex", **ticket)


def test_updates_go_out_one_at_a_time_in_order_under_their_own_ids() -> None:
    state = incident()
    first = state.post(UpdateKind.UPDATE, "investigating", SUPPORT, AT)
    second = state.post(UpdateKind.UPDATE, "fixing", SUPPORT, AT + timedelta(minutes=5))
    assert (first.update_id, second.update_id) == ("inc-1-u1", "inc-1-u2")
    assert state.pending() is first
    assert state.progress() == "inc-1-u1 fanning out: 0 of counting delivered"
    first.done, first.delivered, first.total = True, 1200, 1240
    assert state.pending() is second
    second.done, second.delivered, second.total = True, 1240, 1240
    assert state.pending() is None
    assert state.progress() == "open; inc-1-u2 delivered to 1,240 of 1,240"


def test_a_rule_ends_after_it_starts() -> None:
    with pytest.raises(ValidationError, match="received_to"):
        LinkRule(product=Product.IDENTITY, severities=[Severity.HIGH], received_from=AT, received_to=AT)
