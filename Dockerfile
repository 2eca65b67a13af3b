# syntax=docker/dockerfile:1
#
# m365-exporter container image: one static binary in an empty (scratch)
# image, run as a non-root user.
#
#   docker build -t m365-exporter .                       # builds the binary in the Rust stage
#   docker run --rm -p 9865:9865 m365-exporter demo
#
# Prebuilt binary (CI, or where the Rust image cannot be pulled): build the
# `prebuilt` target with a context that holds only the static binary:
#
#   RUSTFLAGS="-C target-feature=+crt-static" cargo build --release --target x86_64-unknown-linux-gnu
#   mkdir ctx && cp target/x86_64-unknown-linux-gnu/release/m365-exporter ctx/
#   podman build --format docker --target prebuilt -f Dockerfile -t m365-exporter ctx
#
# The image runs as uid/gid 65532 and holds nothing but the binary: mounted
# config files must be readable by 65532, secret files readable by it (e.g.
# owned by 65532, mode 0400), and the state_file directory writable by it
# (docs/install.md, "File ownership in the image").
#
# The binary is linked statically against glibc (`+crt-static`); TLS is
# rustls with compiled-in web PKI roots, so the image needs neither libc,
# OpenSSL nor a CA bundle. Name resolution uses glibc's built-in files and
# dns lookups (/etc/hosts and /etc/resolv.conf, which the runtime provides).

ARG RUST_VERSION=1.95.0
ARG DEBIAN_RELEASE=bookworm

# ---------------------------------------------------------------- builder
FROM docker.io/library/rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
WORKDIR /src
COPY . .
ARG M365_EXPORTER_REVISION=unknown
ENV M365_EXPORTER_REVISION=${M365_EXPORTER_REVISION}
RUN RUSTFLAGS="-C target-feature=+crt-static" \
        cargo build --release --locked --target x86_64-unknown-linux-gnu --bin m365-exporter \
 && install -D -m 0755 target/x86_64-unknown-linux-gnu/release/m365-exporter /out/m365-exporter \
 && strip /out/m365-exporter

# ------------------------------------------------------------------- base
# Everything but the binary: shared by the two final targets below.
FROM scratch AS base
ARG VERSION=0.1.0
ARG M365_EXPORTER_REVISION=unknown
LABEL org.opencontainers.image.title="m365-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Microsoft 365 service health and the audit activity feed" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${M365_EXPORTER_REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.documentation="https://github.com/m365-exporter/m365-exporter/blob/main/docs/deploy.md" \
      org.opencontainers.image.source="https://github.com/m365-exporter/m365-exporter"
USER 65532:65532
EXPOSE 9865
# No curl or shell in the image: the exporter asks itself. Assumes the
# default --web.listen-address (:9865); override HEALTHCHECK if you change it.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/m365-exporter", "healthcheck"]
ENTRYPOINT ["/m365-exporter"]

# --------------------------------------------------------------- prebuilt
# `--target prebuilt`: the binary comes from the build context.
FROM base AS prebuilt
COPY --chmod=0755 m365-exporter /m365-exporter

# ---------------------------------------------------------------- runtime
# The default target: the binary from the builder stage.
FROM base AS runtime
COPY --from=builder /out/m365-exporter /m365-exporter
