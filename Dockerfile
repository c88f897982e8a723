# warden: multi-stage build. The build needs no database: SQLX_OFFLINE=true uses the
# committed .sqlx/ query data.
#   docker build -t warden .
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
ENV SQLX_OFFLINE=true \
    CARGO_TERM_COLOR=never
COPY Cargo.toml Cargo.lock rustfmt.toml clippy.toml ./
COPY .sqlx ./.sqlx
COPY migrations ./migrations
COPY src ./src
RUN cargo build --release --locked --bin warden \
    && cp target/release/warden /usr/local/bin/warden

FROM debian:bookworm-slim
# CA certificates: JWKS over https and PostgreSQL/Neon over TLS.
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin warden
COPY --from=build /usr/local/bin/warden /usr/local/bin/warden
USER warden
ENV BIND_ADDR=0.0.0.0:8080 \
    RUST_LOG=info
EXPOSE 8080
# `warden healthcheck` GETs /healthz on BIND_ADDR's port; no curl in the image.
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD ["warden", "healthcheck"]
ENTRYPOINT ["warden"]
CMD ["serve"]
