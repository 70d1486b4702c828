package conn

import (
	"errors"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/framing"
)

// tooLarge answers a request head over Config.MaxHandshake.
const tooLarge = "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"

// readHandshake collects a request head (server) or response head (client).
// It is read into the loop's read buffer; only a head that arrived in
// pieces is copied into a handshake buffer of the connection, sized to what
// arrived, so a connection that sent its head at once never owns one. The
// head is bounded by MaxHandshake and, through the connection's timer, by
// HandshakeTimeout: a peer trickling bytes (slowloris) is cut when the
// deadline passes, whatever it sends.
func (l *Loop) readHandshake(idx uint32) {
	s := l.slots.at(idx)
	max := l.cfg.MaxHandshake
	n0 := 0
	if s.hs != 0 {
		n0 = copy(l.rbuf, l.hss.at(s.hs).buf)
	}
	n, err := rawRead(int(s.fd), l.rbuf[n0:max])
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if n <= 0 || err != nil {
		if s.state == stHandshake {
			l.handshakeDone(idx, 0)
		}
		l.closeSlot(idx, framing.StatusAbnormal, ErrAbnormal)
		return
	}
	s.lastRead = l.now
	data := l.rbuf[:n0+n]
	var peer netip.AddrPort // the client's address from a PROXY header
	if s.hs != 0 {
		peer = l.hss.at(s.hs).peer
	}
	if s.state == stHandshake && l.cfg.ProxyProtocol && s.flags&fProxied == 0 {
		used, info, err := framing.ParseProxy(data, max)
		if err != nil {
			// Nothing is answered: the peer is not the proxy we expect.
			l.handshakeDone(idx, 0)
			l.closeSlot(idx, framing.StatusAbnormal, errors.Join(ErrProxyHeader, err))
			return
		}
		if used == 0 {
			l.keepHead(idx, data, peer)
			return
		}
		s.flags |= fProxied
		peer, data = info.Source, data[used:]
	}
	end, err := framing.RequestEnd(data, max)
	if err != nil {
		if s.state == stHandshake {
			_, _ = rawWrite(int(s.fd), []byte(tooLarge))
			l.handshakeDone(idx, 431)
		}
		l.closeSlot(idx, framing.StatusAbnormal, err)
		return
	}
	if end == 0 {
		if s.state == stHandshake && framing.BadRequestStart(data) && !(l.cfg.Static != nil && framing.PlainRequestStart(data)) {
			// Answered now: a peer that is not speaking HTTP may never send
			// the blank line, and would otherwise get no answer at all.
			l.curPeer = peer
			l.upgrade(idx, data, nil)
			return
		}
		l.keepHead(idx, data, peer)
		return
	}
	if s.state == stHandshake {
		l.curPeer = peer
		if l.cfg.Static != nil && l.serveStatic(idx, data[:end]) {
			return
		}
		l.upgrade(idx, data[:end], data[end:])
		return
	}
	l.clientOpen(idx, data[:end], data[end:], l.hss.at(s.hs).key)
}

// keepHead keeps the part of a head that has arrived (and the client address
// a PROXY header gave) in the connection's handshake buffer until the rest
// comes.
func (l *Loop) keepHead(idx uint32, data []byte, peer netip.AddrPort) {
	s := l.slots.at(idx)
	if s.hs == 0 {
		s.hs = l.hss.alloc()
	}
	hb := l.hss.at(s.hs)
	hb.buf = append(hb.buf[:0], data...)
	hb.peer = peer
}

// serveStatic answers a plain request (Config.Static) and reports whether it
// did. The response is queued like a frame (referenced, never copied), then
// the connection closes as a failed one does: the write side is shut once
// the response is out and input is discarded until the peer hangs up or
// CloseTimeout passes, so that closing with unread input (a pipelined
// request) cannot reset the connection before the response is read.
func (l *Loop) serveStatic(idx uint32, head []byte) bool {
	path, isHead, ok := framing.PlainRequest(head)
	if !ok {
		return false
	}
	resp := l.cfg.Static(path, isHead)
	if resp == nil {
		return false
	}
	s := l.slots.at(idx)
	if s.hs != 0 {
		l.hss.release(s.hs)
		s.hs = 0
	}
	s.state = stClosing
	s.flags |= fDrain
	s.stamp = l.now
	l.armTimer(idx, l.now+int64(l.cfg.CloseTimeout))
	l.push(idx, qitem{b: resp[:len(resp):len(resp)]}, true)
	return true
}

// check is the Upgrader's Check: it asks the Handler about the connection
// being upgraded.
func (l *Loop) check(r *framing.Request) int {
	r.RemoteAddr = l.curPeer
	if !r.RemoteAddr.IsValid() {
		r.RemoteAddr = peerAddr(int(l.slots.at(l.cur.Index()).fd))
	}
	l.curAcc = l.h.OnUpgrade(l, l.cur, r)
	if !l.curAcc.Deflate {
		r.Deflate = false
	}
	return l.curAcc.Status
}

// upgrade answers the request head. On success the slot opens, and bytes the
// client sent after the head are decoded as frames at once.
func (l *Loop) upgrade(idx uint32, head, rest []byte) {
	s := l.slots.at(idx)
	l.cur = makeHandle(l.id, s.gen, idx)
	l.curAcc = Accept{}
	l.upg.Deflate = l.cfg.Deflate
	// The response is built in its own scratch buffer, not in the pass
	// buffer: OnUpgrade runs in the middle of Upgrade and may write frames
	// for other connections into the pass buffer.
	resp, res, err := l.upg.Upgrade(l.hsOut[:0], head)
	l.hsOut = resp[:0]
	l.handshakeDone(idx, res.Status)
	s = l.slots.at(idx)
	if err != nil {
		// Refused or malformed: the response is the HTTP status. It is
		// written directly, since the socket closes right after.
		_, _ = rawWrite(int(s.fd), resp)
		l.closeSlot(idx, framing.StatusAbnormal, err)
		return
	}
	start := len(l.pbuf)
	l.pbuf = append(l.pbuf, resp...)
	acc := l.curAcc
	maxMsg := acc.MaxMessage
	if maxMsg <= 0 {
		maxMsg = l.cfg.MaxMessage
	}
	s.state = stOpen
	s.flags |= fNotify
	if res.Deflate {
		s.flags |= fDeflate
	}
	s.tag = acc.Tag
	s.maxMsg = uint32(maxMsg)
	s.dec = framing.NewDecoder(framing.DecoderConfig{Role: framing.RoleServer, MaxMessage: maxMsg, Deflate: res.Deflate})
	s.lastRead = l.now
	l.push(idx, qitem{b: l.pbuf[start:len(l.pbuf):len(l.pbuf)], pass: true}, true)
	l.opened(idx, rest)
}

// opened runs OnOpen, decodes any frames that followed the head, and frees
// the handshake buffer.
func (l *Loop) opened(idx uint32, rest []byte) {
	s := l.slots.at(idx)
	h := makeHandle(l.id, s.gen, idx)
	l.armTimer(idx, l.now+int64(l.cfg.IdleTimeout)/2)
	l.h.OnOpen(l, h)
	if len(rest) > 0 {
		s = l.slots.at(idx)
		if s.gen != h.gen() || s.state != stOpen {
			return
		}
		used, alive := l.frames(idx, rest)
		if !alive {
			return
		}
		if used < len(rest) {
			l.keepTail(idx, rest[used:])
		}
	}
	s = l.slots.at(idx)
	if s.gen == h.gen() && s.hs != 0 {
		l.hss.release(s.hs)
		s.hs = 0
	}
}

// errResponse is a dial whose server answered the upgrade wrongly.
var errResponse = errors.New("conn: bad handshake response")

// errUnofferedDeflate is a server that accepted permessage-deflate the
// client never offered.
var errUnofferedDeflate = errors.New("conn: server negotiated permessage-deflate that was not offered")

// clientOpen checks the server's response head and opens the connection.
func (l *Loop) clientOpen(idx uint32, head, rest []byte, key [24]byte) {
	res, err := framing.CheckClientResponse(head, key)
	if err != nil {
		l.closeSlot(idx, framing.StatusAbnormal, errors.Join(errResponse, err))
		return
	}
	s := l.slots.at(idx)
	if res.Deflate && s.flags&fOffered == 0 {
		// RFC 6455 4.1: an extension the client did not ask for fails the
		// connection.
		l.closeSlot(idx, framing.StatusAbnormal, errors.Join(errResponse, errUnofferedDeflate))
		return
	}
	s.state = stOpen
	if res.Deflate {
		s.flags |= fDeflate
	}
	s.dec = framing.NewDecoder(framing.DecoderConfig{Role: framing.RoleClient, MaxMessage: int(s.maxMsg), Deflate: res.Deflate})
	s.lastRead = l.now
	l.opened(idx, rest)
}
