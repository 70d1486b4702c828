#!/usr/bin/env bash
# Runs the whole test suite: vet, race-enabled tests, and a short benchmark smoke run.
# Installs what the tests need on a fresh Debian machine (run as root, or with the tools already present).
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
if [ "${#need_pkgs[@]}" -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "test.sh: installing ${need_pkgs[*]}"
	apt-get update -qq >/dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
fi

export GOFLAGS="${GOFLAGS:-} -mod=mod"
go mod download
go mod verify
go vet ./...
go build ./...

echo "== go test -race"
go test -race -shuffle=on -count=1 -timeout 15m ./...

echo "== benchmark smoke run"
bench_log="$(mktemp)"
if ! go test -run='^$' -bench=. -benchtime=100ms -timeout 10m ./... >"$bench_log" 2>&1; then
	cat "$bench_log"
	echo "test.sh: benchmark smoke run failed" >&2
	exit 1
fi
grep -E '^(Benchmark|ok|FAIL)' "$bench_log" || true
rm -f "$bench_log"
