package conn

import (
	"errors"

	"golang.org/x/sys/unix"

	"github.com/huntgate/huntgate/framing"
)

// tailRoom is the least free space offered to a read into a tail buffer.
const tailRoom = 4096

// onReadable reads what the socket has into the loop's read buffer (or, for
// a large incomplete frame, into the connection's tail buffer) and decodes
// frames straight from it. Level-triggered epoll reports the socket again if
// more is left, so one read per readiness keeps loop passes fair.
func (l *Loop) onReadable(idx uint32) {
	s := l.slots.at(idx)
	switch s.state {
	case stHandshake, stClientHS:
		l.readHandshake(idx)
		return
	case stOpen, stClosing:
	default:
		return
	}
	if s.flags&fDrain != 0 {
		l.readDrain(idx)
		return
	}
	buf, n0, inTail := l.rbuf, 0, false
	if s.tail != 0 {
		t := l.bufs.at(s.tail)
		if len(*t) <= len(l.rbuf)/2 {
			n0 = copy(l.rbuf, *t)
			l.bufs.release(s.tail)
			s.tail = 0
		} else {
			l.growTail(t)
			buf, n0, inTail = (*t)[:cap(*t)], len(*t), true
		}
	}
	n, err := rawRead(int(s.fd), buf[n0:])
	if err == unix.EAGAIN || err == unix.EINTR {
		if n0 > 0 && !inTail {
			l.keepTail(idx, buf[:n0]) // put the tail back untouched
		}
		return
	}
	if n <= 0 || err != nil {
		l.lost(idx)
		return
	}
	s.lastRead = l.now
	s.flags &^= fPingSent
	data := buf[:n0+n]
	used, alive := l.frames(idx, data)
	if !alive {
		return
	}
	s = l.slots.at(idx)
	rest := data[used:]
	switch {
	case inTail && len(rest) == 0:
		l.bufs.release(s.tail)
		s.tail = 0
	case inTail:
		t := l.bufs.at(s.tail)
		*t = (*t)[:copy((*t)[:cap(*t)], rest)]
	case len(rest) > 0:
		l.keepTail(idx, rest)
	}
}

// growTail makes room in a tail buffer for the rest of the frame it holds.
func (l *Loop) growTail(t *[]byte) {
	need := len(*t) + tailRoom
	if h, hn, _ := framing.ParseHeader(*t); hn > 0 {
		if full := hn + int(h.Length); full > need {
			need = full
		}
	}
	if cap(*t) >= need {
		return
	}
	nb := make([]byte, len(*t), need)
	copy(nb, *t)
	*t = nb
}

// keepTail copies an incomplete frame into the connection's tail buffer.
func (l *Loop) keepTail(idx uint32, rest []byte) {
	i := l.bufs.alloc()
	t := l.bufs.at(i)
	*t = append((*t)[:0], rest...)
	l.slots.at(idx).tail = i
}

// readDrain discards input of a failed connection until the peer closes, so
// that closing our side does not reset the connection before the peer has
// read our close frame.
func (l *Loop) readDrain(idx uint32) {
	s := l.slots.at(idx)
	n, err := rawRead(int(s.fd), l.rbuf)
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if n <= 0 || err != nil {
		l.closeSlot(idx, s.code, ErrProtocol)
	}
}

// closingErr is the error OnClose gets for a connection whose close
// handshake we started and that ended without the peer's answer: why we
// closed it (slow reader, protocol error), else dflt.
func closingErr(s *slot, dflt error) error {
	switch {
	case s.flags&fSlow != 0:
		return ErrSlow
	case s.flags&fDrain != 0:
		return ErrProtocol
	}
	return dflt
}

// lost handles EOF or a read error.
func (l *Loop) lost(idx uint32) {
	s := l.slots.at(idx)
	if s.state == stClosing {
		// We sent a close frame; the peer hung up instead of answering it.
		l.closeSlot(idx, s.code, closingErr(s, nil))
		return
	}
	l.closeSlot(idx, framing.StatusAbnormal, ErrAbnormal)
}

// frames decodes and handles the frames in data. It returns how many bytes
// were consumed (the rest is an incomplete frame) and false if the slot was
// freed.
func (l *Loop) frames(idx uint32, data []byte) (int, bool) {
	off := 0
	for off < len(data) {
		s := l.slots.at(idx)
		if s.state != stOpen && s.state != stClosing || s.flags&fDrain != 0 {
			return len(data), true
		}
		adv, f, err := s.dec.Next(data[off:])
		if err != nil {
			l.fail(idx, err)
			return len(data), true
		}
		if adv == 0 {
			break
		}
		off += adv
		switch f.Header.Op {
		case framing.OpPing:
			if s.state == stOpen {
				l.control(idx, framing.OpPong, f.Payload)
			}
		case framing.OpPong:
		case framing.OpClose:
			return len(data), l.onCloseFrame(idx, f.Payload)
		default:
			if s.state == stOpen {
				l.data(idx, &f)
			}
		}
	}
	return off, true
}

// onCloseFrame answers a close frame. It reports false if the slot was freed.
func (l *Loop) onCloseFrame(idx uint32, p []byte) bool {
	s := l.slots.at(idx)
	code, _, _ := framing.ClosePayload(p) // the decoder validated it
	if s.state == stClosing {
		// The answer to our close: the handshake is complete.
		var err error
		if s.flags&fSlow != 0 {
			err = ErrSlow
		}
		l.closeSlot(idx, s.code, err)
		return false
	}
	// RFC 6455 section 5.5.1: "the endpoint MUST send a Close frame in
	// response. (When sending a Close frame in response, the endpoint
	// typically echos the status code it received.)"
	l.sendClose(idx, code, "")
	s = l.slots.at(idx)
	s.code = code
	s.flags |= fCloseAfter
	return true
}

// data handles one data frame: a whole message is delivered from where it
// lies; fragments are assembled in an on-demand buffer.
func (l *Loop) data(idx uint32, f *framing.Frame) {
	s := l.slots.at(idx)
	if f.First && f.Final {
		l.message(idx, f.MsgOp, f.Payload, f.Compressed)
		return
	}
	if s.frag == 0 {
		s.frag = l.bufs.alloc()
	}
	b := l.bufs.at(s.frag)
	if len(*b)+len(f.Payload) > int(s.maxMsg) {
		l.fail(idx, framing.ErrMessageTooBig)
		return
	}
	*b = append(*b, f.Payload...)
	if !f.Final {
		return
	}
	l.message(idx, f.MsgOp, *b, f.Compressed)
	s = l.slots.at(idx)
	if s.frag != 0 && s.state != stFree && s.state != stDead {
		l.bufs.release(s.frag)
		s.frag = 0
	}
}

var errInflateUTF8 = &framing.ProtocolError{Code: framing.StatusInvalidPayload, Reason: "invalid UTF-8 in inflated text message"}

// message delivers one complete message, inflating it first if needed.
func (l *Loop) message(idx uint32, op framing.OpCode, p []byte, compressed bool) {
	s := l.slots.at(idx)
	if compressed {
		out, err := l.infl.Inflate(l.inflB[:0], p, int(s.maxMsg))
		if err != nil {
			var pe *framing.ProtocolError
			if !errors.As(err, &pe) {
				pe = &framing.ProtocolError{Code: framing.StatusInvalidPayload, Reason: "bad deflate data"}
			}
			l.fail(idx, pe)
			return
		}
		l.inflB = out[:0]
		if op == framing.OpText && !framing.ValidUTF8(out) {
			l.fail(idx, errInflateUTF8)
			return
		}
		p = out
	}
	l.cnt.msgsIn++
	l.cnt.bytesIn += int64(len(p))
	l.h.OnMessage(l, makeHandle(l.id, s.gen, idx), op, p)
}

// fail answers a protocol violation: a close frame with the error's code,
// then input is discarded until the peer hangs up or CloseTimeout passes. A
// server shuts its write side once the close frame is out (see shutWrite).
func (l *Loop) fail(idx uint32, err error) {
	code, reason := framing.StatusProtocolError, "protocol error"
	var pe *framing.ProtocolError
	if errors.As(err, &pe) {
		code, reason = pe.Code, pe.Reason
	}
	s := l.slots.at(idx)
	if s.state == stOpen {
		l.sendClose(idx, code, reason)
	}
	s = l.slots.at(idx)
	s.flags |= fDrain
	if s.state != stClosing {
		s.state = stClosing
		s.code = code
		s.stamp = l.now
		l.armTimer(idx, l.now+int64(l.cfg.CloseTimeout))
	}
	if s.phead == 0 && s.outq == 0 {
		// Our close frame went out before this error: nothing left to
		// flush will reach drained.
		l.shutWrite(idx)
	}
	if s.frag != 0 {
		l.bufs.release(s.frag)
		s.frag = 0
	}
	l.log.Debug().Int("loop", l.id).Uint16("code", uint16(code)).Str("reason", reason).Msg("conn: protocol error")
}
