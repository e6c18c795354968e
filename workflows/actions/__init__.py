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
    incident,
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
    # The ticket side of a major incident (DESIGN.md §13), taken through /incidents only.
    incident.LINK_INCIDENT,
    incident.UNLINK_INCIDENT,
    incident.INCIDENT_UPDATE,
    incident.INCIDENT_RESOLVE,
):
    ACTIONS.register(_definition)
