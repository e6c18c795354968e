"""TicketWorkflow: the thin Temporal shell around the pure ticket machine (workflows/shell.py).

The sandbox runs this module again for every workflow instance, so it stays this short.
`import x.y as z`, never `from x import y`: a from-import of a submodule reaches past the
passthrough and would run it again in every instance too.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    import workflows.models as models
    import workflows.shell as shell


@workflow.defn(name="TicketWorkflow")
class TicketWorkflow(shell.TicketShell):
    @workflow.init
    def __init__(self, opened: models.TicketOpened) -> None:
        self._start(opened)

    @workflow.run
    async def run(self, opened: models.TicketOpened) -> models.TicketState:
        return await self._run(opened)
