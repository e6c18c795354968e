"""Bodies of the /reports answers (DESIGN.md §12), and their CSV form."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from pydantic import BaseModel, Field

from store.clock_outcomes import ESCALATION_LEVELS
from store.sla_report import SlaGroup
from store.uptime_report import UptimeRow

CSV_MEDIA_TYPE = "text/csv"
SVG_MEDIA_TYPE = "image/svg+xml"


class SlaReportPublic(BaseModel):
    groups: list[SlaGroup]

    def csv(self) -> str:
        """The same rows as CSV: one per group, escalations flattened to escalations_l2..l4."""
        levels = [str(level) for level in ESCALATION_LEVELS]
        header = [name for name in SlaGroup.model_fields if name != "escalations"]
        rows = [
            [*(_cell(getattr(group, name)) for name in header), *(group.escalations[lv] for lv in levels)]
            for group in self.groups
        ]
        return _csv([*header, *(f"escalations_l{lv}" for lv in levels)], rows)


class UptimeReportPublic(BaseModel):
    month: str = Field(description="The UTC calendar month, YYYY-MM", examples=["2026-03"])
    items: list[UptimeRow]

    def csv(self) -> str:
        header = list(UptimeRow.model_fields)
        return _csv(
            ["month", *header],
            [[self.month, *(_cell(getattr(row, name)) for name in header)] for row in self.items],
        )


def _cell(value: object) -> object:
    # None is an empty cell; booleans as JSON spells them.
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def _csv(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def prefers_csv(accept: str | None) -> bool:
    """Whether an Accept header asks for text/csv rather than JSON (the default): CSV when its
    q is above JSON's and not below a wildcard's (a named type beats `*/*` at the same q)."""
    if not accept:
        return False
    quality: dict[str, float] = {}
    for media_range in accept.split(","):
        media_type, *params = (part.strip() for part in media_range.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        quality[media_type.lower()] = max(q, quality.get(media_type.lower(), 0.0))
    csv_q = quality.get(CSV_MEDIA_TYPE, 0.0)
    wildcard_q = max(quality.get("*/*", 0.0), quality.get("application/*", 0.0))
    return csv_q > 0 and csv_q > quality.get("application/json", 0.0) and csv_q >= wildcard_q
