# syntax=docker/dockerfile:1
#
# Sisada GraphQL gateway.
#   docker build -t sisada .
#   docker run --rm -p 8000:8000 -v sisada-data:/data sisada
# The SQLite database (and the development signing key, .sisada-dev-key) live in /data.
# Set SISADA_JWT_SECRET / SISADA_JWT_PUBLIC_KEY / SISADA_JWKS_URL for real deployments.

ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------- build stage
FROM ${PYTHON_IMAGE} AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

# Everything (the package and its dependencies) goes into a self-contained virtualenv
# that is copied as a whole into the runtime stage.
RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

WORKDIR /src
# The locked versions first (requirements/base.txt, exported from uv.lock by ./scripts/lock),
# then the package itself without resolving anything again: every image gets the versions
# the tests ran on.
COPY requirements/base.txt requirements/base.txt
RUN pip install --no-cache-dir -r requirements/base.txt
COPY . .
RUN pip install --no-cache-dir --no-deps .

# -------------------------------------------------------------- runtime stage
FROM ${PYTHON_IMAGE} AS runtime

ENV PATH="/opt/venv/bin:${PATH}" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SISADA_DATABASE_URL="sqlite+aiosqlite:////data/sisada.db"

RUN groupadd --system --gid 10001 sisada \
 && useradd --system --uid 10001 --gid sisada --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin sisada \
 && mkdir -p /data \
 && chown sisada:sisada /data

COPY --from=build /opt/venv /opt/venv

WORKDIR /data
VOLUME ["/data"]
USER sisada:sisada

EXPOSE 8000

# python:3.11-slim has no curl/wget; urlopen raises (exit 1) on connection errors and non-2xx.
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]

CMD ["sisada", "serve", "--migrate", "--host", "0.0.0.0", "--port", "8000"]
