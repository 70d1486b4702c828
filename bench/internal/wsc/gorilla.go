package wsc

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/huntgate/huntgate/framing"
)

// gorillaClient runs each loop as a goroutine draining an inbox; every
// connection has a reader goroutine that posts its messages to its loop.
type gorillaClient struct {
	h     Handler
	loops []*gloop
	rr    atomic.Uint32
	wg    sync.WaitGroup
	done  chan struct{}
	once  sync.Once
}

type gloop struct {
	c     *gorillaClient
	id    int
	in    chan func(Loop)
	conns []*gconn // by index; nil = free
	free  []uint32
	gen   uint32
}

type gconn struct {
	ws   *websocket.Conn
	tag  uint32
	gen  uint32
	open bool
}

// NewGorilla returns a Client with n loops on gorilla/websocket.
func NewGorilla(n int, h Handler) Client {
	if n <= 0 {
		n = 1
	}
	c := &gorillaClient{h: h, done: make(chan struct{})}
	for i := 0; i < n; i++ {
		l := &gloop{c: c, id: i, in: make(chan func(Loop), 4096)}
		c.loops = append(c.loops, l)
		c.wg.Add(1)
		go l.run()
	}
	return c
}

func (l *gloop) run() {
	defer l.c.wg.Done()
	for {
		select {
		case fn := <-l.in:
			fn(l)
		case <-l.c.done:
			for i, g := range l.conns {
				if g != nil && g.ws != nil {
					_ = g.ws.Close()
					l.conns[i] = nil
				}
			}
			return
		}
	}
}

func (c *gorillaClient) Loops() int { return len(c.loops) }

func (c *gorillaClient) Post(loop int, fn func(l Loop)) {
	select {
	case c.loops[loop%len(c.loops)].in <- fn:
	case <-c.done:
	}
}

func (c *gorillaClient) Close() error {
	c.once.Do(func() { close(c.done) })
	c.wg.Wait()
	return nil
}

func (c *gorillaClient) Dial(o DialOptions) error {
	li := o.Loop
	if li < 0 {
		li = int(c.rr.Add(1)) % len(c.loops)
	}
	c.Post(li, func(lp Loop) {
		l := lp.(*gloop)
		h := l.alloc(o.Tag)
		go l.dial(h, o)
	})
	return nil
}

func (l *gloop) alloc(tag uint32) Handle {
	l.gen++
	g := &gconn{tag: tag, gen: l.gen}
	var idx uint32
	if n := len(l.free); n > 0 {
		idx = l.free[n-1]
		l.free = l.free[:n-1]
		l.conns[idx] = g
	} else {
		idx = uint32(len(l.conns))
		l.conns = append(l.conns, g)
	}
	return Handle(uint64(g.gen)<<32 | uint64(idx))
}

func (l *gloop) get(h Handle) *gconn {
	idx := uint32(h)
	if int(idx) >= len(l.conns) {
		return nil
	}
	g := l.conns[idx]
	if g == nil || g.gen != uint32(h>>32) {
		return nil
	}
	return g
}

func (l *gloop) dial(h Handle, o DialOptions) {
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	if o.LocalAddr != "" {
		nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(o.LocalAddr)}}
		d.NetDialContext = nd.DialContext
	}
	hdr := http.Header{}
	for _, kv := range o.Header {
		hdr.Add(kv[0], kv[1])
	}
	if o.Host != "" {
		hdr.Set("Host", o.Host)
	}
	ws, _, err := d.DialContext(context.Background(), "ws://"+o.Addr+o.Path, hdr)
	if err != nil {
		l.c.Post(l.id, func(Loop) { l.closed(h, framing.StatusAbnormal, err) })
		return
	}
	l.c.Post(l.id, func(Loop) {
		g := l.get(h)
		if g == nil {
			_ = ws.Close()
			return
		}
		g.ws, g.open = ws, true
		l.c.h.OnOpen(l, h)
		go l.read(h, ws)
	})
}

func (l *gloop) read(h Handle, ws *websocket.Conn) {
	for {
		mt, p, err := ws.ReadMessage()
		if err != nil {
			code := framing.StatusAbnormal
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				code = framing.StatusCode(ce.Code)
			}
			l.c.Post(l.id, func(Loop) { l.closed(h, code, err) })
			return
		}
		l.c.Post(l.id, func(Loop) {
			if l.get(h) != nil {
				l.c.h.OnMessage(l, h, framing.OpCode(mt), p)
			}
		})
	}
}

func (l *gloop) closed(h Handle, code framing.StatusCode, err error) {
	g := l.get(h)
	if g == nil {
		return
	}
	l.c.h.OnClose(l, h, code, err)
	if g.ws != nil {
		_ = g.ws.Close()
	}
	idx := uint32(h)
	l.conns[idx] = nil
	l.free = append(l.free, idx)
}

func (l *gloop) ID() int               { return l.id }
func (l *gloop) Index(h Handle) uint32 { return uint32(h) }
func (l *gloop) Now() time.Time        { return time.Now() }

func (l *gloop) Tag(h Handle) (uint32, bool) {
	if g := l.get(h); g != nil {
		return g.tag, true
	}
	return 0, false
}

func (l *gloop) Write(h Handle, op framing.OpCode, payload []byte) error {
	g := l.get(h)
	if g == nil || !g.open {
		return ErrStale
	}
	_ = g.ws.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return g.ws.WriteMessage(int(op), payload)
}

func (l *gloop) Close(h Handle, code framing.StatusCode, reason string) error {
	g := l.get(h)
	if g == nil || !g.open {
		return ErrStale
	}
	return g.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(int(code), reason), time.Now().Add(time.Second))
}

func (l *gloop) After(d time.Duration, fn func(Loop)) {
	time.AfterFunc(d, func() { l.c.Post(l.id, fn) })
}
