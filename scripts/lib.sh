# Shell helpers shared by the benchmark scripts (sourced, not run).

# wait_port HOST:PORT: wait up to 10 s for something to accept on it.
wait_port() {
	local hp=$1 i
	for i in $(seq 200); do
		if (exec 3<>"/dev/tcp/${hp%:*}/${hp#*:}") 2>/dev/null; then return 0; fi
		sleep 0.05
	done
	echo "$(basename "$0"): nothing listens on $hp" >&2
	return 1
}
