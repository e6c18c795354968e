# The worker and the API (the same image; docker-compose.yml picks the subcommand).
# Pinned to the patch release and the Debian base; moved on purpose, like every image here.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

COPY pyproject.toml README.md ./
COPY workflows ./workflows
COPY policies ./policies
COPY activities ./activities
COPY store ./store
COPY runtime ./runtime
COPY sinks ./sinks
COPY api ./api
COPY worker ./worker
RUN pip install . \
    # `escalator migrate` needs the Alembic scripts inside the installed package
    # (checked from / so that the source tree in /app is not what gets imported).
    && cd / && python -c "import store.db as db; assert (db.MIGRATIONS_DIR / 'env.py').is_file(), 'migrations missing from the wheel'" \
    && useradd --create-home --uid 10001 escalator

USER escalator
WORKDIR /home/escalator

ENV ESCALATOR_API_HOST=0.0.0.0 \
    ESCALATOR_API_PORT=8000
EXPOSE 8000

ENTRYPOINT ["escalator"]
CMD ["worker"]
