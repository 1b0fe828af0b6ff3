# The one image of the pipeline: reducer, sender, topic setup, lag and DLQ tools, demo endpoint.
# Which program runs is the container's command, e.g. `python -m services.processor` (see docker-compose.yml
# and deploy/). Configuration comes from environment variables only (names: `python -m services.X --help`).
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# Sources only (see .dockerignore); `pip install .` builds a regular, non-editable install.
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY reducer ./reducer
COPY services ./services
COPY tools ./tools
RUN pip install . && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin app

USER 10001
EXPOSE 9101 9102
CMD ["python", "-m", "services.processor", "--help"]
