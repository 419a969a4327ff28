# Genjin server image: `docker build -t genjin .`
#
# Why it looks like this:
# - two stages, so the image holds the installed venv but no sources, build tools or pip caches;
# - `pip install .` without the test extras: the image runs the bot, it does not test it;
# - the speech model is assembled at build time, as the app user, into a directory that user owns,
#   so the first voice memo does not wait for 145 MB to be concatenated and hashed, and a read-only
#   root file system at run time is possible;
# - the server runs as an unprivileged user; its only writable place is /var/lib/genjin (SQLite file
#   on single-box installs; with PostgreSQL nothing is written there).
#
# BASE_IMAGE is a build argument only so that the image can be built from a local copy of the same
# Debian bookworm + Python 3.11 when Docker Hub is unreachable; the default is the official image.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python3 -m venv /opt/genjin
COPY pyproject.toml README.md /src/
COPY bot /src/bot
COPY handlers /src/handlers
COPY nlp /src/nlp
COPY storage /src/storage
COPY reminders /src/reminders
COPY cards /src/cards
RUN /opt/genjin/bin/pip install /src

FROM ${BASE_IMAGE}
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/genjin --shell /usr/sbin/nologin genjin \
 && install -d -o genjin -g genjin -m 0750 /var/lib/genjin /var/cache/genjin
COPY --from=build /opt/genjin /opt/genjin
# GENJIN_MODEL_CACHE is where `genjin speech install` and `genjin serve` look for the assembled model.
# The server listens on 0.0.0.0:8080 inside the container; these env values override a mounted file.
ENV PATH=/opt/genjin/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    GENJIN_MODEL_CACHE=/var/cache/genjin/models \
    GENJIN_SERVER_HOST=0.0.0.0 \
    GENJIN_SERVER_PORT=8080 \
    GENJIN_LOGGING_FORMAT=json
USER genjin
RUN genjin speech install
# ./genjin.toml is read if mounted here; otherwise pass `--config /etc/genjin/genjin.toml serve`
# or configure everything with GENJIN_<SECTION>_<KEY> variables (the default SQLite file lands here too).
WORKDIR /var/lib/genjin
VOLUME ["/var/lib/genjin"]
EXPOSE 8080
# /healthz answers 200 only when the database and every enabled channel are up (urlopen raises on 503).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('GENJIN_SERVER_PORT', '8080'), timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["genjin"]
CMD ["serve"]
