# The contact centre hub (aiohttp + python-socketio). Built from the repository root:
#   docker build -f deploy/hub.Dockerfile .

# The console's bundle (esbuild, from the lockfile): docs/subsystems/console.md
FROM node:20-slim AS console
WORKDIR /src/agent_console
COPY agent_console/package.json agent_console/package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY agent_console/ ./
RUN node build.mjs

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src

# Only what the wheel needs: the metadata first, then the four packages.
COPY pyproject.toml ./
COPY contact_center ./contact_center
COPY crm_store ./crm_store
COPY integrations ./integrations
COPY agent_console ./agent_console
COPY --from=console /src/agent_console/static/console/dist ./agent_console/static/console/dist

# Installed as root into the system site-packages, then the sources are dropped.
RUN pip install --no-cache-dir . \
    && rm -rf /src/build /src/*.egg-info

RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --home-dir /home/app --create-home app \
    && mkdir -p /app/var \
    && chown -R app:app /app
WORKDIR /app
USER app

EXPOSE 8000

CMD ["contact-center", "serve", "--host", "0.0.0.0", "--port", "8000"]
