# One image for every service and one-shot job of Community Compute.
#   docker build -t ccn .               # the runtime target; --target dev for Tilt's live_update
#   docker run ccn serve edge           # a service: registry, scheduler, scheduler-projector, edge, analytics, fetch-proxy, crawler
#   docker run ccn migrate              # a one-shot job: migrate, topology apply
# Dependencies come from uv.lock exactly as `make setup` installs them (uv sync --frozen), with
# the same pinned uv; the runtime stage holds the virtual environment and nothing else.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
# the Makefile's UV_VERSION
RUN pip install --no-cache-dir --disable-pip-version-check uv==0.13.9
ENV UV_PROJECT_ENVIRONMENT=/opt/ccn/venv \
    UV_PYTHON_DOWNLOADS=never \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1
WORKDIR /src
# the lock and every member's pyproject first: the third-party layer is rebuilt only when they change
COPY pyproject.toml uv.lock ./
COPY libs/core/pyproject.toml libs/core/
COPY libs/cli/pyproject.toml libs/cli/
COPY libs/web/pyproject.toml libs/web/
COPY libs/jobs/pyproject.toml libs/jobs/
COPY proto/pyproject.toml proto/
COPY services/registry/pyproject.toml services/registry/
COPY services/edge/pyproject.toml services/edge/
COPY services/analytics/pyproject.toml services/analytics/
COPY services/scheduler/pyproject.toml services/scheduler/
COPY services/fetch_proxy/pyproject.toml services/fetch_proxy/
COPY services/crawler/pyproject.toml services/crawler/
COPY services/validation/pyproject.toml services/validation/
COPY services/merge/pyproject.toml services/merge/
RUN uv sync --frozen --no-dev --all-packages --no-editable --no-install-workspace
COPY libs libs
COPY proto proto
COPY services services
# not editable: the environment stands alone, so /src stays behind in this stage
RUN uv sync --frozen --no-dev --all-packages --no-editable

FROM ${PYTHON_IMAGE} AS base
RUN groupadd --system --gid 10001 ccn \
    && useradd --system --uid 10001 --gid ccn --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin ccn
COPY --from=build /opt/ccn/venv /opt/ccn/venv
# Services bind all interfaces in a container (the kubelet probes the pod's address); logs are
# JSON lines on stdout; nothing is written but /tmp (an emptyDir), so the root filesystem can be read-only.
ENV PATH=/opt/ccn/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CCN_HEALTH_HOST=0.0.0.0 \
    CCN_EDGE_HOST=0.0.0.0 \
    CCN_ANALYTICS_HOST=0.0.0.0 \
    CCN_LOG_FORMAT=json \
    CCN_HOME=/tmp/ccn
EXPOSE 8080 8081 8091 8092 8093 8094 8095
ENTRYPOINT ["ccn"]
CMD ["--help"]

# Tilt's live_update (tilt/Tiltfile) syncs the project's own packages into site-packages: in this
# target, and only here, they belong to the user the services run as.
FROM base AS dev
# and the file whose touch restarts the service after a sync (Tilt's restart_process extension)
RUN chown -R 10001:10001 /opt/ccn/venv/lib/python3.11/site-packages/ccn_* \
    && touch /opt/ccn/.restart-proc && chown 10001:10001 /opt/ccn/.restart-proc
USER 10001:10001

# The default target, last: nothing in it is writable by the user it runs as.
FROM base AS runtime
# numeric, so the kubelet can verify runAsNonRoot
USER 10001:10001
