"""The ticket actions, one module each; `base` holds `ActionDefinition` and the registry
(`ACTIONS`). Importing the package registers every action here, in the order the interface
lists them (DESIGN.md §8). Import each name from its own module."""

from workflows.actions import (
    acknowledge,
    change_severity,
    close,
    comment,
    escalate,
    handback,
    handoff,
    outage,
    reopen,
    resolve,
    resume,
    wait_on_customer,
)
from workflows.actions.base import ACTIONS

for _definition in (
    acknowledge.ACKNOWLEDGE,
    comment.COMMENT,
    escalate.ESCALATE,
    handoff.HANDOFF,
    handback.HANDBACK,
    change_severity.CHANGE_SEVERITY,
    wait_on_customer.WAIT_ON_CUSTOMER,
    resume.RESUME,
    resolve.RESOLVE,
    reopen.REOPEN,
    close.CLOSE,
    outage.OUTAGE,
):
    ACTIONS.register(_definition)
