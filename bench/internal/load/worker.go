package load

import (
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/huntgate/huntgate/bench/internal/measure"
	"github.com/huntgate/huntgate/bench/internal/wsc"
	"github.com/huntgate/huntgate/framing"
	"github.com/rs/zerolog"
)

// Msg is one line a worker sends to the parent.
type Msg struct {
	Type      string  `json:"type"` // ready, tick, final, error
	Worker    int     `json:"worker"`
	Connected int64   `json:"connected,omitempty"`
	Failed    int64   `json:"failed,omitempty"`
	Joined    int64   `json:"joined,omitempty"`   // ready: joins admitted so far
	RSSBase   int64   `json:"rss_base,omitempty"` // ready: this process's RSS before it made its players
	RSS       int64   `json:"rss,omitempty"`      // ready: its RSS with them connected
	Tick      *Tick   `json:"tick,omitempty"`
	Result    *Result `json:"result,omitempty"`
	Err       string  `json:"err,omitempty"`
}

// Tick is one progress interval of a worker.
type Tick struct {
	At        int64                       `json:"at"` // Unix ms
	Connected int64                       `json:"connected"`
	Counters  map[string]int64            `json:"counters"` // cumulative
	Ops       map[string]measure.Snapshot `json:"ops"`      // values of this interval only
}

// Result is everything a worker measured.
type Result struct {
	Ops          map[string]measure.OpResult `json:"ops"`
	Counters     map[string]int64            `json:"counters"`
	Gaps         measure.GapStats            `json:"gaps"`
	Bcast        []measure.BcastRec          `json:"bcast,omitempty"`
	Sent         []int64                     `json:"sent,omitempty"` // broadcast messages sent per step
	CPU          float64                     `json:"cpu_s"`          // this worker's CPU seconds
	CPUMeasured  float64                     `json:"cpu_measured_s"` // of which in the measured phase
	Connected    int64                       `json:"connected"`      // connections when the measured phase began
	ConnectedEnd int64                       `json:"connected_end"`  // connections when it ended
	Window       map[string]int64            `json:"window"`         // counters' increase over the measured phase only
}

// Counter names shared by scenarios and the report.
const (
	cMsgsIn   = "msgs_in"
	cMsgsOut  = "msgs_out"
	cReplies  = "replies_in_window"
	cFound    = "found"
	cClaimed  = "claimed"
	cRejoins  = "rejoins"
	cDialFail = "dial_failed"
	cDigsSent = "digs_sent"
	// Joins: every answer to a join is either an admission (cJoined) or a
	// refusal counted as join_err_<code>; a refused overloaded join is
	// retried (cJoinRetries) until it is admitted or the tries run out
	// (cJoinGaveUp); a connection that closed with its join unanswered
	// counts as cJoinLost.
	cJoined      = "joins_admitted"
	cJoinErr     = "join_err_"
	cJoinRetries = "join_retries"
	cJoinGaveUp  = "join_gave_up"
	cJoinLost    = "join_unanswered_close"
	cReconnects  = "reconnects"  // crowd: dropped players dialling again
	cDelivered   = "delivered.s" // + step: stamped broadcast receipts (not duplicates)
	cPingsSent   = "pings_sent"  // crowd: the ping floor's pings written
	cShed        = "shed"        // crowd: paced pings and digs dropped unsent (load generator behind)
)

// player is one simulated connection. It is touched only by its loop
// (after the dial has been handed to the transport).
type player struct {
	n        int    // player number across all workers
	id       string // player id
	hunt     string
	loop     int
	h        wsc.Handle
	dialAt   time.Time
	joinAt   time.Time // first attempt of the current join (retries included in its RTT)
	open     bool
	joined   bool
	joining  bool // a join was sent and not answered yet
	tries    int  // attempts of the current join
	settled  bool
	first    bool // the first dial, which holds an in-flight slot
	leaving  bool // closed on purpose, to come back with since
	slot     int  // index in loopState.open, -1 when not open
	seq      measure.SeqState
	epochRaw []byte
}

// loopState is the part of a worker that one loop owns.
type loopState struct {
	id        int
	shard     *measure.Shard
	byIdx     []*player
	open      []*player
	rr        int
	rng       *rand.Rand
	buf       []byte
	handshake *measure.Op
	rtt       *measure.Op
	join      *measure.Op
	dug       *measure.Op
	sendLag   *measure.Op // dig: intended time to the write on the loop
	dugWire   *measure.Op // dug from the actual write
	dugSteady *measure.Op // crowd: dug of the digs sent in the steady window (Config.Steady)
	inbox     *measure.Op // dig: a batch's wait in the loop's inbox
	digsSent  *int64
	steps     []*measure.Op
	delivered []*int64    // receipts per step (the parent waits on them in crowd's event phase)
	pong      *measure.Op // crowd: the ping floor's round trip from the intended time
	pongWire  *measure.Op // from the actual write
	pingsSent *int64
	shedCount *int64 // crowd: paced requests dropped unsent, the load generator over ShedAfter behind
	msgsIn    *int64
	msgsOut   *int64
	replies   *int64 // echo: replies in the measured window
	// Counters of the update kinds every player receives, resolved once so
	// that counting a delivery allocates nothing.
	claimed      *int64
	leaderboards *int64
}

func (ls *loopState) stepOp(s int) *measure.Op {
	for len(ls.steps) <= s {
		ls.steps = append(ls.steps, ls.shard.Op("oneway.s"+pad2(len(ls.steps))))
	}
	return ls.steps[s]
}

// stepDelivered is the receipt counter of step s ("delivered.sNN"),
// resolved once per step so that counting a receipt allocates nothing.
func (ls *loopState) stepDelivered(s int) *int64 {
	for len(ls.delivered) <= s {
		ls.delivered = append(ls.delivered, ls.shard.Counter(cDelivered+pad2(len(ls.delivered))))
	}
	return ls.delivered[s]
}

func pad2(i int) string {
	if i < 10 {
		return "0" + strconv.Itoa(i)
	}
	return strconv.Itoa(i)
}

func (ls *loopState) addOpen(p *player) {
	p.slot = len(ls.open)
	ls.open = append(ls.open, p)
}

func (ls *loopState) removeOpen(p *player) {
	if p.slot < 0 {
		return
	}
	last := ls.open[len(ls.open)-1]
	ls.open[p.slot] = last
	last.slot = p.slot
	ls.open = ls.open[:len(ls.open)-1]
	p.slot = -1
}

// next returns the next open player round robin, nil if none.
func (ls *loopState) next() *player {
	if len(ls.open) == 0 {
		return nil
	}
	ls.rr++
	if ls.rr >= len(ls.open) {
		ls.rr = 0
	}
	return ls.open[ls.rr]
}

// scenario is the behaviour of one scenario inside a worker.
type scenario interface {
	path(w *worker, p *player) string
	onOpen(w *worker, ls *loopState, l wsc.Loop, p *player)
	onMessage(w *worker, ls *loopState, l wsc.Loop, p *player, op framing.OpCode, b []byte)
	onClose(w *worker, ls *loopState, l wsc.Loop, p *player)
	// run is the measured phase from start to end, on the worker's goroutine.
	run(w *worker, start, end time.Time)
}

// worker runs one worker process's share of a scenario.
type worker struct {
	cfg     WorkerConfig
	log     zerolog.Logger
	cl      wsc.Client
	rec     *measure.Recorder
	loops   []*loopState
	players []*player
	sc      scenario

	pending   atomic.Int64
	settledCh chan struct{}
	inflight  chan struct{}
	connected atomic.Int64
	failed    atomic.Int64
	closing   atomic.Bool
	firstFail atomic.Bool  // the first failed dial was logged
	endNs     atomic.Int64 // end of the measured phase, Unix ns; 0 before it starts
	steadyNs  atomic.Int64 // crowd: digs intended before this Unix ns are also dug.steady
	sent      []atomic.Int64
	token     func(player string) string
}

// inflightPerWorker is this worker's share of --inflight, the handshakes in
// flight across all workers. The bound is what keeps a ramp faster than
// the machine can connect from turning into timeouts: past the servers'
// capacity, a handshake's wait grows with the handshakes queued ahead of
// it (Little's law: wait = in flight / rate), and at the 5 s handshake
// timeout every further attempt is work thrown away. 112 workers with 512
// each queued 57,000 handshakes, 17 s of work at this machine's 3,400
// connections/s; with the total bounded, the excess waits in the load
// generator instead, where it costs nothing, and connects at the rate the
// machine sustains.
func inflightPerWorker(total, workers int) int {
	return min(512, max(8, total/max(1, workers)))
}

// Worker runs a worker: connect, report ready, wait for the start time,
// measure, report the result. emit receives every message (ready, ticks,
// final); start delivers the start of the measured phase (closed = abort).
func Worker(cfg WorkerConfig, log zerolog.Logger, start <-chan time.Time, emit func(Msg)) error {
	rssBase, _ := measure.SampleProc(os.Getpid())
	w := &worker{cfg: cfg, log: log, settledCh: make(chan struct{}), inflight: make(chan struct{}, inflightPerWorker(cfg.Inflight, cfg.Workers))}
	w.sc = newScenario(cfg.Scenario)
	if w.sc == nil {
		return errUnknownScenario(cfg.Scenario)
	}
	w.sent = make([]atomic.Int64, len(cfg.StepRates)+1)
	tok, err := tokenFunc(cfg.Key, cfg.Dev)
	if err != nil {
		return err
	}
	w.token = tok
	loops := cfg.Loops
	if loops <= 0 {
		loops = defaultLoops(cfg.Workers)
	}
	cl, err := newClient(cfg.Transport, loops, w, log, wsc.Timeouts{Handshake: cfg.HandshakeTimeout, Idle: cfg.IdleTimeout})
	if err != nil {
		return err
	}
	w.cl = cl
	w.rec = measure.NewRecorder(loops)
	for i := 0; i < loops; i++ {
		sh := w.rec.Shard(i)
		w.loops = append(w.loops, &loopState{
			id: i, shard: sh, rng: rand.New(rand.NewPCG(uint64(cfg.Worker), uint64(i))),
			handshake: sh.Op("handshake"), msgsIn: sh.Counter(cMsgsIn), msgsOut: sh.Counter(cMsgsOut),
			claimed: sh.Counter(cClaimed), leaderboards: sh.Counter("update_leaderboard"),
		})
		ls := w.loops[i]
		switch cfg.Scenario {
		case Echo:
			ls.rtt = sh.Op("rtt")
			ls.replies = sh.Counter(cReplies)
		case Dig, Event, Game, Crowd:
			ls.join = sh.Op("join")
			if cfg.Scenario != Event {
				ls.dug = sh.Op("dug")
				ls.dugWire = sh.Op("dug.wire")
				if cfg.Steady() > 0 {
					ls.dugSteady = sh.Op("dug.steady")
				}
			}
			if cfg.Scenario == Crowd && cfg.PingFor > 0 {
				ls.pong = sh.Op("pong")
				ls.pongWire = sh.Op("pong.wire")
				ls.pingsSent = sh.Counter(cPingsSent)
			}
			ls.shedCount = sh.Counter(cShed)
			if digging(cfg.Scenario) {
				ls.sendLag = sh.Op("dig.sendlag")
				ls.inbox = sh.Op("dig.inbox")
				ls.digsSent = sh.Counter(cDigsSent)
			}
		}
	}
	for i := 0; i < cfg.Count; i++ {
		n := cfg.First + i
		p := &player{n: n, id: "p" + strconv.Itoa(n), loop: i % loops, slot: -1, first: true}
		p.hunt = cfg.HuntID + "-" + strconv.Itoa(n%cfg.Hunts)
		if cfg.Scenario == Event {
			p.hunt = cfg.HuntID + "-0"
		}
		w.players = append(w.players, p)
	}
	w.pending.Store(int64(len(w.players)))
	if len(w.players) == 0 {
		close(w.settledCh)
	}

	tickStop := make(chan struct{})
	var tickWG sync.WaitGroup
	tickWG.Add(1)
	go func() {
		defer tickWG.Done()
		w.ticks(tickStop, emit)
	}()
	defer func() {
		close(tickStop)
		tickWG.Wait()
		_ = cl.Close()
	}()

	go w.connectAll()
	// A ramp faster than the machine connects takes longer than asked
	// (the dials wait for --inflight): allow half the ramp again.
	wait := cfg.Ramp + cfg.Ramp/2 + 30*time.Second
	select {
	case <-w.settledCh:
	case <-time.After(wait):
		log.Warn().Int64("pending", w.pending.Load()).Msg("load: not every player settled before the deadline")
	}
	rss, _ := measure.SampleProc(os.Getpid())
	emit(Msg{Type: "ready", Worker: cfg.Worker, Connected: w.connected.Load(), Failed: w.failed.Load(), Joined: w.rec.Counters()[cJoined],
		RSSBase: rssBase.RSSBytes, RSS: rss.RSSBytes})

	t0, ok := <-start
	if !ok {
		return nil
	}
	end := t0.Add(cfg.PingFor + cfg.Duration)
	w.endNs.Store(end.UnixNano())
	connectedAtStart := w.connected.Load()
	if d := time.Until(t0); d > 0 {
		time.Sleep(d)
	}
	cpu0 := measure.SelfCPU()
	c0 := w.rec.Counters()
	w.sc.run(w, t0, end)
	if d := time.Until(end); d > 0 {
		time.Sleep(d)
	}
	cpuMeasured := measure.SelfCPU() - cpu0
	window := w.rec.Counters()
	for k, v := range c0 {
		window[k] -= v
	}
	if d := time.Until(end.Add(cfg.Drain)); d > 0 {
		time.Sleep(d)
	}
	connectedEnd := w.connected.Load()
	w.closing.Store(true)
	w.closeAll()

	ops, counters := w.rec.Totals()
	res := &Result{Ops: ops, Counters: counters, Gaps: w.rec.GapTotals(), Bcast: w.rec.Bcast(), CPU: measure.SelfCPU(), CPUMeasured: cpuMeasured, Connected: connectedAtStart, ConnectedEnd: connectedEnd, Window: window}
	for i := range cfg.StepRates {
		res.Sent = append(res.Sent, w.sent[i].Load())
	}
	emit(Msg{Type: "final", Worker: cfg.Worker, Result: res})
	return nil
}

func (w *worker) ticks(stop <-chan struct{}, emit func(Msg)) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			emit(Msg{Type: "tick", Worker: w.cfg.Worker, Tick: &Tick{
				At: now.UnixMilli(), Connected: w.connected.Load(), Counters: w.rec.Counters(), Ops: w.rec.Interval(),
			}})
		}
	}
}

func (w *worker) connectAll() {
	dial := func(i int) {
		select {
		case w.inflight <- struct{}{}:
		case <-w.settledCh:
			return
		}
		w.dial(w.players[i])
	}
	if w.cfg.Ramp <= 0 {
		for i := range w.players {
			dial(i)
		}
		return
	}
	start := time.Now()
	p := measure.NewPacer(start, float64(len(w.players))/w.cfg.Ramp.Seconds(), int64(len(w.players)))
	measure.Drive(p, start.Add(w.cfg.Ramp+time.Second), nil, func(from, to int64) {
		for i := from; i < to; i++ {
			dial(int(i))
		}
	})
}

// dial starts a connection for p; safe from any goroutine as long as p is
// not open (nobody else touches it then).
func (w *worker) dial(p *player) {
	src := ""
	if len(w.cfg.Src) > 0 {
		src = w.cfg.Src[p.n%len(w.cfg.Src)]
	}
	p.dialAt = time.Now()
	err := w.cl.Dial(wsc.DialOptions{
		Addr: w.cfg.HostPort(), LocalAddr: src, Path: w.sc.path(w, p),
		Tag: uint32(p.n - w.cfg.First), Loop: p.loop, Deflate: w.cfg.Deflate,
	})
	if err != nil {
		w.log.Debug().Err(err).Msg("load: dial")
		w.dialFailed(w.loops[p.loop], p)
	}
}

func (w *worker) dialFailed(ls *loopState, p *player) {
	w.failed.Add(1)
	ls.handshake.Error()
	ls.shard.Add(cDialFail, 1)
	if p.first {
		p.first = false
		<-w.inflight
	}
	w.settle(p)
}

func (w *worker) settle(p *player) {
	if p.settled {
		return
	}
	p.settled = true
	if w.pending.Add(-1) == 0 {
		close(w.settledCh)
	}
}

func (w *worker) closeAll() {
	var wg sync.WaitGroup
	for i := range w.loops {
		wg.Add(1)
		w.cl.Post(i, func(l wsc.Loop) {
			defer wg.Done()
			ls := w.loops[l.ID()]
			for _, p := range append([]*player(nil), ls.open...) {
				_ = l.Close(p.h, framing.StatusNormal, "")
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(2 * time.Second)
	for w.connected.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

func (w *worker) player(l wsc.Loop, h wsc.Handle) (*loopState, *player) {
	ls := w.loops[l.ID()]
	idx := l.Index(h)
	if int(idx) < len(ls.byIdx) {
		if p := ls.byIdx[idx]; p != nil && p.h == h && p.open {
			return ls, p
		}
	}
	return ls, nil
}

// OnOpen implements wsc.Handler.
func (w *worker) OnOpen(l wsc.Loop, h wsc.Handle) {
	ls := w.loops[l.ID()]
	tag, ok := l.Tag(h)
	if !ok || int(tag) >= len(w.players) {
		_ = l.Close(h, framing.StatusNormal, "")
		return
	}
	p := w.players[tag]
	p.h, p.open = h, true
	idx := int(l.Index(h))
	for len(ls.byIdx) <= idx {
		ls.byIdx = append(ls.byIdx, nil)
	}
	ls.byIdx[idx] = p
	ls.addOpen(p)
	ls.handshake.Record(time.Since(p.dialAt))
	w.connected.Add(1)
	if p.first {
		p.first = false
		<-w.inflight
	}
	w.sc.onOpen(w, ls, l, p)
}

// OnMessage implements wsc.Handler.
func (w *worker) OnMessage(l wsc.Loop, h wsc.Handle, op framing.OpCode, b []byte) {
	ls, p := w.player(l, h)
	if p == nil {
		return
	}
	atomic.AddInt64(ls.msgsIn, 1)
	w.sc.onMessage(w, ls, l, p, op, b)
}

// OnClose implements wsc.Handler.
func (w *worker) OnClose(l wsc.Loop, h wsc.Handle, code framing.StatusCode, err error) {
	ls, p := w.player(l, h)
	if p == nil {
		// A dial or handshake that never opened.
		tag, ok := l.Tag(h)
		if !ok || int(tag) >= len(w.players) {
			return
		}
		p = w.players[tag]
		if p.open {
			return
		}
		if w.firstFail.CompareAndSwap(false, true) {
			w.log.Warn().Err(err).Str("player", p.id).Msg("load: dial failed (further failures are only counted)")
		}
		w.dialFailed(ls, p)
		w.sc.onClose(w, ls, l, p)
		return
	}
	p.open, p.joined = false, false
	ls.byIdx[l.Index(h)] = nil
	ls.removeOpen(p)
	w.connected.Add(-1)
	if !w.closing.Load() && !p.leaving {
		ls.shard.Add("close_"+strconv.Itoa(int(code)), 1)
	}
	w.settle(p)
	w.sc.onClose(w, ls, l, p)
}

// write sends b on p and counts it.
func (w *worker) write(ls *loopState, l wsc.Loop, p *player, op framing.OpCode, b []byte) bool {
	if err := l.Write(p.h, op, b); err != nil {
		ls.shard.Add("write_errors", 1)
		return false
	}
	atomic.AddInt64(ls.msgsOut, 1)
	return true
}

// paced runs this worker's share of an open-loop rate from start to end
// (--rate split over the workers, or defaultRate in total without one) and
// hands each due batch to fn on the loops, as postSpread does.
func (w *worker) paced(start, end time.Time, defaultRate float64, fn func(l wsc.Loop, ls *loopState, at []int64)) {
	rate := w.cfg.WorkerRate
	if rate <= 0 {
		rate = defaultRate / float64(w.cfg.Workers)
	}
	pc := measure.NewPacer(start, rate, -1)
	measure.Drive(pc, end, nil, func(from, to int64) {
		w.postSpread(from, to, pc.Intended, fn)
	})
}

// postSpread hands n operations with intended times to the loops round
// robin, starting at operation from; fn runs on each loop once per batch.
// Where the scenario measures it (ls.inbox), the time a batch waited in
// the loop's inbox is recorded, to tell the pacer's delay from the loop's.
func (w *worker) postSpread(from, to int64, intended func(k int64) time.Time, fn func(l wsc.Loop, ls *loopState, at []int64)) {
	nl := int64(len(w.loops))
	per := make([][]int64, nl)
	for k := from; k < to; k++ {
		i := k % nl
		per[i] = append(per[i], intended(k).UnixNano())
	}
	posted := time.Now().UnixNano()
	for i, at := range per {
		if len(at) == 0 {
			continue
		}
		w.cl.Post(i, func(l wsc.Loop) {
			ls := w.loops[l.ID()]
			if ls.inbox != nil {
				ls.inbox.Record(time.Duration(time.Now().UnixNano() - posted))
			}
			fn(l, ls, at)
		})
	}
}
