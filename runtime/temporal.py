"""The process's Temporal client: one per process, shared by the API and the worker."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from temporalio.client import Client
from temporalio.runtime import Runtime

from runtime.codec import data_converter
from runtime.settings import Settings
from runtime.telemetry import tracing_interceptors


async def connect_client(
    settings: Settings,
    *,
    runtime: Runtime | None = None,
    tracer_provider: TracerProvider | None = None,
) -> Client:
    """One client per process. API key and TLS are for Temporal Cloud. Its data converter
    (with the history codec when keys are set) is also the worker's. `runtime` serves the
    worker's metrics (runtime/telemetry.py); with a `tracer_provider` the client, and every
    worker built on it, traces starts, workflows and activities."""
    return await Client.connect(
        settings.temporal_address,
        namespace=settings.temporal_namespace,
        api_key=settings.temporal_api_key,
        # None lets the SDK turn TLS on by itself when an API key is given.
        tls=True if settings.temporal_tls else None,
        data_converter=data_converter(settings),
        interceptors=tracing_interceptors(tracer_provider),
        runtime=runtime,
    )
