# churnstream image: a build stage with the -dev packages and the toolchain, and a runtime
# stage holding only the shared libraries the binary links, a non-root user and a health
# check. Both stages are Debian 12 so the runtime sonames match what the build linked.
#   docker build -t churnstream .        (docker-compose.yml builds it for you)

FROM debian:bookworm-slim AS build

# pkg-config resolves every library (see PKGS in the Makefile); git is left out, so the
# revision comes in as a build argument instead of `git rev-parse`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        build-essential pkg-config \
        librdkafka-dev libavro-dev libhiredis-dev libopenblas-dev libmicrohttpd-dev zlib1g-dev \
        libcurl4-openssl-dev libjansson-dev \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src
COPY Makefile VERSION ./
COPY processor/ processor/
COPY state/ state/
COPY schemas/ schemas/

ARG GIT_REV=unknown
# The Makefile drops a missing pkg-config module silently (2>/dev/null), which would only
# show up later as a link error: fail here with the module's name instead.
RUN pkg-config --exists --print-errors rdkafka avro-c hiredis openblas libmicrohttpd zlib \
        libcurl jansson \
    && make OPT=-O2 GIT_REV="$GIT_REV" churnstream \
    && make install PREFIX=/usr/local DESTDIR=/out GIT_REV="$GIT_REV"


FROM debian:bookworm-slim AS runtime

# Runtime counterparts of the -dev packages above (Debian 12 names). libopenblas0-pthread
# is the variant pkg-config's openblas.pc links against (openblas-pthread/), so pin it
# rather than letting the libopenblas0 metapackage choose.
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates \
        librdkafka1 libavro23 libhiredis0.14 libopenblas0-pthread libmicrohttpd12 zlib1g \
        libcurl4 libjansson4 \
    && rm -rf /var/lib/apt/lists/*

RUN useradd --system --user-group --no-create-home --home-dir /var/lib/churnstream \
        --shell /usr/sbin/nologin churnstream \
    && install -d -o churnstream -g churnstream -m 0750 /var/lib/churnstream

COPY --from=build /out/ /

# A library missing from the list above fails the build here, not the first `docker run`.
RUN ! ldd /usr/local/bin/churnstream | grep -F "not found"

# The metrics server must listen beyond loopback for the published port to reach it; the
# schemas are installed by `make install`. Both can be overridden at `docker run -e`.
ENV CHURNSTREAM_METRICS_BIND=0.0.0.0 \
    CHURNSTREAM_METRICS_PORT=9464 \
    CHURNSTREAM_SCHEMAS_DIR=/usr/local/share/churnstream/schemas

USER churnstream
WORKDIR /var/lib/churnstream
EXPOSE 9464

# SIGTERM makes the daemon finish its batch, commit and flush the producer (DESIGN.md 7).
STOPSIGNAL SIGTERM

# bash's /dev/tcp speaks enough HTTP for /healthz, so no curl (and its libraries) is needed.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${CHURNSTREAM_METRICS_PORT:-9464} && printf 'GET /healthz HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]

ENTRYPOINT ["churnstream"]
CMD ["run"]
