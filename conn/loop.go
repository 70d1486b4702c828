package conn

import (
	"errors"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/framing"
)

// Errors given to OnClose (and returned where noted).
var (
	// ErrAbnormal is a connection lost without a close handshake (EOF or a
	// socket error); OnClose gets code 1006 with it.
	ErrAbnormal = errors.New("conn: connection lost without a close frame")
	// ErrIdle is a peer silent for Config.IdleTimeout.
	ErrIdle = errors.New("conn: idle timeout")
	// ErrCloseTimeout is a peer that did not answer our close frame within
	// Config.CloseTimeout.
	ErrCloseTimeout = errors.New("conn: close handshake timeout")
	// ErrSlow is a connection closed with 1008 "slow": its outbound queue
	// overflowed or made no progress for Config.WriteTimeout.
	ErrSlow = errors.New("conn: slow consumer")
	// ErrProtocol is a peer that broke RFC 6455; the close code says how.
	ErrProtocol = errors.New("conn: protocol violation by peer")
	// ErrHandshakeTimeout is a dial whose handshake did not finish in
	// Config.HandshakeTimeout.
	ErrHandshakeTimeout = errors.New("conn: handshake timeout")
)

const (
	acceptBatch  = 64                    // accepts per listener readiness
	maxIov       = 1024                  // IOV_MAX
	maxEvents    = 256                   // epoll events per wait
	passBufLimit = 4 << 20               // a larger pass buffer is dropped after the pass
	backoffDelay = 5 * time.Millisecond  // after EMFILE/ENFILE
	budgetCheck  = 50 * time.Millisecond // fd budget re-check while paused
)

// loopStats are the loop's counters, written by the loop, read by anyone.
type loopStats struct {
	conns, accepted, closed, slow      atomic.Int64
	msgsIn, msgsOut, bytesIn, bytesOut atomic.Int64
	passes                             atomic.Int64 // loop passes, to tell a busy loop from a spinning one
	busy                               atomic.Int64 // ns spent in passes (from epoll_wait's return to the end of the flush)
	passMax                            atomic.Int64 // longest pass (ns) in the current window
	passMaxPrev                        atomic.Int64 // longest pass (ns) in the previous window
	passWin                            atomic.Int64 // loop clock (ns) when the current window began
	thread                             atomic.Int64 // OS thread id of a pinned loop, 0 otherwise
}

// passWindow is how long a longest-pass figure stays current: MaxPass
// reports the longest pass of the current and the previous window, so every
// reader (metrics scrapes, dashboards) sees the same value and none of them
// resets it for the others.
const passWindow = int64(10 * time.Second)

// passDone accounts one pass of d nanoseconds that ended at now (loop clock).
// Only the loop calls it, so the window fields need no compare-and-swap.
func (s *loopStats) passDone(d, now int64) {
	s.passes.Add(1)
	s.busy.Add(d)
	if now-s.passWin.Load() >= passWindow {
		s.passMaxPrev.Store(s.passMax.Load())
		s.passMax.Store(0)
		s.passWin.Store(now)
	}
	if d > s.passMax.Load() {
		s.passMax.Store(d)
	}
}

// maxPass is the longest pass of the current and the previous window, or 0
// when the loop has not finished a pass for two windows (it is idle).
func (s *loopStats) maxPass(now int64) int64 {
	age := now - s.passWin.Load()
	if age >= 2*passWindow {
		return 0
	}
	m := s.passMax.Load()
	if age < passWindow {
		if p := s.passMaxPrev.Load(); p > m {
			m = p
		}
	}
	return m
}

// passStats are counters the loop bumps without atomics during a pass and
// publishes to loopStats at the end of it.
type passStats struct{ msgsIn, msgsOut, bytesIn, bytesOut int64 }

func (l *Loop) publishStats() {
	c := &l.cnt
	if *c == (passStats{}) {
		return
	}
	l.stats.msgsIn.Add(c.msgsIn)
	l.stats.msgsOut.Add(c.msgsOut)
	l.stats.bytesIn.Add(c.bytesIn)
	l.stats.bytesOut.Add(c.bytesOut)
	*c = passStats{}
}

// deadEntry is a connection to close at the end of the pass, outside any
// Handler callback.
type deadEntry struct {
	idx, gen uint32
	code     framing.StatusCode
	err      error
}

// hsState is the handshake side arena item: the request (or response) head
// being collected, and for a client its key and the request to send.
type hsState struct {
	buf  []byte
	key  [24]byte
	peer netip.AddrPort // server: the client address a PROXY header gave
}

// Loop is one event loop: an epoll instance, a listener, an inbox, a timer
// wheel and the slots of its connections. All methods must be called on the
// loop's goroutine (inside Handler callbacks, Post'ed funcs or After funcs).
// Output produced during one loop pass is flushed once at the end of the
// pass: one writev per connection.
type Loop struct {
	n     *Node
	id    int
	cfg   *Config
	h     Handler
	log   zerolog.Logger
	poll  poller
	inbox inbox
	stop  atomic.Bool
	stats loopStats
	// rawWaits counts the raw blocking waits (tests read it once the loop
	// has stopped).
	rawWaits int64
	cnt      passStats

	lfd       int  // listener fd, -1 when closed (client node, paused)
	listening bool // lfd is registered in epoll
	backoff   bool // accept errors (EMFILE): listener out of epoll for a moment
	budget    bool // paused for the fd budget
	budgetT   bool // a budget re-check timer is pending

	slots  slots
	hss    arena[hsState]
	bufs   arena[[]byte]
	queues arena[outQueue]
	wheel  wheel
	fns    []func(*Loop) // After callbacks, indexed by the gen of a timerAfter entry
	fnFree []uint32
	fire   func(timerEntry)

	events []unix.EpollEvent
	rbuf   []byte       // shared read buffer: frames are decoded in place
	pbuf   []byte       // pass buffer: small frames written during this pass
	iov    []unix.Iovec // writev scratch
	dirty  []uint32     // slots with output this pass
	later  []uint32     // bulk output left for the next pass (flush budget spent)
	pend   []pitem      // frames of this pass, chained per slot
	blog   []logFrame   // broadcast log: shared frames of pending and queued runs (see blog.go)
	pfwd   []uint32     // forwarding table for compacting pend
	// pendLive counts items (frames or runs) in pend still owed to a
	// connection.
	pendLive   int
	logBase    uint32        // sequence number of blog[0]
	logKeep    int           // entries the last compaction kept: the next one waits for twice that
	logRuns    int           // runs in outbound queues (those of pending chains count in pendLive)
	spilled    int           // queues whose runs were spilled to bound the log
	bulkUntil  int64         // loop clock at which this pass's bulk flush budget runs out
	overBudget bool          // bulk flush budget spent in this pass
	unbounded  bool          // flush everything regardless of the budget (shutdown)
	dead       []deadEntry   // slots to close at the end of the pass
	inq        []func(*Loop) // inbox batch being run; what a pass left of it runs next pass
	inqAt      int           // next function of inq to run
	forced     int           // flushes forced by pendLimit in the middle of a pass
	infl       framing.Inflater
	inflB      []byte
	upg        framing.Upgrader
	hsOut      []byte // upgrade response scratch
	cur        Handle // connection being upgraded (for Upgrader.Check)
	curAcc     Accept
	rng        uint64            // client masks
	hsObs      HandshakeObserver // the Handler, if it observes handshakes
	curPeer    netip.AddrPort    // client address of the head being upgraded, from a PROXY header
	flushWait  []FlushWaiter     // AfterFlush callbacks

	base time.Time
	now  int64 // loop clock of this pass, ns since base
}

func newLoop(n *Node, id int) (*Loop, error) {
	p, err := newPoller()
	if err != nil {
		return nil, err
	}
	l := &Loop{
		n: n, id: id, cfg: &n.cfg, h: n.h, log: n.log, poll: p, lfd: -1,
		events: make([]unix.EpollEvent, maxEvents),
		rbuf:   make([]byte, max(n.cfg.ReadBuffer, n.cfg.MaxHandshake)), // heads are read into it too
		iov:    make([]unix.Iovec, 0, maxIov),
		base:   time.Now(),
		rng:    uint64(time.Now().UnixNano())*2654435761 + uint64(id) + 1,
	}
	l.inbox.wake = l.poll.wake
	l.fire = l.fireTimer
	l.bufs.reset = func(b *[]byte) {
		if cap(*b) > 64<<10 {
			*b = nil
		} else {
			*b = (*b)[:0]
		}
	}
	l.hss.reset = func(s *hsState) { s.buf = s.buf[:0]; s.key = [24]byte{}; s.peer = netip.AddrPort{} }
	l.queues.reset = resetQueue
	l.hss.keep, l.bufs.keep, l.queues.keep = 64, 256, 512
	l.upg.Check = l.check
	l.hsObs, _ = n.h.(HandshakeObserver)
	l.wheel.init(0)
	return l, nil
}

// release frees the loop's OS resources when it never ran.
func (l *Loop) release() {
	if l.lfd >= 0 {
		unix.Close(l.lfd)
		l.lfd = -1
	}
	l.inbox.close()
	l.poll.close()
}

// ID returns the loop's index in Node.Loops.
func (l *Loop) ID() int { return l.id }

// Conns returns the number of connections this loop holds (upgrading ones
// included).
func (l *Loop) Conns() int { return l.slots.used }

// Now returns the cached time of the current loop pass.
func (l *Loop) Now() time.Time { return l.base.Add(time.Duration(l.now)) }

// After runs fn on this loop once d has passed, with the timer wheel's ~5 ms
// resolution.
func (l *Loop) After(d time.Duration, fn func(l *Loop)) {
	var i uint32
	if n := len(l.fnFree); n > 0 {
		i = l.fnFree[n-1]
		l.fnFree = l.fnFree[:n-1]
		l.fns[i] = fn
	} else {
		l.fns = append(l.fns, fn)
		i = uint32(len(l.fns) - 1)
	}
	l.wheel.add(timerEntry{when: l.now + int64(d), idx: timerAfter, gen: i})
}

// Tag returns the application tag of h.
func (l *Loop) Tag(h Handle) (uint32, bool) {
	s := l.live(h)
	if s == nil {
		return 0, false
	}
	return s.tag, true
}

// SetTag replaces the application tag of h.
func (l *Loop) SetTag(h Handle, tag uint32) error {
	s, err := l.find(h)
	if err != nil {
		return err
	}
	s.tag = tag
	return nil
}

// find is live with the reason for a miss.
func (l *Loop) find(h Handle) (*slot, error) {
	if h.Loop() != l.id {
		return nil, ErrWrongLoop
	}
	if s := l.slots.lookup(h); s != nil {
		return s, nil
	}
	return nil, ErrStale
}

// live returns h's slot if h is current and belongs to this loop.
func (l *Loop) live(h Handle) *slot {
	if h.Loop() != l.id {
		return nil
	}
	return l.slots.lookup(h)
}

func (l *Loop) handle(idx uint32) Handle { return makeHandle(l.id, l.slots.at(idx).gen, idx) }

func (l *Loop) clock() int64 { return int64(time.Since(l.base)) }

func (l *Loop) run() {
	defer l.n.wg.Done()
	if l.cfg.Pin {
		runtime.LockOSThread()
		// The thread goes back to the runtime's pool when the loop ends:
		// give it back the CPUs it had, or goroutines (and processes
		// started from it) would run on the loop's one CPU from then on.
		var before unix.CPUSet
		restore := unix.SchedGetaffinity(0, &before) == nil
		defer func() {
			if restore {
				_ = unix.SchedSetaffinity(0, &before)
			}
			runtime.UnlockOSThread()
		}()
		l.pin()
		l.stats.thread.Store(int64(unix.Gettid()))
		defer l.stats.thread.Store(0)
	}
	l.now = l.clock()
	l.wheel.init(l.now)
	runningLoops.Add(1)
	defer runningLoops.Add(-1)
	procs := int32(runtime.GOMAXPROCS(0))
	var spinUntil, lastWork, lastYield int64
	for !l.stop.Load() {
		timeout := l.wheel.timeout(l.now)
		if len(l.dirty) > 0 || len(l.dead) > 0 || l.now < spinUntil || l.inqAt < len(l.inq) {
			timeout = 0
		}
		var n int
		var err error
		if timeout != 0 && l.now-lastWork < rawWindow && runningLoops.Load() < procs {
			n, err = l.poll.waitRaw(l.events, rawTimeout(timeout))
			l.rawWaits++
		} else {
			n, err = l.poll.wait(l.events, timeout)
		}
		l.now = l.clock()
		if n > 0 {
			lastWork = l.now
			if l.cfg.BusyPoll > 0 {
				spinUntil = l.now + int64(l.cfg.BusyPoll)
			}
		}
		if l.now-lastYield >= yieldEvery {
			// A loop that keeps its P (raw waits, or never idle) passes
			// through the scheduler now and then, so that sysmon does not
			// preempt it with a signal (it does after 10 ms on one P
			// without a pass through the scheduler), and goroutines queued
			// on its P run.
			lastYield = l.now
			runtime.Gosched()
		}
		if err != nil {
			l.log.Error().Err(err).Int("loop", l.id).Msg("conn: epoll_wait")
			time.Sleep(backoffDelay)
			continue
		}
		if l.inqAt < len(l.inq) {
			l.runInbox() // the rest of a batch a pass left
		}
		for i := 0; i < n; i++ {
			l.dispatch(&l.events[i])
		}
		l.wheel.advance(l.now, l.fire)
		l.endPass()
		end := l.clock()
		l.stats.passDone(end-l.now, end)
	}
	l.shutdown()
}

// Raw waits: a loop that had events in the last rawWindow blocks in
// epoll_wait as a raw system call, keeping its P, for at most rawWaitMs at a
// time; an idle loop blocks as an ordinary system call, giving its P back to
// the runtime. Ordinary blocking waits under steady traffic keep sysmon
// busy: it finds the loop's P in a system call, wakes every 20 µs while it
// keeps retaking such Ps (nanosleep, futex hand-offs), and preempts a loop
// that has not passed through the scheduler for 10 ms with a signal
// (tgkill, getpid, rt_sigreturn). Measured at 15,000 echoed messages/s over
// 10,000 connections (perf stat, 8 s, same locked run): nanosleep 0.10-0.14
// and signals 0.02 system calls per echoed message before, 0.007 and 0.002
// with raw waits (futex 0.015 before, 0.025 after: the yields below wake
// the spare P's thread). A loop keeps its P only while the process has more
// Ps than running loops (of all its nodes; ReserveSpareP), so other
// goroutines always have one. The bound on one wait, with the loop's pass
// through the scheduler every yieldEvery, keeps sysmon from preempting it
// and bounds how long a stop of the world can wait for it when asynchronous
// preemption is off (with it on, the signal ends the wait at once).
const (
	rawWindow  = int64(50 * time.Millisecond)
	rawWaitMs  = 4
	yieldEvery = int64(8 * time.Millisecond)
)

// runningLoops counts the running loops of every node in the process.
var runningLoops atomic.Int32

// rawTimeout bounds a wait's timeout (ms, -1 = none) to rawWaitMs.
func rawTimeout(ms int) int {
	if ms < 0 || ms > rawWaitMs {
		return rawWaitMs
	}
	return ms
}

func (l *Loop) pin() {
	var set unix.CPUSet
	cpu := pinCPU(l.cfg.CPUs, l.id)
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		l.log.Warn().Err(err).Int("loop", l.id).Int("cpu", cpu).Msg("conn: pinning failed")
	}
}

func (l *Loop) dispatch(ev *unix.EpollEvent) {
	idx, gen := eventSlot(ev)
	switch idx {
	case idxEventfd:
		l.poll.drainWake()
		l.runInbox()
		return
	case idxListener:
		l.acceptAll()
		return
	}
	if int(idx) >= l.slots.len() {
		return
	}
	s := l.slots.at(idx)
	if s.gen != gen || s.state == stFree || s.state == stDead {
		return
	}
	e := ev.Events
	if s.state == stDialing {
		l.connected(idx)
		return
	}
	if e&unix.EPOLLOUT != 0 {
		l.flushConn(idx)
		if s = l.slots.at(idx); s.gen != gen || s.state == stFree || s.state == stDead {
			return
		}
	}
	if e&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR|unix.EPOLLRDHUP) != 0 {
		l.onReadable(idx)
	}
}

// pendLimit bounds the items (frames, or runs of broadcast frames) a loop
// holds in its pending array. Runs keep a connection that gets every
// broadcast at one item, but frames that do not form runs (interleaved
// updates of different hunts, latest-value frames) take an item each, and a
// loop that falls behind finds many broadcasts at once: in its inbox, or in
// one read from a sender that pipelines them. Past the limit, a Send flushes
// what is pending first (see sendPrepared), and an inbox batch that caused
// such a flush leaves the rest of its functions for the next pass, so that
// reads are served between the broadcasts of a backlog, which stays in the
// inbox at one entry per broadcast.
const pendLimit = 1 << 16

// runInbox runs posted functions: the rest of a batch a pass left, else a
// new batch from the inbox, until the batch ends or a function had to flush
// because of pendLimit (at least one function runs per call, so a pass
// always makes progress).
func (l *Loop) runInbox() {
	if l.inqAt >= len(l.inq) {
		l.inq, l.inqAt = l.inbox.take(), 0
	}
	q := l.inq
	for l.inqAt < len(q) {
		fn := q[l.inqAt]
		q[l.inqAt] = nil // release its references as it runs
		l.inqAt++
		forced := l.forced
		fn(l)
		if l.forced != forced {
			break
		}
	}
}

// endPass flushes the output of the pass and closes the connections that
// died in it. Closing runs OnClose, which may write to other connections, so
// this repeats a few times; anything left makes the next wait return at once.
func (l *Loop) endPass() {
	// Published before the flush too, so that a peer that got our answer
	// finds its message counted.
	l.publishStats()
	// The budget counts from the start of the pass (no clock read here).
	l.bulkUntil = l.now + int64(l.cfg.FlushBudget)
	l.overBudget = false
	for round := 0; round < 4 && (len(l.dirty) > 0 || len(l.dead) > 0); round++ {
		l.flushDirty()
		if len(l.dead) == 0 {
			break
		}
		l.reapDead()
	}
	if len(l.blog) > 0 {
		// Queues may have drained on EPOLLOUT, with no flush since.
		l.compactLog()
	}
	if l.budget && !l.budgetT {
		l.checkAccept()
	}
	l.runFlushWaiters()
	l.publishStats()
}

func (l *Loop) reapDead() {
	for i := 0; i < len(l.dead); i++ {
		d := l.dead[i]
		l.dead[i] = deadEntry{}
		if int(d.idx) < l.slots.len() && l.slots.at(d.idx).gen == d.gen {
			l.closeSlot(d.idx, d.code, d.err)
		}
	}
	l.dead = l.dead[:0]
}

// kill schedules idx to be closed at the end of the pass.
func (l *Loop) kill(idx uint32, code framing.StatusCode, err error) {
	s := l.slots.at(idx)
	l.dead = append(l.dead, deadEntry{idx: idx, gen: s.gen, code: code, err: err})
}

// closeSlot closes the socket, runs OnClose if owed and frees the slot.
func (l *Loop) closeSlot(idx uint32, code framing.StatusCode, err error) {
	s := l.slots.at(idx)
	if s.state == stFree || s.state == stDead {
		return
	}
	s.state = stDead
	if s.flags&fNotify != 0 {
		l.h.OnClose(l, makeHandle(l.id, s.gen, idx), code, err)
		s = l.slots.at(idx)
	}
	if s.fd >= 0 {
		unix.Close(int(s.fd))
		l.n.open.Add(-1)
	}
	if s.hs != 0 {
		l.hss.release(s.hs)
	}
	if s.tail != 0 {
		l.bufs.release(s.tail)
	}
	if s.frag != 0 {
		l.bufs.release(s.frag)
	}
	if s.outq != 0 {
		l.releaseQueue(s)
	}
	l.dropPending(s)
	l.slots.release(idx)
	l.stats.conns.Add(-1)
	l.stats.closed.Add(1)
	if l.budget {
		l.checkAccept()
	}
}

// armTimer makes sure the slot's wheel entry fires no later than when.
func (l *Loop) armTimer(idx uint32, when int64) {
	s := l.slots.at(idx)
	if s.timerAt != 0 && s.timerAt <= when {
		return
	}
	s.timerAt = when
	l.wheel.add(timerEntry{when: when, idx: idx, gen: s.gen})
}

func (l *Loop) fireTimer(e timerEntry) {
	if e.idx == timerAfter {
		fn := l.fns[e.gen]
		l.fns[e.gen] = nil
		l.fnFree = append(l.fnFree, e.gen)
		fn(l)
		return
	}
	if int(e.idx) >= l.slots.len() {
		return
	}
	s := l.slots.at(e.idx)
	if s.gen != e.gen || s.state == stFree || s.state == stDead || s.timerAt != e.when {
		return // superseded by an earlier entry, or the slot moved on
	}
	s.timerAt = 0
	l.connTimer(e.idx)
}

// connTimer applies the slot's timeouts and re-arms its entry. One entry per
// connection is enough: activity only moves timestamps, and the entry
// recomputes its next due time when it fires.
func (l *Loop) connTimer(idx uint32) {
	s := l.slots.at(idx)
	now := l.now
	c := l.cfg
	switch s.state {
	case stHandshake, stDialing, stClientHS:
		if now-s.stamp >= int64(c.HandshakeTimeout) {
			if s.state == stHandshake {
				l.handshakeDone(idx, 0)
			}
			l.closeSlot(idx, framing.StatusAbnormal, ErrHandshakeTimeout)
			return
		}
		l.armTimer(idx, s.stamp+int64(c.HandshakeTimeout))
		return
	case stClosing:
		if now-s.stamp >= int64(c.CloseTimeout) {
			l.closeSlot(idx, s.code, closingErr(s, ErrCloseTimeout))
			return
		}
		l.armTimer(idx, s.stamp+int64(c.CloseTimeout))
		return
	}
	// stOpen
	if s.blocked != 0 && now-s.blocked >= int64(c.WriteTimeout) {
		l.slow(idx)
		return
	}
	idle := int64(c.IdleTimeout)
	if now-s.lastRead >= idle {
		l.sendClose(idx, framing.StatusGoingAway, "idle")
		l.kill(idx, framing.StatusGoingAway, ErrIdle)
		return
	}
	if now-s.lastRead >= idle/2 && s.flags&fPingSent == 0 {
		s.flags |= fPingSent
		l.control(idx, framing.OpPing, nil)
	}
	s = l.slots.at(idx)
	next := s.lastRead + idle
	if s.flags&fPingSent == 0 {
		next = s.lastRead + idle/2
	}
	if s.blocked != 0 && s.blocked+int64(c.WriteTimeout) < next {
		next = s.blocked + int64(c.WriteTimeout)
	}
	l.armTimer(idx, next)
}

// acceptAll accepts what the listener has, up to a batch.
func (l *Loop) acceptAll() {
	for i := 0; i < acceptBatch && l.lfd >= 0; i++ {
		if l.n.open.Load() >= int64(l.cfg.MaxConns) {
			l.budget = true
			l.checkAccept()
			return
		}
		fd, err := accept(l.lfd)
		if err != nil {
			switch err {
			// accept(2): a connection that failed while queued reports
			// its error from accept; the next one may be fine.
			case unix.EAGAIN, unix.EINTR, unix.ECONNABORTED, unix.EPROTO, unix.ENETDOWN,
				unix.ENOPROTOOPT, unix.EHOSTDOWN, unix.ENONET, unix.EHOSTUNREACH, unix.ENETUNREACH:
				if err == unix.EAGAIN {
					return
				}
				continue
			case unix.EMFILE, unix.ENFILE, unix.ENOBUFS, unix.ENOMEM:
				l.log.Warn().Err(err).Int("loop", l.id).Msg("conn: accept backing off")
				l.backoffAccept()
				return
			default:
				l.log.Error().Err(err).Int("loop", l.id).Msg("conn: accept")
				return
			}
		}
		l.n.open.Add(1)
		idx := l.slots.alloc()
		s := l.slots.at(idx)
		s.fd = int32(fd)
		s.state = stHandshake
		s.stamp = l.now
		s.lastRead = l.now
		if err := l.poll.add(fd, unix.EPOLLIN|unix.EPOLLRDHUP, idx, s.gen); err != nil {
			unix.Close(fd)
			l.n.open.Add(-1)
			l.slots.release(idx)
			continue
		}
		l.stats.accepted.Add(1)
		l.stats.conns.Add(1)
		l.armTimer(idx, l.now+int64(l.cfg.HandshakeTimeout))
	}
}

// backoffAccept takes the listener out of epoll for a moment: with level
// triggering, a listener that cannot accept (no fds) would spin the loop.
func (l *Loop) backoffAccept() {
	if l.listening {
		l.poll.del(l.lfd)
		l.listening = false
	}
	l.backoff = true
	l.After(backoffDelay, func(l *Loop) {
		l.backoff = false
		l.checkAccept()
	})
}

// checkAccept opens or closes the listener to match the drain flag and the
// fd budget. A paused listener is closed rather than left in the backlog so
// that the kernel routes new connections to other sockets on the port.
func (l *Loop) checkAccept() {
	if l.n.sa == nil {
		return
	}
	open := l.n.open.Load()
	if l.budget {
		if open < l.n.low {
			l.budget = false
		}
	} else if open >= int64(l.cfg.MaxConns) {
		l.budget = true
	}
	want := !l.n.paused.Load() && !l.budget && !l.stop.Load()
	switch {
	case want && l.lfd < 0:
		fd, _, err := listen(l.n.sa)
		if err != nil {
			l.log.Error().Err(err).Int("loop", l.id).Msg("conn: reopening listener")
			l.backoffAccept()
			return
		}
		l.lfd = fd
		l.log.Info().Int("loop", l.id).Msg("conn: accepting again")
	case !want && l.lfd >= 0:
		if l.listening {
			l.poll.del(l.lfd)
			l.listening = false
		}
		unix.Close(l.lfd)
		l.lfd = -1
		l.log.Info().Int("loop", l.id).Bool("budget", l.budget).Int64("open", open).Msg("conn: accept paused")
	}
	if l.lfd >= 0 && !l.listening && !l.backoff {
		if err := l.poll.add(l.lfd, unix.EPOLLIN, idxListener, 0); err == nil {
			l.listening = true
		}
	}
	if l.budget && !l.budgetT {
		// Connections closing on other loops lower the budget too.
		l.budgetT = true
		l.After(budgetCheck, func(l *Loop) {
			l.budgetT = false
			l.checkAccept()
		})
	}
}

// shutdown closes every connection (1001, best effort) and the loop's fds.
func (l *Loop) shutdown() {
	// Functions posted before the inbox closed still run (a Dial among them
	// owes its OnClose); later posts are refused.
	for l.inqAt < len(l.inq) {
		fn := l.inq[l.inqAt]
		l.inq[l.inqAt] = nil
		l.inqAt++
		fn(l)
	}
	q := l.inbox.close()
	for _, fn := range q {
		fn(l)
	}
	clear(q)
	l.unbounded = true
	l.endPass() // what they wrote goes out ahead of the close frames
	if l.lfd >= 0 {
		unix.Close(l.lfd)
		l.lfd = -1
	}
	for i := 0; i < l.slots.len(); i++ {
		s := l.slots.at(uint32(i))
		if s.state == stFree || s.state == stDead {
			continue
		}
		if s.state == stOpen && s.outq == 0 && s.phead == 0 && s.fd >= 0 {
			l.pbuf = l.appendClose(l.pbuf[:0], s.flags&fClient != 0, framing.StatusGoingAway, "")
			_, _ = rawWrite(int(s.fd), l.pbuf)
		}
		code := framing.StatusGoingAway
		if s.state != stOpen && s.state != stClosing {
			code = framing.StatusAbnormal // a dial that never opened
		}
		l.closeSlot(uint32(i), code, ErrNodeClosed)
	}
	l.pbuf = l.pbuf[:0]
	l.poll.close()
}
