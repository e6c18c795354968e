"""Process configuration, read once from the environment (prefix ESCALATOR_)."""

from __future__ import annotations

from contextlib import suppress
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="ESCALATOR_", env_file=".env", extra="ignore")

    data_dir: Path = Path(".escalator")
    # Plain DATABASE_URL is honoured too, as most platforms set it.
    database_url: str = Field(
        default="sqlite+aiosqlite:///.escalator/escalator.db",
        validation_alias=AliasChoices("ESCALATOR_DATABASE_URL", "DATABASE_URL"),
    )
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_api_key: str | None = None
    temporal_tls: bool = False
    task_queue: str = "tickets"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    temporal_ui_port: int = 8233
    # Where the console links a ticket's workflow in the Temporal UI; unset, the console's own
    # host on temporal_ui_port (the dev server's UI, as `escalator up` runs it).
    temporal_ui_url: str | None = None
    log_level: str = "INFO"
    # Where links in notifications point: the API (and its console) as people reach it.
    public_url: str = "http://127.0.0.1:8000"

    # Notification sinks (DESIGN.md section 8). With none set, notices go to the outbox
    # table and the log only. smtp://[user:password@]host:port, or smtps:// for implicit TLS.
    smtp_url: SecretStr | None = None
    smtp_from: str = "ConnectSoft Support <support@connectsoft.example>"
    # A JSON post shaped like a Slack or Teams incoming webhook (its URL carries a token).
    chat_webhook_url: SecretStr | None = None
    # The PagerDuty Events API v2 endpoint, and ConnectSoft's routing (integration) key.
    pager_url: str | None = None
    pager_routing_key: SecretStr | None = None
    # Partners' own on-call services: {"<partner id>": "<routing key>"} as JSON. A partner
    # without one gets its on-call page by email instead.
    partner_pager_routing_keys: dict[str, SecretStr] = Field(default_factory=dict)
    # One send, start to finish; Temporal retries it with backoff after that.
    notify_timeout_seconds: float = 10.0
    # While a ticket is linked to a major incident, ConnectSoft's own audiences get one digest
    # per incident and audience per window of this many seconds (DESIGN.md section 13).
    incident_digest_seconds: float = Field(default=60.0, gt=0)

    # Major incidents (DESIGN.md §13): how often an open incident with a link rule sweeps the
    # read model for matching tickets that intake did not link, how many tickets one fan-out
    # activity takes, and how long intake reuses its list of open incidents and their rules.
    incident_sweep_seconds: int = Field(default=60, ge=1)
    incident_batch_size: int = Field(default=250, ge=1, le=5000)
    incident_cache_seconds: float = Field(default=5.0, ge=0)
    # How long a cached ticket's next workflow task may wait for this worker (its sticky queue)
    # before the server hands it to any worker through the shared queue, behind everything
    # queued there. In a storm the shared queue holds thousands of new tickets' first tasks, so
    # a short wait sends every ticket's next step (a person's comment, a deadline) minutes
    # back; a long one delays only the tickets of a worker that died without stopping.
    sticky_timeout_seconds: float = Field(default=10.0, ge=1, le=3600)
    # Automatic major incidents: this many Sev 1-2 tickets for one product, filed within the
    # window, open one incident (0: off, and intake signals nothing). The window takes seconds
    # ("600") or an ISO 8601 duration ("PT10M").
    incident_auto_min_tickets: int = Field(default=0, ge=0, le=1000)
    incident_auto_window: timedelta = Field(
        default=timedelta(seconds=600), gt=timedelta(0), le=timedelta(days=1)
    )

    @field_validator("incident_auto_window", mode="before")
    @classmethod
    def _window_in_seconds(cls, value: object) -> object:
        """`600` from the environment is seconds, as a number is (pydantic reads a string as
        ISO 8601 or `[D day[s], ]HH:MM:SS` only)."""
        if isinstance(value, str):
            with suppress(ValueError):
                return float(value)
        return value

    # Encrypted history (runtime/codec.py): AES-256-GCM keys by id, {"<id>": "<base64 of 32
    # bytes>"} as JSON, and the id of the one that encrypts. Old ids stay listed so that what
    # they encrypted still decrypts after a rotation. No keys: history is not encrypted.
    codec_keys: dict[str, SecretStr] = Field(default_factory=dict)
    codec_key_id: str | None = None
    # Browser origins (the Temporal UI) allowed to call POST /codec/decode and /codec/encode.
    codec_cors_origins: list[str] = Field(
        default_factory=lambda: ["http://127.0.0.1:8233", "http://localhost:8233"]
    )

    # Observability (README "Observability").
    # Log lines: "text" for a terminal (`make up`), "json" for production: one object per
    # line, with ticket_id and workflow_id as fields whenever a line concerns a ticket.
    log_format: Literal["text", "json"] = "text"
    # The worker's Temporal SDK metrics, Prometheus text at http://host:port/metrics; port 0
    # turns them off. Two workers on one host need two ports. 0.0.0.0 in a container.
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int | None = 9464
    # OpenTelemetry traces from POST /tickets through the workflow and its activities.
    tracing: bool = False
    # Where spans go over OTLP/HTTP, e.g. http://collector:4318/v1/traces (needs the `otlp`
    # extra); unset, the standard OTEL_EXPORTER_OTLP_* variables apply.
    otlp_endpoint: str | None = None
    # GET /metrics reuses its read-model counts for this long, so that several scrapers cost
    # one pair of queries; 0 counts afresh on every scrape.
    metrics_cache_seconds: float = 5.0

    # The API and the worker load the policy versions an admin published (`escalator policy
    # publish`) at start and then this often (store/published_policies.py).
    policy_refresh_seconds: float = Field(default=10.0, gt=0)
    # Per-key rate limits (api/rate_limit.py, README "Security"): a token bucket per key for
    # writes (POST, PUT, PATCH, DELETE), for GET /reports/..., and for the console, holding
    # `burst` requests and refilling at `per_minute`; over it, 429 with Retry-After. Per API
    # replica. 0 per minute turns that limit off.
    rate_limit_writes_per_minute: float = Field(default=600.0, ge=0)
    rate_limit_writes_burst: int = Field(default=120, ge=1)
    rate_limit_reports_per_minute: float = Field(default=60.0, ge=0)
    rate_limit_reports_burst: int = Field(default=20, ge=1)
    rate_limit_console_per_minute: float = Field(default=300.0, ge=0)
    rate_limit_console_burst: int = Field(default=60, ge=1)
    # The reports and the SLA chart (API and console) reuse an answer computed for the same
    # reach and parameters for this long (api/report_cache.py); 0 computes afresh each time.
    report_cache_seconds: float = Field(default=30.0, ge=0)
    # The API remembers a live key's principal for this long (api/principal_cache.py): the bound
    # on a revocation made in another process; one made through this API applies at once.
    # 0 asks the database on every request.
    principal_cache_seconds: float = Field(default=5.0, ge=0)

    # `escalator up` restarts a child (the worker or the API) that dies, after a backoff that
    # starts here and doubles with each restart within the window (at most 30 s). More than
    # `up_restart_limit` restarts of one child within the window is a crash loop: the stack stops.
    up_restart_limit: int = Field(default=5, ge=0)
    up_restart_window_seconds: float = Field(default=60.0, gt=0)
    up_restart_backoff_seconds: float = Field(default=1.0, ge=0)


@lru_cache
def get_settings() -> Settings:
    return Settings()
