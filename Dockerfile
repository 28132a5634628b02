# syntax=docker/dockerfile:1

# The processor image: one static binary on an empty base, non-root, with
# only what it reads at run time copied in beside it.
#
#   docker build --build-arg VERSION=0.1.0 --build-arg REVISION=$(git rev-parse HEAD) -t prechat:0.1.0 .
#   docker run --rm prechat:0.1.0 help
#
# The Kubernetes chart (helm/prechat) runs it as the consumer
# (ROLES=consumer), the API (ROLES=api) and the migration Job (migrate).
# scripts/helm-test builds this file with buildah and runs the image with
# podman (helm/test/image*_test.go); docs/image.md says how.

# The builder is the Go of go.mod's toolchain line, to the patch release
# (TestOneGoVersion checks that they agree): a bump changes both
# (docs/supply-chain.md). Official
# golang images set GOTOOLCHAIN=local, so the image's Go is the one that
# builds. Every RUN is exec form and runs only Go: the stage needs the Go
# distribution and the CA bundle, not a shell or a package manager.
FROM --platform=$BUILDPLATFORM golang:1.27.3 AS build
ARG TARGETOS
ARG TARGETARCH
# Where modules come from: a module proxy, or file:// of a module cache's
# cache/download directory. go.sum verifies them either way.
ARG GOPROXY=https://proxy.golang.org,direct
# The caches the RUN steps mount, named rather than derived from $HOME.
ENV GOMODCACHE=/go/pkg/mod GOCACHE=/root/.cache/go-build
WORKDIR /src
# Modules first, so source edits do not invalidate the download layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod ["go", "mod", "download"]
COPY . .
# The SBOM writer runs here, so it is built for the build platform, before
# GOOS and GOARCH name the target.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    ["go", "build", "-trimpath", "-o", "/out/sbom", "./tools/sbom"]
# Static (no libc, no dynamic loader), reproducible paths, no symbol tables.
ENV CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    ["go", "build", "-trimpath", "-ldflags=-s -w", "-o", "/out/processor", "./cmd/processor"]
# The image's version and source revision: its labels and its SBOM's.
ARG VERSION=dev
ARG REVISION=unknown
# SPDX 2.3 JSON of every module linked into the binary, from the binary's
# own build information (what `go version -m` prints); sbom reads VERSION,
# REVISION and SOURCE_DATE_EPOCH from the environment.
ARG SOURCE_DATE_EPOCH
RUN ["/out/sbom", "-o", "/out/sbom.spdx.json", "/out/processor"]

# Nothing but the binary, its SBOM, the CA bundle (TLS to Kafka and
# Postgres), Go's time zone database and a passwd/group naming 65532:
# no shell, no package manager, no libc.
FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="prechat" \
      org.opencontainers.image.description="Segment events from Kafka to Salesforce pre-chat documents" \
      org.opencontainers.image.source="https://github.com/prechat/prechat" \
      org.opencontainers.image.url="https://github.com/prechat/prechat" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.revision="$REVISION"
# Read-only files with the same modes whatever the build context's umask.
COPY --chmod=0444 image/passwd image/group /etc/
COPY --chmod=0444 --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --chmod=0444 --from=build /usr/local/go/lib/time/zoneinfo.zip /zoneinfo.zip
ENV ZONEINFO=/zoneinfo.zip
COPY --chmod=0444 --from=build /out/sbom.spdx.json /sbom.spdx.json
COPY --chmod=0555 --from=build /out/processor /processor
# nonroot, numerically, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# 8080: public HTTP API (HTTP_ADDR); 9090: /healthz, /readyz, /metrics (ADMIN_ADDR).
EXPOSE 8080 9090
ENTRYPOINT ["/processor"]
CMD ["serve"]
