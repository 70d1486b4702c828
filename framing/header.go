package framing

import "encoding/binary"

// Errors returned by ParseHeader. They are shared values: callers compare
// them by pointer or read Code.
var (
	// ErrLengthMSB is a 64-bit payload length with the most significant bit set.
	ErrLengthMSB = &ProtocolError{Code: StatusProtocolError, Reason: "64-bit payload length with the most significant bit set"}
	// ErrNonMinimalLength is a payload length not written in its shortest form.
	ErrNonMinimalLength = &ProtocolError{Code: StatusProtocolError, Reason: "payload length not in minimal encoding"}
)

// MaxHeaderSize is the longest frame header: 2 bytes, 8 bytes of extended
// length and 4 bytes of masking key.
const MaxHeaderSize = 14

// ParseHeader parses the frame header at the start of b. It returns the header
// and its encoded length n; n == 0 && err == nil means b does not hold a whole
// header yet. It decides only what the header encoding itself decides:
//
// RFC 6455 section 5.2: "the most significant bit MUST be 0" for a 64-bit
// length, and "the minimal number of bytes MUST be used to encode the
// length". Both are refused with ErrLengthMSB and ErrNonMinimalLength (1002).
// Opcode, RSV and mask policy are left to the Decoder.
func ParseHeader(b []byte) (h Header, n int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	b0, b1 := b[0], b[1]
	h.Fin = b0&0x80 != 0
	h.Rsv = (b0 >> 4) & 0x7
	h.Op = OpCode(b0 & 0x0f)
	h.Masked = b1&0x80 != 0
	n = 2
	switch l := b1 & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.Length = int64(binary.BigEndian.Uint16(b[2:4]))
		if h.Length < 126 {
			return h, 0, ErrNonMinimalLength
		}
		n = 4
	case 127:
		if len(b) < 10 {
			return h, 0, nil
		}
		v := binary.BigEndian.Uint64(b[2:10])
		if v>>63 != 0 {
			return h, 0, ErrLengthMSB
		}
		if v <= 0xffff {
			return h, 0, ErrNonMinimalLength
		}
		h.Length = int64(v)
		n = 10
	default:
		h.Length = int64(l)
	}
	if h.Masked {
		if len(b) < n+4 {
			return h, 0, nil
		}
		copy(h.Mask[:], b[n:n+4])
		n += 4
	}
	return h, n, nil
}

// HeaderSize returns the encoded length of h.
func HeaderSize(h Header) int {
	n := 2
	switch {
	case h.Length > 0xffff:
		n += 8
	case h.Length > 125:
		n += 2
	}
	if h.Masked {
		n += 4
	}
	return n
}

// AppendHeader appends the wire form of h to dst, always in the minimal length
// encoding, and returns the extended slice. It allocates only if dst lacks
// capacity.
func AppendHeader(dst []byte, h Header) []byte {
	b0 := byte(h.Op&0x0f) | (h.Rsv&0x7)<<4
	if h.Fin {
		b0 |= 0x80
	}
	var b1 byte
	if h.Masked {
		b1 = 0x80
	}
	switch {
	case h.Length > 0xffff:
		dst = append(dst, b0, b1|127)
		dst = binary.BigEndian.AppendUint64(dst, uint64(h.Length))
	case h.Length > 125:
		dst = append(dst, b0, b1|126)
		dst = binary.BigEndian.AppendUint16(dst, uint16(h.Length))
	default:
		dst = append(dst, b0, b1|byte(h.Length))
	}
	if h.Masked {
		dst = append(dst, h.Mask[:]...)
	}
	return dst
}
