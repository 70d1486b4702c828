package load

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Scenario names.
const (
	Hold    = "hold"
	Echo    = "echo"
	Fanout  = "fanout"
	Dig     = "dig"
	Event   = "event"
	Game    = "game"
	Crowd   = "crowd"
	Compare = "compare"
)

// Scenarios lists the runnable scenarios (compare wraps one of them).
var Scenarios = []string{Hold, Echo, Fanout, Dig, Event, Game, Crowd}

// Config is one run of one scenario as the parent sees it. Workers get a
// copy with their share filled in (WorkerConfig). Zero values are noted.
type Config struct {
	Scenario  string        `json:"scenario"`
	URL       string        `json:"url"`         // ws://host:port of the player listener
	Admin     string        `json:"admin"`       // http://host:port of the admin listener; "" = no admin calls
	APIKey    string        `json:"-"`           // admin API key
	JWTSecret string        `json:"-"`           // HS256 secret for player tokens; "" = --dev or no auth
	Dev       bool          `json:"dev"`         // use ?player= instead of a token
	Players   int           `json:"players"`     // connections in total
	Hunts     int           `json:"hunts"`       // hunts to spread players over (dig, event, game)
	Rate      float64       `json:"rate"`        // main operation per second, whole run; 0 = scenario default
	Rates     []float64     `json:"rates"`       // rising rates for fanout and event; empty = default ladder
	Duration  time.Duration `json:"duration"`    // measured phase
	Ramp      time.Duration `json:"ramp"`        // connect players over this long; 0 = as fast as allowed
	Procs     int           `json:"procs"`       // worker processes; 0 = enough to stay under MaxPerProc sockets
	Src       []string      `json:"src"`         // source IPs to dial from; empty = kernel's choice
	Deflate   bool          `json:"deflate"`     // offer permessage-deflate (conn transport)
	PID       int           `json:"pid"`         // server process to sample; 0 = none
	ExtraPIDs []int         `json:"extra_pids"`  // further server processes (sharing the port) summed with PID; nil = none
	Syscalls  bool          `json:"syscalls"`    // count the server's system calls over the measured phase (perf stat; needs PID)
	Loops     int           `json:"loops"`       // client loops per worker; 0 = CPUs / workers, at least 1
	Transport string        `json:"transport"`   // wsc kind; "" = conn
	Pipeline  int           `json:"pipeline"`    // echo: messages in flight per connection; 0 = open loop at Rate
	Size      int           `json:"size"`        // echo/fanout payload bytes
	Grid      int           `json:"grid"`        // dig/game: hunt width and height when created
	Treasures int           `json:"treasures"`   // dig/game: treasures per created hunt
	DigEvery  time.Duration `json:"dig_every"`   // game: mean time between digs of one player
	Slow      int           `json:"slow"`        // game: players that read slowly (worker 0 runs them)
	Leave     float64       `json:"leave"`       // game: chance per dig that the player leaves and comes back
	HuntID    string        `json:"hunt_prefix"` // prefix of hunt ids
	Drain     time.Duration `json:"drain"`       // wait after the measured phase for in-flight replies; 0 = 2s
	JoinTries int           `json:"join_tries"`  // attempts of a join refused with overloaded or internal (jittered backoff between); 0 = 10
	Inflight  int           `json:"inflight"`    // handshakes in flight across all workers; 0 = 2048 (each worker 8-512)
	// HandshakeTimeout bounds a dial (connect, request, 101); 0 = 5 s.
	HandshakeTimeout time.Duration `json:"handshake_timeout"`
	// IdleTimeout closes a silent server connection; a ping goes out after
	// half of it. 0 = 60 s.
	IdleTimeout time.Duration `json:"idle_timeout"`
	// EventRate is crowd's event rate: each event is published to every
	// hunt, so each player gets it once; 0 = none.
	EventRate float64 `json:"event_rate"`
	// KillPID is a server process crowd kills with SIGKILL KillAfter into
	// the measured phase (its players reconnect and resume); 0 = none.
	KillPID   int           `json:"kill_pid"`
	KillAfter time.Duration `json:"kill_after"`
	// EventAfter is when into crowd's dig phase its events start (the
	// first at EventAfter, the others spread over the rest). Digs sent
	// before the first event and the kill are the steady window, reported
	// on their own (dug.steady): the digs' cost next to the ping floor
	// without the fan-outs and reconnects of the rest of the phase.
	EventAfter time.Duration `json:"event_after"`
	// EventWait is crowd's event phase: once every player is held and
	// before the digs, one stamped event to every hunt, then (with
	// FloorNodes) one plain broadcast of the same size from every node;
	// each waits until every player counted it or EventWait passed. 0 =
	// no event phase.
	EventWait time.Duration `json:"event_wait"`
	// FloorNodes is how many nodes share the player port, with their admin
	// APIs on Admin's port + i (scripts/cluster.sh's layout; they need
	// --test-endpoints): the event phase's floor broadcast goes to each.
	// 0 = no floor broadcast.
	FloorNodes int `json:"floor_nodes"`
	// PingFor is crowd's dig floor: before the digs, pings at the same
	// Rate over the same held sockets for this long (answered on the
	// gateway's loop, no Redis); the digs then run for Duration. 0 = none.
	PingFor time.Duration `json:"ping_for"`
	// ShedAfter drops a paced ping or dig unsent when the load generator
	// is this far behind its intended time (crowd; 0 = never): the excess
	// of a rate above what the machine can offer is counted, not queued.
	ShedAfter time.Duration `json:"shed_after"`
}

// gameProtocol says whether a scenario speaks the game protocol on /ws.
func gameProtocol(s string) bool { return s == Dig || s == Event || s == Game || s == Crowd }

// digging says whether a scenario sends paced digs.
func digging(s string) bool { return s == Dig || s == Crowd }

// PIDs is every server process to sample: PID and ExtraPIDs.
func (c *Config) PIDs() []int {
	if c.PID == 0 {
		return nil
	}
	return append([]int{c.PID}, c.ExtraPIDs...)
}

// MaxPerProc is the socket budget of one worker process (the fd limit here
// is 20,000 per process, with room for the process's other files).
const MaxPerProc = 9000

// DefaultRates is the rising ladder of broadcast rates (messages/s).
var DefaultRates = []float64{1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}

// Validate checks c and fills defaults.
func (c *Config) Validate() error {
	u, err := url.Parse(c.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("load: --url must be ws://host:port, got %q", c.URL)
	}
	if c.Players <= 0 {
		return errors.New("load: --players must be positive")
	}
	if c.Duration <= 0 {
		return errors.New("load: --duration must be positive")
	}
	if c.Hunts <= 0 {
		c.Hunts = 1
	}
	if c.Procs <= 0 {
		c.Procs = (c.Players + MaxPerProc - 1) / MaxPerProc
	}
	if c.Procs > c.Players {
		c.Procs = c.Players
	}
	if c.Size < 16 {
		c.Size = 16
	}
	if c.Drain <= 0 {
		c.Drain = 2 * time.Second
	}
	if c.HuntID == "" {
		c.HuntID = "load"
	}
	if c.Grid <= 0 {
		c.Grid = 100
	}
	if c.Treasures <= 0 {
		c.Treasures = c.Grid * c.Grid / 20
	}
	if c.Inflight <= 0 {
		c.Inflight = 2048
	}
	if c.JoinTries <= 0 {
		c.JoinTries = 10
	}
	if c.DigEvery <= 0 {
		c.DigEvery = 3 * time.Second
	}
	if gameProtocol(c.Scenario) && !c.Dev && c.JWTSecret == "" {
		return errors.New("load: " + c.Scenario + " needs --jwt-secret or --dev")
	}
	if c.EventAfter < 0 || (c.EventAfter > 0 && c.EventAfter >= c.Duration) {
		return errors.New("load: --event-after must lie inside --duration")
	}
	if c.KillPID != 0 && c.KillAfter <= 0 {
		return errors.New("load: --kill-pid needs --kill-after inside --duration")
	}
	if (c.FloorNodes > 0 || c.PingFor > 0 || c.EventWait > 0) && c.Scenario != Crowd {
		return errors.New("load: --event-wait, --floor-nodes and --ping-floor are crowd's")
	}
	if c.FloorNodes > 0 && c.EventWait <= 0 {
		return errors.New("load: --floor-nodes needs --event-wait (the floor broadcast is part of the event phase)")
	}
	if gameProtocol(c.Scenario) && c.Admin == "" {
		return errors.New("load: " + c.Scenario + " needs --admin")
	}
	return nil
}

// HostPort is the host:port of URL.
// Steady is how long crowd's steady window lasts from the start of the dig
// phase: until the first of its events (EventAfter) and the kill, or the
// whole phase when it has neither; 0 when there is none.
func (c *Config) Steady() time.Duration {
	if c.Scenario != Crowd {
		return 0
	}
	w := c.Duration
	if c.EventRate > 0 {
		w = min(w, c.EventAfter)
	}
	if c.KillPID != 0 {
		w = min(w, c.KillAfter)
	}
	return w
}

func (c *Config) HostPort() string {
	u, _ := url.Parse(c.URL)
	return u.Host
}

// ParseSrc expands "127.0.0.2-127.0.0.60" (or a comma list of addresses and
// ranges) into addresses. Ranges vary the last octet only.
func ParseSrc(s string) ([]string, error) {
	var out []string
	if s == "" {
		return nil, nil
	}
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		a := net.ParseIP(lo).To4()
		if a == nil {
			return nil, fmt.Errorf("load: bad source address %q", lo)
		}
		if !isRange {
			out = append(out, a.String())
			continue
		}
		b := net.ParseIP(hi).To4()
		if b == nil || a[0] != b[0] || a[1] != b[1] || a[2] != b[2] || b[3] < a[3] {
			return nil, fmt.Errorf("load: bad source range %q (only the last octet may vary)", part)
		}
		for x := int(a[3]); x <= int(b[3]); x++ {
			ip := net.IPv4(a[0], a[1], a[2], byte(x))
			out = append(out, ip.String())
		}
	}
	return out, nil
}

// ParseRates parses "1,2,5,10" into rates.
func ParseRates(s string) ([]float64, error) {
	if s == "" {
		return nil, nil
	}
	var out []float64
	for _, p := range strings.Split(s, ",") {
		var r float64
		if _, err := fmt.Sscan(strings.TrimSpace(p), &r); err != nil || r <= 0 {
			return nil, fmt.Errorf("load: bad rate %q", p)
		}
		out = append(out, r)
	}
	return out, nil
}

// WorkerConfig is what one worker process runs.
type WorkerConfig struct {
	Config
	Worker     int           `json:"worker"`      // index of this worker
	Workers    int           `json:"workers"`     // how many there are
	First      int           `json:"first"`       // first player number of this worker
	Count      int           `json:"count"`       // players of this worker
	WorkerRate float64       `json:"worker_rate"` // this worker's share of Rate
	StepRates  []float64     `json:"step_rates"`  // broadcast rate ladder actually used
	StepDur    time.Duration `json:"step_dur"`
	Key        string        `json:"key"` // JWT secret, passed on to the worker
}

// Split divides c among Procs workers: players and rate evenly, source
// addresses round robin (each worker gets a disjoint set while there are
// enough).
func (c *Config) Split() []WorkerConfig {
	out := make([]WorkerConfig, c.Procs)
	first := 0
	for i := range out {
		n := c.Players / c.Procs
		if i < c.Players%c.Procs {
			n++
		}
		w := WorkerConfig{Config: *c, Worker: i, Workers: c.Procs, First: first, Count: n, Key: c.JWTSecret}
		w.WorkerRate = c.Rate * float64(n) / float64(c.Players)
		w.Src = nil
		if len(c.Src) >= c.Procs {
			for j := i; j < len(c.Src); j += c.Procs {
				w.Src = append(w.Src, c.Src[j])
			}
		} else {
			w.Src = c.Src
		}
		first += n
		out[i] = w
	}
	return out
}
