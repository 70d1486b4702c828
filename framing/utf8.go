package framing

import (
	"encoding/binary"
	mbits "math/bits"
)

// UTF-8 validation for text messages (RFC 6455 section 8.1: "When an endpoint
// is to interpret a byte stream as UTF-8 but finds that the byte stream is
// not, in fact, a valid UTF-8 stream, that endpoint MUST _Fail the WebSocket
// Connection_"). The scanner works on fragments: a code point cut by a
// fragment boundary is reported as a tail that the Decoder keeps, while any
// byte that can never start or continue a valid sequence fails at once.

// The classification tables follow unicode/utf8: for a leading byte, the low
// 3 bits are the sequence size and the high 4 bits index acceptRanges, which
// bound the second byte (excluding overlong forms, surrogates and values
// above U+10FFFF).
const (
	xx = 0xF1 // invalid: size 1
	as = 0xF0 // ASCII: size 1
	s1 = 0x02 // accept 0, size 2
	s2 = 0x13 // accept 1, size 3
	s3 = 0x03 // accept 0, size 3
	s4 = 0x23 // accept 2, size 3
	s5 = 0x34 // accept 3, size 4
	s6 = 0x04 // accept 0, size 4
	s7 = 0x44 // accept 4, size 4
)

var first = [256]uint8{
	//   1   2   3   4   5   6   7   8   9   A   B   C   D   E   F
	as, as, as, as, as, as, as, as, as, as, as, as, as, as, as, as, // 0x00-0x0F
	as, as, as, as, as, as, as, as, as, as, as, as, as, as, as, as, // 0x10-0x1F
	as, as, as, as, as, as, as, as, as, as, as, as, as, as, as, as, // 0x20-0x2F
	as, as, as, as, as, as, as, as, as, as, as, as, as, as, as, as, // 0x30-0x3F
	as, as, as, as, as, as, as, as, as, as, as, as, as, as, as, as, // 0x40-0x4F
	as, as, as, as, as, as, as, as, as, as, as, as, as, as, as, as, // 0x50-0x5F
	as, as, as, as, as, as, as, as, as, as, as, as, as, as, as, as, // 0x60-0x6F
	as, as, as, as, as, as, as, as, as, as, as, as, as, as, as, as, // 0x70-0x7F
	//   1   2   3   4   5   6   7   8   9   A   B   C   D   E   F
	xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, // 0x80-0x8F
	xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, // 0x90-0x9F
	xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, // 0xA0-0xAF
	xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, // 0xB0-0xBF
	xx, xx, s1, s1, s1, s1, s1, s1, s1, s1, s1, s1, s1, s1, s1, s1, // 0xC0-0xCF
	s1, s1, s1, s1, s1, s1, s1, s1, s1, s1, s1, s1, s1, s1, s1, s1, // 0xD0-0xDF
	s2, s3, s3, s3, s3, s3, s3, s3, s3, s3, s3, s3, s3, s4, s3, s3, // 0xE0-0xEF
	s5, s6, s6, s6, s7, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, xx, // 0xF0-0xFF
}

type acceptRange struct{ lo, hi uint8 }

var acceptRanges = [5]acceptRange{
	0: {0x80, 0xBF},
	1: {0xA0, 0xBF},
	2: {0x80, 0x9F},
	3: {0x90, 0xBF},
	4: {0x80, 0x8F},
}

const hiBits = 0x8080808080808080

// utf8Scan validates p. ok is false as soon as a byte is found that no
// continuation could make valid. Otherwise tail is the length of a trailing
// sequence that is a valid but incomplete code point (0 if p ends cleanly).
// ASCII runs are checked 16 and 8 bytes at a time.
func utf8Scan(p []byte) (tail int, ok bool) {
	n := len(p)
	i := 0
	for i < n {
		for i+16 <= n {
			w := binary.LittleEndian.Uint64(p[i:]) | binary.LittleEndian.Uint64(p[i+8:])
			if w&hiBits != 0 {
				break
			}
			i += 16
		}
		if i == n {
			break
		}
		if i+8 <= n {
			w := binary.LittleEndian.Uint64(p[i:]) & hiBits
			if w == 0 {
				i += 8
				continue
			}
			i += mbits.TrailingZeros64(w) >> 3
		}
		c := p[i]
		if c < 0x80 {
			i++
			continue
		}
		x := first[c]
		if x == xx {
			return 0, false
		}
		size := int(x & 7)
		if i+1 >= n {
			return n - i, true
		}
		ar := acceptRanges[x>>4]
		if c1 := p[i+1]; c1 < ar.lo || ar.hi < c1 {
			return 0, false
		}
		if size == 2 {
			i += 2
			continue
		}
		if i+2 >= n {
			return n - i, true
		}
		if p[i+2]&0xC0 != 0x80 {
			return 0, false
		}
		if size == 3 {
			i += 3
			continue
		}
		if i+3 >= n {
			return n - i, true
		}
		if p[i+3]&0xC0 != 0x80 {
			return 0, false
		}
		i += 4
	}
	return 0, true
}

// ValidUTF8 reports whether b is entirely valid UTF-8. It does not allocate.
func ValidUTF8(b []byte) bool {
	tail, ok := utf8Scan(b)
	return ok && tail == 0
}

// utf8State carries a code point cut by a fragment boundary from one
// fragment of a text message to the next. It is 4 bytes and pointer-free so
// that it fits inside Decoder.
type utf8State struct {
	pend  [3]byte
	npend uint8
}

// feed validates the next fragment p of a text message; final says p ends the
// message, so an incomplete code point is then an error too.
func (s *utf8State) feed(p []byte, final bool) bool {
	if s.npend > 0 {
		var buf [4]byte
		k := copy(buf[:], s.pend[:s.npend])
		take := int(first[buf[0]]&7) - k
		if take > len(p) {
			take = len(p)
		}
		k += copy(buf[k:], p[:take])
		p = p[take:]
		tail, ok := utf8Scan(buf[:k])
		if !ok {
			return false
		}
		if tail > 0 {
			// p was too short to complete the code point, so it is used up.
			if final {
				return false
			}
			s.npend = uint8(copy(s.pend[:], buf[:k]))
			return true
		}
		s.npend = 0
	}
	tail, ok := utf8Scan(p)
	if !ok || (tail > 0 && final) {
		return false
	}
	s.npend = uint8(copy(s.pend[:], p[len(p)-tail:]))
	return true
}
