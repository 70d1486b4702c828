package framing

import "github.com/gobwas/ws"

// AppendFrame appends one unmasked frame (the server's form) carrying payload
// to dst and returns the extended slice.
func AppendFrame(dst []byte, op OpCode, fin bool, payload []byte) []byte {
	dst = AppendHeader(dst, Header{Fin: fin, Op: op, Length: int64(len(payload))})
	return append(dst, payload...)
}

// AppendMaskedFrame appends one frame masked with mask (the client's form) to
// dst and returns the extended slice. payload itself is not modified.
func AppendMaskedFrame(dst []byte, op OpCode, fin bool, mask [4]byte, payload []byte) []byte {
	dst = AppendHeader(dst, Header{Fin: fin, Op: op, Masked: true, Mask: mask, Length: int64(len(payload))})
	n := len(dst)
	dst = append(dst, payload...)
	ws.Cipher(dst[n:], mask, 0)
	return dst
}

// MaxCloseReason is the longest close reason that fits a control frame: 125
// bytes of payload minus the 2-byte code (RFC 6455 section 5.5).
const MaxCloseReason = 123

// AppendCloseFrame appends a close frame with code and reason to dst, masked
// with mask if role is RoleClient. A reason longer than MaxCloseReason is cut
// at the last UTF-8 boundary that fits. Code 0, StatusNoStatus and
// StatusAbnormal produce an empty payload: RFC 6455 section 7.4.1 says 1005
// and 1006 "MUST NOT be set as a status code in a Close control frame".
// dst grows only if it lacks capacity.
func AppendCloseFrame(dst []byte, role Role, mask [4]byte, code StatusCode, reason string) []byte {
	h := Header{Fin: true, Op: OpClose, Masked: role == RoleClient, Mask: mask}
	if code == StatusNoStatus || code == StatusAbnormal || code == 0 {
		return AppendHeader(dst, h)
	}
	if len(reason) > MaxCloseReason {
		reason = reason[:utf8Cut(reason, MaxCloseReason)]
	}
	h.Length = int64(2 + len(reason))
	dst = AppendHeader(dst, h)
	n := len(dst)
	dst = append(dst, byte(code>>8), byte(code))
	dst = append(dst, reason...)
	if h.Masked {
		ws.Cipher(dst[n:], mask, 0)
	}
	return dst
}

// utf8Cut returns the largest i <= max such that s[:i] does not end inside a
// multi-byte UTF-8 sequence.
func utf8Cut(s string, max int) int {
	i := max
	for i > 0 && i > max-3 && s[i]&0xc0 == 0x80 {
		i--
	}
	return i
}

// Precompiled server control frames. They are shared: never modify them.
var (
	// PingFrame is an empty unmasked ping.
	PingFrame = []byte{0x80 | byte(OpPing), 0}
	// PongFrame is an empty unmasked pong.
	PongFrame = []byte{0x80 | byte(OpPong), 0}
)

// closeFrames holds the unmasked close frames with an empty reason for codes
// 1000-1014, indexed by code-1000.
var closeFrames = func() (t [15][]byte) {
	for i := range t {
		t[i] = AppendCloseFrame(nil, RoleServer, [4]byte{}, StatusCode(1000+i), "")
	}
	return t
}()

// CloseFrame returns the unmasked server close frame for code with an empty
// reason. For codes 1000-1014 the result is a shared precompiled slice that
// must not be modified; other codes are encoded on each call.
func CloseFrame(code StatusCode) []byte {
	if code >= 1000 && code < 1000+StatusCode(len(closeFrames)) {
		return closeFrames[code-1000]
	}
	return AppendCloseFrame(nil, RoleServer, [4]byte{}, code, "")
}
