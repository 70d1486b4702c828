package gateway

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"

	"github.com/huntgate/huntgate/conn"
	"github.com/huntgate/huntgate/framing"
	"github.com/huntgate/huntgate/state"
)

// Gateway serves the player protocol on conn loops and the admin API over
// net/http, on top of a state.Engine.
type Gateway struct {
	cfg    Config
	log    zerolog.Logger
	engine state.Engine
	recs   state.Records // the engine's, or nil
	inline bool
	local  state.LocalJoiner // engine's local joins; nil with an inline engine
	ldig   state.LocalDigger // engine's local misses; nil with an inline engine
	auth   *Authenticator
	node   *conn.Node
	loops  []*loopState
	hunts  *huntTable
	m      metrics
	feed   feed      // long polls of the updates feed
	wh     *webhooks // nil without Config.WebhookURL

	ctx    context.Context // engine calls; cancelled when the gateway stops
	cancel context.CancelFunc
	work   chan workItem // off-loop engine calls (blocking engines only)
	// queueLag is how long (ns) the last call taken from work had waited
	// in it, 0 if that emptied the queue; epoch is the clock's origin.
	queueLag atomic.Int64
	lastTake atomic.Int64 // when a worker last took a call or a backlog began, on that clock
	epoch    time.Time

	leaveMu   sync.Mutex
	leaves    []pendingLeave // leaves of closed memberships that found work full
	leaveWake chan struct{}  // cap 1: leaves has entries

	admin   *http.Server
	adminLn net.Listener

	started  time.Time
	draining atomic.Bool
	stopping chan struct{} // closed when Shutdown starts: long polls answer at once
	stopOnce sync.Once
	done     chan struct{}
	wg       sync.WaitGroup
}

// New builds a Gateway on engine and binds its listeners; Start serves.
func New(cfg Config, engine state.Engine) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := cfg.withDefaults()
	g := &Gateway{
		cfg:    c,
		log:    c.Logger,
		engine: engine,
		inline: engine.Inline(),
		auth:   NewAuthenticator(c.JWTSecret, c.DevMode),
		hunts:  newHuntTable(),
		done:   make(chan struct{}),
		epoch:  time.Now(),

		stopping: make(chan struct{}),
	}
	if lj, ok := engine.(state.LocalJoiner); ok && !g.inline {
		g.local = lj
	}
	if ld, ok := engine.(state.LocalDigger); ok && !g.inline {
		g.ldig = ld
	}
	g.recs, _ = engine.(state.Records)
	if c.WebhookURL != "" {
		if engine.Inline() {
			g.wh = newWebhooks(&c, c.Logger)
		} else if q, ok := engine.(state.WebhookQueue); ok {
			if q.WebhookBacklog() <= 0 {
				// Nothing would ever be delivered.
				return nil, errors.New("gateway: --webhook-url with an engine that keeps no webhook backlog (redisengine.Config.WebhookBacklog)")
			}
			g.wh = newSharedWebhooks(&c, c.Logger, engine, q)
		} else {
			return nil, errors.New("gateway: webhooks need the memory engine or an engine that keeps a webhook backlog")
		}
	}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	newMetrics(&g.m, statsCollector{g})
	node, err := conn.NewNode(conn.Config{
		Addr:             c.Addr,
		Loops:            c.Loops,
		Pin:              c.Pin || len(c.CPUs) > 0,
		CPUs:             c.CPUs,
		MaxMessage:       c.MaxMessage,
		HandshakeTimeout: c.HandshakeTimeout,
		IdleTimeout:      c.IdleTimeout,
		WriteTimeout:     c.WriteTimeout,
		MaxQueueBytes:    c.QueueBytes,
		MaxQueueFrames:   c.QueueFrames,
		FlushBudget:      c.FlushBudget,
		BusyPoll:         c.BusyPoll,
		Deflate:          c.TestEndpoints || c.Deflate,
		ProxyProtocol:    c.ProxyProtocol,
		Static:           newStaticSite(c.DevMode).serve,
		Logger:           c.Logger,
	}, handler{g})
	if err != nil {
		g.cancel()
		return nil, err
	}
	g.node = node
	for i := range node.Loops() {
		g.loops = append(g.loops, newLoopState(g, i))
	}
	if c.AdminAddr != "-" {
		ln, err := net.Listen("tcp", c.AdminAddr)
		if err != nil {
			_ = node.Close()
			g.cancel()
			return nil, err
		}
		g.adminLn = ln
		g.admin = &http.Server{
			Handler:           g.adminHandler(),
			ReadHeaderTimeout: adminLimits.header,
			ReadTimeout:       adminLimits.read,
			WriteTimeout:      adminLimits.write,
			IdleTimeout:       adminLimits.idle,
			MaxHeaderBytes:    adminLimits.headerBytes,
		}
	}
	return g, nil
}

// adminLimits bound every admin connection, so that a peer that sends its
// request or body slowly, or holds a keep-alive connection open, cannot pin a
// goroutine and a descriptor for ever. read leaves time for a 64 MiB hunt
// spec on a slow link; write outlasts the 30 s default of a pprof profile,
// which net/http/pprof refuses when it would not fit. A variable only so that
// tests can lower it.
var adminLimits = struct {
	header, read, write, idle time.Duration
	headerBytes               int
}{5 * time.Second, time.Minute, 90 * time.Second, 2 * time.Minute, 64 << 10}

// adminGrace is how long Shutdown lets admin requests in flight finish
// before it cuts their connections.
const adminGrace = time.Second

// Addr returns the player listener's address (with the real port if the
// configuration asked for port 0).
func (g *Gateway) Addr() net.Addr { return g.node.Addr() }

// AdminAddr returns the admin listener's address, or nil if disabled.
func (g *Gateway) AdminAddr() net.Addr {
	if g.adminLn == nil {
		return nil
	}
	return g.adminLn.Addr()
}

// Start subscribes to the engine and starts serving.
func (g *Gateway) Start() error {
	if !g.inline {
		g.work = make(chan workItem, g.cfg.WorkQueue)
		g.leaveWake = make(chan struct{}, 1)
		g.wg.Add(1)
		go g.drainLeaves()
		for range g.workerCount() {
			g.wg.Add(1)
			go g.runWork()
		}
	}
	g.engine.Subscribe(g.sink)
	if g.wh != nil {
		g.wh.start()
	}
	if lr, ok := g.engine.(loadReporter); ok {
		lr.SetLoad(g.m.conns.Load)
	}
	if err := g.node.Start(); err != nil {
		return err
	}
	g.started = time.Now()
	if g.admin != nil {
		g.wg.Add(1)
		go func() {
			defer g.wg.Done()
			if err := g.admin.Serve(g.adminLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
				g.log.Error().Err(err).Msg("gateway: admin listener failed")
			}
		}()
	}
	if g.cfg.StatsInterval > 0 {
		g.wg.Add(1)
		go g.logStats()
	}
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		g.m.recent.run(g.done)
	}()
	if !g.cfg.DevMode && g.cfg.JWTSecret == "" {
		g.log.Warn().Msg("gateway: neither --dev nor --jwt-secret is set: every player is refused")
	}
	if g.cfg.APIKey == "" {
		g.log.Warn().Msg("gateway: no --api-key: mutating admin endpoints refuse every request")
	}
	return nil
}

// DefaultWorkersPerLoop is the default of Config.Workers per event loop.
// A worker holds one engine call at a time, so the workers bound the calls
// in flight: with 4 per loop a node made at most 4 digs per Redis round
// trip, whatever Redis could take. 64 let the Redis engine's pipelines
// (up to 128 script calls each) fill under load.
const DefaultWorkersPerLoop = 64

// workerCount is how many goroutines make the engine calls of a blocking
// engine.
func (g *Gateway) workerCount() int {
	if g.cfg.Workers > 0 {
		return g.cfg.Workers
	}
	return DefaultWorkersPerLoop * len(g.loops)
}

func (g *Gateway) logStats() {
	defer g.wg.Done()
	t := time.NewTicker(g.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			if e := g.log.Debug(); e.Enabled() {
				e.Ints64("loop_conns", g.loopConns()).Ints64("loop_accepted", g.loopAccepted()).Msg("gateway: connections")
			}
		case <-g.done:
			return
		}
	}
}

// loopConns reads the gateway's own per-loop counts, which are cheaper than
// a full Node.Stats snapshot for the periodic log line.
func (g *Gateway) loopConns() []int64 {
	a := make([]int64, len(g.loops))
	for i, ls := range g.loops {
		a[i] = ls.conns.Load()
	}
	return a
}

func (g *Gateway) loopAccepted() []int64 {
	a := make([]int64, len(g.loops))
	for i, ls := range g.loops {
		a[i] = ls.accepted.Load()
	}
	return a
}

// Shutdown drains the gateway: readiness turns false, new upgrades are
// refused, every player gets a reconnect notice whose after_ms spreads the
// reconnects over the drain window, and each connection is closed with 1001
// at its time. Then the listeners and loops stop. The context bounds the whole
// drain; when it expires the remaining connections are closed at once.
func (g *Gateway) Shutdown(ctx context.Context) error {
	var err error
	g.stopOnce.Do(func() { err = g.shutdown(ctx) })
	return err
}

func (g *Gateway) shutdown(ctx context.Context) error {
	g.draining.Store(true)
	close(g.stopping)
	g.node.PauseAccept(true)
	window := g.cfg.DrainWindow
	if dl, ok := ctx.Deadline(); ok {
		if left := time.Until(dl) * 3 / 4; left < window {
			window = max(left, 0)
		}
	}
	g.node.PostAll(func(l *conn.Loop) { g.loops[l.ID()].drain(l, window) })
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
wait:
	for g.m.conns.Load() > 0 {
		select {
		case <-ctx.Done():
			break wait
		case <-t.C:
		}
	}
	nodeErr := g.node.Close()
	var adminErr error
	if g.admin != nil {
		grace := adminGrace
		if ctx.Err() != nil {
			grace = 0 // the drain was cut short (a second signal, or its deadline)
		}
		actx, cancel := context.WithTimeout(context.Background(), grace)
		if err := g.admin.Shutdown(actx); errors.Is(err, context.DeadlineExceeded) {
			// A request still running (a long profile, a slow upload) must
			// not outlive the gateway and the engine it uses.
			g.log.Warn().Msg("gateway: admin requests still running at shutdown: connections closed")
			_ = g.admin.Close()
		} else {
			adminErr = err
		}
		cancel()
	}
	if g.wh != nil {
		g.wh.close()
	}
	g.cancel()
	close(g.done)
	g.wg.Wait()
	return errors.Join(nodeErr, adminErr)
}

// drain staggers the reconnect notices and 1001 closes of this loop's
// connections over window.
func (ls *loopState) drain(l *conn.Loop, window time.Duration) {
	var open []conn.Handle
	ls.sessions.each(func(s *session) {
		if s.open && !s.closed && s.h != 0 {
			open = append(open, s.h)
		}
	})
	for k, h := range open {
		d := time.Duration(0)
		if len(open) > 1 {
			d = window * time.Duration(k) / time.Duration(len(open))
		}
		if s := ls.get(h); s != nil && s.ep == epWS {
			ls.buf = appendReconnect(ls.buf[:0], d.Milliseconds())
			ls.reply(l, h)
		}
		if d == 0 {
			_ = l.Close(h, framing.StatusGoingAway, "restart")
			continue
		}
		l.After(d, func(l *conn.Loop) { _ = l.Close(h, framing.StatusGoingAway, "restart") })
	}
}

// Stats is a snapshot of the gateway's counters, as served on /v1/stats.
type Stats struct {
	Connections ConnStats            `json:"connections"`
	Hunts       map[string]HuntStats `json:"hunts"`
	Messages    MessageStats         `json:"messages"`
	SlowCloses  int64                `json:"slow_closes"`
	RateCloses  int64                `json:"rate_limit_closes"`
	// JoinsRefused counts join requests answered with an error (any code).
	JoinsRefused int64 `json:"joins_refused"`
	AuthRefused  int64 `json:"auth_refused"`
	Updates      int64 `json:"updates"`
	Deliveries   int64 `json:"deliveries"`
	Replayed     int64 `json:"replayed"`
	// DigsLocal counts digs answered on the node without the engine's
	// store: misses the node's copy of the hunt vouches for.
	DigsLocal int64            `json:"digs_local"`
	Draining  bool             `json:"draining"`
	Engine    EngineStats      `json:"engine"`
	UptimeSec float64          `json:"uptime_s"`
	Ops       map[string]int64 `json:"ops"`
	Errors    map[string]int64 `json:"errors"`
	Loops     []LoopStats      `json:"loops"`
	// Nodes are the live nodes of the cluster, sorted by id; absent with an
	// engine of one node (memory) or when they could not be read.
	Nodes []NodeStats `json:"nodes,omitempty"`
	// LatencyMs are p99 latencies over the last 10 s.
	LatencyMs LatencyStats `json:"latency_ms"`
}

// LatencyStats are p99 latencies in milliseconds over the last 10 seconds
// (since start when the gateway is younger), read from the histograms of
// /metrics (huntgate_dig_seconds, huntgate_fanout_seconds,
// huntgate_handshake_seconds) and interpolated inside their buckets as
// Prometheus's histogram_quantile does; 0 when nothing was observed in the
// window.
type LatencyStats struct {
	DigP99       float64 `json:"dig_p99"`
	FanoutP99    float64 `json:"fanout_p99"`
	HandshakeP99 float64 `json:"handshake_p99"`
}

// EngineStats says whether the engine can serve; Error is why not.
type EngineStats struct {
	Ready bool   `json:"ready"`
	Error string `json:"error,omitempty"`
}

// engineNotReady returns why the engine cannot serve, "" when it can.
func (g *Gateway) engineNotReady() string {
	if r, ok := g.engine.(state.Readier); ok {
		if err := r.Ready(); err != nil {
			return err.Error()
		}
	}
	return ""
}

// notReady returns why /readyz answers 503, "" when the node is ready: it
// drains, or its engine cannot serve a join (Redis unreachable), so that a
// load balancer sends players elsewhere.
func (g *Gateway) notReady() string {
	if g.draining.Load() {
		return "draining"
	}
	if why := g.engineNotReady(); why != "" {
		return "engine: " + why
	}
	return ""
}

// NodeStats describes one live node of the cluster.
type NodeStats struct {
	ID   string `json:"id"`
	Self bool   `json:"self"` // the node that answered
	// Connections is the node's open connections: live for the node that
	// answered, as of its last heartbeat for the others; absent when the
	// node did not report it.
	Connections *int64 `json:"connections,omitempty"`
}

// loadReporter is the optional method of an engine that spans nodes and
// publishes each node's connection count (redisengine.Engine).
type loadReporter interface {
	SetLoad(fn func() int64)
}

// nodeLister is the optional method of an engine that spans nodes
// (redisengine.Engine); the memory engine has none.
type nodeLister interface {
	Nodes(ctx context.Context) ([]state.NodeInfo, error)
}

// nodesTimeout bounds the listing of the nodes in Stats: past it the stats
// are served without nodes rather than waiting on a slow Redis.
const nodesTimeout = time.Second

// queueTimeout bounds the wait for the loops' queued byte counts in Stats.
const queueTimeout = time.Second

// LoopStats are one event loop's pass metrics.
type LoopStats struct {
	Passes      int64   `json:"passes"`
	BusySec     float64 `json:"busy_s"`     // cumulative time spent working, outside epoll_wait
	PassMaxSec  float64 `json:"pass_max_s"` // longest pass in the last 10-20 s
	Connections int64   `json:"connections"`
	// QueueBytes is the output queued on the loop's connections and not
	// written yet (-1 if the loop did not answer in time).
	QueueBytes int64 `json:"queue_bytes"`
}

// ConnStats counts connections.
type ConnStats struct {
	Total    int64   `json:"total"`
	Loops    []int64 `json:"loops"`
	Accepted []int64 `json:"accepted"` // upgraded connections per loop since start
	TCP      int64   `json:"tcp_accepted"`
	Closed   int64   `json:"closed"`
}

// HuntStats describes one hunt.
type HuntStats struct {
	Players       int    `json:"players"`       // across the cluster, from the engine
	Local         int64  `json:"local_players"` // joined on this node
	Seq           uint64 `json:"seq"`
	Epoch         uint64 `json:"epoch"`
	TreasuresLeft int    `json:"treasures_left"`
	State         string `json:"state"`
}

// MessageStats counts data messages.
type MessageStats struct {
	In       int64 `json:"in"`
	Out      int64 `json:"out"`
	BytesIn  int64 `json:"bytes_in"`
	BytesOut int64 `json:"bytes_out"`
}

// Stats returns a snapshot of the counters; safe from any goroutine.
func (g *Gateway) Stats(ctx context.Context) Stats { return g.snapshot(ctx, true) }

// snapshot is Stats; with nodes false it does not list the cluster's nodes,
// which /metrics does not export: a Redis round trip per scrape for nothing.
func (g *Gateway) snapshot(ctx context.Context, nodes bool) Stats {
	ns := g.node.Stats()
	st := Stats{
		Connections:  ConnStats{Loops: ns.Conns, Accepted: g.loopAccepted(), TCP: ns.Accepted, Closed: ns.Closed},
		Hunts:        map[string]HuntStats{},
		Messages:     MessageStats{In: ns.MsgsIn, Out: ns.MsgsOut, BytesIn: ns.BytesIn, BytesOut: ns.BytesOut},
		SlowCloses:   ns.SlowCloses,
		RateCloses:   g.m.rateCloses.Load(),
		JoinsRefused: g.m.joinsRefused.Load(),
		AuthRefused:  g.m.authFailures.Load(),
		Updates:      g.m.updates.Load(),
		Deliveries:   g.m.deliveries.Load(),
		Replayed:     g.m.replayed.Load(),
		DigsLocal:    g.m.digsLocal.Load(),
		Draining:     g.draining.Load(),
		Engine:       EngineStats{Ready: true},
		UptimeSec:    time.Since(g.started).Seconds(),
		Ops:          map[string]int64{},
		Errors:       map[string]int64{},
		Loops:        make([]LoopStats, len(ns.Loops)),
	}
	qctx, cancel := context.WithTimeout(ctx, queueTimeout)
	queued := g.node.QueuedBytes(qctx)
	cancel()
	for i, l := range ns.Loops {
		st.Loops[i] = LoopStats{Passes: l.Passes, BusySec: l.Busy.Seconds(), PassMaxSec: l.MaxPass.Seconds(), Connections: ns.Conns[i], QueueBytes: queued[i]}
	}
	for _, c := range ns.Conns {
		st.Connections.Total += c
	}
	if why := g.engineNotReady(); why != "" {
		st.Engine = EngineStats{Error: why}
	}
	local := map[string]int64{}
	for _, h := range g.hunts.all() {
		local[h.name] = h.players.Load()
	}
	if names, err := g.engine.Hunts(ctx); err == nil {
		for _, name := range names {
			hs := HuntStats{Local: local[name]}
			if s, err := g.engine.Status(ctx, name); err == nil {
				hs.Players, hs.Seq, hs.Epoch, hs.TreasuresLeft, hs.State = s.Players, s.Seq, s.Epoch, s.TreasuresLeft, s.State
			}
			st.Hunts[name] = hs
		}
	}
	if nl, ok := g.engine.(nodeLister); ok && nodes {
		st.Nodes = g.nodeStats(ctx, nl)
	}
	for i, name := range opNames {
		if name != "" {
			st.Ops[name] = g.m.ops[i].Load()
		}
	}
	for i, code := range errorCodes {
		st.Errors[code] = g.m.errors[i].Load()
	}
	if nodes { // not for /metrics, which has the histograms themselves
		p := g.m.recent.p99ms()
		st.LatencyMs = LatencyStats{DigP99: roundMs(p[0]), FanoutP99: roundMs(p[1]), HandshakeP99: roundMs(p[2])}
	}
	return st
}

// nodeStats lists the engine's live nodes; on error it logs a warning and
// returns nil, so that the stats are served without them.
func (g *Gateway) nodeStats(ctx context.Context, nl nodeLister) []NodeStats {
	ctx, cancel := context.WithTimeout(ctx, nodesTimeout)
	defer cancel()
	nodes, err := nl.Nodes(ctx)
	if err != nil {
		g.log.Warn().Err(err).Msg("gateway: stats: list nodes")
		return nil
	}
	ns := make([]NodeStats, len(nodes))
	for i, n := range nodes {
		ns[i] = NodeStats{ID: n.ID, Self: n.Self}
		switch {
		case n.Self:
			c := g.m.conns.Load()
			ns[i].Connections = &c
		case n.Reported:
			c := n.Conns
			ns[i].Connections = &c
		}
	}
	return ns
}
