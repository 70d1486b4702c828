package load

import (
	"encoding/binary"
	"sync/atomic"
	"time"

	"github.com/huntgate/huntgate/bench/internal/measure"
	"github.com/huntgate/huntgate/bench/internal/wsc"
	"github.com/huntgate/huntgate/framing"
)

// holdScenario connects and stays idle: the numbers are the handshakes and
// what the server pays per idle connection.
type holdScenario struct{}

func (holdScenario) path(w *worker, p *player) string { return "/echo" }
func (holdScenario) onOpen(w *worker, ls *loopState, l wsc.Loop, p *player) {
	w.settle(p)
}
func (holdScenario) onMessage(*worker, *loopState, wsc.Loop, *player, framing.OpCode, []byte) {}
func (holdScenario) onClose(*worker, *loopState, wsc.Loop, *player)                           {}
func (holdScenario) run(w *worker, start, end time.Time)                                      {}

// stamp writes an 8-byte Unix-ns time stamp into a payload of size bytes.
func stamp(buf []byte, size int, ns int64) []byte {
	buf = buf[:0]
	buf = binary.LittleEndian.AppendUint64(buf, uint64(ns))
	for len(buf) < size {
		buf = append(buf, 'x')
	}
	return buf
}

// echoScenario measures /echo: pipelined (k messages in flight per
// connection, throughput) or open loop at a rate (RTT from the intended
// send time).
type echoScenario struct{}

func (*echoScenario) path(w *worker, p *player) string { return "/echo" }
func (*echoScenario) onOpen(w *worker, ls *loopState, l wsc.Loop, p *player) {
	w.settle(p)
}
func (*echoScenario) onClose(*worker, *loopState, wsc.Loop, *player) {}

func (*echoScenario) onMessage(w *worker, ls *loopState, l wsc.Loop, p *player, op framing.OpCode, b []byte) {
	if len(b) < 8 {
		return
	}
	now := time.Now()
	sent := int64(binary.LittleEndian.Uint64(b))
	ls.rtt.Record(time.Duration(now.UnixNano() - sent))
	end := w.endNs.Load()
	if now.UnixNano() < end {
		atomic.AddInt64(ls.replies, 1)
		if w.cfg.Pipeline > 0 {
			ls.buf = stamp(ls.buf, w.cfg.Size, now.UnixNano())
			w.write(ls, l, p, framing.OpBinary, ls.buf)
		}
	}
}

func (*echoScenario) run(w *worker, start, end time.Time) {
	if w.cfg.Pipeline > 0 {
		for i := range w.loops {
			w.cl.Post(i, func(l wsc.Loop) {
				ls := w.loops[l.ID()]
				for _, p := range ls.open {
					for k := 0; k < w.cfg.Pipeline; k++ {
						ls.buf = stamp(ls.buf, w.cfg.Size, time.Now().UnixNano())
						w.write(ls, l, p, framing.OpBinary, ls.buf)
					}
				}
			})
		}
		time.Sleep(time.Until(end))
		return
	}
	w.paced(start, end, 1000, func(l wsc.Loop, ls *loopState, at []int64) {
		for _, ns := range at {
			p := ls.next()
			if p == nil {
				ls.rtt.Error()
				continue
			}
			ls.buf = stamp(ls.buf, w.cfg.Size, ns)
			if !w.write(ls, l, p, framing.OpBinary, ls.buf) {
				ls.rtt.Error()
			}
		}
	})
}

// fanoutScenario measures /fanout: player 0 sends stamped messages at each
// rate of the ladder; every connection (the sender too) records one-way
// latency, and the parent joins the receipts into time-to-everyone.
type fanoutScenario struct{}

// Fanout payload: Unix-ns intended send time, message id, rate step.
const fanoutHeader = 14

func (*fanoutScenario) path(w *worker, p *player) string { return "/fanout" }
func (*fanoutScenario) onOpen(w *worker, ls *loopState, l wsc.Loop, p *player) {
	w.settle(p)
}
func (*fanoutScenario) onClose(*worker, *loopState, wsc.Loop, *player) {}

func (*fanoutScenario) onMessage(w *worker, ls *loopState, l wsc.Loop, p *player, op framing.OpCode, b []byte) {
	if len(b) < fanoutHeader {
		return
	}
	sent := int64(binary.LittleEndian.Uint64(b))
	id := binary.LittleEndian.Uint32(b[8:])
	step := int(binary.LittleEndian.Uint16(b[12:]))
	ls.shard.Deliver(id, step, sent, time.Now(), ls.stepOp(step))
}

func (*fanoutScenario) run(w *worker, start, end time.Time) {
	if w.cfg.First != 0 || len(w.players) == 0 {
		time.Sleep(time.Until(end))
		return
	}
	sender := w.players[0]
	for step, rate := range w.cfg.StepRates {
		s0 := start.Add(time.Duration(step) * w.cfg.StepDur)
		s1 := s0.Add(w.cfg.StepDur)
		if d := time.Until(s0); d > 0 {
			time.Sleep(d)
		}
		pc := measure.NewPacer(s0, rate, 1<<20-1)
		sent := &w.sent[step]
		measure.Drive(pc, s1, nil, func(from, to int64) {
			at := make([]int64, 0, to-from)
			for k := from; k < to; k++ {
				at = append(at, pc.Intended(k).UnixNano())
			}
			w.cl.Post(sender.loop, func(l wsc.Loop) {
				ls := w.loops[l.ID()]
				if !sender.open {
					return
				}
				for i, ns := range at {
					ls.buf = stamp(ls.buf, w.cfg.Size, ns)
					binary.LittleEndian.PutUint32(ls.buf[8:], uint32(step)<<20|uint32(from+int64(i)))
					binary.LittleEndian.PutUint16(ls.buf[12:], uint16(step))
					if w.write(ls, l, sender, framing.OpBinary, ls.buf) {
						sent.Add(1)
					}
				}
			})
		})
	}
}
