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
			--api-key bench --rate -1 --log-level warn --loops "${HG_LOOPS:-$ncpu}" ${HG_FLAGS:-} 2>>"$out/huntgate.log" &
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

# prepare_run NAME ARGS: makes $out (bench/results/<UTC time>-NAME) and $bin,
# builds the binaries into $bin and starts $out/commands.txt with the run
# (scripts/NAME.sh ARGS), the machine and the build; uses $ncpu.
prepare_run() {
	out=bench/results/$(date -u +%Y%m%dT%H%M%SZ)-$1
	bin=bench/results/bin
	mkdir -p "$out" "$bin"
	echo "== building"
	go build -o "$bin/huntgate" ./gateway/cmd/huntgate
	go build -o "$bin/gorillaserver" ./bench/cmd/gorillaserver
	go build -o "$bin/huntload" ./bench/cmd/huntload
	{
		echo "# $(date -u) scripts/$1.sh $2"
		echo "# $(uname -srm), $ncpu CPUs, load average: $(cut -d' ' -f1-3 /proc/loadavg)"
		echo "# huntgate $(git rev-parse --short HEAD)$(git diff --quiet || echo -dirty)"
	} >"$out/commands.txt"
}

# run_load SERVER NAME PATTERN CMD...: one measured run against the server
# start_server started: notes CMD in $out/commands.txt, runs it with its
# report in $out/NAME.txt and progress in $out/NAME.progress, adds NAME to
# the caller's failed array when it fails, shows the report lines matching
# PATTERN (grep -E) and stops the server.
run_load() {
	local server=$1 name=$2 pattern=$3
	shift 3
	echo "[$server] $*" >>"$out/commands.txt"
	echo "== $name"
	if ! "$@" 2>"$out/$name.progress" >"$out/$name.txt"; then
		echo "$(basename "$0" .sh): $name failed (see $out/$name.progress)" >&2
		failed+=("$name")
	fi
	grep -E "$pattern" "$out/$name.txt" || true
	stop_server
}
