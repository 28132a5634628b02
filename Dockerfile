# syntax=docker/dockerfile:1

# The processor image: one static binary on distroless, running as non-root.
#
#   docker build -t prechat:dev .
#   docker run --rm prechat:dev help
#
# The Kubernetes chart (helm/prechat) runs the same image as the consumer
# (ROLES=consumer), the API (ROLES=api) and the migration Job (migrate).
# helm/test/image_test.go builds the binary exactly as below and checks it.
#
# The builder is the Go version go.mod's toolchain line names, to the patch
# release (the test checks that they agree): a bump changes both
# (docs/supply-chain.md). Official golang images set GOTOOLCHAIN=local, so
# the image's Go is the one that builds.

FROM --platform=$BUILDPLATFORM golang:1.27.3 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
# Modules first, so source edits do not invalidate the download layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
# Static (no libc, no dynamic loader), reproducible paths, no symbol tables.
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/processor ./cmd/processor

# distroless static: CA certificates, tzdata, /etc/passwd with nonroot
# (65532); no shell, no package manager.
FROM gcr.io/distroless/static-debian13:nonroot
LABEL org.opencontainers.image.title="prechat" \
      org.opencontainers.image.description="Segment events from Kafka to Salesforce pre-chat documents" \
      org.opencontainers.image.source="https://github.com/prechat/prechat"
COPY --from=build /out/processor /processor
# nonroot, numerically, so that Kubernetes' runAsNonRoot can verify it.
USER 65532:65532
# 8080: public HTTP API (HTTP_ADDR); 9090: /healthz, /readyz, /metrics (ADMIN_ADDR).
EXPOSE 8080 9090
ENTRYPOINT ["/processor"]
CMD ["serve"]
