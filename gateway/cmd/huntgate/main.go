// Command huntgate is the real-time treasure-hunt gateway: WebSocket players on
// --addr, the game backend and ops API on --admin-addr. Every flag can also be
// set as HUNTGATE_<NAME> in the environment (--jwt-secret is
// HUNTGATE_JWT_SECRET); a flag on the command line wins.
package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"

	"github.com/huntgate/huntgate/conn"
	"github.com/huntgate/huntgate/gateway"
	"github.com/huntgate/huntgate/state"
	"github.com/huntgate/huntgate/state/redisengine"
)

// version is set at build time (-ldflags "-X main.version=..."), as the
// Dockerfile does; a plain go build reports "dev".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "healthcheck" {
		return healthcheck(args[1:], os.LookupEnv, os.Stderr)
	}
	cfg, err := gateway.ParseFlags(args, os.LookupEnv, os.Stderr)
	if errors.Is(err, gateway.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	log := newLogger(cfg.LogLevel)
	cfg.Logger = log
	conn.ReserveSpareP(cfg.Loops)
	if cfg.DevMode && cfg.APIKey == "" {
		// The demo should be drivable from curl at once; a production
		// config never sets --dev, so it never gets a guessable key.
		cfg.APIKey = "dev"
		log.Warn().Msg("huntgate: --dev without --api-key: the admin API key is \"dev\"")
	}
	engine, err := newEngine(cfg, log)
	if err != nil {
		log.Error().Err(err).Str("redis", cfg.Redis).Strs("redis_cluster", cfg.RedisCluster).Msg("huntgate: cannot start the hunt engine")
		return 1
	}
	defer engine.Close()

	g, err := gateway.New(cfg, engine)
	if err != nil {
		log.Error().Err(err).Msg("huntgate: cannot start")
		return 1
	}
	if cfg.DevMode {
		if err := createDemo(engine); err != nil && !errors.Is(err, state.ErrExists) {
			log.Error().Err(err).Msg("huntgate: demo hunt")
			return 1
		}
	}
	if err := g.Start(); err != nil {
		log.Error().Err(err).Msg("huntgate: cannot start")
		return 1
	}
	ev := log.Info().Str("version", version).Str("addr", g.Addr().String()).Bool("dev", cfg.DevMode).Bool("test_endpoints", cfg.TestEndpoints)
	if a := g.AdminAddr(); a != nil {
		ev = ev.Str("admin_addr", a.String())
	}
	ev.Msg("huntgate: serving")
	logURLs(log, g, cfg.DevMode)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	s := <-sig
	log.Info().Str("signal", s.String()).Msg("huntgate: draining")
	ctx, cancel := context.WithTimeout(context.Background(), cfg.DrainWindow+5*time.Second)
	defer cancel()
	go func() {
		<-sig
		log.Warn().Msg("huntgate: second signal, stopping now")
		cancel()
	}()
	if err := g.Shutdown(ctx); err != nil {
		log.Error().Err(err).Msg("huntgate: shutdown")
		return 1
	}
	log.Info().Msg("huntgate: stopped")
	return 0
}

func newLogger(level string) zerolog.Logger {
	lvl, err := zerolog.ParseLevel(level)
	if err != nil || level == "" {
		lvl = zerolog.InfoLevel
	}
	var l zerolog.Logger
	if isatty.IsTerminal(os.Stderr.Fd()) {
		l = zerolog.New(zerolog.ConsoleWriter{Out: os.Stderr, TimeFormat: time.TimeOnly})
	} else {
		l = zerolog.New(os.Stderr)
	}
	return l.Level(lvl).With().Timestamp().Logger()
}

// logURLs logs where to point a browser, a client and a scraper.
func logURLs(log zerolog.Logger, g *gateway.Gateway, dev bool) {
	player := hostPort(g.Addr())
	ev := log.Info().Str("sdk", "http://"+player+"/sdk/huntgate.js").Str("websocket", "ws://"+player+"/ws")
	if dev {
		ev = ev.Str("play", "http://"+player+"/")
	}
	if a := g.AdminAddr(); a != nil {
		admin := "http://" + hostPort(a)
		ev = ev.Str("dashboard", admin+"/dashboard").Str("metrics", admin+"/metrics").Str("admin_api", admin+"/v1/")
	}
	if dev {
		ev.Str("hunt", "demo").Msg("huntgate: demo hunt ready: open the play page in a browser")
		return
	}
	ev.Msg("huntgate: endpoints")
}

// hostPort is a listener's address as a browser can reach it: a wildcard
// host becomes localhost.
func hostPort(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// newEngine returns the embedded memory engine, or with --redis or
// --redis-cluster the Redis engine that the nodes of a cluster share.
func newEngine(cfg gateway.Config, log zerolog.Logger) (state.Engine, error) {
	if cfg.Redis != "" || len(cfg.RedisCluster) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		return redisengine.New(ctx, redisengine.Config{
			URL:          cfg.Redis,
			Cluster:      cfg.RedisCluster,
			WaitReplicas: cfg.RedisWait,
			WaitTimeout:  cfg.RedisWaitTimeout,
			HistoryMax:   cfg.HistoryMax,
			HistoryAge:   cfg.HistoryAge,
			Logger:       log,
			// The webhook backlog lives in Redis, bounded per hunt.
			WebhookBacklog: webhookBacklog(cfg),
		})
	}
	return state.NewMemory(state.MemoryConfig{
		HistoryMax: cfg.HistoryMax,
		HistoryAge: cfg.HistoryAge,
		// Epochs travel as JSON numbers: keep them exact in JavaScript
		// clients (53 bits), non-zero, and different at every start.
		Epoch: uint64(rand.Int64N(1<<53-1)) + 1,
	}), nil
}

// webhookBacklog is the Redis engine's webhook backlog bound per hunt:
// --webhook-outbox (with its default) when webhooks are on, else 0 (off).
func webhookBacklog(cfg gateway.Config) int {
	if cfg.WebhookURL == "" {
		return 0
	}
	if cfg.WebhookOutbox > 0 {
		return cfg.WebhookOutbox
	}
	return gateway.DefaultWebhookOutbox
}

// createDemo creates the development hunt "demo": 64 x 64 cells, 200 random
// treasures.
func createDemo(e state.Engine) error {
	_, err := e.Create(context.Background(), state.Spec{
		ID: "demo", Width: 64, Height: 64,
		Random: &state.RandomSpec{Count: 200, Seed: time.Now().UnixNano(), MaxPoints: 100},
	})
	return err
}
