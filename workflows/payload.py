"""The base of every pydantic model the workflows share (workflows/models.py, terms.py, the
action models of workflows/actions/): a Temporal payload is one of these. No Temporal imports.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Payload(BaseModel):
    """Versioned by adding optional fields, never by renaming; unknown fields are ignored."""

    model_config = ConfigDict(frozen=False, extra="ignore")
