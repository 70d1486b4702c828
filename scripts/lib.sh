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

# Fresh server processes for one run each (efficiency.sh, broadcast.sh). They
# use $bin (the built binaries), $out (the results directory), $ncpu,
# $hg_addr, $hg_admin and $gorilla_addr; start_server sets url and pid.
# $hg_bin, when set, is the huntgate binary to run instead of $bin/huntgate.
pid=
stop_server() {
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		pid=
	fi
}

# start_server huntgate|gorilla: returns 1 for another name (the caller's own).
start_server() {
	case $1 in
	huntgate)
		"${hg_bin:-$bin/huntgate}" --addr "$hg_addr" --admin-addr "$hg_admin" --dev --test-endpoints \
			--api-key bench --rate -1 --log-level warn --loops "$ncpu" 2>>"$out/huntgate.log" &
		pid=$!
		url=ws://$hg_addr
		;;
	gorilla)
		"$bin/gorillaserver" --addr "$gorilla_addr" 2>>"$out/gorilla.log" &
		pid=$!
		url=ws://$gorilla_addr
		;;
	*) return 1 ;;
	esac
	wait_port "${url#ws://}"
}
