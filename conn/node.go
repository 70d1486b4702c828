package conn

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/framing"
)

// Errors returned by Node methods.
var (
	// ErrNodeClosed is returned by Start after Close, and given to OnClose of
	// every connection that Close shuts down.
	ErrNodeClosed = errors.New("conn: node closed")
	// ErrStarted is a second call to Start.
	ErrStarted = errors.New("conn: node already started")
	// ErrTooManyLoops is a Config.Loops above what a Handle can name.
	ErrTooManyLoops = errors.New("conn: at most 256 loops")
)

// Config configures a Node. The zero value of every field selects the default
// given in its comment.
type Config struct {
	// Addr is the player listener "host:port", shared by all loops through
	// SO_REUSEPORT (port 0 picks one port for all loops). "" makes a
	// client-only node (the load generator): loops but no listener.
	Addr string
	// Loops is the number of event loops; 0 = runtime.NumCPU().
	Loops int
	// Pin locks each loop's goroutine to its OS thread and pins that thread
	// to CPUs[id % len(CPUs)]; an empty CPUs means the CPUs the process may
	// run on (its affinity mask, which a container's cpuset narrows).
	Pin  bool
	CPUs []int
	// ReadBuffer is the per-loop read buffer in bytes; 0 = 64 KiB.
	ReadBuffer int
	// MaxMessage is the default maximum inbound message; 0 =
	// framing.DefaultMaxMessage. Accept.MaxMessage overrides it per conn.
	MaxMessage int
	// MaxHandshake bounds the request (or response) head; 0 = 4096.
	MaxHandshake int
	// HandshakeTimeout bounds accept-to-upgrade (and dial-to-open); 0 = 5s.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a peer silent this long; a ping goes out after
	// IdleTimeout/2 of silence. 0 = 60s.
	IdleTimeout time.Duration
	// CloseTimeout is how long to wait for the peer's answer to our close
	// frame before cutting the connection; 0 = 2s.
	CloseTimeout time.Duration
	// WriteTimeout closes (1008 "slow") a connection whose queued output
	// makes no progress this long; 0 = 10s.
	WriteTimeout time.Duration
	// MaxQueueBytes bounds queued output per connection; over it the
	// connection is closed with 1008 "slow". A lone frame larger than it
	// may wait for the socket while nothing else is queued (an echo of a
	// message as large as the connection's MaxMessage); whatever is queued
	// behind such a frame is held to the bound. 0 = 256 KiB.
	MaxQueueBytes int
	// MaxQueueFrames bounds queued frames per connection; 0 = 1024.
	MaxQueueFrames int
	// MaxConns is the fd budget high-water mark for this process: at it,
	// loops stop accepting (their listeners are closed so the kernel routes
	// new connections to other processes on the port) and resume below
	// MaxConns*90/95 (90 % of RLIMIT_NOFILE with the default). 0 = 95 % of
	// RLIMIT_NOFILE.
	MaxConns int
	// FlushBudget bounds the time one loop pass spends writing connections
	// that got only Send/SendLatest frames (a broadcast walking thousands of
	// connections). Replies (Write) and control frames are always flushed
	// first and in full; bulk output beyond the budget stays queued for the
	// next pass, which polls without sleeping, so reads and their replies
	// are not held behind a long broadcast. Per-connection order is kept.
	// 0 = 2ms; negative = unbounded.
	FlushBudget time.Duration
	// BusyPoll keeps a loop polling without sleeping for this long after a
	// pass that had work, before it blocks in epoll_wait again. Sleeping and
	// being woken costs a cross-CPU wake-up per burst, which dominates
	// round trips under steady traffic; spinning trades that for CPU spent
	// polling. 0 = off: the loop sleeps as soon as it is idle.
	BusyPoll time.Duration
	// Deflate allows permessage-deflate when a client asks (and the Handler's
	// Accept allows it).
	Deflate bool
	// ProxyProtocol requires every accepted connection to start with a
	// PROXY protocol v2 header (haproxy's send-proxy-v2), whose source
	// address is then the client's (framing.Request.RemoteAddr). A
	// connection without a valid header is closed without an answer. The
	// header counts against MaxHandshake and HandshakeTimeout with the head
	// that follows it. Only for a listener that nothing but the proxy can
	// reach: the header is believed.
	ProxyProtocol bool
	// Static answers plain HTTP requests on the listener: a GET or HEAD over
	// HTTP/1.1 without an Upgrade field (framing.PlainRequest), such as a
	// browser opening the player address. It gets the path (without the
	// query) and whether the method is HEAD, runs on the loop, and returns
	// the complete HTTP response, which is written as is and must not be
	// changed afterwards; nil hands the request to the upgrade path, which
	// refuses it as before. The connection is closed after the response
	// (the response should say "Connection: close"). nil serves nothing.
	Static func(path []byte, head bool) []byte
	// Logger receives the node's logs; the zero Logger discards them.
	Logger zerolog.Logger
}

func (c *Config) fill() error {
	if c.Loops <= 0 {
		c.Loops = runtime.NumCPU()
	}
	if c.Loops > 256 {
		return ErrTooManyLoops
	}
	if c.Pin && len(c.CPUs) == 0 {
		c.CPUs = allowedCPUs()
	}
	if c.ReadBuffer <= 0 {
		c.ReadBuffer = 64 << 10
	}
	if c.MaxMessage <= 0 {
		c.MaxMessage = framing.DefaultMaxMessage
	}
	if c.MaxHandshake <= 0 {
		c.MaxHandshake = 4096
	}
	if c.HandshakeTimeout <= 0 {
		c.HandshakeTimeout = 5 * time.Second
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 60 * time.Second
	}
	if c.CloseTimeout <= 0 {
		c.CloseTimeout = 2 * time.Second
	}
	if c.WriteTimeout <= 0 {
		c.WriteTimeout = 10 * time.Second
	}
	if c.MaxQueueBytes <= 0 {
		c.MaxQueueBytes = 256 << 10
	}
	if c.FlushBudget == 0 {
		c.FlushBudget = 2 * time.Millisecond
	} else if c.FlushBudget < 0 {
		c.FlushBudget = 1 << 62
	}
	if c.MaxQueueFrames <= 0 {
		c.MaxQueueFrames = 1024
	}
	if c.MaxConns <= 0 {
		var rl unix.Rlimit
		if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
			return fmt.Errorf("conn: getrlimit: %w", err)
		}
		c.MaxConns = int(rl.Cur * 95 / 100)
		if c.MaxConns < 1 {
			c.MaxConns = 1
		}
	}
	return nil
}

// Handler receives connection events. All methods run on the connection's
// loop goroutine; payload slices are valid only until the method returns.
// Methods must not block: they hold up every connection of the loop.
type Handler interface {
	// OnUpgrade decides a server-side upgrade request. r is valid only
	// during the call. h is the connection's handle (OnOpen follows if the
	// upgrade is accepted).
	OnUpgrade(l *Loop, h Handle, r *framing.Request) Accept
	// OnOpen runs after the upgrade (server) or the handshake (client).
	OnOpen(l *Loop, h Handle)
	// OnMessage delivers one complete data message (Text or Binary);
	// payload is valid until OnMessage returns.
	OnMessage(l *Loop, h Handle, op framing.OpCode, payload []byte)
	// OnClose runs exactly once for every connection that got OnOpen (and
	// for every Dial, with code 1006 if it failed before opening). code is
	// the close code received (peer-initiated), sent (our close, or a
	// failure we detected) or 1006 for a connection lost without a close
	// handshake; err says why when the close was not a clean handshake. The
	// handle is stale once OnClose returns.
	OnClose(l *Loop, h Handle, code framing.StatusCode, err error)
}

// Accept is a Handler's answer to an upgrade request.
type Accept struct {
	// Status 0 accepts; otherwise the request is refused with this HTTP
	// status (e.g. 401) and no upgrade.
	Status int
	// MaxMessage is this connection's maximum inbound message; 0 =
	// Config.MaxMessage.
	MaxMessage int
	// FlushBudget bounds the time one loop pass spends writing connections
	// that got only Send/SendLatest frames (a broadcast walking thousands of
	// connections). Replies (Write) and control frames are always flushed
	// first and in full; bulk output beyond the budget stays queued for the
	// next pass, which polls without sleeping, so reads and their replies
	// are not held behind a long broadcast. Per-connection order is kept.
	// 0 = 2ms; negative = unbounded.
	FlushBudget time.Duration
	// Deflate allows permessage-deflate on this connection if the client
	// offered it and Config.Deflate is set.
	Deflate bool
	// Tag is an application value stored in the slot (e.g. endpoint kind).
	Tag uint32
}

// Stats is a snapshot of a node's counters.
type Stats struct {
	Conns      []int64 // open connections per loop (upgrading ones included)
	Accepted   int64   // TCP connections accepted
	Closed     int64   // connections closed (any state)
	SlowCloses int64   // closed with 1008 "slow"
	MsgsIn     int64   // data messages delivered to the Handler
	MsgsOut    int64   // data frames queued (Send, SendLatest, Write)
	BytesIn    int64   // payload bytes of MsgsIn
	BytesOut   int64   // bytes written to sockets
	// Loops has per-loop pass metrics, indexed by loop id.
	Loops []LoopStats
}

// LoopStats are one loop's pass metrics: how busy the loop is and how long a
// connection may wait for it.
type LoopStats struct {
	Passes  int64         // loop passes (one epoll_wait each)
	Busy    time.Duration // cumulative time spent in passes, outside epoll_wait
	MaxPass time.Duration // longest pass of the last 10-20 s (0 when the loop has been idle that long)
	// Thread is the OS thread id of a pinned loop (Config.Pin: the loop
	// owns its thread), 0 otherwise: the kernel's CPU and run-queue time of
	// the loop alone are in /proc/self/task/<Thread>/schedstat, which tell
	// the loop's own work from time it was ready but not running.
	Thread int
}

// Node runs the loops of one process (or one CPU set).
type Node struct {
	cfg     Config
	h       Handler
	log     zerolog.Logger
	loops   []*Loop
	addr    net.Addr // bound listener address, nil for a client node
	sa      unix.Sockaddr
	open    atomic.Int64 // open connection fds across loops: the fd budget
	low     int64        // resume accepting below this
	next    atomic.Uint32
	paused  atomic.Bool // PauseAccept(true) in force
	wg      sync.WaitGroup
	mu      sync.Mutex
	started bool
	closed  bool
}

// NewNode binds the N SO_REUSEPORT listeners (none if cfg.Addr is "") and
// prepares the loops; Start runs them.
func NewNode(cfg Config, h Handler) (*Node, error) {
	if err := cfg.fill(); err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, h: h, log: cfg.Logger}
	n.low = int64(cfg.MaxConns) * 90 / 95
	if n.low >= int64(cfg.MaxConns) {
		n.low = int64(cfg.MaxConns) - 1
	}
	if cfg.Addr != "" {
		sa, err := resolveListen(cfg.Addr)
		if err != nil {
			return nil, err
		}
		n.sa = sa
	}
	for i := 0; i < cfg.Loops; i++ {
		l, err := newLoop(n, i)
		if err != nil {
			n.closeLoops()
			return nil, err
		}
		n.loops = append(n.loops, l)
		if n.sa != nil {
			fd, bound, err := listen(n.sa)
			if err != nil {
				n.closeLoops()
				return nil, err
			}
			// Port 0: the first listener picked the port, the others join it.
			n.sa = bound
			l.lfd = fd
		}
	}
	if n.sa != nil {
		n.addr = sockaddrToTCP(n.sa)
	}
	return n, nil
}

func (n *Node) closeLoops() {
	for _, l := range n.loops {
		l.release()
	}
}

// Addr returns the bound listener address (with the actual port when
// Config.Addr asked for port 0), or nil for a client-only node.
func (n *Node) Addr() net.Addr { return n.addr }

// Start starts the loops. A Start that fails releases the node, which is
// then closed.
func (n *Node) Start() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return ErrNodeClosed
	}
	if n.started {
		return ErrStarted
	}
	n.started = true
	for _, l := range n.loops {
		if l.lfd >= 0 {
			if err := l.poll.add(l.lfd, unix.EPOLLIN, idxListener, 0); err != nil {
				// No loop runs yet: release everything now, since Close
				// would only stop running loops.
				n.closed = true
				n.closeLoops()
				return err
			}
			l.listening = true
		}
	}
	for _, l := range n.loops {
		n.wg.Add(1)
		go l.run()
	}
	n.log.Info().Int("loops", len(n.loops)).Str("addr", addrString(n.addr)).Int("max_conns", n.cfg.MaxConns).Msg("conn: node started")
	return nil
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

// Close closes the listeners and every connection (close frame 1001, best
// effort, then the socket; OnClose gets ErrNodeClosed), stops the loops and
// waits for them. A connection whose output is waiting for the socket gets
// no close frame: its socket buffer is full, and a frame in flight may be
// cut, so the socket is simply closed.
func (n *Node) Close() error {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return nil
	}
	n.closed = true
	started := n.started
	n.mu.Unlock()
	if !started {
		// No loop ever ran: shut them down here, so that what was posted
		// (a Dial owes its OnClose) runs before the fds go.
		for _, l := range n.loops {
			l.stop.Store(true)
			l.shutdown()
		}
		return nil
	}
	for _, l := range n.loops {
		l.stop.Store(true)
		// Through the inbox, not the eventfd directly: the inbox lock
		// orders this wake-up before the loop closes its eventfd.
		l.inbox.push(func(*Loop) {})
	}
	n.wg.Wait()
	return nil
}

// Loops returns the node's loops, indexed by id.
func (n *Node) Loops() []*Loop { return n.loops }

// Post runs fn on loop (ids wrap modulo the number of loops) through its
// inbox. Safe from any goroutine; wake-ups are coalesced. fn is dropped if
// the node is closed; a function the inbox took before the loop stopped
// still runs, during the loop's shutdown.
func (n *Node) Post(loop int, fn func(l *Loop)) {
	n.loops[uint(loop)%uint(len(n.loops))].inbox.push(fn)
}

// PostAll posts fn once to every loop: the broadcast path (one inbox message
// per loop, never one per connection).
func (n *Node) PostAll(fn func(l *Loop)) {
	for _, l := range n.loops {
		l.inbox.push(fn)
	}
}

// PostAllFrom is PostAll called on loop from: fn runs on from at once (its
// output goes out in the current pass) and is posted to every other loop.
// This saves the sending loop a pass and an inbox wake-up; fn may thus run
// on from ahead of functions still waiting in from's inbox, so use it only
// where work posted by different sources needs no mutual order.
func (n *Node) PostAllFrom(from *Loop, fn func(l *Loop)) {
	for _, l := range n.loops {
		if l != from {
			l.inbox.push(fn)
		}
	}
	fn(from)
}

// Stats returns a snapshot of the counters; reading it changes nothing.
// Safe from any goroutine.
func (n *Node) Stats() Stats {
	var s Stats
	s.Conns = make([]int64, len(n.loops))
	s.Loops = make([]LoopStats, len(n.loops))
	for i, l := range n.loops {
		c := &l.stats
		s.Conns[i] = c.conns.Load()
		s.Loops[i] = LoopStats{
			Passes:  c.passes.Load(),
			Busy:    time.Duration(c.busy.Load()),
			MaxPass: time.Duration(c.maxPass(l.clock())),
			Thread:  int(c.thread.Load()),
		}
		s.Accepted += c.accepted.Load()
		s.Closed += c.closed.Load()
		s.SlowCloses += c.slow.Load()
		s.MsgsIn += c.msgsIn.Load()
		s.MsgsOut += c.msgsOut.Load()
		s.BytesIn += c.bytesIn.Load()
		s.BytesOut += c.bytesOut.Load()
	}
	return s
}

// PauseAccept stops (true) or resumes (false) accepting on every loop. The
// listeners are closed while paused, so that the kernel routes new
// connections to other processes on the same port (drain).
func (n *Node) PauseAccept(pause bool) {
	n.paused.Store(pause)
	n.PostAll(func(l *Loop) { l.checkAccept() })
}
