# syntax=docker/dockerfile:1
# oxlb: one static binary (controller, speaker, standalone) on a distroless base.
#   docker build -t ghcr.io/oxlb/oxlb:0.1.0 .
#   docker buildx build --platform linux/amd64,linux/arm64 -t ... .

# Build: statically linked against musl (rustls + ring: no OpenSSL, no glibc), by
# scripts/build-static.sh, the same script scripts/check-static-build.sh runs and checks
# (static, and working as uid 65532 in an empty root) on a machine without Docker.
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

# Run: no shell, no package manager; non-root by default (the speaker's DaemonSet
# runs it as root with only NET_RAW).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /oxlb /usr/local/bin/oxlb
USER 65532:65532
EXPOSE 7472
ENTRYPOINT ["/usr/local/bin/oxlb"]
