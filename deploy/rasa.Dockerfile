# Rasa 3.6 (server and action server share this image). Built from the repository root:
#   docker build -f deploy/rasa.Dockerfile .
# Rasa 3.6 supports Python < 3.11, hence 3.10 here while the hub runs on 3.11.
FROM python:3.10-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    RASA_TELEMETRY_ENABLED=false \
    MPLCONFIGDIR=/tmp/matplotlib

RUN pip install --no-cache-dir "rasa==3.6.21" "rasa-sdk>=3.6,<3.7"

RUN groupadd --system --gid 10001 rasa \
    && useradd --system --uid 10001 --gid rasa --home-dir /home/rasa --create-home rasa

# Deployment endpoints: the action server is another container; its URL comes from the environment
# (Rasa expands ${VAR} in endpoints files). Kept outside /app so the bot's own endpoints.yml,
# meant for local runs, is left as it is.
RUN mkdir -p /etc/rasa \
    && printf 'action_endpoint:\n  url: "${ACTION_ENDPOINT_URL}"\n' > /etc/rasa/endpoints.yml

WORKDIR /app
COPY --chown=rasa:rasa bot/ /app/

# Extra libraries the custom actions need, if the bot declares any.
RUN if [ -f /app/requirements-actions.txt ]; then pip install --no-cache-dir -r /app/requirements-actions.txt; fi

# Mount points of the named volumes: created here so fresh volumes are owned by the rasa user.
RUN mkdir -p /app/models /app/.rasa && chown -R rasa:rasa /app
USER rasa

EXPOSE 5005 5055

# Without a token the HTTP API stays off; docker-compose.yml adds --enable-api --auth-token.
CMD ["rasa", "run", "--port", "5005", "--model", "/app/models", "--endpoints", "/etc/rasa/endpoints.yml"]
