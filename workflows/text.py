"""Free text that every database can store and every reader can trust.

Refused: NUL and the other control characters except newline and tab (PostgreSQL cannot
store NUL in text, and the rest only hide or garble what people read), and lone UTF-16
surrogates, which are not characters at all. CRLF and lone CR become newlines first, so text
pasted from a Windows mail client is accepted as it reads.

`VisibleText`, for what the API takes from a person, also refuses text that is only
whitespace: a title, message or name that shows nothing. The workflows' own models keep
`CleanText`, so that a recorded history always reads back as it was written.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

_NEWLINES = re.compile(r"\r\n?")
# C0 controls but tab and newline, DEL, C1 controls, and surrogates.
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff]")


def _normalise_newlines(value: object) -> object:
    return _NEWLINES.sub("\n", value) if isinstance(value, str) else value


def check_clean_text(value: str) -> str:
    found = _UNSTORABLE.search(value)
    if found:
        code = f"U+{ord(found.group()):04X}"
        raise ValueError(
            f"contains the control character {code} at position {found.start()}; "
            "remove it (only newline and tab are allowed)"
        )
    return value


CleanText = Annotated[str, BeforeValidator(_normalise_newlines), AfterValidator(check_clean_text)]


def check_visible(value: str) -> str:
    if value and not value.strip():
        raise ValueError("is only whitespace; write something a person can read")
    return value


VisibleText = Annotated[
    str, BeforeValidator(_normalise_newlines), AfterValidator(check_clean_text), AfterValidator(check_visible)
]
