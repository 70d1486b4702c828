#!/usr/bin/env bash
# Kernel and process settings for running many WebSocket connections on one
# host. Prints what it changes; run as root. Safe to run twice.
#
#   ./scripts/tune.sh          apply
#   ./scripts/tune.sh --show   only print the current values
set -euo pipefail

settings=(
	"net.core.somaxconn=65535"             # accept queue per listener: bursts of reconnects after a drain
	"net.ipv4.tcp_max_syn_backlog=65535"   # SYN queue for the same bursts
	"net.ipv4.ip_local_port_range=1024 65535" # load generators: ports per source address
	"net.ipv4.tcp_tw_reuse=1"              # load generators reconnecting from the same source addresses
	"net.ipv4.tcp_fin_timeout=15"
	"net.core.netdev_max_backlog=65535"
	"fs.file-max=4194304"                  # system-wide fd ceiling: 1,000,000 players on loopback are 2,000,000 sockets
	"net.netfilter.nf_conntrack_max=2097152" # if connection tracking is on (a NAT or stateful rule), its 262,144 default caps connections
	"fs.nr_open=4194304"                   # ceiling for a process RLIMIT_NOFILE
	"net.ipv4.tcp_mem=786432 1048576 1572864" # pages; millions of mostly idle sockets
	"net.ipv4.tcp_rmem=4096 4096 16777216" # small default buffers: idle sockets stay cheap
	"net.ipv4.tcp_wmem=4096 4096 16777216"
)

for kv in "${settings[@]}"; do
	key="${kv%%=*}"
	val="${kv#*=}"
	cur="$(sysctl -n "$key" 2>/dev/null | tr '\t' ' ' || echo '?')"
	if [ "${1:-}" = "--show" ]; then
		printf '%-32s %s\n' "$key" "$cur"
		continue
	fi
	if sysctl -q -w "$key=$val" 2>/dev/null; then
		printf '%-32s %s -> %s\n' "$key" "$cur" "$val"
	else
		printf '%-32s %s (unchanged: not permitted here)\n' "$key" "$cur"
	fi
done

echo "process fd limit (ulimit -n): soft $(ulimit -Sn), hard $(ulimit -Hn)"
echo "raise it for the gateway with e.g. 'ulimit -n 1048576' or LimitNOFILE= in its unit"
