package framing

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"
)

// RFC 7692 section 7.2.3 examples of "Hello" as a compressed payload.
var (
	rfcHelloCompressed = []byte{0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00}
	rfcHelloStored     = []byte{0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00}
)

func TestInflateRFCExamples(t *testing.T) {
	var in Inflater
	for _, src := range [][]byte{rfcHelloCompressed, rfcHelloStored, rfcHelloCompressed} {
		out, err := in.Inflate(nil, src, 100)
		if err != nil || string(out) != "Hello" {
			t.Fatalf("Inflate(% x) = %q, %v", src, out, err)
		}
	}
}

func randomBytes(n int, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func TestDeflateRoundTrip(t *testing.T) {
	var d Deflater
	var in Inflater
	inputs := [][]byte{
		nil,
		[]byte("a"),
		[]byte("Hello"),
		[]byte(strings.Repeat(`{"t":"lb","top":[{"p":"alice","s":12}]}`, 100)),
		randomBytes(5000, 1),
		bytes.Repeat([]byte{0}, 70000),
	}
	for _, src := range inputs {
		z := d.Deflate([]byte("hdr"), src)
		if string(z[:3]) != "hdr" {
			t.Fatal("dst prefix lost")
		}
		if bytes.HasSuffix(z[3:], []byte{0, 0, 0xff, 0xff}) {
			t.Fatalf("compressed payload keeps the 00 00 ff ff tail (RFC 7692 section 7.2.1)")
		}
		out, err := in.Inflate([]byte("pre"), z[3:], len(src))
		if err != nil || string(out[:3]) != "pre" || !bytes.Equal(out[3:], src) {
			t.Fatalf("round trip of %d bytes: %v, got %d bytes", len(src), err, len(out)-3)
		}
	}
}

func TestInflateLimit(t *testing.T) {
	var d Deflater
	var in Inflater
	src := []byte(strings.Repeat("x", 4096))
	z := d.Deflate(nil, src)
	if out, err := in.Inflate(nil, z, 4096); err != nil || len(out) != 4096 {
		t.Fatalf("exactly max: %d bytes, %v", len(out), err)
	}
	out, err := in.Inflate([]byte("keep"), z, 4095)
	if err != ErrInflateTooBig || string(out) != "keep" {
		t.Fatalf("max-1: %q, %v; want dst unchanged and ErrInflateTooBig", out, err)
	}
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Code != StatusMessageTooBig {
		t.Fatalf("err %v is not a 1009", err)
	}
}

// TestDeflateBomb inflates 8 MiB of zeros compressed to ~10 KiB under a 4 KiB
// limit: it must fail with 1009 having grown dst only to about the limit.
func TestDeflateBomb(t *testing.T) {
	var d Deflater
	bomb := d.Deflate(nil, make([]byte, 8<<20))
	t.Logf("bomb: %d compressed bytes", len(bomb))
	var in Inflater
	out, err := in.Inflate(nil, bomb, 4096)
	if err != ErrInflateTooBig {
		t.Fatalf("err %v, want ErrInflateTooBig", err)
	}
	if cap(out) > 3*4096 {
		t.Fatalf("dst grew to %d bytes for a 4096 limit", cap(out))
	}
}

func TestInflateCorrupt(t *testing.T) {
	var in Inflater
	for _, src := range [][]byte{{0xff, 0xff, 0xff}, {0x07}, rfcHelloCompressed[:3]} {
		_, err := in.Inflate(nil, src, 100)
		var pe *ProtocolError
		if !errors.As(err, &pe) || pe.Code != StatusInvalidPayload {
			t.Errorf("Inflate(% x): %v, want a 1007", src, err)
		}
	}
	// Still usable afterwards.
	if out, err := in.Inflate(nil, rfcHelloCompressed, 100); err != nil || string(out) != "Hello" {
		t.Fatalf("after errors: %q %v", out, err)
	}
}

func TestDeflateAllocs(t *testing.T) {
	var d Deflater
	var in Inflater
	src := []byte(strings.Repeat(`{"t":"move","x":12,"y":34}`, 40))
	zbuf := make([]byte, 0, 2048)
	out := make([]byte, 0, 2048)
	z := d.Deflate(zbuf[:0], src)
	if _, err := in.Inflate(out[:0], z, 4096); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { z = d.Deflate(zbuf[:0], src) }); n != 0 {
		t.Errorf("Deflate: %v allocs", n)
	}
	if n := testing.AllocsPerRun(100, func() {
		if _, err := in.Inflate(out[:0], z, 4096); err != nil {
			t.Fatal(err)
		}
	}); n != 0 {
		t.Errorf("Inflate: %v allocs", n)
	}
}

func TestPrepared(t *testing.T) {
	var in Inflater
	payload := []byte(strings.Repeat(`{"t":"update","hunt":"h1","x":3}`, 20))
	p := Prepare(OpText, payload, true)
	if !p.Compressed() || p.Op() != OpText || p.Len() != len(payload) {
		t.Fatalf("Compressed %v Op %v Len %d", p.Compressed(), p.Op(), p.Len())
	}
	// The plain form is what AppendFrame makes.
	if !bytes.Equal(p.Bytes(false), AppendFrame(nil, OpText, true, payload)) {
		t.Fatal("plain form differs from AppendFrame")
	}
	// The compressed form decodes on a deflate client as one compressed
	// frame whose payload inflates back.
	d := NewDecoder(DecoderConfig{Role: RoleClient, Deflate: true})
	wire := bytes.Clone(p.Bytes(true))
	n, f, err := d.Next(wire)
	if err != nil || n != len(wire) || !f.Compressed || f.Header.Rsv != 0b100 || !f.Final {
		t.Fatalf("compressed frame: n=%d %+v %v", n, f.Header, err)
	}
	if out, err := in.Inflate(nil, f.Payload, 4096); err != nil || !bytes.Equal(out, payload) {
		t.Fatalf("inflate: %v", err)
	}
	if len(p.Bytes(true)) >= len(p.Bytes(false)) {
		t.Fatal("compressed form not smaller")
	}
	// Changing the caller's payload afterwards changes nothing.
	before := bytes.Clone(p.Bytes(false))
	payload[0] = 'X'
	if !bytes.Equal(before, p.Bytes(false)) {
		t.Fatal("Prepared aliases the caller's payload")
	}

	// Incompressible or uncompressed: the plain form for everybody.
	for _, q := range []*Prepared{Prepare(OpBinary, randomBytes(300, 9), true), Prepare(OpText, payload, false), Prepare(OpPing, []byte("x"), true)} {
		if q.Compressed() || !bytes.Equal(q.Bytes(true), q.Bytes(false)) {
			t.Fatalf("op %v: compressed form where none is wanted", q.Op())
		}
	}
}
