# syntax=docker/dockerfile:1
# oxlb for Docker users: the same image scripts/build-image.sh builds without Docker (that
# script is what CI checks and the release pushes; scripts/check-image.sh fails if the
# lines below stop describing its layout): one static binary FROM scratch, nothing else.
#   docker build -t ghcr.io/oxlb/oxlb:"$(scripts/version.sh)" \
#     --build-arg VERSION="$(scripts/version.sh)" --build-arg REVISION="$(git rev-parse HEAD)" .
#   docker buildx build --platform linux/amd64,linux/arm64 ... (same build args)

# Build: statically linked against musl (rustls + ring: no OpenSSL, no glibc), by
# scripts/build-static.sh, the script scripts/build-image.sh runs.
FROM docker.io/library/rust:1.89-bookworm AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/*
RUN rustup target add "$(uname -m)-unknown-linux-musl"
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    scripts/build-static.sh /oxlb

# Run: the binary alone (no shell, libc, passwd or CA bundle: it is static and the
# cluster's CA comes from the ServiceAccount mount), non-root by default (the speaker's
# DaemonSet runs it as root with only NET_RAW).
FROM scratch
ARG VERSION=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="oxlb" \
      org.opencontainers.image.description="oxlb: MetalLB-compatible load balancer for bare-metal Kubernetes" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/oxlb/oxlb" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=build /oxlb /usr/local/bin/oxlb
USER 65532:65532
EXPOSE 7472
ENTRYPOINT ["/usr/local/bin/oxlb"]
