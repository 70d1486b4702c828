package conn

import (
	"context"
	"errors"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// HandshakeObserver is an optional interface of a Handler. A Handler that
// has it is told how every server handshake ended, on the connection's loop:
// status is the HTTP status answered (101 for an upgrade; 400 for a
// malformed request; 431 for a head over Config.MaxHandshake; the Handler's
// own refusal, like 401; 505, 426 or 405 for the wrong protocol, version or
// method), or 0 when the connection ended without an answer (the handshake
// timed out, or the peer went away first). d is the time from the accept to
// the answer.
type HandshakeObserver interface {
	OnHandshake(l *Loop, status int, d time.Duration)
}

// handshakeDone reports a finished server handshake to the observer.
func (l *Loop) handshakeDone(idx uint32, status int) {
	if l.hsObs == nil {
		return
	}
	s := l.slots.at(idx)
	l.hsObs.OnHandshake(l, status, time.Duration(l.clock()-s.stamp))
}

// FlushWaiter is told by AfterFlush when output has gone out.
type FlushWaiter interface {
	// Flushed runs on the loop at the end of the pass that flushed the
	// output.
	Flushed(l *Loop)
}

// AfterFlush calls w.Flushed at the end of the first pass (this one or a
// later one) after which no output produced so far is left unwritten
// because of the flush budget: every frame queued before the call has been
// written to its socket, or waits for a socket that is full (a slow
// reader's). A broadcast uses it to time its last write. Registering costs
// no allocation once the loop's list has grown.
func (l *Loop) AfterFlush(w FlushWaiter) {
	l.flushWait = append(l.flushWait, w)
}

// runFlushWaiters runs the AfterFlush callbacks once nothing is deferred.
func (l *Loop) runFlushWaiters() {
	if len(l.flushWait) == 0 || len(l.dirty) > 0 {
		return
	}
	ws := l.flushWait
	for i, w := range ws {
		ws[i] = nil
		w.Flushed(l)
	}
	// A Flushed that registered again appended behind ws: keep those.
	n := copy(l.flushWait, l.flushWait[len(ws):])
	l.flushWait = l.flushWait[:n]
}

// queuedBytes sums the output of the loop's connections not written yet:
// their queues (frames waiting for a full socket) and pending chains.
func (l *Loop) queuedBytes() int64 {
	var n int64
	for i := 0; i < l.slots.len(); i++ {
		s := l.slots.at(uint32(i))
		if s.state == stFree || s.state == stDead {
			continue
		}
		n += int64(s.pb)
		if s.outq != 0 {
			n += int64(l.queues.at(s.outq).bytes)
		}
	}
	return n
}

// QueuedBytes returns, per loop, the bytes queued for sending and not
// written yet (what the connections' queue bounds count). Each loop sums its
// own connections when it next runs its inbox, so this waits for every loop;
// a loop that does not answer before ctx ends (or has stopped) reports -1.
func (n *Node) QueuedBytes(ctx context.Context) []int64 {
	out := make([]int64, len(n.loops))
	type res struct {
		loop int
		n    int64
	}
	ch := make(chan res, len(n.loops))
	posted := 0
	for i, l := range n.loops {
		out[i] = -1
		if l.inbox.push(func(l *Loop) { ch <- res{l.ID(), l.queuedBytes()} }) {
			posted++
		}
	}
	for range posted {
		select {
		case r := <-ch:
			out[r.loop] = r.n
		case <-ctx.Done():
			return out
		}
	}
	return out
}

// ErrProxyHeader is given (joined with framing's reason) when a connection
// to a Config.ProxyProtocol listener does not start with a valid PROXY
// header.
var ErrProxyHeader = errors.New("conn: no valid PROXY protocol header")

// peerAddr is the socket's peer address (one getpeername; only at upgrade,
// when no PROXY header gave it). Raw and into a stack buffer: unix.Getpeername
// enters the scheduler and allocates a Sockaddr, a tenth of the CPU of an
// accept and upgrade (perf, 10,000 connections).
func peerAddr(fd int) netip.AddrPort {
	var sa unix.RawSockaddrAny
	n := uint32(unix.SizeofSockaddrAny)
	_, _, e := unix.RawSyscall(unix.SYS_GETPEERNAME, uintptr(fd), uintptr(unsafe.Pointer(&sa)), uintptr(unsafe.Pointer(&n)))
	if e != 0 {
		return netip.AddrPort{}
	}
	switch sa.Addr.Family {
	case unix.AF_INET:
		a := (*unix.RawSockaddrInet4)(unsafe.Pointer(&sa))
		return netip.AddrPortFrom(netip.AddrFrom4(a.Addr), ntohs(a.Port))
	case unix.AF_INET6:
		a := (*unix.RawSockaddrInet6)(unsafe.Pointer(&sa))
		return netip.AddrPortFrom(netip.AddrFrom16(a.Addr).Unmap(), ntohs(a.Port))
	}
	return netip.AddrPort{}
}

// ntohs reads a port in network byte order as the kernel stored it.
func ntohs(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}
