"""What an action is, and the registry of them: `ActionDefinition` carries everything about one
action (its body, its permission row, its event, when it is offered, its check, its effect and
its console form), and `ACTIONS` holds the definitions in the order the interface lists them.

Pure: no Temporal, no I/O. TicketWorkflow's updates and `<name>-signal` signals, the API's
routes, the permission cell and the console's forms are all derived from `ACTIONS`, so adding
an action is one module in this package (and its tests); see README "Adding an action".

A check raises `Refusal` and never changes the ticket. An effect changes the state of the step
it is given, in place; it runs only after its check passed on that same state, so it never
refuses half way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Final, Generic, TypeVar

from workflows.enums import Role, TicketStatus
from workflows.models import Principal, TicketState
from workflows.payload import Payload
from workflows.permissions import Grant, can_reach, forbidden_reason
from workflows.policy import rules_for
from workflows.timeline import Step


class RefusalKind(StrEnum):
    CONFLICT = "Conflict"  # the action is fine, but not in this ticket's current state
    INVALID = "Invalid"  # the action is not allowed for this ticket at all
    FORBIDDEN = "Forbidden"  # the principal may not take this action on this ticket
    NOT_FOUND = "NotFound"  # the ticket is outside the principal's reach


class Refusal(Exception):
    """An action the machine will not take, with a sentence a person can act on."""

    def __init__(self, kind: RefusalKind, message: str, *, rule: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        # A name for callers that tell one refusal from another (an incident update applied
        # already is done, not failed); carried in the update's error details.
        self.rule = rule


CONFLICT, INVALID = RefusalKind.CONFLICT, RefusalKind.INVALID


def not_found(ticket_id: str) -> Refusal:
    return Refusal(
        RefusalKind.NOT_FOUND, f"No ticket {ticket_id!r}: check the id returned when it was filed."
    )


Action = TypeVar("Action", bound="ActionModel")


class ActionModel(Payload):
    """Every action names who takes it: an API key's principal, or the actor a signal names."""

    actor: Principal


# --- The form description: what the console renders and parses --------------------------------


class Widget(StrEnum):
    TEXT = "text"  # a <textarea>
    SELECT = "select"  # a <select> of `choices`
    RADIO = "radio"  # radio buttons of `choices`
    UTC_TIME = "utc-time"  # an <input type="datetime-local">, read as UTC


@dataclass(frozen=True)
class Choice:
    value: str
    label: str
    group: str = ""  # an <optgroup> label, if any


def integer(raw: str) -> Any:
    """A number the body needs; anything else goes through as it is, for the model to report."""
    return int(raw) if raw.lstrip("-").isdigit() else raw


def utc_time(raw: str) -> Any:
    """<input type="datetime-local"> sends no zone; the form labels these fields as UTC."""
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        return raw  # the model says what is wrong with it
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class FormField:
    """One field of an action's console form, and how its text becomes a body field."""

    name: str
    label: str
    widget: Widget = Widget.TEXT
    required: bool = False
    rows: int = 2
    max_length: int = 10_000
    # The choices of a select or radio field, for the ticket as it is.
    choices: Callable[[TicketState], Sequence[Choice]] | None = None
    # The body field it fills (`name` if None), and how its text becomes that field's value.
    body_field: str | None = None
    parse: Callable[[str], Any] | None = None
    # Shown only to a principal the ticket's permission table grants this capability.
    needs: str | None = None

    def value(self, raw: str) -> tuple[str, Any]:
        text = raw.strip() if self.parse else raw
        return self.body_field or self.name, self.parse(text) if self.parse else text


def note_field(label: str = "Note (optional)", *, required: bool = False) -> tuple[FormField, ...]:
    return (FormField("note", label, required=required),)


# --- The definition ------------------------------------------------------------------------------


def anytime(state: TicketState) -> bool:
    return True


@dataclass(frozen=True)
class ActionDefinition(Generic[Action]):
    """One action: the update it is (and `<update>-signal`), its body, who may take it, its
    check and its effect, and its console form."""

    update: str
    model: type[Action]
    # Its permission row: the capability it needs. The ticket's pinned policy document decides
    # the capabilities it lists; `grants` is the row of one it does not list (a new action).
    capability: str
    summary: str
    check: Callable[[TicketState, Action], None]
    effect: Callable[[Step, Action], None]
    # The event its effect records on the timeline (tests/test_machine_properties.py checks it).
    event: str = field(kw_only=True)
    # Whether the action can apply to the ticket as it is, whatever its body: state only. The
    # console offers the action's form only then, and `check` starts from it.
    offered_when: Callable[[TicketState], bool] = field(default=anytime, kw_only=True)
    # Its console form: a title and fields. No fields is a form with only its button.
    title: str = field(default="", kw_only=True)
    # A role that knows the action by another name (a customer withdraws its ticket).
    titles: Mapping[Role, str] = field(default_factory=dict, kw_only=True)
    form: tuple[FormField, ...] = field(default=(), kw_only=True)
    grants: Mapping[Role, Grant] = field(default_factory=dict, kw_only=True)
    # When one action needs more than one permission, by its body (an internal note).
    capability_of: Callable[[Action], str] | None = field(default=None, kw_only=True)
    # A check that needs the machine's now (a time the client sent must not be in the future).
    check_at: Callable[[TicketState, Action, datetime], None] | None = field(default=None, kw_only=True)
    # The instant an action says it happened, when that can be earlier than it reaches the
    # ticket (an incident's update, fanned out over a minute): the machine takes it then, if
    # the ticket has recorded nothing since (machine.acting_at).
    claimed_at: Callable[[Action], datetime | None] | None = field(default=None, kw_only=True)
    # Whether the API routes it as `POST /tickets/{id}/<update>` (and the console offers its
    # form). An incident's actions on its tickets are taken through /incidents only (DESIGN.md §8).
    routed: bool = field(default=True, kw_only=True)

    @property
    def method(self) -> str:
        """The workflow's method for the update: `change-severity` is `change_severity`."""
        return self.update.replace("-", "_")

    @property
    def signal(self) -> str:
        return f"{self.update}-signal"

    @property
    def label(self) -> str:
        return self.title or self.update.replace("-", " ").capitalize()

    def title_for(self, principal: Principal) -> str:
        return self.titles.get(principal.role) or self.label

    def needs(self, action: Action) -> str:
        return self.capability_of(action) if self.capability_of else self.capability

    def forbidden(
        self, principal: Principal, state: TicketState, action: Action | None = None, capability: str = ""
    ) -> str | None:
        """Why `principal` may not take this action (or use `capability`) on the ticket, or None."""
        rules = rules_for(state.entitlement.policy_version)
        wanted = capability or (self.needs(action) if action is not None else self.capability)
        row = self.grants if wanted == self.capability else None
        return forbidden_reason(rules, principal, wanted, state=state, action=action, row=row)


# --- The registry --------------------------------------------------------------------------------


class Registry:
    """The action definitions in order, and what is derived from them: whoever derives
    something (the workflow's handlers) listens, so an action registered later gets it too."""

    def __init__(self) -> None:
        self._definitions: dict[str, ActionDefinition[Any]] = {}
        self._by_model: dict[type[ActionModel], ActionDefinition[Any]] = {}
        self._listeners: list[Callable[[ActionDefinition[Any], bool], None]] = []

    def __iter__(self) -> Iterator[ActionDefinition[Any]]:
        return iter(tuple(self._definitions.values()))

    def __len__(self) -> int:
        return len(self._definitions)

    def __contains__(self, definition: object) -> bool:
        return definition in self._definitions.values()

    def register(self, definition: ActionDefinition[Any]) -> ActionDefinition[Any]:
        if definition.update in self._definitions or definition.model in self._by_model:
            raise ValueError(f"An action {definition.update!r} (or its model) is already registered.")
        self._definitions[definition.update] = definition
        self._by_model[definition.model] = definition
        for listener in self._listeners:
            listener(definition, True)
        return definition

    def unregister(self, definition: ActionDefinition[Any]) -> None:
        del self._definitions[definition.update], self._by_model[definition.model]
        for listener in self._listeners:
            listener(definition, False)

    @contextmanager
    def registered(self, definition: ActionDefinition[Any]) -> Iterator[ActionDefinition[Any]]:
        """`definition` registered for the duration: what a test that defines an action uses."""
        self.register(definition)
        try:
            yield definition
        finally:
            self.unregister(definition)

    def listen(self, listener: Callable[[ActionDefinition[Any], bool], None]) -> None:
        """Call `listener(definition, True)` for every action, now and as each is registered,
        and `listener(definition, False)` as one is unregistered."""
        self._listeners.append(listener)
        for definition in self:
            listener(definition, True)

    def get(self, update: str) -> ActionDefinition[Any] | None:
        return self._definitions.get(update)

    def of(self, action: ActionModel) -> ActionDefinition[Any]:
        return self._by_model[type(action)]


ACTIONS: Final = Registry()


def authorize(state: TicketState, action: ActionModel) -> None:
    """Raise Refusal when the actor may not take `action` on this ticket. Never mutates.

    Decided against the permission table and reach the ticket's policy version pinned, so a
    deploy that edits them changes nothing for an open ticket. Reach first (404, so ids do not
    leak), then the permission table (403).
    """
    actor = action.actor
    rules = rules_for(state.entitlement.policy_version)
    if not can_reach(rules, actor, customer_id=state.customer_id, partner_id=state.entitlement.partner_id):
        raise not_found(state.ticket_id)
    reason = ACTIONS.of(action).forbidden(actor, state, action)
    if reason is not None:
        raise Refusal(RefusalKind.FORBIDDEN, reason)


def check(state: TicketState, action: ActionModel) -> None:
    """Raise Refusal when the ticket, as it is, cannot take `action` (409/422). Never mutates.

    State only: who may take it is `authorize`, decided before (in the update's validator). A
    closed ticket takes no action at all; the definition's own check decides the rest.
    """
    if state.status == TicketStatus.CLOSED:
        raise Refusal(CONFLICT, "The ticket is closed; file a new ticket instead.")
    definition = ACTIONS.of(action)
    if not definition.offered_when(state):
        # Not for a ticket as it is: the action's own check says why in its words, else this.
        definition.check(state, action)
        status = state.status.value.replace("_", " ")
        raise Refusal(CONFLICT, f"The ticket is {status}; it cannot take {definition.update} now.")
    definition.check(state, action)


def check_at(state: TicketState, action: ActionModel, now: datetime) -> None:
    """Raise Refusal when `action` cannot be taken at `now`: the checks that need the time
    (the update's validator runs them; a replayed update does not run them again)."""
    timed = ACTIONS.of(action).check_at
    if timed is not None:
        timed(state, action, now)


def take(step: Step, action: ActionModel) -> None:
    """Apply a checked action to the step's state."""
    ACTIONS.of(action).effect(step, action)
