package wsc

import (
	"time"

	"github.com/huntgate/huntgate/conn"
	"github.com/huntgate/huntgate/framing"
	"github.com/rs/zerolog"
)

// connClient adapts a client-only conn.Node (epoll loops, no goroutine per
// connection) to Client.
type connClient struct {
	n     *conn.Node
	h     Handler
	loops []*cloop
}

type cloop struct {
	l *conn.Loop
}

// Timeouts are the client connections' timers; zero values take conn's
// defaults (5 s handshake, 60 s idle with a ping after 30 s of silence).
type Timeouts struct {
	Handshake time.Duration // dial to open: connect, request, 101
	Idle      time.Duration // close a silent server after this; ping at half
}

// NewConn returns a Client on package conn's epoll loops. maxMessage bounds
// inbound messages (0 = 1 MiB, large enough for any status reply).
func NewConn(loops int, h Handler, log zerolog.Logger, maxMessage int, t Timeouts) (Client, error) {
	if maxMessage <= 0 {
		maxMessage = 1 << 20
	}
	c := &connClient{h: h}
	n, err := conn.NewNode(conn.Config{Loops: loops, MaxMessage: maxMessage, Logger: log,
		HandshakeTimeout: t.Handshake, IdleTimeout: t.Idle}, (*connHandler)(c))
	if err != nil {
		return nil, err
	}
	c.n = n
	for _, l := range n.Loops() {
		c.loops = append(c.loops, &cloop{l: l})
	}
	if err := n.Start(); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *connClient) Loops() int { return len(c.loops) }

func (c *connClient) Post(loop int, fn func(l Loop)) {
	w := c.loops[loop%len(c.loops)]
	c.n.Post(loop%len(c.loops), func(*conn.Loop) { fn(w) })
}

func (c *connClient) Dial(o DialOptions) error {
	return c.n.Dial(conn.DialOptions{
		Addr: o.Addr, LocalAddr: o.LocalAddr, Host: o.Host, Path: o.Path,
		Header: o.Header, Tag: o.Tag, Loop: o.Loop, Deflate: o.Deflate,
	})
}

func (c *connClient) Close() error { return c.n.Close() }

// connHandler is the conn.Handler side of connClient.
type connHandler connClient

func (c *connHandler) OnUpgrade(*conn.Loop, conn.Handle, *framing.Request) conn.Accept {
	return conn.Accept{Status: 404} // a client-only node never serves
}

func (c *connHandler) OnOpen(l *conn.Loop, h conn.Handle) { c.h.OnOpen(c.loops[l.ID()], Handle(h)) }

func (c *connHandler) OnMessage(l *conn.Loop, h conn.Handle, op framing.OpCode, p []byte) {
	c.h.OnMessage(c.loops[l.ID()], Handle(h), op, p)
}

func (c *connHandler) OnClose(l *conn.Loop, h conn.Handle, code framing.StatusCode, err error) {
	c.h.OnClose(c.loops[l.ID()], Handle(h), code, err)
}

func (w *cloop) ID() int                     { return w.l.ID() }
func (w *cloop) Index(h Handle) uint32       { return conn.Handle(h).Index() }
func (w *cloop) Tag(h Handle) (uint32, bool) { return w.l.Tag(conn.Handle(h)) }
func (w *cloop) Now() time.Time              { return w.l.Now() }
func (w *cloop) Write(h Handle, op framing.OpCode, p []byte) error {
	return w.l.Write(conn.Handle(h), op, p)
}
func (w *cloop) Close(h Handle, code framing.StatusCode, reason string) error {
	return w.l.Close(conn.Handle(h), code, reason)
}
func (w *cloop) After(d time.Duration, fn func(l Loop)) {
	w.l.After(d, func(*conn.Loop) { fn(w) })
}
