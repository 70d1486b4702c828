// Package wsc is the WebSocket client surface huntload's scenarios are
// written against: event loops that own connections, handler callbacks on
// those loops, timers and an inbox per loop. It mirrors the client role of
// package conn (see conn/contract.txt), which is the production transport;
// a goroutine-per-connection transport on gorilla/websocket is kept as a
// reference implementation and a fallback.
//
// Ownership: a connection belongs to the loop that dialed it. Loop methods
// and Handler callbacks run on that loop's goroutine only; other goroutines
// reach a loop with Client.Post.
package wsc

import (
	"errors"
	"time"

	"github.com/huntgate/huntgate/framing"
)

// Handle identifies a connection within its client.
type Handle uint64

// ErrStale is returned for a handle whose connection is gone.
var ErrStale = errors.New("wsc: stale handle")

// Loop is one event loop of a Client; all methods must be called on it.
type Loop interface {
	ID() int
	// Index is h's slot index inside this loop, to key per-loop tables.
	Index(h Handle) uint32
	// Tag is the value given in DialOptions.Tag.
	Tag(h Handle) (uint32, bool)
	// Write sends one message (masked, copied).
	Write(h Handle, op framing.OpCode, payload []byte) error
	// Close starts the close handshake.
	Close(h Handle, code framing.StatusCode, reason string) error
	// After runs fn on this loop after d.
	After(d time.Duration, fn func(l Loop))
	// Now is the loop's notion of the current time.
	Now() time.Time
}

// Handler receives connection events on the connection's loop. Payloads are
// valid only until the method returns. Methods must not block.
type Handler interface {
	OnOpen(l Loop, h Handle)
	OnMessage(l Loop, h Handle, op framing.OpCode, payload []byte)
	// OnClose runs exactly once per dialed connection, also when the dial or
	// the handshake failed (then with code 1006 and err set, without OnOpen).
	OnClose(l Loop, h Handle, code framing.StatusCode, err error)
}

// DialOptions says where and how to connect.
type DialOptions struct {
	Addr      string // host:port of the server
	LocalAddr string // source IP to bind, "" = any
	Host      string // Host header, "" = Addr
	Path      string // request path with query
	Header    [][2]string
	Tag       uint32 // stored with the connection, returned by Loop.Tag
	Loop      int    // loop to own the connection, -1 = round robin
	Deflate   bool   // offer permessage-deflate (conn transport only)
}

// Client is a set of loops that dial and own connections.
type Client interface {
	Loops() int
	Post(loop int, fn func(l Loop))
	Dial(o DialOptions) error
	Close() error
}

// Kinds of transport New can build.
const (
	KindConn    = "conn"    // epoll loops of package conn
	KindGorilla = "gorilla" // a goroutine per connection, for reference
)

// ErrKind is returned by New for an unknown or unavailable transport.
var ErrKind = errors.New("wsc: unknown transport")
