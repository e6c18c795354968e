"""The base of every pydantic model the workflows share (workflows/models.py, terms.py, the
action models of workflows/actions/): a Temporal payload is one of these. No Temporal imports.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

ModelT = TypeVar("ModelT", bound=type[BaseModel])


class Payload(BaseModel):
    """Versioned by adding optional fields, never by renaming; unknown fields are ignored."""

    model_config = ConfigDict(frozen=False, extra="ignore")


def in_order(order: Sequence[str]) -> Callable[[ModelT], ModelT]:
    """A class decorator: the model's fields named in `order` come first, in that order, and
    the others after them as declared (pydantic lists inherited fields base by base).

    For a model whose fields moved to shared bases, so that it serializes, validates and
    documents its fields in the order its payloads were recorded in before."""

    def reorder(model: ModelT) -> ModelT:
        fields = model.__pydantic_fields__
        model.__pydantic_fields__ = {name: fields[name] for name in order if name in fields} | fields
        model.model_rebuild(force=True)
        return model

    return reorder
