# syntax=docker/dockerfile:1
#
# callview: the `callview` binary on a small Debian runtime, as a non-root
# user. Build: `docker build -t callview .`; run:
#   docker run -p 3000:3000 -e CALLVIEW_API_TOKEN=... -e TWILIO_ACCOUNT_SID=... \
#     -e TWILIO_AUTH_TOKEN=... -v callview-data:/var/lib/callview callview
# (README, "Running in production"). A test (callview-server/tests/packaging.rs)
# checks every flag, variable, port and path used here against the binary.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
# The registry and target caches survive between builds (BuildKit).
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p callview-server --bin callview \
    && install -D -s target/release/callview /out/callview

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 callview \
    && useradd --system --uid 10001 --gid callview --home-dir /var/lib/callview \
        --shell /usr/sbin/nologin callview \
    && install -d -o callview -g callview -m 0750 /var/lib/callview
COPY --from=build /out/callview /usr/local/bin/callview

USER callview:callview
# The SQLite default (sqlite://callview.db) lands in the volume; set
# DATABASE_URL=postgres://... to use PostgreSQL instead.
WORKDIR /var/lib/callview
VOLUME ["/var/lib/callview"]
# Listening beyond loopback needs CALLVIEW_API_TOKEN (or --insecure-no-auth
# behind a network that already restricts access).
ENV CALLVIEW_LISTEN=0.0.0.0:3000
EXPOSE 3000
# `callview healthcheck` asks GET /healthz on CALLVIEW_LISTEN (no curl here).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["callview", "healthcheck"]
# SIGTERM: stop accepting, finish requests and the current sync page, exit
# within --shutdown-timeout (30 s): give `docker stop` more (-t 40).
STOPSIGNAL SIGTERM
ENTRYPOINT ["callview"]
CMD ["serve"]
