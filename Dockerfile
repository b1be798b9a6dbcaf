# syntax=docker/dockerfile:1
# imabot: the chat-to-video bot. Build:  docker build -t imabot .
# Run:    docker run -d --name imabot -v imabot-data:/data -v "$PWD/config.yaml:/config/config.yaml:ro" \
#           -e IMA_API_KEY -p 8080:8080 --stop-timeout 40 imabot
# The store lives under /data (the volume) and the web server listens on 0.0.0.0 so the published port
# (metrics, Feishu webhook) answers: config.example.yaml reads both from the environment set below.
# The health check itself calls 127.0.0.1.

ARG PYTHON_VERSION=3.11

# ---- build: install the package and its dependencies into a virtual environment ----------------------
FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/imabot
WORKDIR /src
# Metadata first, then the sources: only a change of either reinstalls.
COPY pyproject.toml README.md ./
COPY ima ./ima
COPY bot ./bot
RUN /opt/imabot/bin/pip install . \
    && /opt/imabot/bin/python -c "import bot.app, bot.web, ima; print('imabot installed')"

# ---- runtime: the venv only, as an unprivileged user ------------------------------------------------
FROM python:${PYTHON_VERSION}-slim AS runtime
ENV PATH=/opt/imabot/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    IMABOT_HEALTH_URL=http://127.0.0.1:8080/healthz \
    IMABOT_STORE_PATH=/data/imabot.sqlite3 \
    IMABOT_WEB_HOST=0.0.0.0
RUN groupadd --system --gid 10001 imabot \
    && useradd --system --uid 10001 --gid imabot --home-dir /data --no-create-home \
       --shell /usr/sbin/nologin imabot \
    && mkdir -p /data /config \
    && chown imabot:imabot /data
COPY --from=build /opt/imabot /opt/imabot
WORKDIR /data
# The SQLite job store (and its -wal/-shm files): jobs survive restarts and image upgrades.
VOLUME ["/data"]
EXPOSE 8080
USER 10001:10001
# /healthz is 200 when the store answers and every platform connection is up, else 503.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; r = urllib.request.urlopen(os.environ['IMABOT_HEALTH_URL'], timeout=4); sys.exit(0 if r.status == 200 else 1)"]
# SIGTERM: stop taking jobs, let in-flight creates answer (up to 30 s), record state, exit 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["imabot"]
CMD ["run", "--config", "/config/config.yaml"]
