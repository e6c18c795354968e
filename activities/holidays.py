"""Public holidays for a ticket that lives on past the years intake pinned.

The `holidays` package runs here, never in the workflow (DESIGN.md §9): its answer is in the
workflow's history, so a replay counts on the very same dates.
"""

from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from workflows.entitlement import IntakeRefused, public_holidays
from workflows.terms import HolidayYears, PinnedHolidays


@activity.defn(name="public_holidays")
async def pin_public_holidays(years: HolidayYears) -> PinnedHolidays:
    """The public holidays of `years.country` (and its subdivision) in [first_year, stop_year)."""
    try:
        dates = public_holidays(years.country, range(years.first_year, years.stop_year), years.subdivision)
    except IntakeRefused as err:
        # Intake checked the country, so only a package that dropped it gets here.
        raise ApplicationError(err.message, type="UnknownCountry", non_retryable=True) from err
    return PinnedHolidays(dates=dates)
