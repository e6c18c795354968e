"""Process telemetry for the worker and the API: logs (text or JSON), the worker's Temporal SDK
metrics on a Prometheus port, and OpenTelemetry tracing through Temporal (off by default).

- `configure_logging(settings)`: one root handler; `ESCALATOR_LOG_FORMAT=json` writes one JSON
  object per line with `ticket_id` and `workflow_id` whenever a record concerns a ticket.
- `worker_runtime(settings)`: a Temporal Runtime serving the SDK's metrics
  (`temporal_workflow_task_schedule_to_start_latency`, `temporal_sticky_cache_*`,
  `temporal_activity_execution_failed`, ...) on `ESCALATOR_WORKER_METRICS_PORT`.
- `process_tracer_provider(settings, ...)` and `tracing_interceptors(provider)`: spans from
  `POST /tickets` through StartWorkflow, RunWorkflow and each activity, in one trace.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from temporalio import activity, workflow
from temporalio.contrib.opentelemetry import TracingInterceptor
from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

from runtime.settings import Settings

log = logging.getLogger(__name__)

# The ticket an API request is about: set from the route's `{ticket_id}`, or from the
# Location of a ticket just filed (api/observability.py); read by the JSON formatter.
current_ticket_id: ContextVar[str | None] = ContextVar("current_ticket_id", default=None)

WORKFLOW_ID_PREFIX = "ticket-"
# A ticket's child workflow that delivers the notices left when it closed (workflows/ticket.py).
CHILD_WORKFLOW_SUFFIXES = ("-deliveries",)
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# What every LogRecord has, so that only a caller's own `extra` fields are copied into JSON.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
    "temporal_workflow",
    "temporal_activity",
    # uvicorn's copy of the message with terminal colours
    "color_message",
}


def ticket_id_of(workflow_id: str | None) -> str | None:
    """The ticket id of a ticket's workflow id (`ticket-<id>`, DESIGN.md 8) or of one of its
    child workflows (`ticket-<id>-deliveries`), else None."""
    if not workflow_id or not workflow_id.startswith(WORKFLOW_ID_PREFIX):
        return None
    ticket_id = workflow_id[len(WORKFLOW_ID_PREFIX) :]
    for suffix in CHILD_WORKFLOW_SUFFIXES:
        ticket_id = ticket_id.removesuffix(suffix)
    return ticket_id or None


def _temporal_context(record: logging.LogRecord) -> dict[str, Any] | None:
    """The workflow or activity a record was logged in: from the `extra` that
    `workflow.logger` and `activity.logger` add, else from the running activity or workflow
    (a plain logger called inside one)."""
    for name in ("temporal_workflow", "temporal_activity"):
        details = getattr(record, name, None)
        if isinstance(details, dict):
            return details
    if activity.in_activity():
        info = activity.info()
        return {
            "workflow_id": info.workflow_id,
            "activity_type": info.activity_type,
            "attempt": info.attempt,
        }
    if workflow.in_workflow():
        return {"workflow_id": workflow.info().workflow_id, "run_id": workflow.info().run_id}
    return None


# C0 and C1 controls, DEL, and the Unicode line and paragraph separators: any of them in user
# text (a title, a path) could start a forged line in a terminal or a log file.
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(match: re.Match[str]) -> str:
    char = match.group()
    return _NAMED_ESCAPES.get(char) or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")


def escape_controls(text: str) -> str:
    """`text` on one line: newlines, carriage returns and other controls as backslash escapes."""
    return _CONTROLS.sub(_escaped, text)


class TextLogFormatter(logging.Formatter):
    """The text format (`make up`), one record per line: the message is escaped (a title with a
    newline cannot forge a line), and a traceback's lines follow indented, each escaped too, so
    only a record's own first line starts at the margin."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        clean = copy.copy(record)  # other handlers see the record as it was
        clean.msg, clean.args = escape_controls(record.getMessage()), None
        first, *rest = super().format(clean).split("\n")
        return "\n".join([first, *(f"  {escape_controls(line)}" for line in rest)])


class JsonLogFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message, and the ticket it concerns.

    `workflow_id` and `ticket_id` are top-level fields: from Temporal's workflow or activity
    context in the worker, and from the request's ticket in the API. A caller's own `extra`
    fields are kept; an exception comes as `exception` (its traceback as text).
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        temporal = _temporal_context(record)
        workflow_id = temporal.get("workflow_id") if temporal else None
        ticket_id = ticket_id_of(workflow_id) or current_ticket_id.get()
        if ticket_id is not None:
            entry["ticket_id"] = ticket_id
            entry["workflow_id"] = workflow_id or f"{WORKFLOW_ID_PREFIX}{ticket_id}"
        elif workflow_id is not None:
            entry["workflow_id"] = workflow_id
        if temporal:
            entry["temporal"] = {k: v for k, v in temporal.items() if k != "workflow_id"}
        span = trace.get_current_span().get_span_context()
        if span.is_valid:
            entry["trace_id"] = format(span.trace_id, "032x")
            entry["span_id"] = format(span.span_id, "016x")
        if record.name == "uvicorn.access" and isinstance(record.args, tuple) and len(record.args) == 5:
            _, method, path, _, status = record.args
            entry.update(http_method=method, http_path=path, http_status=status)
        for key, value in vars(record).items():
            if key not in _RECORD_ATTRIBUTES and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


def configure_logging(settings: Settings) -> None:
    """The process's root handler on stderr, in `settings.log_format` (text or json)."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonLogFormatter())
        # The ids are fields of their own in JSON, not a dict appended to the message.
        workflow.logger.workflow_info_on_message = False
        activity.logger.activity_info_on_message = False
    else:
        handler.setFormatter(TextLogFormatter())
    logging.basicConfig(level=settings.log_level.upper(), handlers=[handler])


# --- Worker metrics -----------------------------------------------------------------------------


def worker_metrics_address(settings: Settings) -> str | None:
    """host:port of the worker's metrics endpoint, or None when it is off (port 0 or unset)."""
    if not settings.worker_metrics_port:
        return None
    return f"{settings.worker_metrics_host}:{settings.worker_metrics_port}"


def worker_runtime(settings: Settings) -> Runtime | None:
    """A Temporal Runtime that serves the SDK's metrics at http://<address>/metrics, or None
    when they are off. A port already taken turns them off with an error in the log rather
    than stopping the worker: deadlines matter more than dashboards."""
    address = worker_metrics_address(settings)
    if address is None:
        return None
    try:
        return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(bind_address=address)))
    except ValueError as err:
        log.error(
            "Worker metrics are off: cannot serve them on %s (%s). Give each worker on this host "
            "its own ESCALATOR_WORKER_METRICS_PORT, or 0 to turn them off.",
            address,
            err,
        )
        return None


# --- Tracing ------------------------------------------------------------------------------------

_process_provider: TracerProvider | None = None


def span_exporter_for(settings: Settings) -> Any:
    """The OTLP/HTTP span exporter (the optional `otlp` extra), or None without it. With no
    ESCALATOR_OTLP_ENDPOINT it reads the standard OTEL_EXPORTER_OTLP_* variables."""
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        log.warning(
            "Tracing is on but the OTLP exporter is not installed (pip install 'escalator[otlp]'): "
            "spans are recorded and dropped."
        )
        return None
    return OTLPSpanExporter(endpoint=settings.otlp_endpoint) if settings.otlp_endpoint else OTLPSpanExporter()


def process_tracer_provider(settings: Settings, *, service_name: str) -> TracerProvider | None:
    """This process's tracer provider when ESCALATOR_TRACING is on, else None. Made once,
    exporting in batches, and set as OpenTelemetry's global provider."""
    global _process_provider
    if not settings.tracing:
        return None
    if _process_provider is None:
        provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
        exporter = span_exporter_for(settings)
        if exporter is not None:
            provider.add_span_processor(BatchSpanProcessor(exporter))
        trace.set_tracer_provider(provider)
        _process_provider = provider
    return _process_provider


def tracing_interceptors(provider: TracerProvider | None) -> list[TracingInterceptor]:
    """Temporal's tracing interceptor on `provider`, for a client (a worker built on that
    client takes it too), or none when tracing is off."""
    if provider is None:
        return []
    return [TracingInterceptor(provider.get_tracer("escalator.temporal"))]
