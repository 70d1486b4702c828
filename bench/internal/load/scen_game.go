package load

import (
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/huntgate/huntgate/bench/internal/measure"
	"github.com/huntgate/huntgate/bench/internal/wsc"
	"github.com/huntgate/huntgate/framing"
)

// gameScenario speaks the game protocol on /ws. In every mode players join
// their hunt and account seq gaps; dig adds an open-loop dig rate, event
// only listens (the parent publishes), game lets each player dig on its own
// jittered clock and sometimes leave and come back with since/epoch.
type gameScenario struct {
	mode string
}

func (g *gameScenario) path(w *worker, p *player) string { return "/ws?" + w.token(p.id) }

func (g *gameScenario) onOpen(w *worker, ls *loopState, l wsc.Loop, p *player) {
	if p.seq.Known && len(p.epochRaw) > 0 {
		ls.shard.Add(cRejoins, 1)
	}
	p.joinAt = time.Now()
	p.tries = 0
	g.sendJoin(w, ls, l, p)
}

// sendJoin writes p's join, with since/epoch when p saw the hunt before.
func (g *gameScenario) sendJoin(w *worker, ls *loopState, l wsc.Loop, p *player) {
	b := append(ls.buf[:0], `{"op":"join","hunt":"`...)
	b = append(b, p.hunt...)
	b = append(b, '"')
	if p.seq.Known && len(p.epochRaw) > 0 {
		b = append(b, `,"since":`...)
		b = strconv.AppendInt(b, p.seq.Seq, 10)
		b = append(b, `,"epoch":`...)
		b = append(b, p.epochRaw...)
	}
	b = append(b, '}')
	ls.buf = b
	p.tries++
	p.joining = true
	if !w.write(ls, l, p, framing.OpText, b) {
		p.joining = false
		ls.join.Error()
		w.settle(p)
	}
}

// joinBackoff is the wait before retry number tries (1, 2, ...) of a join
// refused with overloaded, as docs/protocol.md asks of clients: 100-500 ms
// with randomness, doubling with each refusal in a row, at most 8 s, so that
// a refused crowd does not come back in lockstep.
func joinBackoff(rng *rand.Rand, tries int) time.Duration {
	d := 100*time.Millisecond + time.Duration(rng.Int64N(int64(400*time.Millisecond)))
	d <<= min(max(tries-1, 0), 5)
	return min(d, 8*time.Second)
}

// joinRefused handles an error answer to p's pending join: it counts as a
// join error; overloaded is retried after joinBackoff while tries remain.
func (g *gameScenario) joinRefused(w *worker, ls *loopState, l wsc.Loop, p *player, code []byte) {
	p.joining = false
	ls.join.Error()
	ls.shard.Add(cJoinErr+string(code), 1)
	// overloaded and internal say "retry later" (docs/protocol.md), and the
	// SDK retries both: so does a simulated player.
	if (string(code) != "overloaded" && string(code) != "internal") || p.tries >= w.cfg.JoinTries || w.closing.Load() {
		ls.shard.Add(cJoinGaveUp, 1)
		w.settle(p)
		return
	}
	ls.shard.Add(cJoinRetries, 1)
	h := p.h
	l.After(joinBackoff(ls.rng, p.tries), func(l wsc.Loop) {
		if !p.open || p.h != h || p.joined || p.joining || w.closing.Load() {
			return
		}
		g.sendJoin(w, w.loops[l.ID()], l, p)
	})
}

func (g *gameScenario) onClose(w *worker, ls *loopState, l wsc.Loop, p *player) {
	if g.mode == Crowd && !w.closing.Load() {
		// A dropped player (its node died, or its dial failed) comes back
		// on the shared port after 0.2-2.2 s, as a real client would, and
		// its join resumes with since/epoch.
		if p.joining {
			p.joining = false
			ls.join.Error()
			ls.shard.Add(cJoinLost, 1)
		}
		ls.shard.Add(cReconnects, 1)
		d := 200*time.Millisecond + time.Duration(ls.rng.Int64N(int64(2*time.Second)))
		l.After(d, func(wsc.Loop) {
			if !w.closing.Load() && !p.open {
				w.dial(p)
			}
		})
		return
	}
	if p.joining {
		// The connection ended with the join unanswered: a failed join.
		p.joining = false
		if !w.closing.Load() {
			ls.join.Error()
			ls.shard.Add(cJoinLost, 1)
		}
	}
	if g.mode != Game || !p.leaving || w.closing.Load() {
		return
	}
	// Come back after 1-3 s and resume with since/epoch.
	d := time.Second + time.Duration(ls.rng.Int64N(int64(2*time.Second)))
	l.After(d, func(wsc.Loop) {
		if w.closing.Load() {
			return
		}
		p.leaving = false
		w.dial(p)
	})
}

func (g *gameScenario) onMessage(w *worker, ls *loopState, l wsc.Loop, p *player, op framing.OpCode, b []byte) {
	m, ok := parseMsg(b)
	if !ok {
		ls.shard.Add("bad_messages", 1)
		return
	}
	now := time.Now()
	switch string(m.op) {
	case "joined":
		p.joining = false
		ls.join.Record(now.Sub(p.joinAt))
		ls.shard.Add(cJoined, 1)
		ls.shard.Gaps(func(gs *measure.GapStats) { p.seq.Joined(m.epoch, m.seq, m.reset, m.replayed, gs) })
		p.keepEpoch(m.epochRaw)
		if !p.joined {
			p.joined = true
			if g.mode == Game && w.endNs.Load() != 0 {
				g.schedule(w, ls, l, p)
			}
		}
		w.settle(p)
	case "dug":
		if ls.dug != nil && m.ref > 0 {
			ls.dug.Record(time.Duration(now.UnixNano() - m.ref))
			if ls.dugSteady != nil && m.ref < w.steadyNs.Load() {
				ls.dugSteady.Record(time.Duration(now.UnixNano() - m.ref))
			}
			if m.ref2 > 0 {
				ls.dugWire.Record(time.Duration(now.UnixNano() - m.ref2))
			}
		}
		if m.found {
			ls.shard.Add(cFound, 1)
		}
	case "update":
		fresh := true
		switch string(m.kind) {
		case "claimed", "event", "ended", "started": // reliable: docs/protocol.md, update
			ls.shard.Gaps(func(gs *measure.GapStats) { fresh = p.seq.Update(m.epoch, m.seq, gs) })
			p.keepEpoch(m.epochRaw)
		}
		switch string(m.kind) {
		case "claimed":
			atomic.AddInt64(ls.claimed, 1)
		case "event":
			// A duplicate is not a receipt: counted again it would make up
			// for a player that never got the event, and the event would
			// pass as delivered to everyone.
			if m.evID >= 0 && m.evT > 0 && fresh {
				ls.shard.Deliver(uint32(m.evID), int(m.evStep), m.evT, now, ls.stepOp(int(m.evStep)))
				atomic.AddInt64(ls.stepDelivered(int(m.evStep)), 1)
			}
		case "leaderboard":
			atomic.AddInt64(ls.leaderboards, 1)
		default:
			ls.shard.Add("update_"+string(m.kind), 1)
		}
	case "error":
		if p.joining && !p.joined {
			// Nothing else is sent before the join is answered.
			g.joinRefused(w, ls, l, p, m.code)
			return
		}
		ls.shard.Add("err_"+string(m.code), 1)
		if ls.dug != nil {
			ls.dug.Error()
		}
		if !p.joined {
			w.settle(p)
		}
	case "bcast":
		// The floor of an event's fan-out: a plain broadcast from every
		// node's POST /v1/test/broadcast, same size, no hunt engine, no seq.
		if m.evID >= 0 && m.evT > 0 {
			ls.shard.Deliver(uint32(m.evID), int(m.evStep), m.evT, now, ls.stepOp(int(m.evStep)))
			atomic.AddInt64(ls.stepDelivered(int(m.evStep)), 1)
		}
	case "pong":
		if ls.pong != nil && m.ref > 0 {
			ls.pong.Record(time.Duration(now.UnixNano() - m.ref))
			if m.ref2 > 0 {
				ls.pongWire.Record(time.Duration(now.UnixNano() - m.ref2))
			}
		}
	case "reconnect":
		ls.shard.Add("reconnect", 1)
	}
}

// keepEpoch remembers the raw epoch of the last message that carried one,
// copying only when it changed, to send it back on a rejoin.
func (p *player) keepEpoch(raw []byte) {
	if raw != nil && string(raw) != string(p.epochRaw) {
		p.epochRaw = append(p.epochRaw[:0], raw...)
	}
}

// pingMsg is the floor of a dig: the protocol's cheapest round trip, answered
// on the gateway's loop without the engine, with the same ref as a dig.
func pingMsg(ls *loopState, ref int64) []byte {
	ls.buf = appendRef(append(ls.buf[:0], `{"op":"ping"`...), ref)
	return ls.buf
}

func (g *gameScenario) digMsg(w *worker, ls *loopState, p *player, ref int64) []byte {
	b := append(ls.buf[:0], `{"op":"dig","hunt":"`...)
	b = append(b, p.hunt...)
	b = append(b, `","x":`...)
	b = strconv.AppendInt(b, ls.rng.Int64N(int64(w.cfg.Grid)), 10)
	b = append(b, `,"y":`...)
	b = strconv.AppendInt(b, ls.rng.Int64N(int64(w.cfg.Grid)), 10)
	ls.buf = appendRef(b, ref)
	return ls.buf
}

// appendRef ends a request with its ref: the intended time (open-loop
// latency) and the time of this write (the .wire op: the gateway and the
// network, without the load generator's own send delay), "intended:written".
func appendRef(b []byte, ref int64) []byte {
	b = append(b, `,"ref":"`...)
	b = strconv.AppendInt(b, ref, 10)
	b = append(b, ':')
	b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
	return append(b, `"}`...)
}

// schedule arms p's next dig in game mode: the mean interval with +-50 %
// jitter, so players do not dig in lockstep.
func (g *gameScenario) schedule(w *worker, ls *loopState, l wsc.Loop, p *player) {
	d := w.cfg.DigEvery/2 + time.Duration(ls.rng.Int64N(int64(w.cfg.DigEvery)))
	h := p.h
	l.After(d, func(l wsc.Loop) {
		ls := w.loops[l.ID()]
		if !p.open || p.h != h || !p.joined || w.closing.Load() || time.Now().UnixNano() >= w.endNs.Load() {
			return
		}
		if ls.rng.Float64() < w.cfg.Leave {
			p.leaving = true
			_ = l.Close(p.h, framing.StatusNormal, "")
			return
		}
		if !w.write(ls, l, p, framing.OpText, g.digMsg(w, ls, p, time.Now().UnixNano())) {
			ls.dug.Error()
		}
		g.schedule(w, ls, l, p)
	})
}

func (g *gameScenario) run(w *worker, start, end time.Time) {
	switch g.mode {
	case Event:
		time.Sleep(time.Until(end))
	case Game:
		if w.cfg.Worker == 0 && w.cfg.Slow > 0 {
			defer w.slowReaders(w.cfg.Slow, end).Wait()
		}
		for i := range w.loops {
			w.cl.Post(i, func(l wsc.Loop) {
				ls := w.loops[l.ID()]
				for _, p := range ls.open {
					if p.joined {
						g.schedule(w, ls, l, p)
					}
				}
			})
		}
		time.Sleep(time.Until(end))
	case Dig, Crowd:
		if g.mode == Crowd && w.cfg.PingFor > 0 {
			// The floor of the digs first: pings at the same offered rate
			// over the same held sockets, answered without Redis.
			pingEnd := start.Add(w.cfg.PingFor)
			w.paced(start, pingEnd, 100, func(l wsc.Loop, ls *loopState, at []int64) {
				for _, ns := range at {
					if w.shed(ls, ns) {
						ls.pong.Error()
						continue
					}
					p := ls.next()
					if p == nil || !p.joined {
						ls.pong.Error()
						continue
					}
					if !w.write(ls, l, p, framing.OpText, pingMsg(ls, ns)) {
						ls.pong.Error()
						continue
					}
					atomic.AddInt64(ls.pingsSent, 1)
				}
			})
			start = pingEnd
		}
		if s := w.cfg.Steady(); s > 0 {
			w.steadyNs.Store(start.Add(s).UnixNano())
		}
		w.paced(start, end, 100, func(l wsc.Loop, ls *loopState, at []int64) {
			// The load generator's own share of dug: from the intended
			// time to the moment the loop writes (pacer wake-up, the
			// post to the loop, the loop's other work, earlier writes of
			// the batch).
			for _, ns := range at {
				ls.sendLag.Record(time.Duration(time.Now().UnixNano() - ns))
				if w.shed(ls, ns) {
					ls.dug.Error()
					continue
				}
				p := ls.next()
				if p == nil || !p.joined {
					ls.dug.Error()
					continue
				}
				if !w.write(ls, l, p, framing.OpText, g.digMsg(w, ls, p, ns)) {
					ls.dug.Error()
					continue
				}
				atomic.AddInt64(ls.digsSent, 1)
			}
		})
	}
}

// shed says whether a paced request intended at ns is dropped unsent
// because the load generator itself is over ShedAfter behind (crowd): past
// what this machine can offer, the pacer's batches would queue in the
// loops without bound (10 s behind at 15,000 digs/s with 100,000 players
// on 2 cores), and a loop that far behind answers nothing else in time:
// reconnecting players' handshakes timed out one after another and never
// came back after the node kill. A shed request is counted (digs_shed) and
// as an error of its op; it is not a latency sample, so the report states
// the share shed next to the latencies.
func (w *worker) shed(ls *loopState, ns int64) bool {
	if w.cfg.ShedAfter <= 0 || time.Now().UnixNano()-ns <= int64(w.cfg.ShedAfter) {
		return false
	}
	atomic.AddInt64(ls.shedCount, 1)
	return true
}
