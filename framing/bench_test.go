package framing

import (
	"strings"
	"testing"
)

// benchSizes are the payload sizes of the decode and encode benchmarks.
var benchSizes = []struct {
	name string
	n    int
}{{"16B", 16}, {"1KiB", 1024}, {"64KiB", 64 << 10}}

// benchText returns n bytes of JSON-like ASCII text, the game protocol's
// usual content.
func benchText(n int) []byte {
	s := strings.Repeat(`{"t":"move","x":12,"y":34}`, n/26+1)
	return []byte(s[:n])
}

// BenchmarkDecodeMaskedText measures what conn does per inbound frame:
// header parse, rule checks, in-place unmask and UTF-8 validation. Each
// iteration first restores the masked bytes (a copy of the frame, as a read
// into the loop buffer would): that copy is included in the time.
func BenchmarkDecodeMaskedText(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			wire := AppendMaskedFrame(nil, OpText, true, [4]byte{0xa1, 0xb2, 0xc3, 0xd4}, benchText(sz.n))
			buf := make([]byte, len(wire))
			d := NewDecoder(DecoderConfig{MaxMessage: 1 << 20})
			b.SetBytes(int64(sz.n))
			b.ReportAllocs()
			for b.Loop() {
				copy(buf, wire)
				n, f, err := d.Next(buf)
				if err != nil || n != len(wire) || len(f.Payload) != sz.n {
					b.Fatal(n, err)
				}
			}
		})
	}
}

// BenchmarkDecodeMaskedTextUTF8 is the same with multi-byte text, which
// leaves the ASCII fast path.
func BenchmarkDecodeMaskedTextUTF8(b *testing.B) {
	payload := []byte(strings.Repeat("Trésor trouvé à l'île 🏝 ", 50)[:1024])
	for !ValidUTF8(payload) {
		payload = payload[:len(payload)-1]
	}
	wire := AppendMaskedFrame(nil, OpText, true, [4]byte{0xa1, 0xb2, 0xc3, 0xd4}, payload)
	buf := make([]byte, len(wire))
	d := NewDecoder(DecoderConfig{})
	b.SetBytes(int64(len(payload)))
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, wire)
		if n, _, err := d.Next(buf); err != nil || n != len(wire) {
			b.Fatal(n, err)
		}
	}
}

// BenchmarkEncodeText encodes a server text frame into a reused buffer.
func BenchmarkEncodeText(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			p := benchText(sz.n)
			dst := make([]byte, 0, sz.n+MaxHeaderSize)
			b.SetBytes(int64(sz.n))
			b.ReportAllocs()
			for b.Loop() {
				dst = AppendFrame(dst[:0], OpText, true, p)
			}
		})
	}
}

// BenchmarkEncodeMaskedText encodes a client (masked) text frame into a
// reused buffer, as the load generator does.
func BenchmarkEncodeMaskedText(b *testing.B) {
	for _, sz := range benchSizes {
		b.Run(sz.name, func(b *testing.B) {
			p := benchText(sz.n)
			dst := make([]byte, 0, sz.n+MaxHeaderSize)
			b.SetBytes(int64(sz.n))
			b.ReportAllocs()
			for b.Loop() {
				dst = AppendMaskedFrame(dst[:0], OpText, true, [4]byte{1, 2, 3, 4}, p)
			}
		})
	}
}

// BenchmarkUpgrade runs a browser-like upgrade request from a buffer through
// the Upgrader into a reused response buffer.
func BenchmarkUpgrade(b *testing.B) {
	u := Upgrader{Deflate: true, Check: func(r *Request) int {
		if len(r.Query) == 0 {
			return 401
		}
		return 0
	}}
	dst := make([]byte, 0, 512)
	b.SetBytes(int64(len(browserRequest)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := u.Upgrade(dst[:0], browserRequest); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPrepareDeflate is the cost of one broadcast frame prepared in
// both forms (plain and compressed), paid once for all receivers.
func BenchmarkPrepareDeflate(b *testing.B) {
	p := benchText(1024)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		Prepare(OpText, p, true)
	}
}

// BenchmarkInflate decompresses a 1 KiB message with a reused Inflater.
func BenchmarkInflate(b *testing.B) {
	var d Deflater
	var in Inflater
	p := benchText(1024)
	z := d.Deflate(nil, p)
	out := make([]byte, 0, 2048)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := in.Inflate(out[:0], z, 4096); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDecodeMaskedTextChops decodes a 64 KiB masked text frame that
// arrives in 4 KiB reads: each incomplete read validates only its new bytes.
func BenchmarkDecodeMaskedTextChops(b *testing.B) {
	const size, chop = 64 << 10, 4 << 10
	wire := AppendMaskedFrame(nil, OpText, true, [4]byte{0xa1, 0xb2, 0xc3, 0xd4}, benchText(size))
	buf := make([]byte, len(wire))
	d := NewDecoder(DecoderConfig{MaxMessage: 1 << 20})
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		copy(buf, wire)
		for end := chop; ; end += chop {
			n, _, err := d.Next(buf[:min(end, len(buf))])
			if err != nil {
				b.Fatal(err)
			}
			if n > 0 {
				break
			}
		}
	}
}
