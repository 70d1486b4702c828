package gateway

import (
	"time"

	"github.com/huntgate/huntgate/conn"
	"github.com/huntgate/huntgate/framing"
)

// testMaxMessage is the inbound limit of /echo and /fanout: large enough for
// conformance suites.
const testMaxMessage = 16 << 20

// handler adapts a Gateway to conn.Handler without exporting the callbacks.
type handler struct{ g *Gateway }

var (
	_ conn.Handler           = handler{}
	_ conn.HandshakeObserver = handler{}
)

func route(path []byte) endpoint {
	switch string(path) {
	case "/ws":
		return epWS
	case "/echo":
		return epEcho
	case "/fanout":
		return epFanout
	}
	return epNone
}

// OnUpgrade routes the request and authenticates players.
func (hd handler) OnUpgrade(l *conn.Loop, h conn.Handle, r *framing.Request) conn.Accept {
	g := hd.g
	ep := route(r.Path)
	if ep == epEcho || ep == epFanout {
		if !g.cfg.TestEndpoints {
			ep = epNone
		}
	}
	if ep == epNone {
		return conn.Accept{Status: 404}
	}
	if g.draining.Load() {
		return conn.Accept{Status: 503}
	}
	ls := g.loops[l.ID()]
	if ep == epWS {
		id, err := g.auth.Authenticate(r.Query, r.Authorization)
		if err != nil {
			g.m.authFailures.Add(1)
			if e := g.log.Debug(); e.Enabled() {
				e.Err(err).Str("client", r.RemoteAddr.String()).Msg("gateway: handshake refused")
			}
			return conn.Accept{Status: 401}
		}
		if e := g.log.Debug(); e.Enabled() {
			e.Str("player", id.Player).Str("client", r.RemoteAddr.String()).Msg("gateway: player connected")
		}
		s := ls.slot(h)
		*s = session{h: h, ep: ep, player: id.Player}
		if id.Hunts != nil {
			allow := id.Hunts
			s.allow = &allow
		}
		return conn.Accept{MaxMessage: g.cfg.MaxMessage, Deflate: g.cfg.Deflate, Tag: uint32(ep)}
	}
	s := ls.slot(h)
	*s = session{h: h, ep: ep}
	return conn.Accept{MaxMessage: testMaxMessage, Deflate: true, Tag: uint32(ep)}
}

// OnOpen marks the session open.
func (hd handler) OnOpen(l *conn.Loop, h conn.Handle) {
	g := hd.g
	ls := g.loops[l.ID()]
	s := ls.get(h)
	if s == nil || s.open {
		return
	}
	s.open = true
	ls.conns.Add(1)
	ls.accepted.Add(1)
	g.m.conns.Add(1)
	if s.ep == epFanout {
		s.pos = int32(len(ls.fanout))
		ls.fanout = append(ls.fanout, h)
	}
}

// OnHandshake counts the outcome and time of every upgrade request.
func (hd handler) OnHandshake(_ *conn.Loop, status int, d time.Duration) {
	hd.g.m.countHandshake(status, d)
}

// OnClose releases the session (after the current walk, if one is running).
func (hd handler) OnClose(l *conn.Loop, h conn.Handle, code framing.StatusCode, err error) {
	hd.g.m.countClose(code)
	ls := hd.g.loops[l.ID()]
	s := ls.get(h)
	if s == nil {
		return
	}
	if ls.walking > 0 {
		s.closed = true
		ls.pending = append(ls.pending, h)
		return
	}
	ls.cleanup(s)
}

// OnMessage dispatches a message by endpoint.
func (hd handler) OnMessage(l *conn.Loop, h conn.Handle, op framing.OpCode, payload []byte) {
	g := hd.g
	ls := g.loops[l.ID()]
	s := ls.get(h)
	if s == nil {
		return
	}
	switch s.ep {
	case epWS:
		ls.request(l, s, op, payload)
	case epEcho:
		_ = l.Write(h, op, payload)
	case epFanout:
		g.broadcastFanout(l, framing.Prepare(op, payload, false))
	}
}

// request handles one protocol message from a player.
func (ls *loopState) request(l *conn.Loop, s *session, op framing.OpCode, payload []byte) {
	g := ls.g
	h := s.h
	r := &ls.req
	ok, abuse := s.bucket.allow(l.Now().UnixNano(), g.cfg.Rate, g.cfg.RateBurst)
	if !ok {
		if abuse {
			g.m.rateCloses.Add(1)
			_ = l.Close(h, framing.StatusPolicyViolation, "rate limit")
			return
		}
		// Only a text frame has been checked for UTF-8 by conn: a ref read
		// from a binary one could put invalid UTF-8 into the text reply.
		var ref []byte
		if op == framing.OpText {
			ls.scratch, _ = decodeRequest(payload, r, ls.scratch[:0])
			ref = r.ref
		}
		ls.fail(l, h, ref, errRateLimited)
		return
	}
	if op != framing.OpText {
		ls.fail(l, h, nil, errBinary)
		return
	}
	var perr *protoError
	ls.scratch, perr = decodeRequest(payload, r, ls.scratch[:0])
	if perr != nil {
		ls.fail(l, h, r.ref, perr)
		return
	}
	g.m.ops[r.op].Add(1)
	switch r.op {
	case opPing:
		ls.buf = appendPong(ls.buf[:0], r.ref, r.ts)
		ls.reply(l, h)
	case opDig:
		ls.dig(l, s, r)
	case opJoin:
		ls.join(l, s, r)
	case opLeave:
		ls.leave(l, s, r)
	case opStatus:
		ls.status(l, s, r)
	case opRank:
		ls.rank(l, s, r)
	}
}
