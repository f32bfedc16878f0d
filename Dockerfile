# The image of every Python service, built from the repository root once per service:
#   docker compose build                  (compose passes the build args below)
#   docker build --build-arg SERVICE=catalog --build-arg PYTHON_IMAGE=... --build-arg UV_IMAGE=... .
# SERVICE is a workspace member's name, which is also its console script: the container runs it.
# COMMAND names another script of the member instead (msa-cli, for the `load` profile: `msa`).
# The base images are pinned in .env only. The health probe lives in docker-compose.yml.
ARG PYTHON_IMAGE
ARG UV_IMAGE

FROM ${UV_IMAGE} AS uv

# Only what decides the dependencies (pyproject.toml files, uv.lock): when just source changes,
# this stage's output is unchanged and the dependency layer below stays cached.
FROM ${PYTHON_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN find . -type f ! -name pyproject.toml ! -name uv.lock -delete

# The member's locked dependencies into /app/.venv (no dev group), then the member and the
# chassis as wheels (no editable installs, no source tree in the final image).
FROM ${PYTHON_IMAGE} AS build
ARG SERVICE
ARG COMMAND
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
COPY --from=manifests /src .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --package "${SERVICE:?build with --build-arg SERVICE=<member>}"
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package "${SERVICE}" \
 && test -x "/app/.venv/bin/${COMMAND:-$SERVICE}" \
 && ln -s "/app/.venv/bin/${COMMAND:-$SERVICE}" /app/.venv/bin/service

FROM ${PYTHON_IMAGE}
ARG SERVICE
LABEL org.opencontainers.image.title="${SERVICE}"
ENV PATH="/app/.venv/bin:$PATH" PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
# /data exists and belongs to the app user, so a fresh named volume mounted there is writable.
RUN groupadd --system --gid 10001 app \
 && useradd --system --no-log-init --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app \
 && mkdir /data && chown app:app /data
COPY --from=build /app/.venv /app/.venv
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# `service` is the member's console script (linked above; the build fails if there is none).
CMD ["service"]
