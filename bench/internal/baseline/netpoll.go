package baseline

import (
	"context"
	"errors"
	"io"
	"net"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/cloudwego/netpoll"
	"github.com/gobwas/ws"
	"github.com/rs/zerolog"
)

// npShardQueue is how many broadcast frames a fanout shard may have pending
// before the broadcaster blocks (back-pressure onto the sender's reader).
const npShardQueue = 1024

// NetpollServer serves /echo and /fanout on cloudwego/netpoll with gobwas/ws
// framing: reads run on netpoll's pool goroutines, a fanout broadcast is
// encoded once and written by one goroutine per CPU shard.
type NetpollServer struct {
	log    zerolog.Logger
	el     netpoll.EventLoop
	shards []*npShard
	next   atomic.Uint32 // round robin over shards for new fanout conns
}

type npConnKey struct{}

type npConn struct {
	c        netpoll.Connection
	upgraded bool
	fanout   bool
	shard    *npShard
	wmu      sync.Mutex // serialises writes from the reader and the shard writer
	rbuf     []byte
}

type npShard struct {
	mu    sync.Mutex // guards conns
	conns map[*npConn]struct{}
	in    chan []byte
}

// NewNetpoll creates a NetpollServer; Serve starts it.
func NewNetpoll(log zerolog.Logger) (*NetpollServer, error) {
	s := &NetpollServer{log: log}
	for i := 0; i < runtime.GOMAXPROCS(0); i++ {
		sh := &npShard{conns: make(map[*npConn]struct{}), in: make(chan []byte, npShardQueue)}
		s.shards = append(s.shards, sh)
		go sh.run()
	}
	el, err := netpoll.NewEventLoop(s.onRequest,
		netpoll.WithOnPrepare(s.onPrepare),
		netpoll.WithOnDisconnect(s.onDisconnect))
	if err != nil {
		return nil, errors.New("baseline: netpoll event loop: " + err.Error())
	}
	s.el = el
	return s, nil
}

// Serve accepts on ln until Shutdown.
func (s *NetpollServer) Serve(ln net.Listener) error { return s.el.Serve(ln) }

// Listen creates a netpoll listener on addr.
func Listen(addr string) (net.Listener, error) { return netpoll.CreateListener("tcp", addr) }

// Shutdown stops the server.
func (s *NetpollServer) Shutdown(ctx context.Context) error { return s.el.Shutdown(ctx) }

func (s *NetpollServer) onPrepare(c netpoll.Connection) context.Context {
	st := &npConn{c: c}
	_ = c.AddCloseCallback(func(netpoll.Connection) error { st.leave(); return nil })
	return context.WithValue(context.Background(), npConnKey{}, st)
}

func (s *NetpollServer) onDisconnect(ctx context.Context, _ netpoll.Connection) {
	if st, ok := ctx.Value(npConnKey{}).(*npConn); ok {
		st.leave()
	}
}

func (st *npConn) leave() {
	if sh := st.shard; sh != nil {
		sh.mu.Lock()
		delete(sh.conns, st)
		sh.mu.Unlock()
	}
}

func (s *NetpollServer) onRequest(ctx context.Context, c netpoll.Connection) error {
	st := ctx.Value(npConnKey{}).(*npConn)
	if !st.upgraded {
		var path string
		u := ws.Upgrader{OnRequest: func(uri []byte) error {
			path = string(uri)
			if i := indexByte(path, '?'); i >= 0 {
				path = path[:i]
			}
			if path != "/echo" && path != "/fanout" {
				return ws.RejectConnectionError(ws.RejectionStatus(404))
			}
			return nil
		}}
		if _, err := u.Upgrade(c); err != nil {
			return c.Close()
		}
		st.upgraded = true
		if path == "/fanout" {
			st.fanout = true
			sh := s.shards[int(s.next.Add(1))%len(s.shards)]
			st.shard = sh
			sh.mu.Lock()
			sh.conns[st] = struct{}{}
			sh.mu.Unlock()
		}
	}
	for c.Reader().Len() > 0 {
		if err := s.frame(st); err != nil {
			return c.Close()
		}
	}
	return nil
}

// frame reads and handles one frame; it blocks until the whole frame is in.
func (s *NetpollServer) frame(st *npConn) error {
	h, err := ws.ReadHeader(st.c)
	if err != nil {
		return err
	}
	if int64(cap(st.rbuf)) < h.Length {
		st.rbuf = make([]byte, h.Length)
	}
	p := st.rbuf[:h.Length]
	if _, err := io.ReadFull(st.c, p); err != nil {
		return err
	}
	if h.Masked {
		ws.Cipher(p, h.Mask, 0)
	}
	switch h.OpCode {
	case ws.OpPing:
		return st.write(ws.NewPongFrame(p))
	case ws.OpPong:
		return nil
	case ws.OpClose:
		code, _ := ws.ParseCloseFrameData(p)
		_ = st.write(ws.NewCloseFrame(ws.NewCloseFrameBody(code, "")))
		return errors.New("baseline: closed by peer")
	}
	f := ws.NewFrame(h.OpCode, h.Fin, p)
	if !st.fanout {
		return st.write(f)
	}
	b, err := ws.CompileFrame(f)
	if err != nil {
		return err
	}
	for _, sh := range s.shards {
		sh.in <- b
	}
	return nil
}

func (st *npConn) write(f ws.Frame) error {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	return ws.WriteFrame(st.c, f)
}

func (st *npConn) writeRaw(b []byte) error {
	st.wmu.Lock()
	defer st.wmu.Unlock()
	_, err := st.c.Write(b)
	return err
}

// run writes every broadcast frame to the shard's connections; a connection
// whose write fails is closed and removed.
func (sh *npShard) run() {
	var conns []*npConn
	for b := range sh.in {
		conns = conns[:0]
		sh.mu.Lock()
		for c := range sh.conns {
			conns = append(conns, c)
		}
		sh.mu.Unlock()
		for _, c := range conns {
			if err := c.writeRaw(b); err != nil {
				_ = c.c.Close()
			}
		}
	}
}

func indexByte(s string, b byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == b {
			return i
		}
	}
	return -1
}
