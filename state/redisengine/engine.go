package redisengine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/rs/zerolog"

	"github.com/huntgate/huntgate/state"
)

// Defaults of Config.
const (
	DefaultPrefix       = "hg:"
	DefaultHeartbeatTTL = 10 * time.Second
	DefaultWatchReplay  = 2 * time.Second
	// stageTTL bounds how long the staged treasures of a Create that died
	// half-way stay in Redis.
	stageTTL = 10 * time.Minute
	// createChunk is how many treasures one HSET of Create carries.
	createChunk = 2048
)

// Config configures an Engine.
type Config struct {
	// URL is the Redis to use, redis://[user:pass@]host:port/db; required
	// unless Cluster is set.
	URL string
	// Cluster lists seed addresses (host:port) of a Redis Cluster to use
	// instead of URL: each hunt lives on the shard that owns its slot, and
	// its updates travel on that shard's pub/sub (see the package doc).
	Cluster []string
	// WaitReplicas, when positive, makes Dig, Publish and End wait until
	// that many replicas acknowledged the write (Redis WAIT), at most
	// WaitTimeout, before answering: an answered claim then survives a
	// failover to one of those replicas. A wait that times out is counted
	// (Engine.WaitShort) and the call answered anyway, as the write is done.
	WaitReplicas int
	// WaitTimeout bounds the wait of WaitReplicas; 0 means 100 ms.
	WaitTimeout time.Duration
	// NodeID names this node in the per-hunt player counters and its
	// heartbeat key; "" means a random id. Two live processes must never
	// share one: a restarted process with the id of a crashed one would
	// revive the crashed one's counts.
	NodeID string
	// Prefix starts every key and channel; "" means DefaultPrefix ("hg:").
	Prefix string
	// HistoryMax is how many reliable updates each hunt keeps for resume;
	// 0 means state.DefaultHistoryMax.
	HistoryMax int
	// HistoryAge is how old a reliable update may be and still be replayed;
	// 0 means state.DefaultHistoryAge.
	HistoryAge time.Duration
	// HeartbeatTTL is how long this node's player counts survive it after
	// its last heartbeat (sent every third of it); 0 means 10 s.
	HeartbeatTTL time.Duration
	// WatchReplay is how long before Watch, by Redis's clock, the updates
	// of a hunt replayed to the sink when its subscription takes effect
	// begin: the replay covers the time from Watch to then, whatever it
	// was, plus this margin; 0 means 2 s, negative means no replay.
	WatchReplay time.Duration
	// ScheduleTick is how often this node makes the due transitions of
	// scheduled hunts (see schedule.go); 0 means DefaultScheduleTick.
	ScheduleTick time.Duration
	// WebhookBacklog, when positive, turns the webhook backlog on: every
	// reliable update is also appended to its hunt's backlog, at most this
	// many per hunt (the oldest dropped beyond, counted), for the gateway's
	// webhook deliverer (WebhookClaim, webhook.go). Every node of a cluster
	// should have the same setting: a node without it writes no backlog.
	WebhookBacklog int
	// PoolSize is the Redis connection pool size; 0 means go-redis's default
	// (10 per CPU).
	PoolSize int
	// Logger receives reconnects, gaps and malformed messages; the zero
	// value logs nothing.
	Logger zerolog.Logger

	// dialGate, for tests, runs before each new connection is dialled, so a
	// test can hold a reconnect back.
	dialGate func(context.Context)
}

// Engine is a state.Engine whose hunts live in Redis, shared by every node
// that uses the same Redis and Prefix. See the package doc.
type Engine struct {
	rdb      redis.UniversalClient
	crdb     *redis.ClusterClient  // rdb on a Redis Cluster, else nil
	probe    redis.UniversalClient // one connection per node, for the readiness probe (health.go)
	log      zerolog.Logger
	node     string
	prefix   string
	nodesKey string // registry of the nodes: sorted set, id scored by heartbeat expiry
	loadKey  string // connections per node, as of each node's last heartbeat: hash, id -> count
	load     atomic.Pointer[func() int64]
	hmax     any // HistoryMax as a script argument, boxed once
	hmaxN    int
	wmax     any // WebhookBacklog as a script argument ("0": off)
	wbacklog int
	hage     time.Duration
	hbTTL    time.Duration
	hbTTLArg any         // hbTTL in ms as a script argument, boxed once
	frozen   atomic.Bool // stopHeartbeat: nothing renewed, as after a crash
	replay   time.Duration
	waitN    int
	waitT    time.Duration
	tick     time.Duration

	keys   sync.Map              // hunt -> *huntKeys, for hunts watched here (dropped at unwatch)
	locals sync.Map              // hunt -> *localHunt: this node's counts and copies (local.go)
	health atomic.Pointer[error] // nil: Redis answered one of the last probeFailures probes

	sink   atomic.Pointer[func(state.Update)]
	closed atomic.Bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	hbStop chan struct{}
	hbOnce sync.Once

	subs    *subConns // pub/sub connections (pubsub.go)
	watchMu sync.Mutex
	watched map[string]*watchState
	dirty   map[string]struct{}
	gen     uint64
	kick    chan struct{}

	gaps        atomic.Uint64
	filled      atomic.Uint64
	tracked     atomic.Int64 // the reader's tracks (one per watched hunt) after its last event
	regressions atomic.Uint64
	waitShort   atomic.Uint64

	calls   chan *scriptCall // script calls waiting for the batcher (batch.go)
	slots   chan struct{}    // a token per pipeline in flight
	batches atomic.Uint64
	// digsLocal counts the digs DigLocal answered without Redis.
	digsLocal atomic.Uint64
	queued    atomic.Int64 // calls handed to the batcher and not yet sent
}

type watchState struct {
	n   int
	gen uint64    // changes each time the hunt goes from unwatched to watched
	at  time.Time // when it went watched, with the monotonic reading
}

// huntKeys are a hunt's keys, built once. The hunt id is a hash tag so that
// all of a hunt's keys map to one Redis Cluster slot.
type huntKeys struct {
	meta, treasures, lb, members, hist, nodes, live, ch string
	claims                                              string
	wq, wk, wl                                          string // webhook backlog, its counters, its lease (webhook.go)

	chArg any // ch, boxed once rather than on every call

	dig, publish, end, status, history, schedule, webhook []string
}

var _ state.Engine = (*Engine)(nil)

// New connects to cfg.URL, checks that Redis answers, starts the heartbeat
// and the pub/sub reader, and returns the engine.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	var dial func(ctx context.Context, network, addr string) (net.Conn, error)
	if gate := cfg.dialGate; gate != nil {
		var d net.Dialer
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			gate(ctx)
			return d.DialContext(ctx, network, addr)
		}
	}
	var rdb, probe redis.UniversalClient
	var crdb *redis.ClusterClient
	if len(cfg.Cluster) > 0 {
		if strings.ContainsAny(cfg.Prefix, "{}") {
			return nil, fmt.Errorf("redisengine: prefix %q: braces would move the hunt id out of the hash tag", cfg.Prefix)
		}
		opt := &redis.ClusterOptions{
			Addrs: cfg.Cluster, PoolSize: cfg.PoolSize, Dialer: dial, DisableIdentity: true,
			// A caller's deadline bounds the socket reads and writes too
			// (go-redis otherwise waits its own 3 s read timeout, retries
			// included): the gateway bounds every player request.
			ContextTimeoutEnabled: true,
			// The slot map is read again every second: a primary killed
			// without notice sends no MOVED to prompt a reload, and
			// go-redis's own default is a minute.
			ClusterStateReloadInterval: time.Second,
		}
		crdb = redis.NewClusterClient(opt)
		rdb = crdb
		popt := *opt
		popt.PoolSize, popt.MinIdleConns, popt.MaxRetries, popt.MaxRedirects = 1, 0, -1, 0
		popt.DialTimeout, popt.ReadTimeout, popt.WriteTimeout = probeTimeout, probeTimeout, probeTimeout
		probe = redis.NewClusterClient(&popt)
	} else {
		opt, err := redis.ParseURL(cfg.URL)
		if err != nil {
			return nil, fmt.Errorf("redisengine: url: %w", err)
		}
		if cfg.PoolSize > 0 {
			opt.PoolSize = cfg.PoolSize
		}
		opt.DisableIdentity = true
		opt.ContextTimeoutEnabled = true // as for a cluster, above
		if dial != nil {
			opt.Dialer = dial
		}
		rdb = redis.NewClient(opt)
		popt := *opt
		popt.PoolSize, popt.MinIdleConns, popt.MaxRetries = 1, 0, -1
		popt.DialTimeout, popt.ReadTimeout, popt.WriteTimeout = probeTimeout, probeTimeout, probeTimeout
		probe = redis.NewClient(&popt)
	}
	e := &Engine{
		log:     cfg.Logger,
		node:    cfg.NodeID,
		prefix:  cfg.Prefix,
		hmaxN:   cfg.HistoryMax,
		hage:    cfg.HistoryAge,
		hbTTL:   cfg.HeartbeatTTL,
		replay:  cfg.WatchReplay,
		tick:    cfg.ScheduleTick,
		hbStop:  make(chan struct{}),
		watched: make(map[string]*watchState),
		dirty:   make(map[string]struct{}),
		kick:    make(chan struct{}, 1),
		rdb:     rdb,
		crdb:    crdb,
		probe:   probe,
		waitN:   cfg.WaitReplicas,
		waitT:   cfg.WaitTimeout,
		calls:   make(chan *scriptCall, batchQueue),
		slots:   make(chan struct{}, batchSlots),
	}
	if e.waitT <= 0 {
		e.waitT = 100 * time.Millisecond
	}
	if e.node == "" {
		e.node = strconv.FormatUint(rand.Uint64(), 36)
	}
	if e.prefix == "" {
		e.prefix = DefaultPrefix
	}
	if e.hmaxN <= 0 {
		e.hmaxN = state.DefaultHistoryMax
	}
	e.hmax = strconv.Itoa(e.hmaxN)
	e.wbacklog = max(cfg.WebhookBacklog, 0)
	e.wmax = strconv.Itoa(e.wbacklog)
	if e.hage <= 0 {
		e.hage = state.DefaultHistoryAge
	}
	if e.hbTTL <= 0 {
		e.hbTTL = DefaultHeartbeatTTL
	}
	if e.tick <= 0 {
		e.tick = DefaultScheduleTick
	}
	if e.replay == 0 {
		e.replay = DefaultWatchReplay
	}
	e.hbTTLArg = strconv.FormatInt(e.hbTTL.Milliseconds(), 10)
	e.nodesKey = e.prefix + "nodes"
	e.loadKey = e.prefix + "nodes:conns"
	if err := e.beat(ctx); err != nil {
		_ = e.rdb.Close()
		_ = e.probe.Close()
		return nil, fmt.Errorf("redisengine: connect: %w", err)
	}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	e.subs = newSubConns(e)
	e.wg.Add(7)
	go e.batcher()
	go e.scheduler()
	go e.heartbeat()
	go e.subscriber()
	go e.reader()
	go e.flusher()
	go e.prober()
	return e, nil
}

// NodeID returns the id of this node.
func (e *Engine) NodeID() string { return e.node }

// Gaps returns how many times updates missed while the pub/sub connection
// was down could not be filled from the history (see the package doc).
func (e *Engine) Gaps() uint64 { return e.gaps.Load() }

// Filled returns how many updates missed by the pub/sub connection were
// delivered from the history instead.
func (e *Engine) Filled() uint64 { return e.filled.Load() }

// keysOf returns hunt's keys: cached for a hunt watched here, built afresh
// otherwise, so that neither ids of hunts that do not exist (any a client
// sends) nor hunts this node no longer serves pile up in the cache.
func (e *Engine) keysOf(hunt string) *huntKeys {
	if k, ok := e.keys.Load(hunt); ok {
		return k.(*huntKeys)
	}
	return e.buildKeys(hunt)
}

// keepKeys is keysOf that caches the keys; only for a hunt watched here
// (the subscriber drops them at unwatch).
func (e *Engine) keepKeys(hunt string) *huntKeys {
	if k, ok := e.keys.Load(hunt); ok {
		return k.(*huntKeys)
	}
	v, _ := e.keys.LoadOrStore(hunt, e.buildKeys(hunt))
	return v.(*huntKeys)
}

func (e *Engine) buildKeys(hunt string) *huntKeys {
	b := e.prefix + "{" + hunt + "}:"
	k := &huntKeys{
		meta: b + "m", treasures: b + "t", lb: b + "lb", members: b + "pm",
		hist: b + "h", nodes: b + "n", live: b + "nl", ch: b + "u", claims: b + "c",
		wq: b + "w", wk: b + "wk", wl: b + "wl",
	}
	k.chArg = k.ch
	// The scripts that record updates end their keys with the webhook
	// backlog and its counters (record in scripts.go).
	k.dig = []string{k.meta, k.treasures, k.lb, k.members, k.hist, k.claims, k.wq, k.wk}
	k.publish = []string{k.meta, k.hist, k.wq, k.wk}
	k.end = []string{k.meta, k.hist, k.lb, k.nodes, k.live, k.wq, k.wk}
	k.schedule = []string{k.meta, k.hist, k.lb, k.wq, k.wk}
	k.webhook = []string{k.wq, k.wk, k.wl}
	k.status = []string{k.meta, k.lb, k.nodes, k.live}
	k.history = []string{k.meta, k.hist, k.lb}
	return k
}

// huntOf returns the hunt of a channel name, "" if it is not one of ours.
func (e *Engine) huntOf(ch string) string {
	n := len(e.prefix)
	if len(ch) < n+5 || ch[:n] != e.prefix || ch[n] != '{' || ch[len(ch)-3:] != "}:u" {
		return ""
	}
	return ch[n+1 : len(ch)-3]
}

// heartbeat keeps this node's entry in the registry alive. (Its player
// counts are renewed by the flusher, local.go.)
func (e *Engine) heartbeat() {
	defer e.wg.Done()
	t := time.NewTicker(e.hbTTL / 3)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-e.hbStop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(e.ctx, e.hbTTL/3)
			if err := e.beat(ctx); err != nil && e.ctx.Err() == nil {
				e.log.Warn().Err(err).Msg("redisengine: heartbeat")
			}
			cancel()
		}
	}
}

// beat renews this node's entry in the registry, and its connection count
// when a load function was set.
func (e *Engine) beat(ctx context.Context) error {
	expired, err := beatLua.Run(ctx, e.rdb, []string{e.nodesKey}, e.node, e.hbTTLArg).StringSlice()
	if err != nil {
		return err
	}
	if len(expired) > 0 {
		// The nodes this beat pruned from the registry crashed (a closed
		// node removes itself): their connection counts go with them, or
		// the hash would keep a field for every node that ever crashed.
		// Its own command: on a Redis Cluster the hash may live in
		// another slot than the registry.
		if err := e.rdb.HDel(ctx, e.loadKey, expired...).Err(); err != nil {
			return err
		}
	}
	if fn := e.load.Load(); fn != nil {
		// Its own command, not in the script: on a Redis Cluster the hash
		// may live in another slot than the registry.
		return e.rdb.HSet(ctx, e.loadKey, e.node, (*fn)()).Err()
	}
	return nil
}

// SetLoad gives the engine a function of the node's open connections, sent
// with every heartbeat (a third of HeartbeatTTL apart) so that Nodes reports
// it for every node; the gateway sets it. The count of a node that crashed
// is removed by the heartbeat that prunes its registry entry, Close removes
// this node's, and Nodes lists live nodes only.
func (e *Engine) SetLoad(fn func() int64) {
	e.load.Store(&fn)
	ctx, cancel := context.WithTimeout(e.ctx, time.Second)
	defer cancel()
	if err := e.rdb.HSet(ctx, e.loadKey, e.node, fn()).Err(); err != nil && e.ctx.Err() == nil {
		e.log.Warn().Err(err).Msg("redisengine: publish the connection count")
	}
}

// stopHeartbeat stops renewing the registry entry and the player counts
// without deleting them, as a crash would.
func (e *Engine) stopHeartbeat() {
	e.frozen.Store(true)
	e.hbOnce.Do(func() { close(e.hbStop) })
}

func (e *Engine) check() error {
	if e.closed.Load() {
		return state.ErrClosed
	}
	return nil
}

// rcErr maps a script's negative reply to the state error.
func rcErr(rc int64) error {
	switch rc {
	case rcUnknown:
		return state.ErrUnknownHunt
	case rcEnded:
		return state.ErrEnded
	case rcOutGrid:
		return state.ErrOutOfGrid
	case rcExists:
		return state.ErrExists
	case rcNotStarted:
		return state.ErrNotStarted
	}
	return fmt.Errorf("redisengine: unexpected script reply %d", rc)
}

func wrap(err error) error {
	if errors.Is(err, redis.ErrClosed) {
		return state.ErrClosed
	}
	return fmt.Errorf("redisengine: %w", err)
}

// Create implements state.Engine. The treasures are written to a staged key
// first (in chunks, as a layout may hold a million), then one script checks
// that the hunt does not exist, renames the staged key into place and
// writes the hunt's meta, so the hunt appears whole or not at all.
func (e *Engine) Create(ctx context.Context, s state.Spec) (state.Status, error) {
	if err := e.check(); err != nil {
		return state.Status{}, err
	}
	if err := s.Validate(); err != nil {
		return state.Status{}, err
	}
	k := e.keysOf(s.ID)
	n, err := e.rdb.Exists(ctx, k.meta).Result()
	if err != nil {
		return state.Status{}, wrap(err)
	}
	if n > 0 {
		return state.Status{}, state.ErrExists // before laying out a possibly large spec
	}
	ts, err := s.Layout()
	if err != nil {
		return state.Status{}, err
	}
	stage := k.treasures + ":stage:" + strconv.FormatUint(rand.Uint64(), 36)
	for i := 0; i < len(ts); i += createChunk {
		end := min(i+createChunk, len(ts))
		args := make([]any, 0, 2*(end-i))
		for _, t := range ts[i:end] {
			args = append(args, strconv.Itoa(t.X)+","+strconv.Itoa(t.Y), t.ID+"|"+strconv.FormatInt(t.Points, 10))
		}
		p := e.rdb.Pipeline()
		p.HSet(ctx, stage, args...)
		p.Expire(ctx, stage, stageTTL)
		if _, err := p.Exec(ctx); err != nil {
			return state.Status{}, wrap(err)
		}
	}
	epoch := newEpoch()
	// The index is another slot's key, so it is written before the hunt
	// by its own command: an entry whose create then died is skipped by
	// Hunts, which checks each against its meta.
	if err := e.rdb.SAdd(ctx, e.prefix+"hunts", s.ID).Err(); err != nil {
		return state.Status{}, wrap(err)
	}
	st, starts, ends, first := scheduleArgs(s)
	if first > 0 {
		// Indexed before the hunt exists too, so that no crash leaves a
		// scheduled hunt out of the index; an entry for a hunt that is
		// then not made is removed by the first tick.
		if err := e.rdb.ZAdd(ctx, e.prefix+"schedule", redis.Z{Score: float64(first), Member: s.ID}).Err(); err != nil {
			return state.Status{}, wrap(err)
		}
	}
	rc, err := createLua.Run(ctx, e.rdb, []string{k.meta, k.treasures, stage},
		s.ID, s.Width, s.Height, strconv.FormatUint(epoch, 10), len(ts), st, starts, ends).Int64()
	if err != nil {
		return state.Status{}, wrap(err)
	}
	if rc != 1 {
		return state.Status{}, rcErr(rc)
	}
	if first > 0 {
		// A start already past happens now, as in the memory engine.
		if err := e.transition(ctx, s.ID); err != nil {
			return state.Status{}, err
		}
		return e.Status(ctx, s.ID)
	}
	return state.Status{Hunt: s.ID, Epoch: epoch, TreasuresLeft: len(ts), State: st, Top: []state.Entry{},
		StartsAt: msTime(strconv.FormatInt(starts, 10)), EndsAt: msTime(strconv.FormatInt(ends, 10))}, nil
}

// msTime is a schedule time of the meta (ms since the epoch; "0": none).
func msTime(s string) time.Time {
	if ms, _ := strconv.ParseInt(s, 10, 64); ms > 0 {
		return time.UnixMilli(ms).UTC()
	}
	return time.Time{}
}

// parseStatus decodes the reply of the status() Lua function.
func parseStatus(hunt string, v any) (state.Status, error) {
	if rc, ok := v.(int64); ok {
		return state.Status{}, rcErr(rc)
	}
	r, ok := v.([]any)
	if !ok || len(r) < 7 {
		return state.Status{}, fmt.Errorf("redisengine: bad status reply")
	}
	str := func(i int) string { s, _ := r[i].(string); return s }
	st := state.Status{Hunt: hunt, State: str(2), Top: make([]state.Entry, 0, (len(r)-7)/2)}
	st.StartsAt, st.EndsAt = msTime(str(5)), msTime(str(6))
	st.Epoch, _ = strconv.ParseUint(str(0), 10, 64)
	st.Seq, _ = strconv.ParseUint(str(1), 10, 64)
	st.TreasuresLeft, _ = strconv.Atoi(str(3))
	if p, ok := r[4].(int64); ok {
		st.Players = int(p)
	}
	for i := 7; i+1 < len(r); i += 2 {
		sc, _ := strconv.ParseInt(str(i+1), 10, 64)
		st.Top = append(st.Top, state.Entry{Player: str(i), Score: sc})
	}
	return st, nil
}

// Join implements state.Engine: it counts the player on this node's
// counter of the hunt, writes the counter and reads the status in one call,
// so the answer reflects every write made before it. JoinLocal is the
// join without that round trip.
func (e *Engine) Join(ctx context.Context, hunt, player string) (state.Status, error) {
	if err := e.check(); err != nil {
		return state.Status{}, err
	}
	l := e.addCount(hunt, 1)
	l.mu.Unlock()
	st, err := e.writeCount(ctx, hunt, l)
	if err != nil {
		e.addCount(hunt, -1).mu.Unlock()
		return state.Status{}, err
	}
	return st, nil
}

// Leave implements state.Engine. It never waits on Redis: the count of a
// hunt joined through this node reaches Redis with the next batch, and a
// hunt this node counts nobody in (unknown ones included) answers nil.
func (e *Engine) Leave(_ context.Context, hunt, player string) error {
	if err := e.check(); err != nil {
		return err
	}
	if l := e.localOf(hunt); l != nil {
		l.mu.Lock()
		if !l.dead && l.count > 0 {
			l.count--
			l.mu.Unlock()
			return nil
		}
		l.mu.Unlock()
	}
	// Nobody joined it here: nothing to count. The gateway calls Leave on
	// its event loops, which must never wait on Redis, so an unknown hunt is
	// not looked up either: there is nothing to undo for it.
	return nil
}

// Dig implements state.Engine in one script: see the package doc.
func (e *Engine) Dig(ctx context.Context, hunt, player string, x, y int) (state.DigResult, error) {
	if err := e.check(); err != nil {
		return state.DigResult{}, err
	}
	k := e.keysOf(hunt)
	se, ss, fresh := e.guardArgs(hunt)
	v, err := e.run(ctx, digLua, k.dig, player, x, y, e.hmax, k.chArg, e.wmax, se, ss, fresh)
	if err != nil {
		return state.DigResult{}, wrap(err)
	}
	switch r := v.(type) {
	case int64:
		if r == 0 {
			return state.DigResult{}, nil
		}
		return state.DigResult{}, rcErr(r)
	case []any:
		if len(r) == 5 {
			tid, _ := r[0].(string)
			pts, _ := r[1].(int64)
			score, _ := r[2].(int64)
			rank, _ := r[3].(int64)
			seq, _ := r[4].(int64)
			return state.DigResult{Found: true, Treasure: tid, Points: pts, Score: score, Rank: int(rank), Seq: uint64(seq)}, nil
		}
	}
	return state.DigResult{}, fmt.Errorf("redisengine: bad dig reply")
}

// Status implements state.Engine. For a hunt with players on this node it
// writes this node's count first, so that Players is exact as of the call.
func (e *Engine) Status(ctx context.Context, hunt string) (state.Status, error) {
	if err := e.check(); err != nil {
		return state.Status{}, err
	}
	if l := e.localOf(hunt); l != nil {
		return e.writeCount(ctx, hunt, l)
	}
	v, err := statusLua.Run(ctx, e.rdb, e.keysOf(hunt).status).Result()
	if err != nil {
		return state.Status{}, wrap(err)
	}
	return parseStatus(hunt, v)
}

// Publish implements state.Engine; data reaches every watching node's sink
// byte for byte.
func (e *Engine) Publish(ctx context.Context, hunt string, data []byte) (uint64, error) {
	if err := e.check(); err != nil {
		return 0, err
	}
	k := e.keysOf(hunt)
	se, ss, fresh := e.guardArgs(hunt)
	v, err := e.run(ctx, publishLua, k.publish, data, e.hmax, k.chArg, e.wmax, se, ss, fresh)
	if err != nil {
		return 0, wrap(err)
	}
	rc, _ := v.(int64)
	if rc < 0 {
		return 0, rcErr(rc)
	}
	return uint64(rc), nil
}

// End implements state.Engine.
func (e *Engine) End(ctx context.Context, hunt string) (state.Status, error) {
	if err := e.check(); err != nil {
		return state.Status{}, err
	}
	k := e.keysOf(hunt)
	se, ss, fresh := e.guardArgs(hunt)
	v, err := e.run(ctx, endLua, k.end, e.hmax, k.chArg, e.wmax, se, ss, fresh)
	if err != nil {
		return state.Status{}, wrap(err)
	}
	return parseStatus(hunt, v)
}

// histReply is a decoded reply of historyLua.
type histReply struct {
	held       bool // all the updates after since are held
	epoch, seq uint64
	now        time.Time // Redis's clock
	// board is the hunt's leaderboard as of seq, read in the same atomic
	// step: what to hand the sink after a replay that holds claims, whose
	// own leaderboard updates the history does not keep.
	board state.Update
	state string // the hunt's state and treasures left as of seq
	left  int
	// startsAt and endsAt are the hunt's schedule (zero: none).
	startsAt, endsAt time.Time
	ups              []state.Update
}

// history runs historyLua; since < 0 asks for the updates of the last
// window, by Redis's clock.
func (e *Engine) history(ctx context.Context, hunt string, since int64, window time.Duration) (*histReply, error) {
	v, err := historyLua.Run(ctx, e.rdb, e.keysOf(hunt).history, since, window.Milliseconds()).Result()
	if err != nil {
		return nil, wrap(err)
	}
	if rc, ok := v.(int64); ok {
		return nil, rcErr(rc)
	}
	r, ok := v.([]any)
	if !ok || len(r) < 9 {
		return nil, fmt.Errorf("redisengine: bad history reply")
	}
	str := func(i int) string { s, _ := r[i].(string); return s }
	flag, _ := r[0].(int64)
	h := &histReply{held: flag == 1, state: str(5)}
	h.left, _ = strconv.Atoi(str(6))
	h.startsAt, h.endsAt = msTime(str(7)), msTime(str(8))
	h.epoch, _ = strconv.ParseUint(str(1), 10, 64)
	h.seq, _ = strconv.ParseUint(str(2), 10, 64)
	ms, _ := strconv.ParseInt(str(3), 10, 64)
	h.now = time.UnixMilli(ms)
	top, err := decodeTop(str(4))
	if err != nil {
		return nil, err
	}
	h.board = state.Update{Hunt: hunt, Epoch: h.epoch, Seq: h.seq, Kind: state.KindLeaderboard, Top: top, At: h.now}
	if len(r) > 9 {
		h.ups = make([]state.Update, 0, len(r)-9)
	}
	for i := 9; i < len(r); i++ {
		u, err := decodeUpdate(hunt, str(i))
		if err != nil {
			return nil, err
		}
		h.ups = append(h.ups, u)
	}
	return h, nil
}

// History implements state.Engine with the memory engine's semantics: the
// list is bounded by count when written and filtered by age here, against
// Redis's clock (the one that stamped the updates).
func (e *Engine) History(ctx context.Context, hunt string, epoch, since uint64) ([]state.Update, bool, error) {
	if err := e.check(); err != nil {
		return nil, false, err
	}
	h, ok, err := e.resume(ctx, hunt, epoch, since)
	if err != nil || !ok {
		return nil, false, err
	}
	return h.ups, true, nil
}

// resume is History with the whole reply.
func (e *Engine) resume(ctx context.Context, hunt string, epoch, since uint64) (*histReply, bool, error) {
	// Lua numbers hold integers exactly only up to 2^53; a since beyond
	// that is beyond any seq, and still asks the script so that an unknown
	// hunt is ErrUnknownHunt, as in the memory engine.
	h, err := e.history(ctx, hunt, int64(min(since, 1<<53)), 0)
	if err != nil {
		return nil, false, err
	}
	if h.epoch != epoch || since > h.seq || !h.held {
		return nil, false, nil
	}
	if len(h.ups) > 0 && h.ups[0].At.Before(h.now.Add(-e.hage)) {
		return nil, false, nil // the oldest needed has aged out, so it is not held
	}
	return h, true, nil
}

// Hunts implements state.Engine.
func (e *Engine) Hunts(ctx context.Context) ([]string, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	ids, err := e.rdb.SMembers(ctx, e.prefix+"hunts").Result()
	if err != nil {
		return nil, wrap(err)
	}
	// The index may hold a hunt whose create died after the index was
	// written (rare, and harmless beyond one id): keep the ids whose meta
	// exists. Entries are never removed, as a create under way may have
	// indexed its hunt a moment ago.
	p := e.rdb.Pipeline()
	exists := make([]*redis.IntCmd, len(ids))
	for i, id := range ids {
		exists[i] = p.Exists(ctx, e.keysOf(id).meta)
	}
	if len(ids) > 0 {
		if _, err := p.Exec(ctx); err != nil {
			return nil, wrap(err)
		}
	}
	live := ids[:0]
	for i, id := range ids {
		if exists[i].Val() == 1 {
			live = append(live, id)
		}
	}
	ids = live
	slices.Sort(ids)
	return ids, nil
}

// Nodes lists the live nodes, sorted by id, with Self set on this one: the
// registry's entries whose heartbeat has not expired, by Redis's clock. It
// reads one sorted set of one entry per node, whatever else the keyspace
// holds, since the gateway calls it on every /v1/stats request. A crashed
// node drops out when its heartbeat expires (Config.HeartbeatTTL), a closed
// one at once.
func (e *Engine) Nodes(ctx context.Context) ([]state.NodeInfo, error) {
	if err := e.check(); err != nil {
		return nil, err
	}
	ids, err := nodesLua.Run(ctx, e.rdb, []string{e.nodesKey}).StringSlice()
	if err != nil {
		return nil, wrap(err)
	}
	slices.Sort(ids)
	nodes := make([]state.NodeInfo, len(ids))
	for i, id := range ids {
		nodes[i] = state.NodeInfo{ID: id, Self: id == e.node}
	}
	if len(ids) == 0 {
		return nodes, nil
	}
	// The counts are an extra: without them the list is still served.
	counts, err := e.rdb.HMGet(ctx, e.loadKey, ids...).Result()
	if err != nil {
		e.log.Warn().Err(err).Msg("redisengine: read the nodes' connection counts")
		return nodes, nil
	}
	for i, c := range counts {
		if s, ok := c.(string); ok {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				nodes[i].Conns, nodes[i].Reported = n, true
			}
		}
	}
	return nodes, nil
}

// Subscribe implements state.Engine.
func (e *Engine) Subscribe(sink func(state.Update)) {
	if sink == nil {
		e.sink.Store(nil)
		return
	}
	e.sink.Store(&sink)
}

// Inline implements state.Engine: every call is a Redis round trip.
func (e *Engine) Inline() bool { return false }

// Close implements state.Engine. It deletes this node's registry entry and
// player counts, so they drop out of every hunt at once.
func (e *Engine) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	e.sink.Store(nil)
	e.cancel()
	err := e.subs.close()
	e.wg.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	p := e.rdb.Pipeline()
	p.ZRem(ctx, e.nodesKey, e.node)
	p.HDel(ctx, e.loadKey, e.node)
	e.locals.Range(func(h, _ any) bool {
		k := e.keysOf(h.(string))
		p.ZRem(ctx, k.live, e.node)
		p.HDel(ctx, k.nodes, e.node)
		return true
	})
	if _, derr := p.Exec(ctx); derr != nil && err == nil {
		err = derr
	}
	cancel()
	if cerr := e.rdb.Close(); cerr != nil && err == nil {
		err = cerr
	}
	_ = e.probe.Close()
	if err != nil {
		return fmt.Errorf("redisengine: close: %w", err)
	}
	return nil
}
