"""README's settings table is the Settings class: one row per field, its variables and its default.

A new field without a row fails here, with the row to add (its meaning still to write); a row
for a field that no longer exists fails too.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pydantic import AliasChoices
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from runtime.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"
SECTION = "## Configuration"


def env_names(name: str, field: FieldInfo) -> set[str]:
    """The environment variables a field reads: its aliases, or ESCALATOR_<NAME>."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return {choice for choice in alias.choices if isinstance(choice, str)}
    if isinstance(alias, str):
        return {alias}
    return {f"ESCALATOR_{name.upper()}"}


def default_of(field: FieldInfo) -> Any:
    if field.default_factory is not None:
        return field.default_factory()  # type: ignore[call-arg]
    return None if field.default is PydanticUndefined else field.default


def shown(value: Any) -> str:
    """A default as the table shows it."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, dict | list):
        return f"`{json.dumps(value)}`"
    return f"`{value}`"


def matches(cell: str, value: Any) -> bool:
    text = cell.strip()
    if value is None:
        return text == "unset"
    literal = text.strip("`")
    if isinstance(value, bool):
        return literal == str(value).lower()
    if isinstance(value, int | float):
        try:
            return float(literal) == float(value)
        except ValueError:
            return False
    if isinstance(value, dict | list):
        try:
            return bool(json.loads(literal) == value)
        except ValueError:
            return False
    return literal == str(value)


def suggested_row(name: str, field: FieldInfo) -> str:
    names = " or ".join(f"`{env}`" for env in sorted(env_names(name, field)))
    return f"| {names} | {shown(default_of(field))} | <what it does> |"


def table_rows(readme: str) -> list[list[str]]:
    """The cells of the first table under the Configuration heading."""
    section = readme.split(f"\n{SECTION}\n", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        line = line.strip()
        if not line.startswith("|"):
            if rows:
                break  # the table ended
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        if set("".join(cells)) <= set("-: "):
            continue  # the separator
        rows.append(cells)
    assert rows, f"no table under {SECTION!r} in README.md"
    assert rows[0][:3] == ["Variable", "Default", "Meaning"], rows[0]
    return rows[1:]


def documented() -> dict[frozenset[str], list[str]]:
    """The variables of each row -> its cells."""
    found: dict[frozenset[str], list[str]] = {}
    for cells in table_rows(README.read_text()):
        assert len(cells) == 3, cells
        names = frozenset(re.findall(r"`([A-Z][A-Z0-9_]*)`", cells[0]))
        assert names, f"a row without a variable: {cells}"
        assert names not in found, f"{sorted(names)} documented twice"
        found[names] = cells
    return found


def test_every_setting_has_a_row_with_its_variables_and_default() -> None:
    rows = documented()
    missing = []
    for name, field in Settings.model_fields.items():
        cells = rows.get(frozenset(env_names(name, field)))
        if cells is None:
            missing.append(suggested_row(name, field))
            continue
        default = default_of(field)
        assert matches(cells[1], default), f"{name}: README says {cells[1]}, the default is {shown(default)}"
        assert len(cells[2]) > 10, f"{name}: say what it does"
    assert not missing, "README.md's settings table lacks rows:\n" + "\n".join(missing)


def test_the_table_lists_no_variable_that_settings_does_not_read() -> None:
    known = {frozenset(env_names(name, field)) for name, field in Settings.model_fields.items()}
    unknown = [sorted(names) for names in documented() if names not in known]
    assert not unknown, f"README.md documents settings that do not exist: {unknown}"


def test_the_check_would_notice_a_missing_row_and_a_wrong_default() -> None:
    """The helpers above, on a field this table cannot have: they must see it missing."""
    field = FieldInfo(default=3.5)
    assert frozenset(env_names("no_such_setting", field)) not in documented()
    assert (
        suggested_row("no_such_setting", field) == "| `ESCALATOR_NO_SUCH_SETTING` | `3.5` | <what it does> |"
    )
    assert matches("`3.5`", 3.5) and not matches("`4`", 3.5) and not matches("unset", 3.5)
    assert matches('`["a", "b"]`', ["a", "b"]) and matches("unset", None) and matches("`false`", False)
