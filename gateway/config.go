package gateway

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strings"
	"time"

	"github.com/huntgate/huntgate/conn"
	"github.com/rs/zerolog"
)

// Config configures a Gateway. The zero value of every field means the
// default given in its comment, so Config{} is a usable (if locked-down)
// production configuration: no player is accepted until DevMode or JWTSecret
// is set.
type Config struct {
	// Addr is the player listener "host:port"; "" means ":8080". Port 0 picks
	// a free port (see Gateway.Addr).
	Addr string
	// AdminAddr is the admin/ops HTTP listener; "" means "127.0.0.1:8081".
	// "-" disables the admin listener.
	AdminAddr string
	// Loops is the number of event loops; 0 means one per CPU.
	Loops int
	// Pin pins each loop's thread to a CPU; false leaves scheduling to the OS.
	Pin bool
	// CPUs is the set the loops are pinned to, loop i to CPUs[i % len]
	// (non-empty implies Pin); empty means the CPUs the process may use.
	CPUs []int
	// DevMode accepts /ws?player=<id> without a token; false requires a token.
	DevMode bool
	// JWTSecret is the HS256 secret of player tokens; "" accepts no token.
	JWTSecret string
	// APIKey guards the mutating admin endpoints; "" refuses every mutating
	// admin request (401).
	APIKey string
	// TestEndpoints enables /echo and /fanout, and the admin API's POST
	// /v1/test/broadcast; false answers 404 there.
	TestEndpoints bool
	// Deflate negotiates permessage-deflate on /ws with clients that offer
	// it: each hunt update is compressed once for all of them (replies stay
	// uncompressed, as RFC 7692 allows); inbound messages are inflated up to
	// MaxMessage. false declines every offer on /ws.
	Deflate bool
	// ProxyProtocol requires a PROXY protocol v2 header (haproxy's
	// send-proxy-v2) at the start of every player connection and takes the
	// client's address from it (logs; Request.RemoteAddr); a connection
	// without one is closed unanswered. For a player listener only the
	// proxy can reach (deploy/haproxy.cfg).
	ProxyProtocol bool
	// Pprof serves net/http/pprof under /debug/pprof/ on the admin listener;
	// false serves nothing there. Profiles are read-only, but they reveal
	// internals, so keep the admin listener private when this is on.
	Pprof bool

	// MaxMessage is the largest inbound protocol message in bytes; 0 means
	// 4096. A larger message closes the connection with 1009.
	MaxMessage int
	// Rate is the sustained inbound messages per second per connection;
	// 0 means 50. A negative value disables the limit.
	Rate float64
	// RateBurst is the token bucket depth; 0 means 2 x Rate.
	RateBurst int
	// MaxHunts is how many hunts one connection may join at once; 0 means 16.
	MaxHunts int
	// HandshakeTimeout bounds the upgrade; 0 means 5 s.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a silent peer (pings are sent at half of it); 0 means 60 s.
	IdleTimeout time.Duration
	// WriteTimeout closes a connection that stays unwritable with data queued;
	// 0 means 10 s.
	WriteTimeout time.Duration
	// QueueBytes bounds a connection's queued output; 0 means 256 KiB.
	// Passing it closes the connection with 1008 "slow".
	QueueBytes int
	// QueueFrames bounds a connection's queued frames; 0 means 1024.
	QueueFrames int
	// FlushBudget bounds the time one event loop pass spends writing
	// broadcast output, so that replies to requests are not held behind a
	// fan-out to thousands of connections; 0 means 2 ms, negative unbounded.
	FlushBudget time.Duration
	// BusyPoll keeps an event loop polling without sleeping for this long
	// after a pass that had work; 0 = off (see conn.Config.BusyPoll).
	BusyPoll time.Duration
	// HistoryMax is how many reliable updates a hunt keeps for resume;
	// 0 means 4096. Used by the embedded engine that the binary creates.
	HistoryMax int
	// HistoryAge is how long reliable updates are kept for resume; 0 means 2 min.
	HistoryAge time.Duration
	// DrainWindow is the time over which Shutdown spreads reconnect notices;
	// 0 means 5 s (capped by the Shutdown context's deadline).
	DrainWindow time.Duration
	// MaxEventBytes bounds the body of an admin event; 0 means 64 KiB.
	MaxEventBytes int
	// WorkQueue bounds the engine calls waiting for a worker goroutine when
	// the engine blocks (Redis); 0 means 65536. A request that finds the
	// queue full, or calls waiting in it for more than a second, is refused
	// with error overloaded and has no effect. Joins answered from the
	// node's copy of a hunt and leaves do not go through it.
	WorkQueue int
	// Workers is how many goroutines make the engine calls when the engine
	// blocks (Redis); 0 means DefaultWorkersPerLoop per event loop. Each
	// holds one call at a time; the Redis engine sends the script calls
	// waiting together as one pipeline, so more workers mean deeper
	// pipelines rather than more connections.
	Workers int
	// EngineTimeout bounds the engine calls of one player request when the
	// engine blocks (Redis): a store that has not answered by then gets
	// the player error internal, and the worker is free again. 0 means
	// DefaultEngineTimeout.
	EngineTimeout time.Duration
	// MaxLongPolls bounds the long polls of the updates feed waiting at once
	// on this gateway; 0 means 1024. One more is refused with 503
	// too_many_polls.
	MaxLongPolls int
	// WebhookURL, if set, receives every reliable update as a POST
	// (webhook.go); WebhookSecret signs them (required with it).
	WebhookURL    string
	WebhookSecret string
	// WebhookTimeout bounds one delivery attempt; 0 means 5 s.
	WebhookTimeout time.Duration
	// WebhookOutbox bounds the updates waiting for delivery (with a
	// shared engine, each hunt's backlog in it: the engine's own setting,
	// redisengine.Config.WebhookBacklog); 0 means DefaultWebhookOutbox.
	// WebhookMaxAge drops those older; 0 means 1 hour.
	WebhookOutbox int
	WebhookMaxAge time.Duration
	// StatsInterval is how often per-loop connection counts are logged at
	// debug level; 0 means 30 s, negative disables.
	StatsInterval time.Duration

	// Redis is the cluster store URL; "" means the embedded memory engine.
	Redis string
	// RedisCluster lists seed addresses (host:port) of a Redis Cluster to
	// use as the cluster store instead of Redis; nil means none.
	RedisCluster []string
	// RedisWait, when positive, makes each dig, event and end wait until
	// that many replicas hold the write (Redis WAIT), at most
	// RedisWaitTimeout (0: 100 ms), before it is answered.
	RedisWait        int
	RedisWaitTimeout time.Duration
	// LogLevel is a zerolog level name; "" means "info". Used by the binary.
	LogLevel string

	// Logger receives the gateway's logs; the zero value discards them.
	Logger zerolog.Logger
}

// DefaultEngineTimeout is Config.EngineTimeout's default: well above a
// healthy store's round trips (a join makes up to three), and well below
// the Redis client's own read timeout with its retries (3 s each).
const DefaultEngineTimeout = 2 * time.Second

func (c *Config) withDefaults() Config {
	d := *c
	if d.Addr == "" {
		d.Addr = ":8080"
	}
	if d.AdminAddr == "" {
		d.AdminAddr = "127.0.0.1:8081"
	}
	if d.MaxMessage <= 0 {
		d.MaxMessage = 4096
	}
	if d.Rate == 0 {
		d.Rate = 50
	}
	if d.RateBurst <= 0 {
		d.RateBurst = int(2 * d.Rate)
		if d.RateBurst < 1 {
			d.RateBurst = 1
		}
	}
	if d.MaxHunts <= 0 {
		d.MaxHunts = 16
	}
	if d.DrainWindow <= 0 {
		d.DrainWindow = 5 * time.Second
	}
	if d.MaxEventBytes <= 0 {
		d.MaxEventBytes = 64 << 10
	}
	if d.WorkQueue <= 0 {
		d.WorkQueue = 65536
	}
	if d.EngineTimeout <= 0 {
		d.EngineTimeout = DefaultEngineTimeout
	}
	if d.WebhookTimeout <= 0 {
		d.WebhookTimeout = defaultWebhookTimeout
	}
	if d.WebhookOutbox <= 0 {
		d.WebhookOutbox = DefaultWebhookOutbox
	}
	if d.WebhookMaxAge <= 0 {
		d.WebhookMaxAge = defaultWebhookMaxAge
	}
	if d.MaxLongPolls <= 0 {
		d.MaxLongPolls = defaultMaxLongPolls
	}
	if d.StatsInterval == 0 {
		d.StatsInterval = 30 * time.Second
	}
	return d
}

// Bounds of --workers and --engine-timeout: more goroutines than this are
// memory for nothing (each waits on one engine call), and a timeout below a
// loopback round trip under load would answer every request internal.
const (
	maxWorkers       = 1 << 16
	minEngineTimeout = 10 * time.Millisecond
)

// EnvPrefix is the prefix of the environment variables that set flags:
// --admin-addr is HUNTGATE_ADMIN_ADDR.
const EnvPrefix = "HUNTGATE_"

// EnvName returns the environment variable that sets flag name.
func EnvName(flagName string) string {
	return EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// ErrHelp is returned by ParseFlags when -h or --help was asked for.
var ErrHelp = flag.ErrHelp

// ParseFlags fills a Config from the command line args (without the program
// name) and the environment, given as a lookup function (os.LookupEnv). A flag
// given on the command line wins over its environment variable. Usage and
// errors are written to out.
func ParseFlags(args []string, lookupEnv func(string) (string, bool), out io.Writer) (Config, error) {
	var c Config
	fs := flag.NewFlagSet("huntgate", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.Addr, "addr", ":8080", "player listener host:port (all loops share it via SO_REUSEPORT)")
	fs.StringVar(&c.AdminAddr, "admin-addr", "127.0.0.1:8081", "admin/ops HTTP listener host:port")
	fs.IntVar(&c.Loops, "loops", 0, "event loops in this node (0: one per CPU)")
	fs.BoolVar(&c.Pin, "pin", false, "pin each loop's thread to a CPU")
	fs.Func("cpus", "CPU list to pin the loops to, e.g. 0-3,6 (implies --pin; default: the CPUs the process may use)", func(v string) error {
		cpus, err := conn.ParseCPUList(v)
		c.CPUs = cpus
		return err
	})
	fs.BoolVar(&c.DevMode, "dev", false, "development mode: accept /ws?player=<id> without a token, create the demo hunt")
	fs.StringVar(&c.JWTSecret, "jwt-secret", "", "HS256 secret for player tokens")
	fs.StringVar(&c.APIKey, "api-key", "", "key for mutating admin endpoints (X-API-Key or Authorization: Bearer)")
	fs.BoolVar(&c.TestEndpoints, "test-endpoints", false, "enable /echo and /fanout, and POST /v1/test/broadcast on the admin listener")
	fs.BoolVar(&c.ProxyProtocol, "proxy-protocol", false, "require a PROXY protocol v2 header (haproxy send-proxy-v2) on player connections; the client address is taken from it")
	fs.BoolVar(&c.Deflate, "deflate", false, "negotiate permessage-deflate on /ws (each update compressed once for all players)")
	fs.BoolVar(&c.Pprof, "pprof", false, "serve /debug/pprof/ on the admin listener")
	fs.StringVar(&c.Redis, "redis", "", "cluster mode on Redis (absent: embedded memory engine)")
	fs.Func("redis-cluster", "cluster mode on a Redis Cluster: seed addresses host:port[,host:port...] (instead of --redis)", func(v string) error {
		c.RedisCluster = nil
		for _, a := range strings.Split(v, ",") {
			if a = strings.TrimSpace(a); a != "" {
				if _, _, err := net.SplitHostPort(a); err != nil {
					return err
				}
				c.RedisCluster = append(c.RedisCluster, a)
			}
		}
		if len(c.RedisCluster) == 0 {
			return errors.New("no address")
		}
		return nil
	})
	fs.IntVar(&c.RedisWait, "redis-wait", 0, "replicas that must hold a dig, event or end before it is answered (Redis WAIT; 0: none)")
	fs.DurationVar(&c.RedisWaitTimeout, "redis-wait-timeout", 100*time.Millisecond, "longest --redis-wait wait; the call is answered after it anyway")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: trace, debug, info, warn, error")
	fs.IntVar(&c.MaxMessage, "max-message", 4096, "max inbound message bytes (over: close 1009)")
	fs.Float64Var(&c.Rate, "rate", 50, "inbound messages per second per connection (negative: unlimited)")
	fs.IntVar(&c.RateBurst, "rate-burst", 0, "inbound message burst per connection (0: 2 x --rate)")
	fs.IntVar(&c.MaxHunts, "max-hunts", 16, "hunts one connection may join at once")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", 5*time.Second, "WebSocket handshake timeout")
	fs.DurationVar(&c.IdleTimeout, "idle-timeout", 60*time.Second, "close a peer silent this long (pings at half)")
	fs.IntVar(&c.HistoryMax, "history-max", 4096, "reliable updates kept per hunt for resume")
	fs.DurationVar(&c.HistoryAge, "history-age", 2*time.Minute, "how long reliable updates are kept for resume")
	fs.IntVar(&c.QueueBytes, "queue-bytes", 256<<10, "queued output bytes per connection before a 1008 \"slow\" close")
	fs.DurationVar(&c.BusyPoll, "busy-poll", 0, "keep event loops polling this long after work before sleeping (0: off)")
	fs.DurationVar(&c.FlushBudget, "flush-budget", 2*time.Millisecond, "time per event loop pass spent writing broadcast output (negative: unbounded)")
	fs.DurationVar(&c.WriteTimeout, "write-timeout", 10*time.Second, "close a connection unwritable this long")
	fs.DurationVar(&c.EngineTimeout, "engine-timeout", DefaultEngineTimeout, "longest wait for the hunt store per player request in cluster mode (then error internal; 0: the default)")
	fs.IntVar(&c.Workers, "workers", 0, "goroutines making engine calls in cluster mode (0: 64 per event loop)")
	fs.IntVar(&c.WorkQueue, "work-queue", 65536, "engine calls queued for workers in cluster mode (full, or calls waiting over 1 s: requests refused with overloaded)")
	fs.StringVar(&c.WebhookURL, "webhook-url", "", "POST every reliable update of every hunt to this URL (in cluster mode one node at a time delivers a hunt; give every node the same webhook flags)")
	fs.StringVar(&c.WebhookSecret, "webhook-secret", "", "HMAC-SHA256 key of the X-Huntgate-Signature header (required with --webhook-url)")
	fs.DurationVar(&c.WebhookTimeout, "webhook-timeout", defaultWebhookTimeout, "timeout of one webhook attempt (then retried with backoff; 0: the default)")
	fs.IntVar(&c.WebhookOutbox, "webhook-outbox", DefaultWebhookOutbox, "updates waiting for webhook delivery at most: on this node, or per hunt in Redis with --redis/--redis-cluster (over: not delivered, counted, reported with X-Huntgate-Gap; 0: the default)")
	fs.DurationVar(&c.WebhookMaxAge, "webhook-max-age", defaultWebhookMaxAge, "updates waiting longer for webhook delivery are dropped (counted; 0: the default)")
	fs.IntVar(&c.MaxLongPolls, "max-long-polls", defaultMaxLongPolls, "long polls of the updates feed waiting at once (over: 503 too_many_polls)")
	fs.DurationVar(&c.DrainWindow, "drain", 5*time.Second, "window over which shutdown staggers reconnects")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("gateway: unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || lookupEnv == nil {
			return
		}
		name := EnvName(f.Name)
		if v, ok := lookupEnv(name); ok {
			if err := fs.Set(f.Name, v); err != nil {
				errs = append(errs, fmt.Errorf("gateway: %s=%q: %w", name, v, err))
			}
		}
	})
	if err := errors.Join(errs...); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// Validate reports a configuration that cannot work.
func (c *Config) Validate() error {
	switch {
	case c.Loops < 0:
		return errors.New("gateway: --loops must be >= 0")
	case c.Loops > 255:
		return errors.New("gateway: --loops must be <= 255")
	case c.MaxMessage < 0:
		return errors.New("gateway: --max-message must be >= 0")
	case c.RateBurst < 0:
		return errors.New("gateway: --rate-burst must be >= 0")
	case c.MaxHunts < 0:
		return errors.New("gateway: --max-hunts must be >= 0")
	case c.HistoryMax < 0:
		return errors.New("gateway: --history-max must be >= 0")
	case c.QueueBytes < 0:
		return errors.New("gateway: --queue-bytes must be >= 0")
	case c.WorkQueue < 0:
		return errors.New("gateway: --work-queue must be >= 0")
	case c.Workers < 0 || c.Workers > maxWorkers:
		return fmt.Errorf("gateway: --workers must be 0-%d", maxWorkers)
	case c.EngineTimeout < 0 || (c.EngineTimeout > 0 && c.EngineTimeout < minEngineTimeout):
		return fmt.Errorf("gateway: --engine-timeout must be 0 (the default) or at least %s", minEngineTimeout)
	case c.WebhookURL != "" && c.WebhookSecret == "":
		return errors.New("gateway: --webhook-url needs --webhook-secret")
	case c.WebhookURL != "" && !strings.HasPrefix(c.WebhookURL, "http://") && !strings.HasPrefix(c.WebhookURL, "https://"):
		return errors.New("gateway: --webhook-url must be an http:// or https:// URL")
	case c.WebhookOutbox < 0:
		return errors.New("gateway: --webhook-outbox must be >= 0")
	case c.WebhookTimeout < 0:
		return errors.New("gateway: --webhook-timeout must be >= 0")
	case c.WebhookMaxAge < 0:
		return errors.New("gateway: --webhook-max-age must be >= 0")
	case c.MaxLongPolls < 0:
		return errors.New("gateway: --max-long-polls must be >= 0")
	case c.Redis != "" && len(c.RedisCluster) > 0:
		return errors.New("gateway: --redis and --redis-cluster exclude each other")
	case c.RedisWait < 0:
		return errors.New("gateway: --redis-wait must be >= 0")
	case c.RedisWait > 0 && c.Redis == "" && len(c.RedisCluster) == 0:
		return errors.New("gateway: --redis-wait needs --redis or --redis-cluster")
	}
	if c.LogLevel != "" {
		if _, err := zerolog.ParseLevel(c.LogLevel); err != nil {
			return fmt.Errorf("gateway: --log-level: %w", err)
		}
	}
	return nil
}
