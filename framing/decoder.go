package framing

import "github.com/gobwas/ws"

// Errors returned by Decoder.Next. All are *ProtocolError values shared by
// every Decoder, so returning one never allocates.
var (
	// ErrReservedBits is a frame with RSV bits that no negotiated extension
	// defines (RFC 6455 section 5.2: "If a nonzero value is received and none
	// of the negotiated extensions defines the meaning of such a nonzero
	// value, the receiving endpoint MUST _Fail the WebSocket Connection_").
	ErrReservedBits = &ProtocolError{Code: StatusProtocolError, Reason: "reserved bits set"}
	// ErrReservedOpcode is a frame with opcode 0x3-0x7 or 0xB-0xF.
	ErrReservedOpcode = &ProtocolError{Code: StatusProtocolError, Reason: "reserved opcode"}
	// ErrUnmasked is a client frame without a mask (section 5.1: "a server
	// MUST close the connection upon receiving a frame that is not masked").
	ErrUnmasked = &ProtocolError{Code: StatusProtocolError, Reason: "unmasked client frame"}
	// ErrMasked is a server frame with a mask (section 5.1: "A client MUST
	// close a connection if it detects a masked frame").
	ErrMasked = &ProtocolError{Code: StatusProtocolError, Reason: "masked server frame"}
	// ErrControlFragmented is a control frame without FIN (section 5.5:
	// "Control frames MUST NOT be fragmented").
	ErrControlFragmented = &ProtocolError{Code: StatusProtocolError, Reason: "fragmented control frame"}
	// ErrControlTooLong is a control frame over 125 bytes (section 5.5: "All
	// control frames MUST have a payload length of 125 bytes or less").
	ErrControlTooLong = &ProtocolError{Code: StatusProtocolError, Reason: "control frame payload over 125 bytes"}
	// ErrContinuation is a continuation frame outside a fragmented message.
	ErrContinuation = &ProtocolError{Code: StatusProtocolError, Reason: "continuation frame without a message"}
	// ErrInterleaved is a new data message started before the previous one
	// finished (section 5.4: fragments of one message "MUST NOT be
	// interleaved" with another message's).
	ErrInterleaved = &ProtocolError{Code: StatusProtocolError, Reason: "data frame inside a fragmented message"}
	// ErrMessageTooBig is a message whose cumulative length exceeds the
	// Decoder's maximum, decided from a frame header.
	ErrMessageTooBig = &ProtocolError{Code: StatusMessageTooBig, Reason: "message too big"}
	// ErrInvalidUTF8 is a text message that is not valid UTF-8.
	ErrInvalidUTF8 = &ProtocolError{Code: StatusInvalidPayload, Reason: "invalid UTF-8 in text message"}
)

var _ error = (*ProtocolError)(nil)

const (
	flagClient     = 1 << iota // Role is RoleClient
	flagDeflate                // permessage-deflate negotiated
	flagInMessage              // a data message has started and not finished
	flagCompressed             // the current message has RSV1
)

const rsv1 = 0b100

// Decoder is a push decoder of WebSocket frames for one connection. It holds
// no pointers and is 20 bytes, so it can live inside a connection slot that
// the garbage collector does not scan. The zero value is not ready: use
// NewDecoder.
//
// Frames are returned complete or not at all: the caller keeps unconsumed
// bytes and calls Next again with more appended, as with bufio.SplitFunc.
// The state carried between frames is message-level: the opcode, cumulative
// length and compression flag of a fragmented message and a UTF-8 code point
// cut at a fragment boundary. The one frame-level exception is the prefix of
// an incomplete text frame, which is unmasked and validated as it arrives
// (part counts its bytes), so that invalid UTF-8 fails the connection when
// the bad byte is read rather than when the frame is whole.
type Decoder struct {
	max    uint32    // maximum message length in bytes
	msgLen uint32    // bytes of the current data message so far
	part   uint32    // payload bytes of the incomplete text frame at the start of b already unmasked and validated
	utf8   utf8State // incomplete code point at the end of what was validated
	flags  uint8     // flag* bits
	msgOp  OpCode    // opcode of the current data message
}

// maxLimit is the largest message limit a Decoder takes: lengths are kept in
// 32 bits.
const maxLimit = 1<<32 - 1

// NewDecoder returns a Decoder for cfg. A MaxMessage above 4 GiB - 1 is
// taken as 4 GiB - 1.
func NewDecoder(cfg DecoderConfig) Decoder {
	var d Decoder
	switch {
	case cfg.MaxMessage <= 0:
		d.max = DefaultMaxMessage
	case uint64(cfg.MaxMessage) > maxLimit:
		d.max = maxLimit
	default:
		d.max = uint32(cfg.MaxMessage)
	}
	if cfg.Role == RoleClient {
		d.flags |= flagClient
	}
	if cfg.Deflate {
		d.flags |= flagDeflate
	}
	return d
}

// InMessage reports whether a fragmented data message has begun and not yet
// ended, so that a control frame now would be interleaved in it.
func (d *Decoder) InMessage() bool { return d.flags&flagInMessage != 0 }

// Next decodes one frame from the start of b.
//
// advance == 0 && err == nil means b does not yet hold a whole frame (header
// and payload): call again with the same bytes and more appended (it may be
// called any number of times with a growing b). Errors that the header
// decides (RSV bits, opcode, masking, control frame rules, continuation rules
// and message size) are returned as soon as the header is in b, before the
// payload arrives. For an uncompressed text frame, the part of the payload
// already in b is unmasked in place and validated, once per byte: invalid
// UTF-8 is ErrInvalidUTF8 as soon as the byte that makes it certain is in b
// (RFC 6455 section 8.1 fails the connection "when an endpoint is to
// interpret a byte stream as UTF-8 but finds that the byte stream is not").
// So the caller must hand back the bytes of an incomplete frame as Next left
// them, never a fresh copy of the masked original. Only then does Next change
// the Decoder without returning a frame.
//
// Otherwise advance is the frame's length in b and f describes it. The
// payload is unmasked in place in b, and f.Payload aliases b: it stays valid
// until the caller reuses that part of b. Text fragments are validated as
// UTF-8 (unless compressed, see Frame.Compressed); close payloads are checked
// with ClosePayload.
//
// err is a *ProtocolError whose Code is the close code to send. After an
// error the Decoder's state is unspecified: the connection is to be failed.
func (d *Decoder) Next(b []byte) (advance int, f Frame, err error) {
	h, n, err := ParseHeader(b)
	if n == 0 {
		return 0, f, err
	}
	if err = d.check(&h); err != nil {
		return 0, f, err
	}
	end := n + int(h.Length)
	if len(b) < end {
		if h.Op == OpText && h.Rsv == 0 || h.Op == OpContinuation && d.msgOp == OpText && d.flags&flagCompressed == 0 {
			return 0, f, d.partial(&h, b[n:])
		}
		return 0, f, nil
	}
	p := b[n:end:end]
	done := int(d.part) // a prefix unmasked and validated while incomplete
	d.part = 0
	if h.Masked {
		ws.Cipher(p[done:], h.Mask, done)
	}
	f.Header = h
	f.Payload = p
	if h.Op.IsControl() {
		f.MsgOp = h.Op
		f.Final = true
		if h.Op == OpClose {
			if _, _, err = ClosePayload(p); err != nil {
				return 0, Frame{}, err
			}
		}
		return end, f, nil
	}
	if h.Op != OpContinuation {
		d.msgOp = h.Op
		d.msgLen = 0
		if done == 0 {
			d.utf8 = utf8State{} // else partial reset it
		}
		d.flags &^= flagCompressed
		if h.Rsv&rsv1 != 0 {
			d.flags |= flagCompressed
		}
		f.First = true
	}
	d.msgLen += uint32(h.Length)
	f.MsgOp = d.msgOp
	f.Final = h.Fin
	f.Compressed = d.flags&flagCompressed != 0
	if d.msgOp == OpText && !f.Compressed && !d.utf8.feed(p[done:], h.Fin) {
		return 0, Frame{}, ErrInvalidUTF8
	}
	if h.Fin {
		d.flags &^= flagInMessage
	} else {
		d.flags |= flagInMessage
	}
	return end, f, nil
}

// partial unmasks and validates the bytes of an incomplete uncompressed text
// frame's payload p that arrived since the last call. Complete frames never
// come here, so the common case pays nothing for it.
func (d *Decoder) partial(h *Header, p []byte) error {
	done := int(d.part)
	if len(p) <= done {
		return nil
	}
	if done == 0 && h.Op != OpContinuation {
		d.utf8 = utf8State{} // a new message starts with this frame
	}
	if h.Masked {
		ws.Cipher(p[done:], h.Mask, done)
	}
	if !d.utf8.feed(p[done:], false) {
		return ErrInvalidUTF8
	}
	d.part = uint32(len(p))
	return nil
}

// check applies the rules a frame header alone decides, without changing d.
func (d *Decoder) check(h *Header) error {
	if h.Masked == (d.flags&flagClient != 0) {
		if h.Masked {
			return ErrMasked
		}
		return ErrUnmasked
	}
	switch h.Op {
	case OpContinuation:
		if d.flags&flagInMessage == 0 {
			return ErrContinuation
		}
		// RFC 7692 section 6: RSV1 only on "the first frame of a message".
		if h.Rsv != 0 {
			return ErrReservedBits
		}
		if h.Length > int64(d.max-d.msgLen) {
			return ErrMessageTooBig
		}
	case OpText, OpBinary:
		if d.flags&flagInMessage != 0 {
			return ErrInterleaved
		}
		if h.Rsv != 0 && (h.Rsv != rsv1 || d.flags&flagDeflate == 0) {
			return ErrReservedBits
		}
		if h.Length > int64(d.max) {
			return ErrMessageTooBig
		}
	case OpClose, OpPing, OpPong:
		if h.Rsv != 0 {
			return ErrReservedBits
		}
		if !h.Fin {
			return ErrControlFragmented
		}
		if h.Length > 125 {
			return ErrControlTooLong
		}
	default:
		return ErrReservedOpcode
	}
	return nil
}
