package framing

import (
	"bytes"
	"strings"
)

// bits turns a readable bit string such as "1 000 0001  0 0000101" into
// bytes: spaces are ignored and every 8 bits make one byte.
func bits(s string) []byte {
	s = strings.ReplaceAll(s, " ", "")
	if len(s)%8 != 0 {
		panic("bits: not a whole number of bytes: " + s)
	}
	out := make([]byte, len(s)/8)
	for i := range s {
		out[i/8] <<= 1
		switch s[i] {
		case '1':
			out[i/8] |= 1
		case '0':
		default:
			panic("bits: bad digit in " + s)
		}
	}
	return out
}

// cat concatenates byte slices into a new one.
func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// testMask is the masking key of the examples in RFC 6455 section 5.7.
var testMask = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// masked returns a copy of p xored with mask, as a client puts it on the wire.
func masked(p []byte, mask [4]byte) []byte {
	out := make([]byte, len(p))
	for i := range p {
		out[i] = p[i] ^ mask[i%4]
	}
	return out
}

// frameVector is one frame in both forms: the wire bytes and what they mean.
// The same table drives decoding (wire -> header, payload) and encoding
// (header, payload -> wire).
type frameVector struct {
	name    string
	wire    []byte
	header  Header
	payload []byte // unmasked
}

// role is the side that receives the vector's frame.
func (v frameVector) role() Role {
	if v.header.Masked {
		return RoleServer
	}
	return RoleClient
}

var (
	hello   = []byte("Hello")
	bin256  = bytes.Repeat([]byte{0xAB}, 256)
	bin64k  = bytes.Repeat([]byte{0x5A}, 65536)
	text126 = []byte(strings.Repeat("é", 63)) // 126 bytes: the first 16-bit length
	text64k = []byte(strings.Repeat("z", 65535) + "€")
)

var frameVectors = []frameVector{
	{
		// RFC 6455 section 5.7: "A single-frame unmasked text message".
		name:    "rfc unmasked text",
		wire:    cat(bits("1 000 0001  0 0000101"), hello),
		header:  Header{Fin: true, Op: OpText, Length: 5},
		payload: hello,
	},
	{
		// RFC 6455 section 5.7: "A single-frame masked text message".
		name:    "rfc masked text",
		wire:    cat(bits("1 000 0001  1 0000101"), testMask[:], []byte{0x7f, 0x9f, 0x4d, 0x51, 0x58}),
		header:  Header{Fin: true, Op: OpText, Masked: true, Mask: testMask, Length: 5},
		payload: hello,
	},
	{
		name:    "rfc first fragment",
		wire:    cat(bits("0 000 0001  0 0000011"), []byte("Hel")),
		header:  Header{Op: OpText, Length: 3},
		payload: []byte("Hel"),
	},
	{
		name:    "rfc last fragment",
		wire:    cat(bits("1 000 0000  0 0000010"), []byte("lo")),
		header:  Header{Fin: true, Op: OpContinuation, Length: 2},
		payload: []byte("lo"),
	},
	{
		name:    "rfc unmasked ping",
		wire:    cat(bits("1 000 1001  0 0000101"), hello),
		header:  Header{Fin: true, Op: OpPing, Length: 5},
		payload: hello,
	},
	{
		name:    "rfc masked pong",
		wire:    cat(bits("1 000 1010  1 0000101"), testMask[:], masked(hello, testMask)),
		header:  Header{Fin: true, Op: OpPong, Masked: true, Mask: testMask, Length: 5},
		payload: hello,
	},
	{
		name:    "empty masked binary",
		wire:    cat(bits("1 000 0010  1 0000000"), testMask[:]),
		header:  Header{Fin: true, Op: OpBinary, Masked: true, Mask: testMask},
		payload: []byte{},
	},
	{
		name:    "125 bytes: longest 7-bit length",
		wire:    cat(bits("1 000 0010  0 1111101"), bin256[:125]),
		header:  Header{Fin: true, Op: OpBinary, Length: 125},
		payload: bin256[:125],
	},
	{
		name:    "126 bytes: shortest 16-bit length",
		wire:    cat(bits("1 000 0001  1 1111110"), bits("00000000 01111110"), testMask[:], masked(text126, testMask)),
		header:  Header{Fin: true, Op: OpText, Masked: true, Mask: testMask, Length: 126},
		payload: text126,
	},
	{
		// RFC 6455 section 5.7: "256 bytes binary message in a single unmasked frame".
		name:    "rfc 256 bytes",
		wire:    cat(bits("1 000 0010  0 1111110"), bits("00000001 00000000"), bin256),
		header:  Header{Fin: true, Op: OpBinary, Length: 256},
		payload: bin256,
	},
	{
		name:    "65535 bytes: longest 16-bit length",
		wire:    cat(bits("1 000 0010  0 1111110"), bits("11111111 11111111"), bin64k[:65535]),
		header:  Header{Fin: true, Op: OpBinary, Length: 65535},
		payload: bin64k[:65535],
	},
	{
		// RFC 6455 section 5.7: "64KiB binary message in a single unmasked frame".
		name:    "rfc 64KiB",
		wire:    cat(bits("1 000 0010  0 1111111"), bits("00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000000"), bin64k),
		header:  Header{Fin: true, Op: OpBinary, Length: 65536},
		payload: bin64k,
	},
	{
		name:    "64KiB+2 masked text",
		wire:    cat(bits("1 000 0001  1 1111111"), bits("00000000 00000000 00000000 00000000 00000000 00000001 00000000 00000010"), testMask[:], masked(text64k, testMask)),
		header:  Header{Fin: true, Op: OpText, Masked: true, Mask: testMask, Length: 65538},
		payload: text64k,
	},
	{
		name:    "masked close 1000 with reason",
		wire:    cat(bits("1 000 1000  1 0000100"), testMask[:], masked(cat([]byte{0x03, 0xe8}, []byte("ok")), testMask)),
		header:  Header{Fin: true, Op: OpClose, Masked: true, Mask: testMask, Length: 4},
		payload: cat([]byte{0x03, 0xe8}, []byte("ok")),
	},
	{
		name:    "unmasked close 1009",
		wire:    cat(bits("1 000 1000  0 0000010"), bits("00000011 11110001")),
		header:  Header{Fin: true, Op: OpClose, Length: 2},
		payload: []byte{0x03, 0xf1},
	},
	{
		name:    "compressed first frame (RSV1)",
		wire:    cat(bits("1 100 0001  0 0000011"), []byte{0x01, 0x02, 0x03}),
		header:  Header{Fin: true, Rsv: 0b100, Op: OpText, Length: 3},
		payload: []byte{0x01, 0x02, 0x03},
	},
}
