package load

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// ErrHelp is returned by ParseArgs when help was asked for (and printed).
var ErrHelp = errors.New("load: help requested")

// Command is a parsed command line.
type Command struct {
	Scenario string
	Config   Config
	JSON     string // --json FILE
	HTML     string // --html FILE
	LogLevel string
	// compare only
	Inner  string // scenario compared
	A, B   string // target URLs
	APID   int
	BPID   int
	Rounds int
}

var scenarioHelp = map[string]string{
	Hold:    "connect --players and hold them idle for --duration: handshake latency, server memory per connection (--pid)",
	Echo:    "/echo: open loop at --rate msgs/s (RTT from the intended send time), or --pipeline k messages in flight per connection (throughput)",
	Fanout:  "/fanout: one sender, stamped messages at rising --rates (or one --rate) to all connections: one-way latency, time to everyone, deliveries/s",
	Dig:     "/ws: --players join --hunts hunts (created if absent), open-loop dig --rate: dug RTT, claimed pushes, seq gaps",
	Event:   "/ws: players join one hunt; events published via the admin API at rising --rates: time to everyone, one-way latency, gaps",
	Game:    "/ws: players arrive over --ramp, join, dig every --dig-every with jitter, some leave and resume with since/epoch",
	Crowd:   "/ws: players join a few --hunts at once; a steady dig --rate, events to every hunt at --event-rate, dropped players reconnect and resume with since/epoch (--kill-pid kills a node mid-run)",
	Compare: "run --scenario against --a and --b alternating A B A B for --rounds and print ratios B/A",
}

func defaultPlayers(s string) int {
	switch s {
	case Echo:
		return 100
	case Hold, Fanout, Dig, Event, Game, Crowd:
		return 1000
	}
	return 100
}

// Usage writes the top-level help.
func Usage(w io.Writer) {
	fmt.Fprintf(w, "usage: huntload SCENARIO [flags]\n\nscenarios:\n")
	for _, s := range append(append([]string(nil), Scenarios...), Compare) {
		fmt.Fprintf(w, "  %-8s %s\n", s, scenarioHelp[s])
	}
	fmt.Fprintf(w, "\nflags common to all scenarios (huntload SCENARIO --help shows the scenario's own):\n")
	var c Command
	fs := flagSet(Echo, &c, w)
	commonOnly := map[string]bool{}
	for _, n := range commonFlags {
		commonOnly[n] = true
	}
	fs.VisitAll(func(f *flag.Flag) {
		if commonOnly[f.Name] {
			fmt.Fprintf(w, "  --%-11s %s (default %q)\n", f.Name, f.Usage, f.DefValue)
		}
	})
}

var commonFlags = []string{"url", "admin", "api-key", "jwt-secret", "dev", "players", "hunts", "rate", "duration",
	"procs", "src", "pid", "json", "html", "ramp", "drain", "loops", "transport", "log-level", "inflight", "handshake-timeout", "idle-timeout"}

type srcFlag struct{ c *Config }

func (s srcFlag) String() string {
	if s.c == nil {
		return ""
	}
	return strings.Join(s.c.Src, ",")
}
func (s srcFlag) Set(v string) error {
	ips, err := ParseSrc(v)
	s.c.Src = ips
	return err
}

type pidFlag struct{ c *Config }

func (p pidFlag) String() string {
	if p.c == nil || p.c.PID == 0 {
		return ""
	}
	var parts []string
	for _, pid := range p.c.PIDs() {
		parts = append(parts, strconv.Itoa(pid))
	}
	return strings.Join(parts, ",")
}
func (p pidFlag) Set(v string) error {
	p.c.PID, p.c.ExtraPIDs = 0, nil
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			return fmt.Errorf("load: bad --pid %q", v)
		}
		if p.c.PID == 0 {
			p.c.PID = n
		} else {
			p.c.ExtraPIDs = append(p.c.ExtraPIDs, n)
		}
	}
	return nil
}

type ratesFlag struct{ c *Config }

func (r ratesFlag) String() string { return "" }
func (r ratesFlag) Set(v string) error {
	rs, err := ParseRates(v)
	r.c.Rates = rs
	return err
}

func flagSet(scenario string, c *Command, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("huntload "+scenario, flag.ContinueOnError)
	fs.SetOutput(out)
	cfg := &c.Config
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:8080", "the gateway's player listener ws://host:port (the scenario appends its path)")
	fs.StringVar(&cfg.Admin, "admin", "", "admin listener http://host:port (dig, event, game)")
	fs.StringVar(&cfg.APIKey, "api-key", "", "admin API key")
	fs.StringVar(&cfg.JWTSecret, "jwt-secret", "", "HS256 secret to mint player tokens with")
	fs.BoolVar(&cfg.Dev, "dev", false, "authenticate with ?player= (gateway in --dev mode)")
	fs.IntVar(&cfg.Players, "players", defaultPlayers(scenario), "connections (players) in total")
	fs.IntVar(&cfg.Hunts, "hunts", 1, "hunts to spread players over")
	fs.Float64Var(&cfg.Rate, "rate", 0, "the scenario's main operation per second (0 = scenario default; fanout/event: a single step at this rate)")
	fs.DurationVar(&cfg.Duration, "duration", 10*time.Second, "length of the measured phase")
	fs.DurationVar(&cfg.Drain, "drain", 2*time.Second, "wait after the measured phase for replies and deliveries still in flight; later ones count as lost")
	fs.DurationVar(&cfg.Ramp, "ramp", 0, "connect the players over this long, at an even arrival rate (0 = as fast as --inflight allows)")
	fs.IntVar(&cfg.Procs, "procs", 0, fmt.Sprintf("worker processes (0 = enough to keep each under %d sockets)", MaxPerProc))
	fs.BoolVar(&cfg.Deflate, "deflate", false, "offer permessage-deflate on every connection (conn transport; the gateway needs --deflate for /ws)")
	fs.Var(srcFlag{cfg}, "src", "source addresses to dial from, e.g. 127.0.0.2-127.0.0.60 (\"\" = kernel's choice)")
	fs.Var(pidFlag{cfg}, "pid", "server process to sample for RSS and CPU; PID,PID,... sums several processes sharing the port")
	fs.BoolVar(&cfg.Syscalls, "syscalls", false, "count the system calls of the --pid processes over the measured phase (perf stat on the syscall tracepoints)")
	fs.StringVar(&c.JSON, "json", "", "write the report as JSON to FILE")
	fs.StringVar(&c.HTML, "html", "", "write a self-contained HTML picture to FILE")
	fs.IntVar(&cfg.Loops, "loops", 0, "client event loops per worker (0 = the CPUs shared among the workers, at least 1)")
	fs.StringVar(&cfg.Transport, "transport", "conn", "client transport: conn (epoll loops) or gorilla (goroutine per connection, reference)")
	fs.StringVar(&c.LogLevel, "log-level", "warn", "zerolog level")
	fs.IntVar(&cfg.Inflight, "inflight", 2048, "handshakes in flight across all workers (each worker 8-512); dials beyond wait in the load generator")
	fs.DurationVar(&cfg.HandshakeTimeout, "handshake-timeout", 5*time.Second, "a dial (connect, upgrade request, 101) that takes longer fails")
	fs.DurationVar(&cfg.IdleTimeout, "idle-timeout", 60*time.Second, "close a silent server connection after this; ping after half (keep it above the server's half: its pings keep both sides quiet)")
	switch scenario {
	case Echo, Compare:
		fs.IntVar(&cfg.Pipeline, "pipeline", 0, "echo: messages in flight per connection (0 = open loop at --rate)")
	}
	switch scenario {
	case Echo, Fanout, Compare:
		fs.IntVar(&cfg.Size, "size", 64, "payload bytes (at least 16)")
	}
	switch scenario {
	case Fanout, Event, Compare:
		fs.Var(ratesFlag{cfg}, "rates", "rising rate ladder, e.g. 1,10,100 (default 1,2,5,10,20,50,100,200,500,1000; --rate overrides)")
	}
	switch scenario {
	case Crowd:
		fs.Float64Var(&cfg.EventRate, "event-rate", 0.1, "events per second, each published to every hunt (time to everyone over all players)")
		fs.IntVar(&cfg.KillPID, "kill-pid", 0, "server process to kill with SIGKILL during the measured phase (0 = none)")
		fs.DurationVar(&cfg.KillAfter, "kill-after", 0, "when into the dig phase --kill-pid is killed")
		fs.DurationVar(&cfg.EventAfter, "event-after", 0, "when into the dig phase its events start; digs sent before the first event and the kill are also reported alone (dug.steady)")
		fs.DurationVar(&cfg.EventWait, "event-wait", 0, "event phase before the digs: one event to every hunt, waited for until every player has it or this long (0 = none)")
		fs.IntVar(&cfg.FloorNodes, "floor-nodes", 0, "event phase: also one plain broadcast of the same size from each of N nodes (admin at --admin's port + i, --test-endpoints), the event's floor")
		fs.DurationVar(&cfg.ShedAfter, "shed-after", time.Second, "drop a paced ping or dig unsent (counted as shed) when the load generator is this far behind its intended time (0 = never)")
		fs.DurationVar(&cfg.PingFor, "ping-floor", 0, "before the digs, pings at --rate over the same sockets for this long: the digs' floor (0 = none)")
	}
	switch scenario {
	case Dig, Event, Game, Crowd, Compare:
		fs.StringVar(&cfg.HuntID, "hunt-prefix", "load", "hunt ids are PREFIX-0 .. PREFIX-(hunts-1)")
		fs.IntVar(&cfg.Grid, "grid", 100, "width and height of created hunts")
		fs.IntVar(&cfg.Treasures, "treasures", 500, "treasures per created hunt")
		fs.IntVar(&cfg.JoinTries, "join-tries", 10, "attempts of a join refused with overloaded or internal (both say retry later), 100-500 ms apart with jitter, doubling")
	}
	switch scenario {
	case Game, Compare:
		fs.DurationVar(&cfg.DigEvery, "dig-every", 3*time.Second, "game: mean time between one player's digs (jitter +-50%)")
		fs.IntVar(&cfg.Slow, "slow", 2, "game: players that read one message per 50 ms with a 4 KiB receive buffer")
		fs.Float64Var(&cfg.Leave, "leave", 0.05, "game: chance per dig tick that the player leaves and comes back with since")
	}
	if scenario == Compare {
		fs.StringVar(&c.Inner, "scenario", Echo, "scenario to compare")
		fs.StringVar(&c.A, "a", "", "target A ws://host:port")
		fs.StringVar(&c.B, "b", "", "target B ws://host:port")
		fs.IntVar(&c.APID, "a-pid", 0, "server process of A (optional)")
		fs.IntVar(&c.BPID, "b-pid", 0, "server process of B (optional)")
		fs.IntVar(&c.Rounds, "rounds", 3, "rounds of A then B")
	}
	return fs
}

// ParseArgs parses `SCENARIO [flags]`. Help goes to out.
func ParseArgs(args []string, out io.Writer) (*Command, error) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		Usage(out)
		return nil, ErrHelp
	}
	s := args[0]
	if _, ok := scenarioHelp[s]; !ok {
		Usage(out)
		return nil, fmt.Errorf("load: unknown scenario %q", s)
	}
	c := &Command{Scenario: s}
	fs := flagSet(s, c, out)
	fs.Usage = func() {
		fmt.Fprintf(out, "usage: huntload %s [flags]\n  %s\n\nflags:\n", s, scenarioHelp[s])
		fs.PrintDefaults()
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, ErrHelp
		}
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("load: unexpected argument %q", fs.Arg(0))
	}
	c.Config.Scenario = s
	if s == Compare {
		if c.A == "" || c.B == "" {
			return nil, errors.New("load: compare needs --a and --b")
		}
		if _, ok := scenarioHelp[c.Inner]; !ok || c.Inner == Compare {
			return nil, fmt.Errorf("load: cannot compare scenario %q", c.Inner)
		}
		if c.Rounds <= 0 {
			return nil, errors.New("load: --rounds must be positive")
		}
		c.Config.Scenario = c.Inner
		c.Config.URL = c.A
	}
	if err := c.Config.Validate(); err != nil {
		return nil, err
	}
	if s == Compare {
		c.Config.Scenario = c.Inner
	}
	return c, nil
}
