# syntax=docker/dockerfile:1

# ---------------------------------------------------------------------------
# (a) Front-end assets: Tailwind + htmx bundled by Vite into static/.
# Tailwind scans templates/ and src/ for class names, so both are copied in.
# ---------------------------------------------------------------------------
FROM node:20-bookworm-slim AS assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY vite.config.js tailwind.config.js postcss.config.js ./
COPY frontend/ frontend/
COPY templates/ templates/
COPY src/ src/
COPY static/ static/
RUN npm run build

# ---------------------------------------------------------------------------
# (b) Rust build. askama compiles templates/ into the binary.
# ---------------------------------------------------------------------------
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY migration/ migration/
COPY src/ src/
COPY templates/ templates/
# Cargo reads every target declared in Cargo.toml, the [[test]] one included.
COPY tests/ tests/
COPY --from=assets /src/static/ static/
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked \
 && install -m 0755 target/release/ispd /usr/local/bin/ispd

# ---------------------------------------------------------------------------
# (c) Runtime.
# ---------------------------------------------------------------------------
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system ispd \
 && useradd --system --gid ispd --home-dir /app --no-create-home --shell /usr/sbin/nologin ispd \
 && mkdir -p /app/data \
 && chown ispd:ispd /app/data

COPY --from=build /usr/local/bin/ispd /usr/local/bin/ispd
COPY --from=build /src/static/ /app/static/

WORKDIR /app
USER ispd
ENV LISTEN_ADDR=0.0.0.0:8080
EXPOSE 8080

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8080/healthz || exit 1

CMD ["ispd", "serve"]
