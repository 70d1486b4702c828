#!/usr/bin/env bash
# Runs the whole test suite: vet, race-enabled tests, and a short benchmark smoke run.
# Installs what the tests need on a fresh Debian machine (as root or with passwordless sudo) and stops
# with an error if it cannot.
set -euo pipefail
cd "$(dirname "$0")/.."

need_pkgs=()
command -v redis-server >/dev/null 2>&1 || need_pkgs+=(redis-server)
command -v curl >/dev/null 2>&1 || need_pkgs+=(curl) # scripts/cluster.sh
command -v redis-cli >/dev/null 2>&1 || need_pkgs+=(redis-tools)
command -v jq >/dev/null 2>&1 || need_pkgs+=(jq)     # scripts/million.sh
command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2) # the many-hosts test (network namespaces)
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium) # clients/js browser tests
command -v haproxy >/dev/null 2>&1 || need_pkgs+=(haproxy)   # TLS + PROXY protocol test (deploy/haproxy.cfg)
if [ "${#need_pkgs[@]}" -gt 0 ]; then
	sudo=()
	[ "$(id -u)" = 0 ] || sudo=(sudo -n)
	if ! command -v apt-get >/dev/null 2>&1 || { [ "${#sudo[@]}" -gt 0 ] && ! command -v sudo >/dev/null 2>&1; }; then
		echo "test.sh: missing ${need_pkgs[*]} and cannot install it here (needs apt-get and root or sudo)" >&2
		exit 1
	fi
	echo "test.sh: installing ${need_pkgs[*]}"
	"${sudo[@]}" apt-get update -qq >/dev/null
	"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_pkgs[@]}" >/dev/null
	command -v redis-server >/dev/null 2>&1 || { echo "test.sh: redis-server still missing after install" >&2; exit 1; }
fi

export GOFLAGS="${GOFLAGS:-} -mod=mod"
export HUNTGATE_REQUIRE_BROWSER=1 # installed above: the browser tests must not skip
export HUNTGATE_REQUIRE_HAPROXY=1 # likewise the haproxy test
go mod download
go mod verify
go vet ./...
go build ./...

# The allocation tests skip under -race (the race detector changes what
# allocates), so they run once without it.
echo "== allocation tests (no -race)"
go test -count=1 -run 'Alloc' ./...

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
