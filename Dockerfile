# syntax=docker/dockerfile:1
# Multi-stage build of the huntgate gateway. The result is a static binary on a
# distroless base: no shell, runs as an unprivileged user.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download && go mod verify
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 GOOS=linux go build -trimpath \
      -ldflags "-s -w -X main.version=${VERSION}" \
      -o /out/huntgate ./gateway/cmd/huntgate \
 && CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w" \
      -o /out/huntload ./bench/cmd/huntload

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/huntgate /usr/local/bin/huntgate
COPY --from=build /out/huntload /usr/local/bin/huntload
# The player listener is public; the admin listener must be reachable from the
# game backend inside the cluster network, so it binds all interfaces here and
# relies on --api-key (set HUNTGATE_API_KEY) for mutating endpoints.
ENV HUNTGATE_ADDR=:8080 \
    HUNTGATE_ADMIN_ADDR=:8081 \
    HUNTGATE_LOG_LEVEL=info
EXPOSE 8080 8081
USER nonroot:nonroot
# Each connection is one file descriptor: run with a high nofile limit, e.g.
#   docker run --ulimit nofile=1048576:1048576 -p 8080:8080 huntgate --dev
# SIGTERM starts a drain (reconnect hints, then 1001 closes); give the
# container a stop timeout longer than the drain window.
STOPSIGNAL SIGTERM
# The image has no shell or curl: the binary checks its own /healthz on the
# admin listener ($HUNTGATE_ADMIN_ADDR, on loopback when it binds all
# interfaces) and exits 0 only on a 200 within the timeout.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
  CMD ["/usr/local/bin/huntgate", "healthcheck", "--timeout", "2s"]
ENTRYPOINT ["/usr/local/bin/huntgate"]
